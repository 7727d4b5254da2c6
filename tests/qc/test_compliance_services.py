"""Compliance services: header diffs stored and kept up to date, deviation resolutions,
missing-scan dismissals and linked scans."""

import json
import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from qc import compliance_services
from qc.compliance import BVAL_FIELD, HeaderDiffStatus, parse_bvals
from qc.compliance_selectors import attach_header_diffs
from qc.compliance_services import (
    ComplianceError,
    compute_header_diffs,
    compute_header_diffs_for_sessions,
)
from qc.models import (
    DeviationDecision,
    DeviationResolution,
    GoldStandard,
    HeaderDiff,
    MissingScanDismissal,
    QCEvent,
    QCEventKind,
)
from studies import services as studies_services
from studies.models import HeaderComparisonSettings, Scan, Session, Study
from studies.signals import sessions_imported
from tests.qc.compliance_factories import (
    GoldStandardFactory,
    HeaderComparisonSettingsFactory,
    make_compliance_site,
)
from tests.studies.factories import (
    ExpectedScanFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

REST_RUN_01 = (
    "bids-examples/eyetracking_fmri/sub-01/ses-01/func/sub-01_ses-01_task-rest_run-01_bold.json"
)
REST_RUN_02 = (
    "bids-examples/eyetracking_fmri/sub-01/ses-01/func/sub-01_ses-01_task-rest_run-02_bold.json"
)
GOLD_BVAL = (
    "datman/history/tests/fixture_dm-check-bvecs/gold-standards/DTI60-1000/"
    "SPN01_CMH_PHA_FBN0000_DTI60-1000_04_Ax-DTI-60+5-NOASSET.bval"
)
TRUNCATED_BVAL = (
    "datman/history/tests/fixture_dm-check-bvecs/data/nii/SPN01_CMH_PHA_FBN0000/"
    "SPN01_CMH_PHA_FBN0000_DTI60-1000_04_Ax-DTI-60+5-NOASSET-incomplete.bval"
)
STANDARD = {"EchoTime": 0.03, "RepetitionTime": 2.0, "SeriesDescription": "Sag T1"}


@pytest.fixture
def study_site(tmp_path):
    study_site = make_compliance_site()
    study = study_site.study
    study.archive_path = str(tmp_path)
    study.save()
    return study_site


def make_scan(study_site, tag="T1", sidecar=None, number=1, timepoint=None, **fields):
    timepoint = timepoint or TimepointFactory(study_site=study_site)
    session = Session.objects.filter(timepoint=timepoint, number=number).first()
    session = session or SessionFactory(timepoint=timepoint, number=number)
    return ScanFactory(
        session=session,
        scantype=ScantypeFactory(tag=tag),
        sidecar=dict(STANDARD) if sidecar is None else sidecar,
        **fields,
    )


def make_standard(study_site, tag="T1", sidecar=None, **fields):
    return GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=ScantypeFactory(tag=tag),
        sidecar=dict(STANDARD) if sidecar is None else sidecar,
        **fields,
    )


def current_diff(scan):
    return HeaderDiff.objects.current().get(scan=scan)


# Computing and storing


def test_match_and_mismatch_stored(study_site):
    make_standard(study_site)
    same = make_scan(study_site)
    different = make_scan(study_site, sidecar={**STANDARD, "EchoTime": 0.031})

    result = compute_header_diffs(study_site.study)

    assert current_diff(same).status == HeaderDiffStatus.MATCH
    stored = current_diff(different)
    assert stored.status == HeaderDiffStatus.MISMATCH
    assert stored.diff["fields"] == {
        "EchoTime": {"expected": 0.03, "actual": 0.031, "tolerance": None}
    }
    assert stored.deviating_fields == ["EchoTime"]
    assert result.counts["match"] == 1
    assert result.counts["mismatch"] == 1


