"""import_legacy_qc on datman's real legacy files and on files with every kind of line."""

import io

import pytest
from django.core.management import CommandError, call_command

from qc.legacy import NO_REASON_COMMENT, Outcome, import_legacy_qc
from qc.models import QCState, ScanReview, SessionSignOff
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.studies.factories import (
    AltStudyCodeFactory,
    ExpectedScanFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db

BLACKLIST_FIXTURES = "datman/tests/fixture_dm_blacklist_rm"
CHECKLIST_FIXTURE = "datman/history/tests/fixture_dm-proc-all/metadata/checklist.csv"


def run(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("import_legacy_qc", *args, stdout=stdout, stderr=stderr)
    except SystemExit as exit_:
        code = exit_.code
    return code, stdout.getvalue(), stderr.getvalue()


def outcomes(result, source):
    return [
        (report.line_number, report.outcome) for report in result.reports if report.source == source
    ]


@pytest.fixture
def legacy_study(reviewer):
    """Study STUDY as the legacy checklist names it: code STUDY (and PHAIL) at SITE."""
    study = StudyFactory(nickname="STUDY")
    study_site = StudySiteFactory(study=study, site=SiteFactory(name="SITE"), code="STUDY")
    AltStudyCodeFactory(study_site=study_site, code="PHAIL")
    t1 = ScantypeFactory(tag="T1")
    ExpectedScanFactory(study_site=study_site, scantype=t1, count=1)
    sessions = {}
    for name in ("STUDY_SITE_CODE_01", "STUDY_SITE_CODE_02", "PHAIL_SITE_CODE_01"):
        timepoint = TimepointFactory(study_site=study_site, name=name)
        session = SessionFactory(timepoint=timepoint)
        ScanFactory(session=session, scantype=t1, series=2, description="SagT1")
        sessions[name] = session
    return study, sessions


# --- Real files -----------------------------------------------------------------------------


@pytest.mark.real_fixtures
def test_real_checklist(real_fixtures, legacy_study, reviewer):
    study, sessions = legacy_study
    path = real_fixtures / CHECKLIST_FIXTURE

    code, stdout, stderr = run("STUDY", "--checklist", str(path), "--user", "reviewer")

    # Line 2 has no reviewer; line 4 is at site CAMH, which the study does not have.
    assert code == 1
    assert "checklist line 1: imported: signed off STUDY_SITE_CODE_01_01" in stdout
    assert "checklist line 2: not reviewed" in stdout
    assert "checklist line 3: imported: signed off PHAIL_SITE_CODE_01_01" in stdout
    assert "checklist line 4: unknown: No timepoint STUDY_CAMH_CODE_01" in stderr
    assert "checklist: 2 imported, 1 unknown, 1 not reviewed" in stdout
    signed = set(SessionSignOff.objects.values_list("session__timepoint__name", flat=True))
    assert signed == {"STUDY_SITE_CODE_01", "PHAIL_SITE_CODE_01"}
    # PHAIL is a study code, not a phantom: the timepoint stays a human one.
    assert not sessions["PHAIL_SITE_CODE_01"].timepoint.is_phantom
    # Signing off approved the session's new scan.
    assert list(ScanReview.objects.values_list("state", flat=True)) == ["approved", "approved"]


@pytest.mark.real_fixtures
def test_real_checklist_twice_changes_nothing(real_fixtures, legacy_study, reviewer):
    path = real_fixtures / CHECKLIST_FIXTURE
    run("STUDY", "--checklist", str(path), "--user", "reviewer")
    reviews = ScanReview.objects.count()

    code, stdout, _ = run("STUDY", "--checklist", str(path), "--user", "reviewer")

    assert "checklist: 2 already decided, 1 unknown, 1 not reviewed" in stdout
    assert ScanReview.objects.count() == reviews
    assert SessionSignOff.objects.count() == 2


@pytest.mark.real_fixtures
@pytest.mark.parametrize(
    "name", ["blacklist.csv", "blacklist_bad_comment.csv", "blacklist_commas.csv"]
)
def test_real_blacklists_are_placeholders(real_fixtures, legacy_study, reviewer, name):
    path = real_fixtures / BLACKLIST_FIXTURES / name

    code, stdout, stderr = run("STUDY", "--blacklist", str(path), "--user", "reviewer")

    # The header and the blank lines are skipped; the three placeholder names do not parse
    # (session SESSION starts with SE, series SERIESNUM is no number).
    assert code == 1
    assert stderr.count("unparseable") == 3
    assert "blacklist line 2: unparseable: Invalid scan file name" in stderr
    assert "blacklist: 3 unparseable" in stdout
    assert ScanReview.objects.count() == 0


# --- Every kind of blacklist line -----------------------------------------------------------


def test_blacklist_lines(legacy_study, reviewer):
    study, sessions = legacy_study
    decided = sessions["STUDY_SITE_CODE_02"].scans.get()
    ScanReviewFactory(scan=decided, state=QCState.APPROVED, reviewer=reviewer)
    fresh = sessions["STUDY_SITE_CODE_01"].scans.get()
    lines = [
        "series,reason",
        # datman accepts a lower-case ID; the tag keeps its case.
        f"{fresh.file_stem.replace('STUDY_SITE_CODE', 'study_site_code')},motion, then\tghosting",
        f"{fresh.file_stem} listed again",
        f"{decided.file_stem}\ttruncated",
        "STUDY_SITE_CODE_09_01_T1_02_SagT1 unknown scan",
        "not-a-stem reason",
        "",
        f"{sessions['PHAIL_SITE_CODE_01'].scans.get().file_stem}",
    ]

    result = import_legacy_qc(study, user=reviewer, blacklist_lines=lines)

    assert outcomes(result, "blacklist") == [
        (2, Outcome.IMPORTED),
        (3, Outcome.DUPLICATE),
        (4, Outcome.ALREADY_DECIDED),
        (5, Outcome.UNKNOWN),
        (6, Outcome.UNPARSEABLE),
        (8, Outcome.IMPORTED),
    ]
    # datman joins the tokens after the stem with spaces, so the commas are gone.
    newest = ScanReview.objects.newest_for(fresh.pk).get()
    assert (newest.state, newest.comment) == ("blacklisted", "motion then ghosting")
    phantom_code = ScanReview.objects.newest_for(sessions["PHAIL_SITE_CODE_01"].scans.get().pk)
    assert phantom_code.get().comment == NO_REASON_COMMENT
    assert ScanReview.objects.newest_for(decided.pk).get().state == "approved"


def test_blacklist_other_study_scan_is_unknown(legacy_study, reviewer):
    study, _ = legacy_study
    other_site = StudySiteFactory(
        study=StudyFactory(nickname="OTHER"), site=SiteFactory(name="SITE"), code="OTH"
    )
    other = ScanFactory(
        session=SessionFactory(
            timepoint=TimepointFactory(study_site=other_site, name="OTH_SITE_0001_01")
        ),
        series=3,
    )

    result = import_legacy_qc(study, user=reviewer, blacklist_lines=[f"{other.file_stem} bad"])

    assert outcomes(result, "blacklist") == [(1, Outcome.UNKNOWN)]


# --- Every kind of checklist line -----------------------------------------------------------


def test_checklist_session_line_and_reset_scan(legacy_study, reviewer):
    study, sessions = legacy_study
    second = SessionFactory(timepoint=sessions["STUDY_SITE_CODE_01"].timepoint, number=2)
    reset = ScanFactory(session=second, series=4)
    ScanReviewFactory(scan=reset, state=QCState.FLAGGED, comment="motion", reviewer=reviewer)
    ScanReviewFactory(scan=reset, state=QCState.NEW, reviewer=reviewer)
    SessionSignOffFactory(session=sessions["STUDY_SITE_CODE_02"], reviewer=reviewer)
    lines = [
        "qc_STUDY_SITE_CODE_01_01.html aaa",
        "qc_STUDY_SITE_CODE_01_02.html aaa",
        "qc_STUDY_SITE_CODE_02.pdf bbb",
        "qc_STUDY_SITE_CODE_01_01.html again",
        "checklist.html aaa",
        "qc_STUDY-SITE-CODE-03.html aaa",
    ]

    result = import_legacy_qc(study, user=reviewer, checklist_lines=lines)

    assert outcomes(result, "checklist") == [
        (1, Outcome.IMPORTED),
        (2, Outcome.ALREADY_DECIDED),
        (3, Outcome.ALREADY_DECIDED),
        (4, Outcome.DUPLICATE),
        (5, Outcome.UNPARSEABLE),
        (6, Outcome.UNPARSEABLE),
    ]
    assert "set back to new" in result.reports[1].message
    assert SessionSignOff.objects.filter(session=second).count() == 0


def test_dry_run_writes_nothing(legacy_study, reviewer):
    study, sessions = legacy_study
    stem = sessions["STUDY_SITE_CODE_02"].scans.get().file_stem

    result = import_legacy_qc(
        study,
        user=reviewer,
        checklist_lines=["qc_STUDY_SITE_CODE_01.html aaa"],
        blacklist_lines=[f"{stem} bad"],
        dry_run=True,
    )

    assert [report.outcome for report in result.reports] == [Outcome.IMPORTED, Outcome.IMPORTED]
    assert result.summary().startswith("Dry run of the legacy QC import of STUDY")
    assert ScanReview.objects.count() == 0
    assert SessionSignOff.objects.count() == 0


# --- Command input --------------------------------------------------------------------------


def test_command_summary_and_exit_zero(legacy_study, reviewer, tmp_path):
    path = tmp_path / "checklist.csv"
    path.write_text("qc_STUDY_SITE_CODE_01.html aaa\n")

    code, stdout, _ = run("STUDY", "--checklist", str(path), "--user", "reviewer")

    assert code == 0
    assert stdout.splitlines()[-1] == "Imported legacy QC of STUDY: checklist: 1 imported"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["STUDY"], "Give --checklist PATH, --blacklist PATH or both"),
        (["NOPE", "--checklist", "x"], "Study 'NOPE' not found"),
        (["STUDY", "--checklist", "/nonexistent.csv", "--user", "reviewer"], "not found"),
        (["STUDY", "--checklist", "LATIN1", "--user", "reviewer"], "is not UTF-8 text"),
        (["STUDY", "--checklist", "x", "--user", "ghost"], "User 'ghost' not found"),
        (["STUDY", "--checklist", "x"], "QCDASH_PIPELINE_USER"),
    ],
)
def test_command_rejects_bad_input(legacy_study, reviewer, tmp_path, args, message):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("qc_STUDY_SITE_CODE_01.html Müller\n".encode("latin-1"))
    args = [str(latin1) if arg == "LATIN1" else arg for arg in args]

    with pytest.raises(CommandError, match=message):
        call_command("import_legacy_qc", *args, stdout=io.StringIO())
