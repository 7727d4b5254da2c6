"""Protocol compliance in the browser: accept a header deviation on the scan page, then see the
session badges on the timepoint page and the site/tag row on the compliance page."""

from datetime import date

import pytest

from accounts.models import Role, StudyMembership
from qc.compliance_services import compute_header_diffs
from qc.models import DeviationDecision, DeviationResolution, QCEvent, QCEventKind
from tests.qc.compliance_factories import GoldStandardFactory, make_compliance_site
from tests.studies.factories import (
    TEST_PASSWORD,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

STANDARD = {"SeriesDescription": "Sag T1 Bravo", "RepetitionTime": 2.3, "EchoTime": 0.003}
REASON = "The scanner upgrade changed the echo time; the PI approved it."


@pytest.fixture
def mismatching_session():
    """A SPINS session at CMH with a T1 whose EchoTime deviates from the site's gold standard
    and an RST, but no DTI60-1000, which the study site expects."""
    study_site = make_compliance_site()
    t1 = ScantypeFactory(tag="T1")
    GoldStandardFactory(
        study=study_site.study, site=study_site.site, scantype=t1, sidecar=dict(STANDARD)
    )
    session = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=date(2025, 3, 4)
    )
    scan = ScanFactory(session=session, scantype=t1, sidecar={**STANDARD, "EchoTime": 0.005})
    ScanFactory(session=session, scantype=ScantypeFactory(tag="RST"), series=3)
    compute_header_diffs(study_site.study)
    return session, scan


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_compliance_flow(transactional_db, live_server, page, mismatching_session, tmp_path):
    session, scan = mismatching_session
    user = UserFactory(username="carol", email="carol@example.org")
    StudyMembership.objects.create(user=user, study=session.timepoint.study, role=Role.QC_REVIEWER)
    sign_in(page, live_server, "carol@example.org")

    # The scan page shows the diff table with the deviating field.
    page.goto(f"{live_server.url}/scans/{scan.name}/")
    table = page.locator(f"[data-header-diff='{scan.name}']")
    assert table.get_attribute("data-status") == "mismatch"
    row = table.locator("tr[data-field=EchoTime]")
    assert row.locator("td").nth(0).text_content().strip() == "0.003"
    assert row.locator("td").nth(1).text_content().strip() == "0.005"

    # Accept the deviation with a reason. The page comes back with the decision in the row.
    row.locator("summary:text-is('Resolve')").click()
    row.locator("textarea[name=reason]").fill(REASON)
    row.locator("button[value=accepted]").click()
    page.wait_for_selector("tr[data-field=EchoTime] [data-resolution=accepted]")
    assert (
        f"Deviation of EchoTime in {scan.name} accepted."
        in page.locator(".messages").text_content()
    )
    resolution_cell = page.locator("tr[data-field=EchoTime] [data-resolution=accepted]")
    assert REASON in resolution_cell.text_content()
    assert "by carol" in resolution_cell.text_content()
    page.screenshot(path=tmp_path / "scan.png", full_page=True)

    resolution = DeviationResolution.objects.get()
    assert resolution.decision == DeviationDecision.ACCEPTED
    assert resolution.field == "EchoTime"
    assert resolution.reason == REASON
    assert resolution.reviewer == user
    assert QCEvent.objects.filter(kind=QCEventKind.DEVIATION_ACCEPTED, actor=user).count() == 1

    # The timepoint page shows the session's compliance badges and the dismiss form.
    page.goto(f"{live_server.url}/timepoints/{session.timepoint.name}/")
    card = page.locator(f"section[data-session='{session.name}']")
    mismatch = card.locator("[data-compliance=header-mismatch]")
    assert mismatch.get_attribute("data-count") == "1"
    assert mismatch.text_content().strip() == "1 header mismatch"
    missing = card.locator("[data-compliance=missing-scans]")
    assert missing.text_content().strip() == "missing: DTI60-1000 (0 of 1)"
    assert card.locator(f".dismiss-missing[data-session='{session.name}']").count() == 1
    page.screenshot(path=tmp_path / "timepoint.png", full_page=True)

    # The study overview links to the compliance page, which has one row per site and tag.
    page.goto(f"{live_server.url}/studies/SPINS/")
    page.click("[data-link=study-compliance]")
    page.wait_for_url("**/studies/SPINS/compliance/")
    t1_row = page.locator("tr[data-site=CMH][data-tag=T1]")
    assert t1_row.locator("td").nth(2).get_attribute("data-share") == "0.000"
    assert t1_row.locator("[data-field=EchoTime]").count() == 1
    assert page.locator("tr[data-site=CMH][data-tag=RST]").count() == 1
    page.screenshot(path=tmp_path / "compliance.png", full_page=True)

    for name in ("scan.png", "timepoint.png", "compliance.png"):
        assert (tmp_path / name).stat().st_size > 0