def test_converter_versions_stored(study_site, real_fixtures):
    sidecar = json.loads((real_fixtures / REST_RUN_01).read_text())
    make_standard(study_site, sidecar=sidecar)
    scan = make_scan(study_site, sidecar=STANDARD)

    compute_header_diffs(study_site.study)

    diff = current_diff(scan)
    assert diff.standard_converter == "dcm2niix - v1.0.20200427"
    assert diff.scan_converter == "Name Not Available - Version Not Available"


def test_real_sidecars_with_synced_settings(real_fixtures, tmp_path):
    # The study, its sites and datman's ignore list and tolerances come from datman's real
    # test config, through sync_config.
    config = real_fixtures / "datman/tests/fixture_project_settings/site_config.yaml"
    call_command("sync_config", str(config), stdout=StringIO(), stderr=StringIO())
    study = Study.objects.get(nickname="STUDY")
    study_site = study.study_sites.get(site__name="CMH")
    make_standard(
        study_site, tag="RST", sidecar=json.loads((real_fixtures / REST_RUN_01).read_text())
    )
    scan = make_scan(
        study_site, tag="RST", sidecar=json.loads((real_fixtures / REST_RUN_02).read_text())
    )

    compute_header_diffs(study)

    diff = current_diff(scan)
    assert diff.diff["fields"] == {
        "PhaseEncodingDirection": {"expected": "j-", "actual": "j", "tolerance": None}
    }
    assert diff.diff["missing"] == []


def test_tag_without_gold_standard(study_site):
    scan = make_scan(study_site, tag="RST")

    result = compute_header_diffs(study_site.study)

    diff = current_diff(scan)
    assert diff.status == HeaderDiffStatus.NO_GOLD_STANDARD
    assert diff.gold_standard is None
    assert diff.deviating_fields == []
    assert result.counts["no_gold_standard"] == 1
    assert result.counts["error"] == 0
    assert result.counts["match"] == 0


def test_repeat_session_compared(study_site):
    make_standard(study_site)
    first = make_scan(study_site)
    repeat = make_scan(
        study_site,
        sidecar={**STANDARD, "RepetitionTime": 2.5},
        number=2,
        timepoint=first.session.timepoint,
    )

    result = compute_header_diffs(study_site.study)

    assert result.sessions == 2
    assert current_diff(first).status == HeaderDiffStatus.MATCH
    assert current_diff(repeat).status == HeaderDiffStatus.MISMATCH


def test_session_ids_limit_the_run(study_site):
    make_standard(study_site)
    first = make_scan(study_site)
    repeat = make_scan(study_site, number=2, timepoint=first.session.timepoint)

    result = compute_header_diffs(study_site.study, session_ids=[repeat.session.name])

    assert result.sessions == 1
    assert HeaderDiff.objects.filter(scan=first).count() == 0
    assert current_diff(repeat).status == HeaderDiffStatus.MATCH


def test_unknown_session_id(study_site):
    with pytest.raises(ComplianceError) as error:
        compute_header_diffs(study_site.study, session_ids=["SPN01_CMH_9999_01_01"])

    assert "Session SPN01_CMH_9999_01_01 not found in study SPINS" in str(error.value)


def test_invalid_session_id(study_site):
    with pytest.raises(ComplianceError) as error:
        compute_header_diffs(study_site.study, session_ids=["SPN01_CMH_9999_01"])

    assert "timepoint ID" in str(error.value)


def test_scan_without_sidecar_is_error(study_site):
    make_standard(study_site)
    scan = make_scan(study_site)
    Scan.objects.filter(pk=scan.pk).update(sidecar=None, sidecar_error="x.json is not valid JSON.")

    compute_header_diffs(study_site.study)

    diff = current_diff(scan)
    assert diff.status == HeaderDiffStatus.ERROR
    assert "x.json is not valid JSON." in diff.diff["problems"]


# b-values


def dti_scan(study_site, tmp_path, bval_text=None):
    nifti = "data/nii/SPN01_CMH_0001_01/SPN01_CMH_0001_01_01_DTI60-1000_05_Ax-DTI.nii.gz"
    if bval_text is not None:
        path = tmp_path / nifti.replace(".nii.gz", ".bval")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(bval_text)
    return make_scan(study_site, tag="DTI60-1000", nifti_path=nifti)


