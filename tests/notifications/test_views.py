import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from notifications.models import (
    DigestFrequency,
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
)
from tests.notifications.conftest import member
from tests.studies.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="boss", is_dashboard_admin=True))
    return client


def failed_rows(count):
    for index in range(count):
        Notification.objects.create(
            recipient=UserFactory(),
            kind=NotificationKind.MISSING_SURVEY,
            key=f"missing-survey:SPN01_CMH_{index:04d}_01_01",
            subject="Missing survey",
            body_text="Body\n",
            status=NotificationStatus.FAILED,
            attempts=3,
            last_error="SMTPException: 421 service not available",
        )


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response


@pytest.mark.parametrize("rows", [1, 20])
def test_failed_page_queries(admin_client, rows):
    failed_rows(rows)

    # Session, user with memberships, the page's count, its rows with their recipients, and
    # the navigation's count of pending account requests (shown to dashboard admins).
    count, response = count_queries(admin_client, reverse("notifications:failed"))

    assert count == 5
    assert response.content.count(b"data-notification=") == rows
    assert b"421 service not available" in response.content


def test_failed_page_lists_only_failed(admin_client):
    failed_rows(1)
    Notification.objects.update(status=NotificationStatus.SENT, sent_at=timezone.now())

    response = admin_client.get(reverse("notifications:failed"))

    assert b"No failed notification emails." in response.content


@pytest.mark.parametrize("rows", [1, 20])
def test_study_recipients_queries(client, study_site, rows):
    admin = member("lead", study_site, Role.STUDY_ADMIN, is_primary_contact=True)
    for index in range(rows - 1):
        user = member(f"ra{index}", study_site, Role.RA)
        NotificationPreference.objects.create(user=user, kinds=[], digest=DigestFrequency.DAILY)
    client.force_login(admin)
    url = reverse("notifications:study_recipients", args=["SPINS"])

    # Session, user with memberships, the study, the memberships with users and preferences.
    count, response = count_queries(client, url)

    assert count == 4
    assert response.content.count(b"<tr>") == rows + 1


def test_study_recipients_shows_kinds(client, study_site):
    admin = member("lead", study_site, Role.STUDY_ADMIN, is_primary_contact=True)
    ra = member("ra", study_site, Role.RA)
    NotificationPreference.objects.create(user=ra, kinds=[], digest=DigestFrequency.DAILY)
    client.force_login(admin)

    response = client.get(reverse("notifications:study_recipients", args=["SPINS"]))

    rows = response.content.decode()
    assert "New sessions imported, Incidental finding" in rows
    assert "Digest of sessions needing review" in rows


def test_preferences_saved(client, db):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        reverse("notifications:preferences"),
        {"kinds": [NotificationKind.NEW_SESSIONS], "digest": DigestFrequency.WEEKLY},
    )

    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=user)
    assert preference.kinds == [NotificationKind.NEW_SESSIONS]
    assert preference.digest == DigestFrequency.WEEKLY


def test_preferences_reject_unknown_kind(client, db):
    client.force_login(UserFactory())

    response = client.post(reverse("notifications:preferences"), {"kinds": ["account-decided"]})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not NotificationPreference.objects.exists()
