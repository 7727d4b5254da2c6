"""The navbar search and the QC search page in Chromium."""

import csv
import os
from pathlib import Path

import pytest

from accounts.models import Role, StudyMembership
from qc.models import QCState
from tests.qc.factories import ScanReviewFactory
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    TEST_PASSWORD,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)


@pytest.fixture
def screenshots(tmp_path):
    """Folder for screenshots: QCDASH_SCREENSHOTS when set (to look at them), else tmp."""
    folder = Path(os.environ.get("QCDASH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def study(reviewer):
    """SPINS at CMH: two timepoints, the first with two sessions; T1 and RST in each session,
    with the RST scans flagged and one T1 blacklisted."""
    study_site = make_study_site()
    t1, rst = ScantypeFactory(tag="T1"), ScantypeFactory(tag="RST")
    sessions = []
    for name, numbers in (("SPN01_CMH_0001_01", (1, 2)), ("SPN01_CMH_0002_01", (1,))):
        timepoint = TimepointFactory(study_site=study_site, name=name)
        for number in numbers:
            session = SessionFactory(timepoint=timepoint, number=number)
            ScanFactory(session=session, scantype=t1, series=2)
            flagged = ScanFactory(session=session, scantype=rst, series=3)
            ScanReviewFactory(
                scan=flagged,
                state=QCState.FLAGGED,
                comment=f"motion in {number}",
                reviewer=reviewer,
            )
            sessions.append(session)
    blacklisted = sessions[2].scans.get(scantype=t1)
    ScanReviewFactory(scan=blacklisted, state=QCState.BLACKLISTED, comment="ghosting, severe")
    return sessions


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_navbar_search_finds_session(transactional_db, live_server, page, study, screenshots):
    user = UserFactory(username="alice", email="alice@example.org")
    StudyMembership.objects.create(user=user, study=study[0].timepoint.study, role=Role.VIEWER)
    sign_in(page, live_server, user)

    page.fill("[data-testid=search-input]", "cmh 0001_01_02")
    dropdown = page.locator("[data-testid=search-dropdown]")
    link = dropdown.locator('a[data-result="SPN01_CMH_0001_01_02"]')
    link.wait_for()
    page.screenshot(path=str(screenshots / "search-dropdown.png"))
    session_links = dropdown.locator("ul[data-kind=sessions] a")
    assert session_links.count() == 1
    assert session_links.first.get_attribute("data-result") == "SPN01_CMH_0001_01_02"

    link.click()
    page.wait_for_url("**/timepoints/SPN01_CMH_0001_01/#session-2")
    assert page.locator("#session-2").is_visible()

    # Enter opens the full results page.
    page.fill("[data-testid=search-input]", "spn01 cmh")
    page.press("[data-testid=search-input]", "Enter")
    page.wait_for_url("**/search/?q=spn01+cmh")
    results = page.locator("[data-testid=search-results] a[data-result]")
    assert results.count() == 2 + 3 + 6
    page.screenshot(path=str(screenshots / "search-page.png"), full_page=True)


def test_qc_search_filters_and_exports(
    transactional_db, live_server, page, reviewer, study, screenshots
):
    sign_in(page, live_server, reviewer)

    page.click("[data-testid=qc-search-link]")
    page.wait_for_url("**/qc-search/")
    page.check("input[name=state][value=flagged]")
    page.check("input[name=state][value=blacklisted]")
    page.click("[data-testid=qc-search-submit]")
    page.wait_for_url("**/qc-search/?*state=flagged*")
    page.screenshot(path=str(screenshots / "qc-search.png"), full_page=True)

    shown = page.locator("[data-testid=qc-search-table] tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.scan)"
    )
    assert len(shown) == 4
    assert page.text_content("[data-testid=qc-search-count]").strip() == "4 scans"

    with page.expect_download() as download_info:
        page.click("[data-testid=export-csv]")
    download = download_info.value
    path = screenshots / "qc-search.csv"
    download.save_as(str(path))
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["scan"] for row in rows] == shown
    assert {row["qc_state"] for row in rows} == {"flagged", "blacklisted"}
    assert "ghosting, severe" in {row["comment"] for row in rows}


def test_api_docs_render_offline(transactional_db, live_server, page, screenshots):
    # Requests that leave this server would mean the page loads something from a CDN.
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_server.url) else None
        ),
    )

    page.goto(f"{live_server.url}/api/v1/docs/")
    page.locator(".swagger-ui .opblock").first.wait_for()
    page.screenshot(path=str(screenshots / "api-docs.png"))

    assert page.locator(".swagger-ui .opblock").count() >= 15
    assert outside == []
