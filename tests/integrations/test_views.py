"""The issues panel of the timepoint page, the new-issue form and the failed-push list."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from accounts.models import Role, StudyMembership
from integrations import services
from integrations.models import (
    IssueRequest,
    IssueTracker,
    PushStatus,
    TimepointIssues,
    XnatPush,
)
from tests.integrations.conftest import TIMEPOINT, xnat_site
from tests.studies.factories import ScanFactory, SessionFactory, TimepointFactory, UserFactory

pytestmark = pytest.mark.django_db

TIMEPOINT_URL = reverse("qc:timepoint_detail", args=[TIMEPOINT])
NEW_ISSUE_URL = reverse("integrations:new_issue", args=[TIMEPOINT])
FAILED_URL = reverse("integrations:failed_pushes")


def panel_of(response):
    text = response.content.decode()
    start = text.index('data-testid="issues-panel"')
    return text[start : text.index("</section>", start)]


def cache_issues(timepoint, count, *, checked_at=None):
    issues = [
        {
            "number": number,
            "title": f"{TIMEPOINT} - problem {number}",
            "state": "open",
            "url": f"https://github.com/tigrlab/data-issues/issues/{number}",
            "created_at": "2024-03-01T10:00:00Z",
            "updated_at": "2024-03-01T10:00:00Z",
            "comments": 2,
        }
        for number in range(1, count + 1)
    ]
    return TimepointIssues.objects.create(
        timepoint=timepoint, issues=issues, checked_at=checked_at or timezone.now()
    )


def test_panel_off_without_tracker(reviewer_client, tracker_study):
    response = reviewer_client.get(TIMEPOINT_URL)

    panel = panel_of(response)
    assert 'data-state="off"' in panel
    assert "No issue tracker is set up for SPINS." in panel
    assert NEW_ISSUE_URL not in response.content.decode()


def test_panel_off_with_disabled_tracker(reviewer_client, tracker):
    IssueTracker.objects.update(is_enabled=False)

    panel = panel_of(reviewer_client.get(TIMEPOINT_URL))

    assert 'data-state="off"' in panel
    assert "No issue tracker is set up for SPINS." in panel


@pytest.mark.parametrize("count", [1, 20])
def test_panel_query_count(reviewer_client, tracker, django_assert_num_queries, count):
    cache_issues(tracker.timepoint, count)

    # The timepoint page runs 16 queries (tests/qc/test_views_timepoint.py names them), and
    # loads the tracker with the timepoint. The issues panel adds 17, the stored issues, and
    # the count does not grow with the number of issues.
    with django_assert_num_queries(17):
        response = reviewer_client.get(TIMEPOINT_URL)

    panel = panel_of(response)
    assert 'data-state="ok"' in panel
    assert panel.count("data-issue=") == count
    assert "last checked" in panel
    assert NEW_ISSUE_URL in panel


def test_panel_shows_issue(reviewer_client, tracker):
    cache_issues(tracker.timepoint, 1)

    panel = panel_of(reviewer_client.get(TIMEPOINT_URL))

    assert f"#1 {TIMEPOINT} - problem 1" in panel
    assert 'href="https://github.com/tigrlab/data-issues/issues/1"' in panel
    assert "opened 2024-03-01" in panel
    assert "2 comments" in panel


def test_stale_panel_queues_refresh(reviewer_client, tracker, django_capture_on_commit_callbacks):
    cache_issues(tracker.timepoint, 1, checked_at=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer_client.get(TIMEPOINT_URL)
    with django_capture_on_commit_callbacks(execute=True):
        again = reviewer_client.get(TIMEPOINT_URL)

    cached = TimepointIssues.objects.get()
    assert 'data-state="refreshing"' in panel_of(response)
    assert "refreshing in the background" in panel_of(again)
    assert cached.refresh_queued_at is not None
    # The second view finds the refresh queued and does not queue another.
    assert OrmQ.objects.count() == 1
    assert tracker.fake.requests == []


@pytest.mark.parametrize("stored", ["stale", "missing"])
def test_refresh_queued_once_by_racing_loads(tracker, django_capture_on_commit_callbacks, stored):
    # Two page loads that both read the stale list (or no list) before either marks it queued.
    if stored == "stale":
        cache_issues(tracker.timepoint, 1, checked_at=timezone.now() - timedelta(hours=1))
    now = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        first = services.queue_issue_refresh_if_due(tracker.timepoint, now=now)
        second = services.queue_issue_refresh_if_due(tracker.timepoint, now=now)

    assert first is True
    assert second is False
    assert OrmQ.objects.count() == 1
    assert TimepointIssues.objects.get().refresh_queued_at == now


def test_unfinished_refresh_queued_again(tracker, django_capture_on_commit_callbacks):
    cached = cache_issues(tracker.timepoint, 1, checked_at=timezone.now() - timedelta(hours=2))
    TimepointIssues.objects.filter(pk=cached.pk).update(
        refresh_queued_at=timezone.now() - timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        queued = services.queue_issue_refresh_if_due(tracker.timepoint, now=timezone.now())

    assert queued is True
    assert OrmQ.objects.count() == 1


def test_first_view_fetches_in_background(
    reviewer_client, tracker, sync_tasks, django_capture_on_commit_callbacks
):
    tracker.fake.add_issue(f"{TIMEPOINT} - motion")

    # The refresh runs after the page is rendered (at commit), synchronously in this test.
    with django_capture_on_commit_callbacks(execute=True):
        first = panel_of(reviewer_client.get(TIMEPOINT_URL))
    second = panel_of(reviewer_client.get(TIMEPOINT_URL))

    assert "not checked yet" in first
    assert f"#1 {TIMEPOINT} - motion" in second


def test_panel_shows_last_error(reviewer_client, tracker):
    cached = cache_issues(tracker.timepoint, 1)
    TimepointIssues.objects.filter(pk=cached.pk).update(last_error="GitHub returned HTTP 503.")

    panel = panel_of(reviewer_client.get(TIMEPOINT_URL))

    assert 'data-status="tracker-error"' in panel
    assert "GitHub returned HTTP 503." in panel
    assert "data-issue=" in panel


def test_viewer_sees_no_new_issue_link(client, tracker):
    viewer = UserFactory(username="viewer")
    StudyMembership.objects.create(user=viewer, study=tracker.study, role=Role.VIEWER)
    cache_issues(tracker.timepoint, 1)
    client.force_login(viewer)

    response = client.get(TIMEPOINT_URL)

    assert "data-issue=" in panel_of(response)
    assert NEW_ISSUE_URL not in response.content.decode()


def test_new_issue_form_prefilled(reviewer_client, tracker):
    response = reviewer_client.get(NEW_ISSUE_URL)

    assert response.status_code == 200
    assert response.context["form"]["title"].value() == f"{TIMEPOINT} - "
    assert "tigrlab/data-issues" in response.content.decode()


def test_new_issue_opened(reviewer_client, tracker):
    response = reviewer_client.post(NEW_ISSUE_URL, {"title": "Motion", "body": "Heavy motion."})

    assert response.status_code == 302
    assert response.url == f"{TIMEPOINT_URL}#issues"
    assert IssueRequest.objects.get().issue_number == 1
    page = reviewer_client.get(response.url).content.decode()
    assert "Issue #1 opened." in page


def test_new_issue_tracker_down_keeps_text(reviewer_client, tracker):
    tracker.fake.fail_next(1, status=503)

    response = reviewer_client.post(
        NEW_ISSUE_URL, {"title": "Motion", "body": "Heavy motion in RST."}
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "The issue was not opened" in text
    assert "HTTP 503" in text
    assert "Heavy motion in RST." in text


def test_new_issue_tracker_off(reviewer_client, tracker_study):
    page = reviewer_client.get(NEW_ISSUE_URL)
    response = reviewer_client.post(NEW_ISSUE_URL, {"title": "Motion", "body": ""})

    assert 'data-testid="tracker-off"' in page.content.decode()
    assert response.status_code == 302
    assert response.url == TIMEPOINT_URL
    assert not IssueRequest.objects.exists()


def test_new_issue_disabled_tracker_counts_as_off(reviewer_client, tracker):
    IssueTracker.objects.update(is_enabled=False)

    response = reviewer_client.post(NEW_ISSUE_URL, {"title": "Motion", "body": ""})

    assert response.status_code == 302
    assert tracker.fake.requests == []


def test_new_issue_title_too_long(reviewer_client, tracker):
    response = reviewer_client.post(NEW_ISSUE_URL, {"title": "x" * 300, "body": "Kept text"})

    assert response.status_code == 200
    assert "at most 256 characters" in response.content.decode()
    assert "Kept text" in response.content.decode()
    assert tracker.fake.requests == []


def failed_push(scan, study, error="XNAT at https://xnat returned HTTP 401."):
    return XnatPush.objects.create(
        scan=scan,
        study=study,
        status=PushStatus.FAILED,
        state="approved",
        quality="usable",
        attempts=1,
        last_error=error,
        finished_at=timezone.now(),
    )


@pytest.fixture
def admin_client(client):
    admin = UserFactory(username="boss", is_dashboard_admin=True)
    client.force_login(admin)
    return client


def test_failed_pushes_off(admin_client):
    response = admin_client.get(FAILED_URL)

    assert response.status_code == 200
    assert 'data-testid="xnat-off"' in response.content.decode()
    assert "No failed XNAT pushes." in response.content.decode()


@pytest.mark.parametrize("count", [1, 20])
def test_failed_pushes_query_count(admin_client, django_assert_num_queries, count):
    study_site = xnat_site("SPINS", "CMH", "SPN01", "https://xnat.example.org", project="SPINS")
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    for _ in range(count):
        failed_push(ScanFactory(session=session), study_site.study)

    # 1 session, 2 user, 3 row count, 4 whether any site has XNAT configured, 5 pending
    # account requests (the navigation bar of dashboard admins), 6 failed pushes with their
    # scans and studies.
    with django_assert_num_queries(6):
        response = admin_client.get(FAILED_URL)

    text = response.content.decode()
    assert text.count("data-push=") == count
    assert 'data-testid="xnat-off"' not in text


def test_failed_pushes_hide_replaced(admin_client):
    study_site = xnat_site("SPINS", "CMH", "SPN01", "https://xnat.example.org", project="SPINS")
    scan = ScanFactory(session=SessionFactory(timepoint=TimepointFactory(study_site=study_site)))
    first = failed_push(scan, study_site.study)
    XnatPush.objects.create(scan=scan, study=study_site.study, status=PushStatus.DONE)

    text = admin_client.get(FAILED_URL).content.decode()

    assert f'data-push="{first.pk}"' not in text


def test_failed_pushes_limited_to_managed_sites(client):
    cmh = xnat_site("SPINS", "CMH", "SPN01", "https://xnat.example.org", project="SPINS")
    zhh = xnat_site("SPINS", "ZHH", "SPN01", "https://xnat.example.org", project="SPINS")
    at_cmh = failed_push(
        ScanFactory(session=SessionFactory(timepoint=TimepointFactory(study_site=cmh))),
        cmh.study,
    )
    at_zhh = failed_push(
        ScanFactory(session=SessionFactory(timepoint=TimepointFactory(study_site=zhh))),
        zhh.study,
    )
    site_admin = UserFactory(username="siteadmin")
    StudyMembership.objects.create(
        user=site_admin, study=cmh.study, site=cmh.site, role=Role.STUDY_ADMIN
    )
    client.force_login(site_admin)

    text = client.get(FAILED_URL).content.decode()

    assert f'data-push="{at_cmh.pk}"' in text
    assert f'data-push="{at_zhh.pk}"' not in text


def test_push_again_view(admin_client, xnat, sync_tasks, django_capture_on_commit_callbacks):
    failed = failed_push(xnat.scan, xnat.study_site.study)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("integrations:push_again", args=[failed.pk]))

    assert response.status_code == 302
    assert response.url == FAILED_URL
    # The scan has no decision, so the new push clears XNAT's quality field.
    assert XnatPush.objects.latest("pk").status == PushStatus.DONE
    assert xnat.fake.quality(xnat.path) == ""
    page = admin_client.get(FAILED_URL).content.decode()
    assert "is queued for XNAT again" in page
    assert f'data-push="{failed.pk}"' not in page


def test_push_again_of_done_push(admin_client, xnat):
    done = XnatPush.objects.create(
        scan=xnat.scan, study=xnat.study_site.study, status=PushStatus.DONE
    )

    response = admin_client.post(reverse("integrations:push_again", args=[done.pk]), follow=True)

    assert "only failed pushes can be pushed again" in response.content.decode()
    assert XnatPush.objects.count() == 1
