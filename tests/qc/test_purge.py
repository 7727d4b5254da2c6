"""`manage.py purge`: what it shows, what it deletes and keeps, files, shared surveys, bad IDs,
the rows of every app and hidden rows."""

import io
import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.models import (
    IssueRequest,
    IssueRequestStatus,
    PushStatus,
    TimepointIssues,
    XnatPush,
)
from pipelines.models import CommandKind, DownloadJob, DownloadRun
from qc.compliance_repair import repair_slice_timing
from qc.models import (
    FindingNote,
    IncidentalFinding,
    PurgeRecord,
    QCEvent,
    QCState,
    ScanReview,
    SessionSignOff,
    SidecarRepairAction,
    TimepointComment,
    TimepointCommentRevision,
)
from qc.notes_services import add_comment, add_finding_note, edit_comment, report_finding
from qc.purge import find_unplanned_references, plan_purge
from qc.services import review_scan, sign_off_session
from redcap.models import LinkKind, RedcapRecord
from studies.models import DeletionEvent, Scan, Session, Timepoint
from studies.services import delete_object
from tests.qc.factories import ScanReviewFactory
from tests.qc.test_compliance_repair import deviating_scan
from tests.redcap.factories import RedcapRecordFactory, SessionSurveyFactory
from tests.studies.factories import (
    ScanFactory,
    SessionFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TIMEPOINT = "SPN01_CMH_0001_01"
OTHER_TIMEPOINT = "SPN01_CMH_0002_01"


@pytest.fixture
def archive(tmp_path):
    return tmp_path / "archive"


@pytest.fixture
def timepoint(archive):
    study = StudyFactory(nickname="SPINS", archive_path=str(archive))
    study_site = StudySiteFactory(study=study, code="SPN01", site__name="CMH")
    return TimepointFactory(study_site=study_site, name=TIMEPOINT)


def reviewed_session(timepoint, number, archive):
    """A session with one scan (files in the archive), a flag and a sign-off."""
    session = SessionFactory(timepoint=timepoint, number=number)
    stem = f"{session.name}_T1_02_SagT1Bravo"
    nii = f"data/nii/{timepoint.name}/{stem}.nii.gz"
    scan = ScanFactory(
        session=session,
        name=f"{session.name}_T1_02",
        file_stem=stem,
        nifti_path=nii,
        sidecar_path=f"data/nii/{timepoint.name}/{stem}.json",
        qc_images=[{"file": f"{stem}.png", "title": "T1"}],
    )
    folder = archive / "data" / "nii" / timepoint.name
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".nii.gz", ".json"):
        (folder / f"{stem}{suffix}").write_text("x")
    qc_folder = archive / "qc" / timepoint.name
    qc_folder.mkdir(parents=True, exist_ok=True)
    (qc_folder / f"{stem}.png").write_text("png")
    reviewer = UserFactory()
    review_scan(scan, reviewer=reviewer, state=QCState.FLAGGED, comment="Motion in the last run")
    sign_off_session(session, reviewer=reviewer, approve_scan_ids=[])
    return session


def run(*args, **options):
    out = io.StringIO()
    call_command("purge", *args, stdout=out, **options)
    return out.getvalue()


def test_dry_run_shows_and_keeps(timepoint, archive):
    reviewed_session(timepoint, 1, archive)

    output = run(TIMEPOINT, "--dry-run", "--files")

    assert f"Purge of {TIMEPOINT} (timepoint of study SPINS)" in output
    assert "qc.ScanReview: 1" in output
    assert "studies.Scan: 1" in output
    assert str(archive / "data" / "nii" / TIMEPOINT) in output
    assert "Dry run: nothing was deleted." in output
    assert Timepoint.objects.filter(name=TIMEPOINT).exists()
    assert not PurgeRecord.objects.exists()