def test_bvals_match_real_gold_standard(study_site, tmp_path, real_fixtures):
    gold_text = (real_fixtures / GOLD_BVAL).read_text()
    make_standard(study_site, tag="DTI60-1000", bvals=parse_bvals(gold_text))
    # The same values, one per line, compare equal.
    scan = dti_scan(study_site, tmp_path, "\n".join(gold_text.split()))

    compute_header_diffs(study_site.study)

    diff = current_diff(scan)
    assert diff.status == HeaderDiffStatus.MATCH
    assert diff.diff["bval"]["match"] is True


def test_truncated_bvals_mismatch(study_site, tmp_path, real_fixtures):
    make_standard(
        study_site, tag="DTI60-1000", bvals=parse_bvals((real_fixtures / GOLD_BVAL).read_text())
    )
    scan = dti_scan(study_site, tmp_path, (real_fixtures / TRUNCATED_BVAL).read_text())

    compute_header_diffs(study_site.study)

    diff = current_diff(scan)
    assert diff.status == HeaderDiffStatus.MISMATCH
    assert diff.deviating_fields == [BVAL_FIELD]
    assert len(diff.diff["bval"]["actual"]) == 60


def test_missing_bval_file_is_a_problem(study_site, tmp_path):
    make_standard(study_site, tag="DTI60-1000", bvals=[0, 1000])
    scan = dti_scan(study_site, tmp_path)

    compute_header_diffs(study_site.study)

    diff = current_diff(scan)
    assert diff.status == HeaderDiffStatus.ERROR
    assert diff.diff["problems"] == [
        "The b-values cannot be checked because data/nii/SPN01_CMH_0001_01/"
        "SPN01_CMH_0001_01_01_DTI60-1000_05_Ax-DTI.bval does not exist. Convert the series "
        "again with dcm2niix, or put its .bval file beside the NIfTI file."
    ]


def test_invalid_bval_file_is_a_problem(study_site, tmp_path):
    make_standard(study_site, tag="DTI60-1000", bvals=[0, 1000])
    scan = dti_scan(study_site, tmp_path, "0 abc\n")

    compute_header_diffs(study_site.study)

    assert "value 2 ('abc') is not a number" in current_diff(scan).diff["problems"][0]


def test_standard_with_bvals_checks_any_tag(study_site, tmp_path):
    # T1 is not a diffusion tag, but a standard with b-values turns the check on.
    make_standard(study_site, tag="T1", bvals=[0, 1000])
    scan = make_scan(study_site, tag="T1", nifti_path="data/nii/x/scan.nii")
    (tmp_path / "data/nii/x").mkdir(parents=True)
    (tmp_path / "data/nii/x/scan.bval").write_text("0 1000\n")

    compute_header_diffs(study_site.study)

    assert current_diff(scan).diff["bval"]["match"] is True


# Outdated diffs


def test_second_run_leaves_diffs_alone(study_site):
    make_standard(study_site)
    scan = make_scan(study_site)
    compute_header_diffs(study_site.study)
    first = current_diff(scan)

    result = compute_header_diffs(study_site.study)

    second = current_diff(scan)
    assert result.counts["up_to_date"] == 1
    assert result.computed == 0
    assert second.computed_at == first.computed_at
    assert second.pk == first.pk


def test_new_standard_makes_diff_outdated(study_site):
    old_standard = make_standard(study_site)
    scan = make_scan(study_site)
    compute_header_diffs(study_site.study)
    old_diff = current_diff(scan)

    new_standard = make_standard(study_site, sidecar={**STANDARD, "EchoTime": 0.05})
    result = compute_header_diffs(study_site.study)

    new_diff = current_diff(scan)
    assert result.computed == 1
    assert new_diff.gold_standard == new_standard
    assert new_diff.status == HeaderDiffStatus.MISMATCH
    old_diff.refresh_from_db()
    assert old_diff.is_current is False
    assert old_diff.gold_standard == old_standard
    assert GoldStandard.objects.count() == 2


