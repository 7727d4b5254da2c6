"""Scripts from the archive run in no document: not in an XML file, not in a qcdash page."""

import pytest

from accounts.models import Role, StudyMembership
from tests.browser.conftest import save_screenshot
from tests.browser.test_compliance import sign_in
from tests.studies.factories import StudyFactory, UserFactory

XML_DOCUMENT = """<?xml version="1.0" encoding="utf-8"?>
<report xmlns:h="http://www.w3.org/1999/xhtml">
  <h:p id="status">An XML report with XHTML script elements.</h:p>
  <h:script src="run.js"></h:script>
  <h:script>window.ranInlineScript = true;</h:script>
</report>
"""
ARCHIVE_SCRIPT = "window.ranArchiveScript = true;\n"

# Resolves with whether the archive script ran once the <script> element has loaded or failed.
INJECT_SCRIPT = """src => new Promise(resolve => {
    const script = document.createElement("script");
    script.src = src;
    script.addEventListener("load", () => resolve(window.ranArchiveScript === true));
    script.addEventListener("error", () => resolve(window.ranArchiveScript === true));
    document.head.append(script);
})"""


@pytest.fixture
def signed_in(transactional_db, live_server, page, tmp_path):
    archive = tmp_path / "SPINS"
    (archive / "reports").mkdir(parents=True)
    (archive / "reports" / "data.xml").write_text(XML_DOCUMENT)
    (archive / "reports" / "run.js").write_text(ARCHIVE_SCRIPT)
    study = StudyFactory(nickname="SPINS", archive_path=str(archive))
    user = UserFactory(username="carol", email="carol@example.org")
    StudyMembership.objects.create(user=user, study=study, role=Role.QC_REVIEWER)
    sign_in(page, live_server, "carol@example.org")
    return page


def test_archive_xml_runs_no_script(signed_in, live_server):
    page = signed_in

    response = page.goto(f"{live_server.url}/files/SPINS/reports/data.xml")
    page.wait_for_load_state("load")

    assert response.status == 200
    assert response.headers["content-security-policy"].startswith("sandbox allow-same-origin;")
    assert page.locator("#status").text_content() == "An XML report with XHTML script elements."
    assert page.evaluate("window.ranArchiveScript") is None
    assert page.evaluate("window.ranInlineScript") is None
    save_screenshot(page, "archive-xml-sandboxed")


def test_qcdash_page_cannot_load_archive_script(signed_in, live_server):
    page = signed_in
    page.goto(f"{live_server.url}/")

    ran = page.evaluate(INJECT_SCRIPT, "/files/SPINS/reports/run.js")

    assert ran is False


def test_report_without_scripts_loads_its_archive_figures(signed_in, live_server, tmp_path):
    page = signed_in
    reports = tmp_path / "SPINS" / "reports"
    # A 1x1 PNG, loaded by the report as fMRIPrep reports load their figures.
    (reports / "figure.png").write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360f8cf000000030101001826dd8a"
            "0000000049454e44ae426082"
        )
    )
    (reports / "report.html").write_text(
        '<!doctype html><p id="status">A report.</p><img id="figure" src="figure.png">'
        "<script>window.ranInlineScript = true;</script>"
    )

    response = page.goto(f"{live_server.url}/files/SPINS/reports/report.html")
    page.wait_for_load_state("load")

    assert response.status == 200
    assert "allow-scripts" not in response.headers["content-security-policy"]
    assert page.evaluate("document.getElementById('figure').naturalWidth") == 1
    assert page.evaluate("window.ranInlineScript") is None
