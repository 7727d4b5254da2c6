"""The issues panel and the new-issue form in the browser, and the failed XNAT push list."""

import pytest
from django.utils import timezone

from accounts.models import Role, StudyMembership
from integrations.models import (
    IssueTracker,
    PushStatus,
    TimepointIssues,
    TrackerProvider,
    XnatPush,
)
from tests.browser.test_compliance import sign_in
from tests.integrations.conftest import TIMEPOINT, xnat_site
from tests.integrations.fake_servers import FakeTracker
from tests.studies.factories import ScanFactory, SessionFactory, TimepointFactory, UserFactory

TOKEN_VARIABLE = "ISSUE_TRACKER_TOKEN_BROWSER"


@pytest.fixture
def fake_tracker():
    with FakeTracker() as fake:
        yield fake


def test_open_issue_from_timepoint(
    transactional_db, live_server, page, fake_tracker, monkeypatch, tmp_path
):
    monkeypatch.setenv(TOKEN_VARIABLE, fake_tracker.token)
    study_site = xnat_site("SPINS", "CMH", "SPN01", "https://xnat.example.org", project="SPINS")
    timepoint = TimepointFactory(study_site=study_site, name=TIMEPOINT)
    ScanFactory(session=SessionFactory(timepoint=timepoint))
    IssueTracker.objects.create(
        study=study_site.study,
        provider=TrackerProvider.GITHUB,
        api_url=fake_tracker.url,
        repository=fake_tracker.repository,
        token_variable=TOKEN_VARIABLE,
    )
    TimepointIssues.objects.create(
        timepoint=timepoint,
        checked_at=timezone.now(),
        issues=[
            {
                "number": 7,
                "title": f"{TIMEPOINT} - T1 ghosting",
                "state": "open",
                "url": "https://github.com/tigrlab/data-issues/issues/7",
                "created_at": "2024-03-01T10:00:00Z",
                "comments": 3,
            }
        ],
    )
    user = UserFactory(username="carol", email="carol@example.org")
    StudyMembership.objects.create(user=user, study=study_site.study, role=Role.QC_REVIEWER)
    sign_in(page, live_server, "carol@example.org")

    page.goto(f"{live_server.url}/timepoints/{TIMEPOINT}/")
    panel = page.locator("[data-testid=issues-panel]")
    assert panel.get_attribute("data-state") == "ok"
    assert "#7 SPN01_CMH_0001_01 - T1 ghosting" in panel.text_content()
    page.screenshot(path=tmp_path / "timepoint-issues.png", full_page=True)

    panel.locator("text=New issue…").click()
    assert page.input_value("input[name=title]") == f"{TIMEPOINT} - "
    page.fill("input[name=title]", f"{TIMEPOINT} - Motion in RST")
    page.fill("textarea[name=body]", "Heavy motion in the resting state scan.")
    page.screenshot(path=tmp_path / "new-issue.png", full_page=True)
    page.click("[data-testid=new-issue-form] button[type=submit]")

    page.wait_for_url(f"{live_server.url}/timepoints/{TIMEPOINT}/#issues")
    assert "Issue #1 opened." in page.locator(".messages").text_content()
    assert fake_tracker.posts()[0].json()["title"] == f"{TIMEPOINT} - Motion in RST"


def test_failed_pushes_page(transactional_db, live_server, page, tmp_path):
    study_site = xnat_site("SPINS", "CMH", "SPN01", "https://xnat.example.org", project="SPINS")
    scan = ScanFactory(session=SessionFactory(timepoint=TimepointFactory(study_site=study_site)))
    XnatPush.objects.create(
        scan=scan,
        study=study_site.study,
        status=PushStatus.FAILED,
        state="flagged",
        quality="questionable",
        attempts=5,
        last_error="XNAT at https://xnat.example.org timed out after 10 seconds. Gave up after "
        "5 attempts.",
        finished_at=timezone.now(),
    )
    UserFactory(username="boss", email="boss@example.org", is_dashboard_admin=True)
    sign_in(page, live_server, "boss@example.org")

    page.goto(f"{live_server.url}/xnat/failed-pushes/")
    page.screenshot(path=tmp_path / "failed-pushes.png", full_page=True)
    page.click("[data-testid=failed-pushes] button:text-is('Push again')")

    page.wait_for_selector(".messages")
    assert "is queued for XNAT again" in page.locator(".messages").text_content()
    assert XnatPush.objects.count() == 2