def test_changed_settings_make_diff_outdated(study_site):
    make_standard(study_site)
    scan = make_scan(study_site, sidecar={**STANDARD, "EchoTime": 0.0301})
    compute_header_diffs(study_site.study)
    before = current_diff(scan)
    assert before.status == HeaderDiffStatus.MISMATCH

    HeaderComparisonSettingsFactory(study=study_site.study, tolerances={"EchoTime": 0.001})
    result = compute_header_diffs(study_site.study)

    after = current_diff(scan)
    assert result.computed == 1
    assert after.pk == before.pk
    assert after.status == HeaderDiffStatus.MATCH
    assert after.fingerprint != before.fingerprint


def test_site_settings_add_to_study_settings(study_site):
    make_standard(study_site, sidecar={**STANDARD, "SeriesNumber": 2})
    scan = make_scan(study_site, sidecar={**STANDARD, "SeriesNumber": 3, "EchoTime": 0.0305})
    HeaderComparisonSettingsFactory(
        study=study_site.study, ignored_fields=["SeriesNumber"], tolerances={"EchoTime": 0.0001}
    )
    HeaderComparisonSettingsFactory(
        study=study_site.study, site=study_site.site, tolerances={"EchoTime": 0.001}
    )

    compute_header_diffs(study_site.study)

    assert current_diff(scan).status == HeaderDiffStatus.MATCH


def test_scan_change_makes_diff_outdated(study_site):
    make_standard(study_site)
    scan = make_scan(study_site)
    compute_header_diffs(study_site.study)

    scan.sidecar = {**STANDARD, "EchoTime": 0.04}
    scan.save()
    result = compute_header_diffs(study_site.study)

    assert result.computed == 1
    assert current_diff(scan).status == HeaderDiffStatus.MISMATCH


def test_force_recomputes(study_site):
    make_standard(study_site)
    scan = make_scan(study_site)
    compute_header_diffs(study_site.study)
    first = current_diff(scan)

    result = compute_header_diffs(study_site.study, force=True)

    assert result.computed == 1
    assert current_diff(scan).computed_at > first.computed_at


def test_text_tolerance_warned_once_per_run(study_site):
    make_standard(study_site)
    HeaderComparisonSettingsFactory(study=study_site.study, tolerances={"SeriesDescription": 1})
    scans = [make_scan(study_site) for _ in range(3)]

    result = compute_header_diffs(study_site.study)

    assert len(result.warnings) == 1
    assert "SeriesDescription" in result.warnings[0]
    for scan in scans:
        diff = current_diff(scan)
        assert diff.status == HeaderDiffStatus.MATCH
        assert diff.diff["problems"] == result.warnings


def test_dry_run_saves_nothing(study_site):
    make_standard(study_site)
    make_scan(study_site)

    result = compute_header_diffs(study_site.study, dry_run=True)

    assert result.computed == 1
    assert HeaderDiff.objects.count() == 0
    assert "Dry run" in result.summary()


def test_progress_reported(study_site):
    make_scan(study_site)
    make_scan(study_site)
    calls = []

    compute_header_diffs(study_site.study, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(0, 2), (2, 2)]


# Import signal


def test_import_signal_computes_diffs(study_site):
    make_standard(study_site)
    scan = make_scan(study_site)

    sessions_imported.send(sender=Study, study=study_site.study, created=[scan.session], updated=[])

    assert current_diff(scan).status == HeaderDiffStatus.MATCH


def test_import_signal_failure_is_logged(study_site, monkeypatch, caplog):
    scan = make_scan(study_site)

    def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(compliance_services, "compute_header_diffs_for_sessions", fail)
    with caplog.at_level(logging.ERROR, logger="qc.compliance_services"):
        sessions_imported.send(
            sender=Study, study=study_site.study, created=[], updated=[scan.session]
        )

    assert "run compute_header_diffs SPINS" in caplog.text
    assert HeaderDiff.objects.count() == 0


# Deviation resolutions