def test_purge_timepoint_keeps_snapshot(timepoint, archive):
    session = reviewed_session(timepoint, 1, archive)

    output = run(TIMEPOINT, "--yes")

    assert f"Purged {TIMEPOINT}" in output
    assert not Timepoint.objects.filter(name=TIMEPOINT).exists()
    assert not Session.objects.exists()
    assert not ScanReview.objects.exists()
    assert not SessionSignOff.objects.exists()
    assert not QCEvent.objects.exists()
    record = PurgeRecord.objects.get()
    assert record.target == TIMEPOINT
    assert record.study == "SPINS"
    assert record.ran_by
    assert record.snapshot["qc.ScanReview"][0]["fields"]["comment"] == "Motion in the last run"
    assert record.snapshot["qc.SessionSignOff"][0]["fields"]["session"] == session.pk
    assert len(record.snapshot["qc.QCEvent"]) == 2
    assert record.counts["qc.ScanReview"] == 1
    # Without --files the archive stays.
    assert (archive / "data" / "nii" / TIMEPOINT).is_dir()
    assert record.removed_files == []


def test_purge_one_session_keeps_other(timepoint, archive):
    reviewed_session(timepoint, 1, archive)
    reviewed_session(timepoint, 2, archive)

    run(f"{TIMEPOINT}_02", "--yes", "--files")

    assert list(Session.objects.values_list("number", flat=True)) == [1]
    assert Timepoint.objects.filter(name=TIMEPOINT).exists()
    remaining = sorted(os.listdir(archive / "data" / "nii" / TIMEPOINT))
    assert remaining == [
        f"{TIMEPOINT}_01_T1_02_SagT1Bravo.json",
        f"{TIMEPOINT}_01_T1_02_SagT1Bravo.nii.gz",
    ]
    assert os.listdir(archive / "qc" / TIMEPOINT) == [f"{TIMEPOINT}_01_T1_02_SagT1Bravo.png"]
    assert len(PurgeRecord.objects.get().removed_files) == 3


def test_only_session_takes_timepoint(timepoint, archive):
    reviewed_session(timepoint, 1, archive)

    run(f"{TIMEPOINT}_01", "--yes", "--files")

    assert not Timepoint.objects.exists()
    assert not (archive / "data" / "nii" / TIMEPOINT).exists()
    assert not (archive / "qc" / TIMEPOINT).exists()
    assert (archive / "data" / "nii").is_dir()


def test_files_never_follow_symlinks_out(timepoint, archive, tmp_path):
    reviewed_session(timepoint, 1, archive)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    os.symlink(outside, archive / "data" / "nii" / TIMEPOINT / "linked")
    # A whole data folder that is a symlink out of the archive is skipped.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / TIMEPOINT).mkdir(parents=True)
    (elsewhere / TIMEPOINT / "raw.dcm").write_text("dcm")
    os.symlink(elsewhere, archive / "data" / "dcm")

    run(TIMEPOINT, "--yes", "--files")

    assert (outside / "keep.txt").read_text() == "keep"
    assert (elsewhere / TIMEPOINT / "raw.dcm").read_text() == "dcm"
    assert not (archive / "data" / "nii" / TIMEPOINT).exists()


@pytest.fixture
def repaired_scan(settings, tmp_path):
    """A scan and the corrected sidecar that the SliceTiming repair wrote for it."""
    settings.ARCHIVE_ROOT = tmp_path / "archive"
    settings.SIDECAR_REPAIR_ROOT = str(tmp_path / "repaired")
    scan = deviating_scan()
    repair = repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.STANDARD)
    return scan, Path(repair.path)


def test_files_remove_corrected_sidecar(repaired_scan):
    scan, corrected = repaired_scan

    listing = run(scan.session.name, "--dry-run", "--files")
    run(scan.session.name, "--yes", "--files")

    assert "corrected sidecars to remove (1):" in listing
    assert str(corrected) in listing
    assert not corrected.exists()
    assert str(corrected) in PurgeRecord.objects.get().removed_files


def test_corrected_sidecar_stays_without_files(repaired_scan):
    scan, corrected = repaired_scan

    listing = run(scan.session.name, "--dry-run")
    run(scan.session.name, "--yes")

    assert "1 corrected sidecar stays (pass --files to remove them)" in listing
    assert corrected.exists()
    assert PurgeRecord.objects.get().removed_files == []


def test_corrected_sidecar_outside_root_kept(repaired_scan, settings, tmp_path):
    scan, corrected = repaired_scan
    # The repair folder was moved after the repair, so the stored path is outside it.
    settings.SIDECAR_REPAIR_ROOT = str(tmp_path / "moved")

    listing = run(scan.session.name, "--yes", "--files")

    assert "corrected sidecar" not in listing
    assert corrected.exists()


