"""`manage.py purge`: what it shows, what it deletes and keeps, files, shared surveys, bad IDs."""

import io
import os

import pytest
from django.core.management import CommandError, call_command

from qc.models import (
    PurgeRecord,
    QCEvent,
    QCState,
    ScanReview,
    SessionSignOff,
)
from qc.services import review_scan, sign_off_session
from redcap.models import LinkKind, RedcapRecord
from studies.models import Scan, Session, Timepoint
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
    nii = f"data/nii/{TIMEPOINT}/{stem}.nii.gz"
    scan = ScanFactory(
        session=session,
        name=f"{session.name}_T1_02",
        file_stem=stem,
        nifti_path=nii,
        sidecar_path=f"data/nii/{TIMEPOINT}/{stem}.json",
        qc_images=[{"file": f"{stem}.png", "title": "T1"}],
    )
    folder = archive / "data" / "nii" / TIMEPOINT
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".nii.gz", ".json"):
        (folder / f"{stem}{suffix}").write_text("x")
    qc_folder = archive / "qc" / TIMEPOINT
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