@pytest.fixture
def mismatch(study_site):
    make_standard(study_site)
    scan = make_scan(study_site, sidecar={"EchoTime": 0.031, "RepetitionTime": 2.0})
    compute_header_diffs(study_site.study)
    return scan


def test_accept_deviation(mismatch, reviewer):
    diff = current_diff(mismatch)

    resolution = compliance_services.resolve_deviation(
        mismatch,
        reviewer=reviewer,
        header_diff_id=diff.pk,
        field_name="EchoTime",
        decision="accepted",
        reason="Scanner upgrade; physicist approved.",
    )

    assert resolution.decision == DeviationDecision.ACCEPTED
    assert resolution.expected == 0.03
    assert resolution.actual == 0.031
    event = QCEvent.objects.get()
    assert event.kind == QCEventKind.DEVIATION_ACCEPTED
    assert event.scan == mismatch
    assert event.details["field"] == "EchoTime"
    assert event.details["resolution"] == resolution.pk


def test_confirm_violation_without_reason(mismatch, reviewer):
    diff = current_diff(mismatch)

    compliance_services.resolve_deviation(
        mismatch,
        reviewer=reviewer,
        header_diff_id=diff.pk,
        field_name="SeriesDescription",
        decision="violation",
    )

    assert QCEvent.objects.get().kind == QCEventKind.DEVIATION_CONFIRMED


def test_accept_needs_reason(mismatch, reviewer):
    with pytest.raises(ComplianceError) as error:
        compliance_services.resolve_deviation(
            mismatch,
            reviewer=reviewer,
            header_diff_id=current_diff(mismatch).pk,
            field_name="EchoTime",
            decision="accepted",
            reason="   ",
        )

    assert "A reason is required to accept the deviation of EchoTime" in str(error.value)
    assert DeviationResolution.objects.count() == 0


def test_resolve_unknown_field(mismatch, reviewer):
    with pytest.raises(ComplianceError) as error:
        compliance_services.resolve_deviation(
            mismatch,
            reviewer=reviewer,
            header_diff_id=current_diff(mismatch).pk,
            field_name="FlipAngle",
            decision="violation",
        )

    message = str(error.value)
    assert "'FlipAngle' is not a deviation" in message
    assert "EchoTime, SeriesDescription" in message


def test_resolve_stale_diff(mismatch, reviewer):
    with pytest.raises(ComplianceError) as error:
        compliance_services.resolve_deviation(
            mismatch,
            reviewer=reviewer,
            header_diff_id=current_diff(mismatch).pk + 100,
            field_name="EchoTime",
            decision="violation",
        )

    assert "Reload the page" in str(error.value)


def test_resolve_invalid_decision(mismatch, reviewer):
    with pytest.raises(ComplianceError) as error:
        compliance_services.resolve_deviation(
            mismatch,
            reviewer=reviewer,
            header_diff_id=current_diff(mismatch).pk,
            field_name="EchoTime",
            decision="ignored",
        )

    assert "'ignored' is not a decision; use one of accepted, violation" in str(error.value)


def test_newest_resolution_shown_per_field(mismatch, reviewer, other_reviewer):
    diff = current_diff(mismatch)
    for user, decision, reason in (
        (reviewer, "accepted", "first"),
        (other_reviewer, "violation", "second"),
    ):
        compliance_services.resolve_deviation(
            mismatch,
            reviewer=user,
            header_diff_id=diff.pk,
            field_name="EchoTime",
            decision=decision,
            reason=reason,
        )

    scan = attach_header_diffs([mismatch])[0]

    rows = {row.field: row for row in scan.header_diff.table_rows}
    assert rows["EchoTime"].resolution.reason == "second"
    assert rows["EchoTime"].resolution_applies is True
    assert rows["SeriesDescription"].resolution is None
    assert scan.header_diff.open_deviations == 1
    assert DeviationResolution.objects.count() == 2


