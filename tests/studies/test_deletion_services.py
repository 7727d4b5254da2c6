"""Deleting (hiding) and restoring timepoints, sessions and scans: studies.services and the
managers that leave hidden rows out."""

from datetime import UTC, datetime

import pytest

from qc.models import QCState, ScanReview
from studies import services
from studies.models import DeletionAction, DeletionEvent, Scan, Session, Timepoint
from tests.qc.factories import ScanReviewFactory
from tests.studies.factories import ScanFactory, SessionFactory, TimepointFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_dashboard_admin=True, is_staff=True)


@pytest.fixture
def tree():
    """A timepoint with two sessions of two scans each."""
    timepoint = TimepointFactory()
    sessions = [SessionFactory(timepoint=timepoint, number=number) for number in (1, 2)]
    scans = [ScanFactory(session=session) for session in sessions for _ in range(2)]
    return timepoint, sessions, scans


def shown_names(model):
    return sorted(str(obj) for obj in model.objects.all())


def test_delete_scan_hides_only_it(tree, admin_user):
    _timepoint, _sessions, scans = tree

    event = services.delete_object(scans[0], user=admin_user, reason="  Test series.  ")

    scans[0].refresh_from_db()
    assert scans[0].deleted_by == admin_user
    assert scans[0].deleted_at is not None
    assert scans[0].deletion_reason == "Test series."
    assert shown_names(Scan) == sorted(scan.name for scan in scans[1:])
    assert Scan.all_objects.count() == 4
    assert event.action == DeletionAction.DELETE
    assert event.object_type == "scan"
    assert event.object_id == scans[0].pk
    assert event.object_name == scans[0].name
    assert event.reason == "Test series."
    assert event.actor == admin_user
    assert event.study_id == scans[0].session.timepoint.study_id


def test_delete_session_hides_its_scans(tree, admin_user):
    timepoint, sessions, scans = tree

    services.delete_object(sessions[0], user=admin_user, reason="Scanned twice.")

    assert shown_names(Session) == [sessions[1].name]
    assert shown_names(Scan) == sorted(scan.name for scan in scans[2:])
    assert [session.number for session in timepoint.sessions.all()] == [2]
    # The scans themselves are not written to, so a restore shows them as they were.
    assert Scan.all_objects.filter(deleted_at__isnull=False).count() == 0


def test_delete_timepoint_hides_everything_in_it(tree, admin_user):
    timepoint, _sessions, _scans = tree

    services.delete_object(timepoint, user=admin_user, reason="Wrong subject ID.")

    assert Timepoint.objects.count() == 0
    assert Session.objects.count() == 0
    assert Scan.objects.count() == 0
    assert Timepoint.all_objects.hidden().count() == 1
    assert Session.all_objects.hidden().count() == 2
    assert Scan.all_objects.hidden().count() == 4
    assert Scan.all_objects.shown().count() == 0


def test_restore_timepoint_brings_back_children(tree, admin_user):
    timepoint, sessions, scans = tree
    services.delete_object(scans[3], user=admin_user, reason="Test series.")
    services.delete_object(timepoint, user=admin_user, reason="Wrong subject ID.")

    event = services.restore_object(timepoint, user=admin_user, reason="The ID was right.")

    timepoint.refresh_from_db()
    assert timepoint.deleted_at is None
    assert timepoint.deleted_by is None
    assert timepoint.deletion_reason == ""
    assert shown_names(Session) == sorted(session.name for session in sessions)
    # The scan deleted on its own before stays deleted.
    assert shown_names(Scan) == sorted(scan.name for scan in scans[:3])
    assert event.action == DeletionAction.RESTORE
    assert event.reason == "The ID was right."


def test_events_kept_for_delete_and_restore(tree, admin_user):
    _timepoint, sessions, _scans = tree
    services.delete_object(sessions[0], user=admin_user, reason="Scanned twice.")
    services.restore_object(sessions[0], user=admin_user, reason="It was not.")
    services.delete_object(sessions[0], user=admin_user, reason="It was after all.")

    rows = list(DeletionEvent.objects.order_by("id").values_list("action", "object_name", "reason"))
    assert rows == [
        ("delete", sessions[0].name, "Scanned twice."),
        ("restore", sessions[0].name, "It was not."),
        ("delete", sessions[0].name, "It was after all."),
    ]


