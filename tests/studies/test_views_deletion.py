"""The delete pages of timepoints, sessions and scans, and their buttons on the QC pages."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from studies.models import DeletionEvent, Scan, Session, Timepoint
from tests.qc.scenarios import fill_session, make_study_site
from tests.studies.factories import ScanFactory, SessionFactory, TimepointFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = UserFactory(username="admin", is_dashboard_admin=True, is_staff=True)
    client.force_login(admin)
    return client


@pytest.fixture
def session(reviewer):
    session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    session.filled_scans = fill_session(session, reviewer)
    return session


def delete_url(kind, obj):
    return reverse(f"deletion:{kind}", args=[obj.name])


def test_scan_delete_page_asks_for_reason(admin_client, session):
    scan = session.filled_scans[0]

    response = admin_client.get(delete_url("scan", scan))

    assert response.status_code == 200
    assert 'name="reason"' in response.text
    assert "files in the archive are not touched" in response.text
    assert not Scan.all_objects.get(pk=scan.pk).is_deleted


def test_scan_delete_redirects_to_timepoint(admin_client, session):
    scan = session.filled_scans[0]

    response = admin_client.post(delete_url("scan", scan), {"reason": "Test series."})

    timepoint_url = reverse("qc:timepoint_detail", args=[session.timepoint.name])
    assert response.status_code == 302
    assert response.url == timepoint_url
    assert Scan.all_objects.get(pk=scan.pk).deletion_reason == "Test series."
    message = str(next(iter(get_messages(response.wsgi_request))))
    assert f"The scan {scan.name} is deleted" in message
    page = admin_client.get(timepoint_url)
    assert f'id="scan-{scan.pk}"' not in page.text
    assert f'id="scan-{session.filled_scans[1].pk}"' in page.text


def test_session_delete_redirects_to_timepoint(admin_client, session):
    response = admin_client.post(delete_url("session", session), {"reason": "Scanned twice."})

    assert response.status_code == 302
    assert response.url == reverse("qc:timepoint_detail", args=[session.timepoint.name])
    assert Session.all_objects.get(pk=session.pk).is_deleted
    assert Scan.objects.filter(session=session).count() == 0


def test_timepoint_delete_redirects_to_study(admin_client, session):
    timepoint = session.timepoint

    response = admin_client.post(delete_url("timepoint", timepoint), {"reason": "Wrong ID."})

    assert response.status_code == 302
    assert response.url == reverse("qc:study_detail", args=[timepoint.study.nickname])
    assert Timepoint.all_objects.get(pk=timepoint.pk).is_deleted
    timepoint_link = f'href="{reverse("qc:timepoint_detail", args=[timepoint.name])}"'
    assert timepoint_link not in admin_client.get(response.url).text


def test_timepoint_page_names_what_is_hidden_with_it(admin_client, session):
    response = admin_client.get(delete_url("timepoint", session.timepoint))

    assert "together with 1 session and 3 scans in it" in response.text


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 1001, "Ensure this value has at most 1000 characters (it has 1001)."),
        ("bad\x00byte", "The reason contains a NUL character; remove it and try again."),
    ],
)
def test_bad_reason_shows_error_and_deletes_nothing(admin_client, session, reason, error):
    scan = session.filled_scans[0]

    response = admin_client.post(delete_url("scan", scan), {"reason": reason})

    assert response.status_code == 200
    assert error in response.text
    assert not Scan.all_objects.get(pk=scan.pk).is_deleted
    assert DeletionEvent.objects.count() == 0


def test_deleted_scan_page_is_404(admin_client, session):
    scan = session.filled_scans[0]
    admin_client.post(delete_url("scan", scan), {"reason": "Test series."})

    assert admin_client.get(reverse("qc:scan_detail", args=[scan.name])).status_code == 404
    assert admin_client.post(delete_url("scan", scan), {"reason": "Again."}).status_code == 404
    assert DeletionEvent.objects.count() == 1


def test_delete_buttons_for_dashboard_admins(admin_client, session):
    scan = session.filled_scans[0]

    timepoint_page = admin_client.get(reverse("qc:timepoint_detail", args=[session.timepoint.name]))
    scan_page = admin_client.get(reverse("qc:scan_detail", args=[scan.name]))

    assert f'href="{delete_url("timepoint", session.timepoint)}"' in timepoint_page.text
    assert f'href="{delete_url("session", session)}"' in timepoint_page.text
    assert f'href="{delete_url("scan", scan)}"' in scan_page.text


def test_no_delete_buttons_for_reviewers(reviewer_client, session):
    scan = session.filled_scans[0]

    timepoint_page = reviewer_client.get(
        reverse("qc:timepoint_detail", args=[session.timepoint.name])
    )
    scan_page = reviewer_client.get(reverse("qc:scan_detail", args=[scan.name]))

    assert 'data-action="delete"' not in timepoint_page.text
    assert 'data-action="delete"' not in scan_page.text


@pytest.mark.parametrize("count", [1, 20])
def test_delete_pages_query_count(admin_client, django_assert_num_queries, count):
    timepoint = TimepointFactory(study_site=make_study_site())
    sessions = [SessionFactory(timepoint=timepoint, number=number) for number in range(1, 3)]
    scans = [ScanFactory(session=sessions[0]) for _ in range(count)]

    # Every page: 1 session, 2 user, and last the navigation bar's count of pending account
    # requests. Between them: 3 timepoint with study, 4 session count, 5 scan count.
    with django_assert_num_queries(6):
        response = admin_client.get(delete_url("timepoint", timepoint))
    assert response.status_code == 200
    # 3 session with timepoint, study and site, 4 scan count.
    with django_assert_num_queries(5):
        response = admin_client.get(delete_url("session", sessions[0]))
    assert response.status_code == 200
    # 3 scan with session, timepoint and study.
    with django_assert_num_queries(4):
        response = admin_client.get(delete_url("scan", scans[0]))
    assert response.status_code == 200


@pytest.mark.parametrize("count", [1, 20])
def test_delete_post_query_count(admin_client, django_assert_num_queries, count):
    session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    scans = [ScanFactory(session=session) for _ in range(count)]

    # 1 session, 2 user, 3 scan with session, timepoint and study; the service runs
    # 4 savepoint, 5 scan locked with session and timepoint, 6 update, 7 event insert,
    # 8 savepoint release. The message goes into a cookie.
    with django_assert_num_queries(8):
        response = admin_client.post(delete_url("scan", scans[0]), {"reason": "Test series."})
    assert response.status_code == 302