def test_resolution_lapses_when_values_change(mismatch, reviewer, study_site):
    compliance_services.resolve_deviation(
        mismatch,
        reviewer=reviewer,
        header_diff_id=current_diff(mismatch).pk,
        field_name="EchoTime",
        decision="accepted",
        reason="known",
    )
    mismatch.sidecar = {"EchoTime": 0.05, "RepetitionTime": 2.0}
    mismatch.save()
    compute_header_diffs(study_site.study)

    scan = attach_header_diffs([Scan.objects.get(pk=mismatch.pk)])[0]

    row = next(row for row in scan.header_diff.table_rows if row.field == "EchoTime")
    assert row.resolution.reason == "known"
    assert row.resolution_applies is False


# Missing scans


def test_dismiss_missing_scans(study_site, reviewer):
    scan = make_scan(study_site, tag="T1")

    dismissal = compliance_services.dismiss_missing_scans(
        scan.session, reviewer=reviewer, reason="Participant left before the DTI."
    )

    assert dismissal.missing_tags == [
        {"tag": "DTI60-1000", "expected": 1, "found": 0},
        {"tag": "RST", "expected": 1, "found": 0},
    ]
    event = QCEvent.objects.get()
    assert event.kind == QCEventKind.MISSING_SCANS_DISMISSED
    assert event.session == scan.session
    assert event.details["reason"] == "Participant left before the DTI."


def test_dismiss_needs_reason(study_site, reviewer):
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))

    with pytest.raises(ComplianceError) as error:
        compliance_services.dismiss_missing_scans(session, reviewer=reviewer, reason="")

    assert "A reason is required" in str(error.value)
    assert MissingScanDismissal.objects.count() == 0


def test_dismiss_when_nothing_missing(study_site, reviewer):
    first = make_scan(study_site, tag="T1")
    for tag in ("RST", "DTI60-1000"):
        make_scan(study_site, tag=tag, timepoint=first.session.timepoint)

    with pytest.raises(ComplianceError) as error:
        compliance_services.dismiss_missing_scans(first.session, reviewer=reviewer, reason="x")

    assert "has no missing scans to dismiss" in str(error.value)


# Linked scans


@pytest.fixture
def target_site():
    """A second study, TAY, whose CMH site expects T1 and DTI60-1000 scans."""
    study_site = StudySiteFactory(
        study=StudyFactory(nickname="TAY"), site=SiteFactory(name="CMH"), code="TAY01"
    )
    for tag in ("T1", "DTI60-1000"):
        ExpectedScanFactory(study_site=study_site, scantype=ScantypeFactory(tag=tag))
    return study_site


def test_link_scan_creates_target(study_site, target_site):
    source = make_scan(study_site, tag="T1", series=2, description="Sag-T1")

    outcome, name = compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")

    assert outcome == compliance_services.LINK_CREATED
    assert name == "TAY01_CMH_0001_01_01_T1_02"
    linked = Scan.objects.get(name=name)
    assert linked.source == source
    assert linked.session.timepoint.study == target_site.study
    assert linked.sidecar == source.sidecar
    assert linked.file_stem == "TAY01_CMH_0001_01_01_T1_02_Sag-T1"
    assert linked.review_target_id == source.pk
    # The new scan's header is compared at once; TAY has no standard for T1.
    assert current_diff(linked).status == HeaderDiffStatus.NO_GOLD_STANDARD


def test_link_scan_twice_is_no_op(study_site, target_site):
    source = make_scan(study_site, tag="T1")
    compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")

    outcome, _ = compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")

    assert outcome == compliance_services.LINK_EXISTS
    assert Scan.objects.filter(source=source).count() == 1


def test_link_to_linked_scan_uses_its_source(study_site, target_site):
    source = make_scan(study_site, tag="T1")
    compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")
    linked = Scan.objects.get(source=source)

    compliance_services.link_scan(linked, "TAY01_CMH_0002_01_01")

    assert Scan.objects.get(name__startswith="TAY01_CMH_0002").source == source