def test_folder_at_repair_path_kept(repaired_scan):
    scan, corrected = repaired_scan
    # A folder now sits where the corrected sidecar was written, and it contains another file.
    corrected.unlink()
    corrected.mkdir()
    (corrected / "other.json").write_text("{}")

    listing = run(scan.session.name, "--yes", "--files")

    assert (corrected / "other.json").read_text() == "{}"
    assert "corrected sidecar" not in listing
    assert PurgeRecord.objects.get().removed_files == []


def test_removal_error_without_traceback(repaired_scan, monkeypatch):
    scan, corrected = repaired_scan
    unlink = Path.unlink

    def unlink_failing_on_corrected(path, missing_ok=False):
        if path == corrected:
            raise PermissionError(1, "Operation not permitted", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink_failing_on_corrected)

    with pytest.raises(CommandError) as error:
        run(scan.session.name, "--yes", "--files")

    assert str(corrected) in str(error.value)
    assert "Operation not permitted" in str(error.value)
    assert not Session.objects.filter(pk=scan.session.pk).exists()
    assert PurgeRecord.objects.get().removed_files == []
    assert corrected.exists()


def test_confirmation_no_cancels(timepoint, archive, monkeypatch):
    reviewed_session(timepoint, 1, archive)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")

    with pytest.raises(CommandError, match="Purge cancelled; nothing was deleted"):
        run(TIMEPOINT)

    assert Timepoint.objects.filter(name=TIMEPOINT).exists()


def test_confirmation_yes_purges(timepoint, archive, monkeypatch):
    reviewed_session(timepoint, 1, archive)
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")

    run(TIMEPOINT)

    assert prompts == [f"Purge {TIMEPOINT}? Type yes to continue: "]
    assert not Timepoint.objects.exists()


def test_shared_survey_refused(timepoint, archive):
    first = reviewed_session(timepoint, 1, archive)
    other = SessionFactory(timepoint=TimepointFactory(study_site=timepoint.study_site))
    record = RedcapRecordFactory()
    SessionSurveyFactory(session=first, record=record, kind=LinkKind.MATCHED)
    SessionSurveyFactory(session=other, record=record, kind=LinkKind.SHARED)

    with pytest.raises(CommandError, match="--force-shared") as error:
        run(TIMEPOINT, "--yes")

    assert f"is also linked to {other.name}" in str(error.value)
    assert Timepoint.objects.filter(name=TIMEPOINT).exists()


def test_force_shared_keeps_record(timepoint, archive):
    first = reviewed_session(timepoint, 1, archive)
    other = SessionFactory(timepoint=TimepointFactory(study_site=timepoint.study_site))
    record = RedcapRecordFactory()
    SessionSurveyFactory(session=first, record=record, kind=LinkKind.MATCHED)
    SessionSurveyFactory(session=other, record=record, kind=LinkKind.SHARED)

    run(TIMEPOINT, "--yes", "--force-shared")

    assert RedcapRecord.objects.filter(pk=record.pk).exists()
    assert list(record.session_links.values_list("session", flat=True)) == [other.pk]
    assert "redcap.SessionSurvey" in PurgeRecord.objects.get().snapshot


def test_source_of_linked_scan_refused(timepoint, archive):
    session = reviewed_session(timepoint, 1, archive)
    ScanFactory(source=Scan.objects.get(session=session))

    with pytest.raises(CommandError, match="source of linked scans"):
        run(TIMEPOINT, "--yes")

    assert Timepoint.objects.filter(name=TIMEPOINT).exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SPN01_CMH", "Invalid ID 'SPN01_CMH'"),
        ("not an id", "Pass a session ID such as SPN01_CMH_0001_01_01"),
        ("SPN01_CMH_0001_01_AB", "non-numeric session"),
    ],
)
def test_malformed_id_rejected(db, text, message):
    with pytest.raises(CommandError, match=message):
        run(text, "--yes")

    assert not PurgeRecord.objects.exists()


def test_unknown_session_rejected(timepoint):
    SessionFactory(timepoint=timepoint, number=1)

    with pytest.raises(CommandError, match=f"Session {TIMEPOINT}_03 not found"):
        run(f"{TIMEPOINT}_03", "--yes")


