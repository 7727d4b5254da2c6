"""Download runs, pipeline page links and the SliceTiming repair in the browser."""

import json
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import Role, StudyMembership
from pipelines.models import CommandKind, DownloadJob, DownloadRun, PageScope, PipelinePage
from qc.compliance_services import compute_header_diffs
from qc.models import SidecarRepair
from tests.browser.test_compliance import sign_in
from tests.qc.compliance_factories import GoldStandardFactory
from tests.studies.factories import (
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

STANDARD = {"RepetitionTime": 2.0, "SliceTiming": [0.0, 0.5, 1.0, 1.5], "EchoTime": 0.03}


@pytest.fixture
def scan(tmp_path):
    """An RST scan of SPINS at CMH whose SliceTiming deviates from the site's gold standard,
    in a session with a download job and a report page in the archive."""
    archive = tmp_path / "archive"
    study = StudyFactory(nickname="SPINS", archive_path=str(archive))
    study_site = StudySiteFactory(study=study, code="SPN01", site__name="CMH")
    rst = ScantypeFactory(tag="RST", qc_type="fmri")
    GoldStandardFactory(study=study, site=study_site.site, scantype=rst, sidecar=dict(STANDARD))
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    session = SessionFactory(timepoint=timepoint, number=1)
    scan = ScanFactory(
        session=session,
        scantype=rst,
        sidecar={**STANDARD, "SliceTiming": [0.0, 1.0, 0.5, 1.5]},
        sidecar_path="data/nii/SPN01_CMH_0001_01/SPN01_CMH_0001_01_01_RST_04_Rest.json",
    )
    compute_header_diffs(study)

    report = archive / "pipelines" / "mriqc" / "SPN01_CMH_0001_01.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html><body><h1>MRIQC</h1></body></html>")
    PipelinePage.objects.create(
        study=study,
        name="MRIQC report",
        scope=PageScope.TIMEPOINT,
        path_template="pipelines/mriqc/{timepoint}.html",
    )
    PipelinePage.objects.create(
        study=study,
        name="fMRIPrep",
        scope=PageScope.SESSION,
        path_template="pipelines/fmriprep/{session}/",
    )
    now = timezone.now()
    job = DownloadJob.objects.create(
        session_name=session.name,
        study_site=study_site,
        deadline_at=now + timezone.timedelta(hours=70),
    )
    DownloadRun.objects.create(
        job=job,
        kind=CommandKind.DOWNLOAD,
        command=["/opt/datman/bin/download.sh", "SPINS", session.name],
        exit_code=1,
        output_tail="dm_xnat_extract: session not found on XNAT yet\n",
        started_at=now,
        finished_at=now,
    )
    return scan


def test_pipelines_and_repair(transactional_db, live_server, page, scan, settings, tmp_path):
    settings.SIDECAR_REPAIR_ROOT = str(tmp_path / "repaired")
    user = UserFactory(username="carol", email="carol@example.org")
    StudyMembership.objects.create(
        user=user, study=scan.session.timepoint.study, role=Role.QC_REVIEWER
    )
    sign_in(page, live_server, "carol@example.org")

    # The timepoint page shows the download run, the report link and the disabled session link.
    page.goto(f"{live_server.url}/timepoints/SPN01_CMH_0001_01/")
    job = page.locator("[data-download-job='SPN01_CMH_0001_01_01']")
    assert job.get_attribute("data-status") == "waiting"
    assert job.locator("tr[data-outcome='exit code 1']").count() == 1
    report_link = page.locator("a[data-pipeline-link='MRIQC report']")
    disabled = page.locator("[data-pipeline-link='fMRIPrep']")
    assert "No report at pipelines/fmriprep/SPN01_CMH_0001_01_01/" in disabled.get_attribute(
        "data-reason"
    )
    page.screenshot(path=tmp_path / "timepoint.png", full_page=True)

    # The report opens sandboxed.
    with page.context.expect_page() as opened:
        report_link.click()
    report = opened.value
    report.wait_for_load_state()
    assert report.locator("h1").text_content() == "MRIQC"
    report.close()

    # Edit the slice times on the scan page.
    page.goto(f"{live_server.url}/scans/{scan.name}/")
    page.locator(".sidecar-repair summary:text-is('Edit the slice times')").click()
    page.screenshot(path=tmp_path / "scan-repair-form.png", full_page=True)
    page.fill("#slice-times", "0, 0.5, 1.0, 1.5")
    page.click("text=Save the slice times")
    page.wait_for_selector("tr[data-repair=edited]")
    assert "the archive's file is unchanged" in page.locator(".messages").text_content()
    assert page.locator(f"[data-header-diff='{scan.name}']").get_attribute("data-status") == (
        "match"
    )
    page.screenshot(path=tmp_path / "scan.png", full_page=True)

    repair = SidecarRepair.objects.get()
    assert repair.reviewer == user
    assert json.loads(Path(repair.path).read_text())["SliceTiming"] == [0.0, 0.5, 1.0, 1.5]