def test_link_rejected_when_name_taken(study_site, target_site):
    source = make_scan(study_site, tag="T1", series=2)
    timepoint = TimepointFactory(study_site=target_site, name="TAY01_CMH_0001_01")
    make_scan(target_site, tag="T1", series=2, timepoint=timepoint)

    with pytest.raises(ComplianceError) as error:
        compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")

    assert "Scan TAY01_CMH_0001_01_01_T1_02 already exists and has no source" in str(error.value)


def test_link_rejected_for_unexpected_tag(study_site, target_site):
    source = make_scan(study_site, tag="RST")

    with pytest.raises(ComplianceError) as error:
        compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")

    assert "Tag RST is not expected at TAY at CMH" in str(error.value)
    assert Session.objects.filter(timepoint__study=target_site.study).count() == 0


def test_link_rejected_for_unknown_study_code(study_site):
    source = make_scan(study_site, tag="T1")

    with pytest.raises(ComplianceError) as error:
        compliance_services.link_scan(source, "XYZ01_CMH_0001_01_01")

    assert "Study code XYZ01 at site CMH matches no study site" in str(error.value)


def test_link_dry_run(study_site, target_site):
    source = make_scan(study_site, tag="T1")

    outcome, _ = compliance_services.link_scan(source, "TAY01_CMH_0001_01_01", dry_run=True)

    assert outcome == compliance_services.LINK_CREATED
    assert Scan.objects.filter(source=source).count() == 0


def test_linked_dti_scan_reads_source_bvals(study_site, target_site, tmp_path):
    source = dti_scan(study_site, tmp_path, "0 1000 1000\n")
    GoldStandardFactory(
        study=target_site.study,
        site=target_site.site,
        scantype=ScantypeFactory(tag="DTI60-1000"),
        sidecar=dict(STANDARD),
        bvals=[0, 1000, 1000],
    )

    _, name = compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")

    assert current_diff(Scan.objects.get(name=name)).status == HeaderDiffStatus.MATCH


def test_link_session_scans_default_tags(study_site, target_site):
    first = make_scan(study_site, tag="T1")
    make_scan(study_site, tag="RST", timepoint=first.session.timepoint)

    outcomes = compliance_services.link_session_scans(first.session.name, "TAY01_CMH_0001_01_01")

    # TAY does not expect RST, so only the T1 scan is linked.
    assert [(outcome, source) for outcome, source, _ in outcomes] == [("linked", first.name)]


def test_link_session_scans_unknown_tag(study_site, target_site):
    first = make_scan(study_site, tag="T1")

    with pytest.raises(ComplianceError) as error:
        compliance_services.link_session_scans(
            first.session.name, "TAY01_CMH_0001_01_01", ["FLAIR"]
        )

    assert "has no scan tagged FLAIR; its tags are T1" in str(error.value)


def test_read_link_file(tmp_path):
    path = tmp_path / "external-links.csv"
    path.write_text(
        "subject\ttarget_subject\ttags\n"
        "SPN01_CMH_0001_01_01\tTAY01_CMH_0001_01_01\tT1,DTI60-1000\n"
        "\n"
        "SPN01_CMH_0002_01_01  TAY01_CMH_0002_01_01\n"
        "SPN01_CMH_0003_01\tTAY01_CMH_0003_01_01\n"
        "only-one-field\n"
    )

    lines, problems = compliance_services.read_link_file(path)

    assert [(line.number, line.source, line.target, line.tags) for line in lines] == [
        (2, "SPN01_CMH_0001_01_01", "TAY01_CMH_0001_01_01", ("T1", "DTI60-1000")),
        (4, "SPN01_CMH_0002_01_01", "TAY01_CMH_0002_01_01", ()),
    ]
    assert [number for number, _ in problems] == [5, 6]
    assert "timepoint ID" in problems[0][1]
    assert "found 1 fields" in problems[1][1]


def test_one_study_level_settings_row(study_site):
    HeaderComparisonSettingsFactory(study=study_site.study)
    HeaderComparisonSettingsFactory(study=study_site.study, site=study_site.site)

    with pytest.raises(IntegrityError), transaction.atomic():
        HeaderComparisonSettings.objects.create(study=study_site.study)

    assert HeaderComparisonSettings.objects.filter(study=study_site.study).count() == 2