def test_qc_history_untouched(tree, admin_user):
    _timepoint, _sessions, scans = tree
    review = ScanReviewFactory(scan=scans[0], state=QCState.FLAGGED, comment="motion")

    services.delete_object(scans[0], user=admin_user, reason="Test series.")
    services.restore_object(scans[0], user=admin_user, reason="Needed after all.")

    assert list(ScanReview.objects.values_list("pk", "state", "comment")) == [
        (review.pk, QCState.FLAGGED, "motion")
    ]


def test_double_delete_rejected(tree, admin_user):
    _timepoint, _sessions, scans = tree
    services.delete_object(scans[0], user=admin_user, reason="Test series.")

    with pytest.raises(services.DeletionError, match=f"scan {scans[0].name} is already deleted"):
        services.delete_object(scans[0], user=admin_user, reason="Again.")
    assert DeletionEvent.objects.count() == 1


def test_delete_under_deleted_parent_rejected(tree, admin_user):
    timepoint, sessions, _scans = tree
    services.delete_object(timepoint, user=admin_user, reason="Wrong subject ID.")

    with pytest.raises(services.DeletionError, match=f"timepoint {timepoint.name} is deleted"):
        services.delete_object(sessions[0], user=admin_user, reason="Scanned twice.")


def test_restore_of_shown_object_rejected(tree, admin_user):
    _timepoint, _sessions, scans = tree

    with pytest.raises(services.DeletionError, match="is not deleted, so there is nothing"):
        services.restore_object(scans[0], user=admin_user, reason="Just in case.")
    assert DeletionEvent.objects.count() == 0


def test_restore_of_child_of_deleted_parent_rejected(tree, admin_user):
    _timepoint, sessions, scans = tree
    services.delete_object(scans[0], user=admin_user, reason="Test series.")
    services.delete_object(sessions[0], user=admin_user, reason="Scanned twice.")

    with pytest.raises(services.DeletionError, match="restore that first"):
        services.restore_object(scans[0], user=admin_user, reason="Needed.")
    with pytest.raises(services.DeletionError, match="Restore that instead"):
        services.restore_object(scans[1], user=admin_user, reason="Needed.")
    assert Scan.all_objects.get(pk=scans[0].pk).is_deleted


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "A reason is required"),
        ("   ", "A reason is required"),
        ("x" * 1001, "1001 characters long; shorten it to at most 1000"),
        ("bad\x00byte", "NUL character"),
    ],
)
def test_bad_reason_rejected(tree, admin_user, reason, message):
    _timepoint, _sessions, scans = tree

    with pytest.raises(services.DeletionError, match=message):
        services.delete_object(scans[0], user=admin_user, reason=reason)
    assert not Scan.all_objects.get(pk=scans[0].pk).is_deleted
    assert DeletionEvent.objects.count() == 0


def test_reverse_relations_and_prefetch_leave_hidden_out(tree, admin_user):
    timepoint, sessions, scans = tree
    services.delete_object(scans[0], user=admin_user, reason="Test series.")
    services.delete_object(sessions[1], user=admin_user, reason="Scanned twice.")

    fetched = Timepoint.objects.prefetch_related("sessions__scans").get(pk=timepoint.pk)

    assert [session.number for session in fetched.sessions.all()] == [1]
    assert [scan.name for scan in fetched.sessions.all()[0].scans.all()] == [scans[1].name]
    assert list(sessions[0].scans.values_list("name", flat=True)) == [scans[1].name]


def test_forward_relation_reaches_hidden_parent(tree, admin_user):
    timepoint, _sessions, scans = tree
    services.delete_object(timepoint, user=admin_user, reason="Wrong subject ID.")

    scan = Scan.all_objects.get(pk=scans[0].pk)

    assert scan.session.timepoint == timepoint


def test_double_delete_message_shows_zone(tree, admin_user, settings):
    settings.TIME_ZONE = "America/Toronto"
    _timepoint, _sessions, scans = tree
    services.delete_object(scans[0], user=admin_user, reason="Test series.")
    Scan.all_objects.filter(pk=scans[0].pk).update(
        deleted_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
    )

    with pytest.raises(services.DeletionError) as raised:
        services.delete_object(scans[0], user=admin_user, reason="Again.")

    assert f"(by {admin_user} on 2026-01-15 12:30 EST)." in str(raised.value)
