"""The issue tracker link against the GitHub and GitLab stand-in: refresh, open, round robin."""

import pytest

from integrations import services
from integrations.models import (
    IssueRequest,
    IssueRequestStatus,
    IssueTracker,
    TimepointIssues,
    TrackerProvider,
)
from tests.integrations.conftest import TIMEPOINT, TOKEN_VARIABLE, staff_contact

pytestmark = pytest.mark.django_db


def test_refresh_stores_matching_issues(tracker):
    tracker.fake.add_issue(f"{TIMEPOINT} - motion in T1")
    tracker.fake.add_issue("Scanner upgrade", body=f"Affects {TIMEPOINT} and others.")
    tracker.fake.add_issue("SPN01_CMH_0002_01 - other participant")

    summary = services.refresh_timepoint_issues(tracker.timepoint)

    cached = TimepointIssues.objects.get(timepoint=tracker.timepoint)
    assert summary == f"{TIMEPOINT}: 2 issues"
    assert [issue["number"] for issue in cached.issues] == [2, 1]
    assert cached.issues[1]["title"] == f"{TIMEPOINT} - motion in T1"
    assert cached.issues[1]["url"] == "https://github.com/tigrlab/data-issues/issues/1"
    assert "text" not in cached.issues[0]
    assert cached.checked_at is not None
    assert cached.last_error == ""


def test_refresh_sends_token_in_header_only(tracker):
    services.refresh_timepoint_issues(tracker.timepoint)

    request = tracker.fake.requests[0]
    assert request.headers["Authorization"] == f"Bearer {tracker.fake.token}"
    assert tracker.fake.token not in request.path
    assert request.query["q"] == [f'"{TIMEPOINT}" repo:tigrlab/data-issues is:issue']


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda fake: fake.fail_next(1, status=503), "returned HTTP 503"),
        (lambda fake: fake.respond_with(b"<html>maintenance</html>"), "not JSON"),
        (lambda fake: fake.respond_with(b"[" * 3_000_000), "returned more than"),
        (lambda fake: fake.respond_with(b'{"items": "nope"}'), "without items"),
        (
            lambda fake: fake.respond_with(
                b'{"items": [{"number": 1, "title": "x", "html_url": "javascript:alert(1)"}]}'
            ),
            "without number, title or URL",
        ),
        (lambda fake: fake.respond_slowly(2), "timed out after 0.5 seconds"),
    ],
    ids=["unavailable", "html", "huge", "bad-shape", "hostile-url", "slow"],
)
def test_refresh_failure_keeps_list(tracker, setup, message):
    TimepointIssues.objects.create(
        timepoint=tracker.timepoint,
        issues=[{"number": 9, "title": "Kept", "state": "open", "url": "https://x.org/9"}],
    )
    setup(tracker.fake)

    services.refresh_timepoint_issues(tracker.timepoint)

    cached = TimepointIssues.objects.get(timepoint=tracker.timepoint)
    assert message in cached.last_error
    assert cached.issues[0]["title"] == "Kept"
    assert cached.checked_at is not None


def test_refresh_bad_token(tracker, monkeypatch):
    monkeypatch.setenv(TOKEN_VARIABLE, "wrong-token")

    services.refresh_timepoint_issues(tracker.timepoint)

    error = TimepointIssues.objects.get(timepoint=tracker.timepoint).last_error
    assert "HTTP 401" in error
    assert "wrong-token" not in error


def test_refresh_missing_token_variable(tracker, monkeypatch):
    monkeypatch.delenv(TOKEN_VARIABLE)

    services.refresh_timepoint_issues(tracker.timepoint)

    error = TimepointIssues.objects.get(timepoint=tracker.timepoint).last_error
    assert f"environment variable {TOKEN_VARIABLE}" in error
    assert tracker.fake.requests == []


def test_refresh_without_tracker(tracker_study):
    summary = services.refresh_timepoint_issues(tracker_study.timepoint)

    assert "no issue tracker" in summary
    assert not TimepointIssues.objects.exists()


def test_open_issue_assigns_staff_in_turn(tracker, reviewer):
    first = staff_contact(tracker.study, "alice", github="alice-gh")
    second = staff_contact(tracker.study, "bob", github="bob-gh")
    staff_contact(tracker.study, "carol")  # no GitHub user name: never assigned

    requests = [
        services.open_issue(tracker.timepoint, user=reviewer, title=f"problem {n}", body="")
        for n in range(3)
    ]

    assert [request.assignee for request in requests] == [first, second, first]
    payloads = [post.json() for post in tracker.fake.posts()]
    assert [payload["assignees"] for payload in payloads] == [
        ["alice-gh"],
        ["bob-gh"],
        ["alice-gh"],
    ]
    assert payloads[0]["title"] == f"{TIMEPOINT} - problem 0"
    tracker.row.refresh_from_db()
    assert tracker.row.last_assignee == first