def test_old_diff_kept_after_new_standard(study_site):
    make_standard(study_site)
    scan = make_scan(study_site)
    compute_header_diffs(study_site.study)
    GoldStandard.objects.update(created_at=timezone.now() - timedelta(days=1))
    make_standard(study_site, sidecar={**STANDARD, "EchoTime": 0.05})

    compute_header_diffs(study_site.study)

    assert HeaderDiff.objects.filter(scan=scan).count() == 2
    assert HeaderDiff.objects.current().filter(scan=scan).count() == 1


def test_earlier_standard_diff_made_current_again(study_site):
    first_standard = make_standard(study_site)
    scan = make_scan(study_site)
    compute_header_diffs(study_site.study)
    first_diff = current_diff(scan)
    GoldStandard.objects.update(created_at=timezone.now() - timedelta(days=1))
    second_standard = make_standard(study_site, sidecar={**STANDARD, "EchoTime": 0.05})
    compute_header_diffs(study_site.study)

    # The first standard becomes the newest again, so its row is reused.
    GoldStandard.objects.filter(pk=second_standard.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    result = compute_header_diffs(study_site.study)

    diff = current_diff(scan)
    assert result.computed == 1
    assert diff.pk == first_diff.pk
    assert diff.gold_standard == first_standard
    assert diff.status == HeaderDiffStatus.MATCH
    assert HeaderDiff.objects.filter(scan=scan).count() == 2
    assert not HeaderDiff.objects.get(gold_standard=second_standard).is_current


@pytest.mark.parametrize("count", [1, 20])
def test_diff_query_count_does_not_grow_with_scans(study_site, django_assert_num_queries, count):
    make_standard(study_site)
    session = make_scan(study_site, series=2).session
    for series in range(3, count + 2):
        make_scan(study_site, timepoint=session.timepoint, series=series)
    study = study_site.study

    # 1 gold standards, 2 comparison settings, 3 SAVEPOINT, 4 lock the session, 5 scans,
    # 6 current diffs, 7 sidecar repairs, 8 earlier diffs, 9 INSERT diffs, 10 RELEASE.
    with django_assert_num_queries(10):
        compute_header_diffs_for_sessions(study, [session])
    GoldStandard.objects.update(created_at=timezone.now() - timedelta(days=1))
    make_standard(study_site, sidecar={**STANDARD, "EchoTime": 0.05})
    # Against a new standard: 1-7 as above, 8 earlier diffs, 9 UPDATE the old current diffs,
    # 10 INSERT diffs, 11 RELEASE.
    with django_assert_num_queries(11):
        compute_header_diffs_for_sessions(study, [session])
    HeaderComparisonSettingsFactory(study=study, tolerances={"EchoTime": 0.1})
    # New settings rewrite the current rows: 1-7 as above, 8 UPDATE diffs, 9 RELEASE.
    with django_assert_num_queries(9):
        result = compute_header_diffs_for_sessions(study, [session])

    assert result.counts["match"] == count
    assert HeaderDiff.objects.current().filter(status=HeaderDiffStatus.MATCH).count() == count
    assert HeaderDiff.objects.count() == 2 * count


def test_link_scan_into_deleted_session_rejected(study_site, target_site):
    admin = UserFactory(username="admin", is_dashboard_admin=True)
    source = make_scan(study_site, tag="T1")
    compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")
    linked = Scan.objects.get(source=source)
    studies_services.delete_object(linked.session, user=admin, reason="Linked by mistake.")
    other = make_scan(study_site, tag="T1", series=3)

    with pytest.raises(compliance_services.ComplianceError, match="was deleted by a dashboard"):
        compliance_services.link_scan(other, "TAY01_CMH_0001_01_01")
    with pytest.raises(compliance_services.ComplianceError, match="it or its session was deleted"):
        compliance_services.link_scan(source, "TAY01_CMH_0001_01_01")
    assert Scan.all_objects.filter(session=linked.session).count() == 1
