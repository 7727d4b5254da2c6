"""The study README, the progress panel and a session's files in Chromium."""

import datetime
import os
from pathlib import Path

import pytest

from accounts.models import Role, StudyMembership
from qc.models import QCState
from studies.models import StudySite, TaskFile
from studies.services import save_study_readme
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    TEST_PASSWORD,
    ScanFactory,
    SessionFactory,
    SiteFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

README = """# SPINS scan notes

Scans are reviewed **within a week**. Ask [the study wiki](https://example.org/spins) first.

<script>document.title = "owned"; window.readmeRan = true;</script>

<img src="missing.png" onerror="window.readmeRan = true">

[a javascript link](javascript:window.readmeRan=true)

| Site | Scanner |
|------|---------|
| CMH  | GE MR750 |
| ZHH  | Siemens Prisma |
"""


@pytest.fixture
def screenshots(tmp_path):
    """Folder for screenshots: QCDASH_SCREENSHOTS when set (to look at them), else tmp."""
    folder = Path(os.environ.get("QCDASH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def study_admin(db):
    return UserFactory(username="ada", email="ada@example.org", first_name="Ada", last_name="Admin")


@pytest.fixture
def study(study_admin, tmp_path):
    """SPINS at CMH (with tech notes) and ZHH: sessions over eight months in several QC states,
    a README with hostile HTML, and files for the first CMH session."""
    cmh = make_study_site()
    StudySite.objects.filter(pk=cmh.pk).update(uses_tech_notes=True)
    study = cmh.study
    study.archive_path = str(tmp_path / "SPINS")
    study.save()
    StudyMembership.objects.create(user=study_admin, study=study, role=Role.STUDY_ADMIN)
    zhh = StudySiteFactory(study=study, site=SiteFactory(name="ZHH"), code="SPN01")

    sessions = []
    for index in range(40):
        study_site = cmh if index % 3 else zhh
        month = 5 + index % 8
        session = SessionFactory(
            timepoint=TimepointFactory(
                study_site=study_site, name=f"SPN01_{study_site.site.name}_{index + 1:04d}_01"
            ),
            acquired_on=datetime.date(2025 + month // 13, (month - 1) % 12 + 1, 1 + index % 27),
        )
        for series in (2, 3):
            scan = ScanFactory(session=session, series=series)
            if index % 8 < 5:
                ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=study_admin)
        if index % 8 < 3:
            SessionSignOffFactory(session=session, reviewer=study_admin)
        sessions.append(session)

    first = sessions[1]
    notes = f"data/RESOURCES/{first.name}/MR_notes/{first.name}_TechNotes.pdf"
    (tmp_path / "SPINS" / notes).parent.mkdir(parents=True)
    (tmp_path / "SPINS" / notes).write_bytes(b"%PDF-1.4\n%%EOF\n")
    first.tech_notes_path = notes
    first.tech_notes_size = 183_456
    first.tech_notes_modified_at = datetime.datetime(2025, 6, 2, 9, 15, tzinfo=datetime.UTC)
    first.save()
    for name, size in (
        ("run1_behav.csv", 2_310),
        ("run2_behav.csv", 2_298),
        ("task.edat2", 81_920),
    ):
        TaskFile.objects.create(
            session=first,
            path=f"task/{first.name}/{name}",
            name=name,
            size=size,
            modified_at=datetime.datetime(2025, 6, 2, 10, 0, tzinfo=datetime.UTC),
        )
    save_study_readme(study=study, author=study_admin, text=README)
    return sessions


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_study_page_readme_and_progress(
    transactional_db, live_server, page, study, study_admin, screenshots
):
    console = []
    page.on("console", lambda message: console.append(message.text))
    sign_in(page, live_server, study_admin)

    page.goto(f"{live_server.url}/studies/SPINS/")
    page.wait_for_selector("#study-progress svg.progress-chart")

    assert page.title() == "SPINS · qcdash"
    assert page.evaluate("window.readmeRan") is None
    readme = page.locator("#study-readme")
    assert readme.locator("h1").inner_text() == "SPINS scan notes"
    assert readme.locator("script, img, [onerror]").count() == 0
    assert "document.title" not in readme.inner_text()
    link = readme.locator("a", has_text="the study wiki")
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert readme.locator("a", has_text="a javascript link").get_attribute("href") is None
    assert page.locator("svg.progress-chart").count() == 2
    assert page.locator("svg.progress-chart[data-site=CMH] rect[data-series=acquired]").count() > 0
    assert not [text for text in console if "Content Security Policy" in text]
    page.screenshot(path=str(screenshots / "study-page-readme-progress.png"), full_page=True)

    page.click("#study-progress summary")
    assert page.locator(".progress-table tbody tr").count() > 0
    page.locator("#study-progress").screenshot(path=str(screenshots / "study-progress-table.png"))


def test_readme_editor_preview(
    transactional_db, live_server, page, study, study_admin, screenshots
):
    sign_in(page, live_server, study_admin)
    page.goto(f"{live_server.url}/studies/SPINS/")
    page.click("text=Edit README")

    page.fill("textarea[name=text]", README + "\n## Added\n\nA new line.")
    page.click("button[value=preview]")

    preview = page.locator("#readme-preview")
    assert preview.locator(".readme-body h2").inner_text() == "Added"
    assert preview.locator("script").count() == 0
    assert page.evaluate("window.readmeRan") is None
    page.screenshot(path=str(screenshots / "study-readme-editor.png"), full_page=True)

    page.click("button[value=save]")
    page.wait_for_url(f"{live_server.url}/studies/SPINS/")
    assert "README of SPINS saved." in page.locator(".alert").first.inner_text()
    assert page.locator("#study-readme .readme-body h2").inner_text() == "Added"


def test_timepoint_page_session_files(
    transactional_db, live_server, page, study, study_admin, screenshots
):
    session = study[1]
    sign_in(page, live_server, study_admin)

    page.goto(f"{live_server.url}/timepoints/{session.timepoint.name}/")

    block = page.locator(f'[data-session-files="{session.name}"]')
    assert block.locator("[data-file=tech-notes] a").inner_text() == f"{session.name}_TechNotes.pdf"
    assert block.locator("[data-task-file]").count() == 3
    page.screenshot(path=str(screenshots / "timepoint-session-files.png"), full_page=True)

    with page.expect_popup() as popup:
        block.locator("[data-file=tech-notes] a").click()
    response_page = popup.value
    response_page.wait_for_load_state()
    assert response_page.url.endswith("_TechNotes.pdf")