def test_open_issue_records_request(tracker, reviewer):
    request = services.open_issue(
        tracker.timepoint, user=reviewer, title="Motion", body="Heavy motion in RST."
    )

    assert request.status == IssueRequestStatus.CREATED
    assert request.issue_number == 1
    assert request.issue_url == "https://github.com/tigrlab/data-issues/issues/1"
    assert request.assignee is None
    assert "assignees" not in tracker.fake.posts()[0].json()


def test_open_issue_tracker_down(tracker, reviewer):
    staff_contact(tracker.study, "alice", github="alice-gh")
    tracker.fake.fail_next(1, status=502)

    with pytest.raises(services.IntegrationError, match="not opened.*HTTP 502"):
        services.open_issue(tracker.timepoint, user=reviewer, title="Motion", body="Text")

    failed = IssueRequest.objects.get()
    tracker.row.refresh_from_db()
    assert failed.status == IssueRequestStatus.FAILED
    assert failed.body == "Text"
    assert "HTTP 502" in failed.error
    assert tracker.row.last_assignee is None


def test_open_issue_slow_tracker(tracker, reviewer):
    tracker.fake.respond_slowly(2)

    with pytest.raises(services.IntegrationError, match="timed out"):
        services.open_issue(tracker.timepoint, user=reviewer, title="Motion", body="")


def test_open_issue_answer_without_url(tracker, reviewer):
    tracker.fake.respond_with(b'{"id": 5}', status=201)

    with pytest.raises(services.IntegrationError, match="no issue number and URL"):
        services.open_issue(tracker.timepoint, user=reviewer, title="Motion", body="")


def test_open_issue_without_tracker(tracker_study, reviewer):
    with pytest.raises(services.IntegrationError, match="has no issue tracker"):
        services.open_issue(tracker_study.timepoint, user=reviewer, title="Motion", body="")

    assert not IssueRequest.objects.exists()


def test_open_issue_title_too_long(tracker, reviewer):
    with pytest.raises(services.IntegrationError, match="shorten it to at most 256"):
        services.open_issue(tracker.timepoint, user=reviewer, title="x" * 300, body="")

    assert tracker.fake.requests == []


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("", TIMEPOINT),
        (f"{TIMEPOINT} - ", TIMEPOINT),
        ("Motion", f"{TIMEPOINT} - Motion"),
        (f"Motion in {TIMEPOINT.lower()}", f"Motion in {TIMEPOINT.lower()}"),
        ("  two   spaces ", f"{TIMEPOINT} - two spaces"),
    ],
)
def test_clean_issue_title(tracker_study, title, expected):
    assert services.clean_issue_title(tracker_study.timepoint, title) == expected


@pytest.fixture
def gitlab(tracker):
    IssueTracker.objects.filter(pk=tracker.row.pk).update(provider=TrackerProvider.GITLAB)
    tracker.row.refresh_from_db()
    return tracker


def test_gitlab_refresh(gitlab):
    gitlab.fake.add_issue(f"{TIMEPOINT} - motion")

    services.refresh_timepoint_issues(gitlab.timepoint)

    issues = TimepointIssues.objects.get(timepoint=gitlab.timepoint).issues
    assert gitlab.fake.requests[0].headers["Private-Token"] == gitlab.fake.token
    assert issues[0]["number"] == 1
    assert issues[0]["state"] == "opened"
    assert issues[0]["url"].startswith("https://gitlab.example.org/")


def test_gitlab_open_issue_assigns_by_id(gitlab, reviewer):
    staff_contact(gitlab.study, "alice", gitlab="alice-gl")
    gitlab.fake.gitlab_users["alice-gl"] = 42

    request = services.open_issue(gitlab.timepoint, user=reviewer, title="Motion", body="Text")

    post = gitlab.fake.posts()[0].json()
    assert post == {
        "title": f"{TIMEPOINT} - Motion",
        "description": "Text",
        "assignee_ids": [42],
    }
    assert request.assignee_username == "alice-gl"


def test_gitlab_unknown_assignee(gitlab, reviewer):
    staff_contact(gitlab.study, "alice", gitlab="nobody-here")

    with pytest.raises(services.IntegrationError, match="has no user 'nobody-here'"):
        services.open_issue(gitlab.timepoint, user=reviewer, title="Motion", body="")