def test_unknown_timepoint_rejected(db):
    with pytest.raises(CommandError, match="Timepoint SPN01_CMH_0404_01 not found"):
        run("SPN01_CMH_0404_01", "--yes")


# --- Rows of every app, and hidden rows ------------------------------------------------------


def annotated_timepoint(timepoint, archive):
    """Give the timepoint two reviewed sessions and a row of every app that refers to it: a
    comment with an edit, a finding with two notes, an XNAT push, cached tracker issues, an
    issue request and a download job with a run. Session 2 and the scan of session 1 are
    hidden. Return the two sessions.
    """
    first = reviewed_session(timepoint, 1, archive)
    second = reviewed_session(timepoint, 2, archive)
    author = UserFactory()
    comment = add_comment(timepoint=timepoint, author=author, text="Subject moved")
    edit_comment(comment=comment, editor=author, text="Subject moved in run 2")
    finding = report_finding(timepoint=timepoint, reporter=author, description="Cyst seen")
    add_finding_note(finding=finding, author=author, text="Referred to the physician")
    add_finding_note(finding=finding, author=author, text="", marks_resolved=True)

    scan = Scan.all_objects.get(session=first)
    now = timezone.now()
    XnatPush.objects.create(
        scan=scan, study=timepoint.study, status=PushStatus.DONE, state=QCState.FLAGGED
    )
    TimepointIssues.objects.create(timepoint=timepoint, issues=[{"number": 7}], checked_at=now)
    IssueRequest.objects.create(
        timepoint=timepoint,
        requested_by=author,
        title=f"{timepoint.name}: motion",
        status=IssueRequestStatus.CREATED,
        issue_number=7,
    )
    job = DownloadJob.objects.create(
        session_name=first.name, study_site=timepoint.study_site, session=first, deadline_at=now
    )
    DownloadRun.objects.create(
        job=job,
        kind=CommandKind.DOWNLOAD,
        command=["dm_xnat_extract.py", first.name],
        exit_code=0,
        started_at=now,
        finished_at=now,
    )

    admin = UserFactory(username=f"admin-{timepoint.name}")
    delete_object(scan, user=admin, reason="Wrong series")
    delete_object(second, user=admin, reason="Test scan of the phantom")
    return first, second


@pytest.fixture
def other_timepoint(timepoint, archive):
    other = TimepointFactory(study_site=timepoint.study_site, name=OTHER_TIMEPOINT)
    annotated_timepoint(other, archive)
    return other


ROWS_OF_EVERY_APP = {
    "qc.TimepointComment": 1,
    "qc.TimepointCommentRevision": 2,
    "qc.IncidentalFinding": 1,
    "qc.FindingNote": 2,
    "qc.ScanReview": 2,
    "qc.SessionSignOff": 2,
    "qc.QCEvent": 4,
    "integrations.XnatPush": 1,
    "integrations.TimepointIssues": 1,
    "integrations.IssueRequest": 1,
    "pipelines.DownloadJob": 1,
    "pipelines.DownloadRun": 1,
    "studies.Scan": 2,
    "studies.Session": 2,
    "studies.Timepoint": 1,
}


def test_dry_run_lists_every_app(timepoint, archive, other_timepoint):
    annotated_timepoint(timepoint, archive)
    deletion_events = DeletionEvent.objects.count()

    output = run(TIMEPOINT, "--dry-run")

    assert f"sessions: {TIMEPOINT}_01, {TIMEPOINT}_02 (hidden)" in output
    assert f"hidden scans: {TIMEPOINT}_01_T1_02, {TIMEPOINT}_02_T1_02" in output
    for label, count in ROWS_OF_EVERY_APP.items():
        assert f"  {label}: {count}\n" in output
    assert "cannot purge" not in output
    assert "Dry run: nothing was deleted." in output
    assert Timepoint.all_objects.filter(name=TIMEPOINT).exists()
    assert Session.all_objects.filter(timepoint__name=TIMEPOINT).count() == 2
    assert TimepointCommentRevision.objects.count() == 4
    assert FindingNote.objects.count() == 4
    assert XnatPush.objects.count() == 2
    assert DownloadRun.objects.count() == 2
    assert DeletionEvent.objects.count() == deletion_events
    assert not PurgeRecord.objects.exists()


