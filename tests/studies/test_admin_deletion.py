"""The admin site lists deleted rows, filters them and deletes and restores with a reason."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from studies import services
from studies.models import DeletionAction, DeletionEvent, Scan, Timepoint
from tests.studies.factories import ScanFactory, SessionFactory, TimepointFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_dashboard_admin=True, is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def scans(admin_user):
    """Two scans of one session; the first is deleted."""
    session = SessionFactory()
    first, second = ScanFactory(session=session), ScanFactory(session=session)
    services.delete_object(first, user=admin_user, reason="Test series.")
    return first, second


def changelist(model):
    return reverse(f"admin:studies_{model}_changelist")


def listed_ids(response):
    return {obj.pk for obj in response.context["cl"].result_list}


def test_changelist_shows_hidden_rows(admin_client, scans):
    response = admin_client.get(changelist("scan"))

    assert listed_ids(response) == {scans[0].pk, scans[1].pk}


@pytest.mark.parametrize(("hidden", "expected"), [("yes", 0), ("no", 1)])
def test_changelist_filters_hidden(admin_client, scans, hidden, expected):
    response = admin_client.get(changelist("scan"), {"hidden": hidden})

    assert listed_ids(response) == {scans[expected].pk}


def test_hidden_filter_follows_parents(admin_client, admin_user):
    timepoint = TimepointFactory()
    session = SessionFactory(timepoint=timepoint)
    services.delete_object(timepoint, user=admin_user, reason="Wrong subject ID.")

    response = admin_client.get(changelist("session"), {"hidden": "yes"})

    assert listed_ids(response) == {session.pk}


def test_change_page_of_hidden_row_opens(admin_client, scans):
    response = admin_client.get(reverse("admin:studies_scan_change", args=[scans[0].pk]))

    assert response.status_code == 200
    assert "Test series." in response.text


def test_restore_action_asks_for_reason(admin_client, scans):
    response = admin_client.post(
        changelist("scan"),
        {"action": "restore_selected_records", ACTION_CHECKBOX_NAME: [scans[0].pk]},
    )

    assert response.status_code == 200
    assert 'name="reason"' in response.text
    assert scans[0].name in response.text
    assert Scan.all_objects.get(pk=scans[0].pk).is_deleted


def test_restore_action_without_reason_restores_nothing(admin_client, scans):
    response = admin_client.post(
        changelist("scan"),
        {
            "action": "restore_selected_records",
            ACTION_CHECKBOX_NAME: [scans[0].pk],
            "apply": "1",
            "reason": " ",
        },
    )

    assert response.status_code == 200
    assert "This field is required." in response.text
    assert Scan.all_objects.get(pk=scans[0].pk).is_deleted


def test_restore_action_restores(admin_client, scans, admin_user):
    response = admin_client.post(
        changelist("scan"),
        {
            "action": "restore_selected_records",
            ACTION_CHECKBOX_NAME: [scans[0].pk],
            "apply": "1",
            "reason": "Needed after all.",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert "1 scan restored." in response.text
    assert not Scan.all_objects.get(pk=scans[0].pk).is_deleted
    event = DeletionEvent.objects.get(action=DeletionAction.RESTORE)
    assert (event.object_name, event.reason, event.actor) == (
        scans[0].name,
        "Needed after all.",
        admin_user,
    )


def test_restore_action_reports_shown_rows(admin_client, scans):
    response = admin_client.post(
        changelist("scan"),
        {
            "action": "restore_selected_records",
            ACTION_CHECKBOX_NAME: [scans[0].pk, scans[1].pk],
            "apply": "1",
            "reason": "Needed after all.",
        },
        follow=True,
    )

    assert "1 scan restored." in response.text
    assert f"The scan {scans[1].name} is not deleted" in response.text


def test_delete_action_hides_with_reason(admin_client):
    timepoints = [TimepointFactory(), TimepointFactory()]

    admin_client.post(
        changelist("timepoint"),
        {
            "action": "delete_selected_records",
            ACTION_CHECKBOX_NAME: [timepoint.pk for timepoint in timepoints],
            "apply": "1",
            "reason": "Pilot data.",
        },
    )

    assert Timepoint.objects.count() == 0
    assert Timepoint.all_objects.count() == 2
    assert DeletionEvent.objects.filter(reason="Pilot data.").count() == 2


def test_django_delete_not_offered(admin_client, scans):
    response = admin_client.get(changelist("scan"))

    actions = [name for name, _label in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "delete_selected_records" in actions
    assert "restore_selected_records" in actions
    assert (
        admin_client.get(reverse("admin:studies_scan_delete", args=[scans[1].pk])).status_code
        == 403
    )


def test_deletion_log_read_only(admin_client, scans):
    event = DeletionEvent.objects.get()

    listing = admin_client.get(reverse("admin:studies_deletionevent_changelist"))
    change = admin_client.post(
        reverse("admin:studies_deletionevent_change", args=[event.pk]), {"reason": "edited"}
    )

    assert scans[0].name in listing.text
    assert change.status_code == 403
    event.refresh_from_db()
    assert event.reason == "Test series."