def test_plan_counts_every_app(timepoint, archive):
    annotated_timepoint(timepoint, archive)

    counts = plan_purge(TIMEPOINT).counts()

    assert {label: count for label, count in counts.items() if count} == ROWS_OF_EVERY_APP


def test_purge_deletes_every_app(timepoint, archive, other_timepoint):
    annotated_timepoint(timepoint, archive)
    other_counts = plan_purge(OTHER_TIMEPOINT).counts()
    deletion_events = DeletionEvent.objects.count()

    output = run(TIMEPOINT, "--yes")

    assert f"Purged {TIMEPOINT}: {sum(ROWS_OF_EVERY_APP.values())} rows deleted" in output
    assert not Timepoint.all_objects.filter(name=TIMEPOINT).exists()
    assert not Session.all_objects.filter(timepoint__name=TIMEPOINT).exists()
    assert not Scan.all_objects.filter(session__timepoint__name=TIMEPOINT).exists()
    assert not TimepointComment.objects.filter(timepoint__name=TIMEPOINT).exists()
    assert not IncidentalFinding.objects.filter(timepoint__name=TIMEPOINT).exists()
    assert not XnatPush.objects.filter(scan__session__timepoint__name=TIMEPOINT).exists()
    assert not TimepointIssues.objects.filter(timepoint__name=TIMEPOINT).exists()
    assert not IssueRequest.objects.filter(timepoint__name=TIMEPOINT).exists()
    assert not DownloadJob.objects.filter(session_name__startswith=TIMEPOINT).exists()
    # The other timepoint keeps every row, and the deletion history of both stays.
    assert plan_purge(OTHER_TIMEPOINT).counts() == other_counts
    assert TimepointCommentRevision.objects.count() == 2
    assert FindingNote.objects.count() == 2
    assert DownloadRun.objects.count() == 1
    assert DeletionEvent.objects.count() == deletion_events
    counts = PurgeRecord.objects.get().counts
    assert {label: count for label, count in counts.items() if count} == ROWS_OF_EVERY_APP


def test_snapshot_keeps_notes_and_pushes(timepoint, archive):
    annotated_timepoint(timepoint, archive)

    run(TIMEPOINT, "--yes")

    snapshot = PurgeRecord.objects.get().snapshot
    revisions = [row["fields"]["text"] for row in snapshot["qc.TimepointCommentRevision"]]
    assert revisions == ["Subject moved", "Subject moved in run 2"]
    assert len(snapshot["qc.TimepointComment"]) == 1
    assert snapshot["qc.IncidentalFinding"][0]["fields"]["description"] == "Cyst seen"
    notes = [
        (row["fields"]["text"], row["fields"]["marks_resolved"])
        for row in snapshot["qc.FindingNote"]
    ]
    assert notes == [("Referred to the physician", False), ("", True)]
    assert snapshot["integrations.XnatPush"][0]["fields"]["state"] == QCState.FLAGGED
    assert snapshot["integrations.IssueRequest"][0]["fields"]["issue_number"] == 7
    assert len(snapshot["pipelines.DownloadJob"]) == 1
    assert snapshot["pipelines.DownloadRun"][0]["fields"]["exit_code"] == 0
    assert "integrations.TimepointIssues" not in snapshot


def test_snapshot_keeps_hidden_state(timepoint, archive):
    annotated_timepoint(timepoint, archive)

    run(TIMEPOINT, "--yes")

    snapshot = PurgeRecord.objects.get().snapshot
    sessions = {row["name"]: row for row in snapshot["studies.Session"]}
    assert sessions[f"{TIMEPOINT}_01"]["deleted_at"] is None
    assert sessions[f"{TIMEPOINT}_02"]["deletion_reason"] == "Test scan of the phantom"
    assert sessions[f"{TIMEPOINT}_02"]["deleted_by"] == f"admin-{TIMEPOINT}"
    assert sessions[f"{TIMEPOINT}_02"]["deleted_at"]
    scans = {row["name"]: row for row in snapshot["studies.Scan"]}
    assert scans[f"{TIMEPOINT}_01_T1_02"]["deletion_reason"] == "Wrong series"
    assert scans[f"{TIMEPOINT}_02_T1_02"]["deleted_at"] is None
    assert snapshot["studies.Timepoint"] == [
        {
            "pk": timepoint.pk,
            "name": TIMEPOINT,
            "deleted_at": None,
            "deleted_by": None,
            "deletion_reason": "",
        }
    ]


def test_purge_hidden_session(timepoint, archive, other_timepoint):
    annotated_timepoint(timepoint, archive)

    run(f"{TIMEPOINT}_02", "--yes")

    assert list(
        Session.all_objects.filter(timepoint=timepoint).values_list("number", flat=True)
    ) == [1]
    # The timepoint stays, so its own rows stay too.
    assert Timepoint.all_objects.filter(name=TIMEPOINT).exists()
    assert TimepointComment.objects.filter(timepoint=timepoint).exists()
    assert IncidentalFinding.objects.filter(timepoint=timepoint).exists()
    assert IssueRequest.objects.filter(timepoint=timepoint).exists()
    record = PurgeRecord.objects.get()
    assert record.counts["studies.Session"] == 1
    assert "qc.TimepointComment" not in record.snapshot
    assert "studies.Timepoint" not in record.snapshot


def test_purge_session_with_hidden_scan(timepoint, archive):
    first, _ = annotated_timepoint(timepoint, archive)

    run(first.name, "--yes")

    assert not Scan.all_objects.filter(session__pk=first.pk).exists()
    assert not XnatPush.objects.exists()
    assert not DownloadJob.objects.exists()
    assert not DownloadRun.objects.exists()
    assert Session.all_objects.filter(timepoint=timepoint).count() == 1
    assert PurgeRecord.objects.get().counts["integrations.XnatPush"] == 1


def test_purge_hidden_timepoint(timepoint, archive):
    reviewed_session(timepoint, 1, archive)
    delete_object(timepoint, user=UserFactory(), reason="Scanned under the wrong study")

    output = run(TIMEPOINT, "--yes")

    assert f"sessions: {TIMEPOINT}_01 (hidden)" in output
    assert not Timepoint.all_objects.exists()
    assert PurgeRecord.objects.get().snapshot["studies.Timepoint"][0]["deletion_reason"] == (
        "Scanned under the wrong study"
    )


def test_linked_scans_counted_once(timepoint, archive):
    first = reviewed_session(timepoint, 1, archive)
    second = SessionFactory(timepoint=timepoint, number=2)
    ScanFactory(session=second, source=Scan.objects.get(session=first))

    counts = plan_purge(TIMEPOINT).counts()

    assert counts["studies.Scan"] == 2


def test_unplanned_reference_refused(timepoint, archive, other_timepoint):
    session = reviewed_session(timepoint, 1, archive)
    # A decision on another timepoint's scan that names this session's sign-off: the purge
    # deletes the sign-off but has no rule for that review.
    outside = Scan.all_objects.filter(session__timepoint=other_timepoint).first()
    ScanReviewFactory(scan=outside, sign_off=session.sign_off)

    output = run(TIMEPOINT, "--dry-run")
    with pytest.raises(CommandError, match="has no rule for deleting these rows") as error:
        run(TIMEPOINT, "--yes")

    reference = "1 qc.ScanReview rows refer to qc.SessionSignOff rows through sign_off"
    assert f"cannot purge: {reference}" in output
    assert reference in str(error.value)
    assert Timepoint.objects.filter(name=TIMEPOINT).exists()
    assert SessionSignOff.objects.filter(session=session).exists()
    assert not PurgeRecord.objects.exists()


def test_unplanned_references_any_model(timepoint, archive):
    session = reviewed_session(timepoint, 1, archive)
    add_comment(timepoint=timepoint, author=UserFactory(), text="Check the fieldmap")

    # Planned alone, the session and timepoint leave their scans, QC rows and comment behind.
    references = find_unplanned_references(
        [
            Session.all_objects.filter(pk=session.pk),
            Timepoint.all_objects.filter(pk=timepoint.pk),
        ]
    )

    assert references == [
        "1 studies.Scan rows refer to studies.Session rows through session",
        "1 qc.SessionSignOff rows refer to studies.Session rows through session",
        "2 qc.QCEvent rows refer to studies.Session rows through session",
        "1 qc.TimepointComment rows refer to studies.Timepoint rows through timepoint",
    ]
