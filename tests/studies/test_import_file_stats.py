"""import_archive re-runs: files whose size, mtime and inode match the last read are not read
again, changed and replaced files are, and --recheck-files reads everything."""

import json
import os
from io import StringIO

import pytest
from django.core.management import call_command

from qc.compliance import HeaderDiffStatus
from qc.models import HeaderDiff
from studies import importer
from studies.models import Scan, Session
from tests.qc.compliance_factories import GoldStandardFactory
from tests.studies.archive_builder import ArchiveBuilder, write_nifti
from tests.studies.factories import (
    ExpectedScanFactory,
    ScantypeFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
)

pytestmark = pytest.mark.django_db

TIMEPOINT = "STUDY_SITE_0001_01"
T1_STEM = f"{TIMEPOINT}_01_T1_02_SagT1"
SIDECAR = {"SeriesNumber": 2, "EchoTime": 0.003, "RepetitionTime": 2.3}
# Added to an mtime, so that a rewrite within the file system's timestamp tick still counts.
AN_HOUR_NS = 3600 * 10**9


@pytest.fixture
def study_site(tmp_path):
    study = StudyFactory(nickname="STUDY", archive_path=str(tmp_path / "STUDY"))
    study_site = StudySiteFactory(study=study, site=SiteFactory(name="SITE"), code="STUDY")
    ExpectedScanFactory(
        study_site=study_site, scantype=ScantypeFactory(tag="T1", qc_type="anat"), count=1
    )
    return study_site


@pytest.fixture
def archive(study_site):
    return ArchiveBuilder(study_site.study.archive_root)


def run_import(*args):
    stdout, stderr = StringIO(), StringIO()
    call_command("import_archive", "STUDY", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def summary_line(stdout):
    return next(line for line in stdout.splitlines() if line.startswith("Imported"))


def set_mtime_ns(path, mtime_ns):
    os.utime(path, ns=(mtime_ns, mtime_ns))


def rewrite_keeping_stat(path, content):
    """Rewrite a file in place with contents of the same size, then restore its mtime, so that
    size, mtime and inode all match what was recorded."""
    before = path.stat()
    assert len(content) == before.st_size
    path.write_bytes(content)
    set_mtime_ns(path, before.st_mtime_ns)
    assert path.stat().st_ino == before.st_ino


def test_import_records_file_stats(archive):
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR)

    run_import()

    scan = Scan.objects.get()
    nifti, sidecar = paths[".nii.gz"].stat(), paths[".json"].stat()
    assert scan.nifti_stat == f"{nifti.st_size}:{nifti.st_mtime_ns}:{nifti.st_ino}"
    assert scan.sidecar_stat == f"{sidecar.st_size}:{sidecar.st_mtime_ns}:{sidecar.st_ino}"


def test_unchanged_sidecar_not_read_again(archive):
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR)
    run_import()
    # Same size, mtime and inode, so only --recheck-files can see the new value.
    text = paths[".json"].read_text().replace("0.003", "0.004")
    rewrite_keeping_stat(paths[".json"], text.encode())

    stdout, _ = run_import()

    assert Scan.objects.get().sidecar["EchoTime"] == 0.003
    assert "0 updated, 1 unchanged" in summary_line(stdout)


def test_recheck_files_reads_unchanged_files(archive):
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR)
    run_import()
    text = paths[".json"].read_text().replace("0.003", "0.004")
    rewrite_keeping_stat(paths[".json"], text.encode())

    stdout, _ = run_import("--recheck-files")

    assert Scan.objects.get().sidecar["EchoTime"] == 0.004
    assert "1 updated, 0 unchanged" in summary_line(stdout)


def test_changed_sidecar_read_and_diff_recomputed(
    study_site, archive, django_capture_on_commit_callbacks
):
    GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=study_site.expected_scans.get().scantype,
        sidecar=SIDECAR,
    )
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR)
    with django_capture_on_commit_callbacks(execute=True):
        run_import()
    first = HeaderDiff.objects.current().get()
    assert first.status == HeaderDiffStatus.MATCH

    paths[".json"].write_text(json.dumps({**SIDECAR, "EchoTime": 0.005}))
    set_mtime_ns(paths[".json"], paths[".json"].stat().st_mtime_ns + AN_HOUR_NS)
    with django_capture_on_commit_callbacks(execute=True):
        stdout, _ = run_import()

    scan = Scan.objects.get()
    diff = HeaderDiff.objects.current().get()
    assert "1 updated, 0 unchanged" in summary_line(stdout)
    assert scan.sidecar["EchoTime"] == 0.005
    assert scan.sidecar_stat.split(":")[1] == str(paths[".json"].stat().st_mtime_ns)
    assert diff.pk == first.pk
    assert diff.status == HeaderDiffStatus.MISMATCH
    assert diff.deviating_fields == ["EchoTime"]


def test_touched_nifti_read_but_scan_unchanged(archive, django_capture_on_commit_callbacks):
    paths = archive.add_scan(T1_STEM, shape=(2, 2, 2, 5), sidecar=SIDECAR)
    with django_capture_on_commit_callbacks(execute=True):
        run_import()
    before = Scan.objects.get()
    diff_before = HeaderDiff.objects.current().get()
    touched_ns = paths[".nii.gz"].stat().st_mtime_ns + AN_HOUR_NS
    set_mtime_ns(paths[".nii.gz"], touched_ns)

    with django_capture_on_commit_callbacks(execute=True):
        stdout, _ = run_import()

    after = Scan.objects.get()
    assert "0 updated, 1 unchanged" in summary_line(stdout)
    assert "No changes" in stdout
    assert after.nifti_stat.split(":")[1] == str(touched_ns)
    assert after.volumes == 5
    assert after.updated_at == before.updated_at
    assert HeaderDiff.objects.current().get().computed_at == diff_before.computed_at


def test_touched_file_skipped_next_time(archive):
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR)
    run_import()
    set_mtime_ns(paths[".nii.gz"], paths[".nii.gz"].stat().st_mtime_ns + AN_HOUR_NS)
    run_import()
    recorded = Scan.objects.get().nifti_stat

    # Same size, mtime and inode as at the second import, but not a NIfTI file any more.
    rewrite_keeping_stat(paths[".nii.gz"], b"x" * paths[".nii.gz"].stat().st_size)
    _, stderr = run_import()

    assert stderr == ""
    assert Scan.objects.get().nifti_stat == recorded


def test_replaced_nifti_read_again(archive, tmp_path):
    # Uncompressed, so 6 volumes of 2x2x2 and 4 volumes of 2x2x3 give files of one size.
    paths = archive.add_scan(T1_STEM, shape=(2, 2, 2, 6), sidecar=SIDECAR, extension=".nii")
    nifti = paths[".nii"]
    run_import()
    assert Scan.objects.get().volumes == 6
    old = nifti.stat()

    replacement = write_nifti(tmp_path / "replacement.nii", (2, 2, 3, 4))
    assert replacement.stat().st_size == old.st_size
    set_mtime_ns(replacement, old.st_mtime_ns)
    os.replace(replacement, nifti)
    stdout, _ = run_import()

    new = nifti.stat()
    scan = Scan.objects.get()
    assert new.st_ino != old.st_ino
    assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert scan.volumes == 4
    assert scan.nifti_stat == f"{new.st_size}:{new.st_mtime_ns}:{new.st_ino}"
    assert "1 updated, 0 unchanged" in summary_line(stdout)


def test_unreadable_files_read_and_reported_again(archive):
    archive.add_file(TIMEPOINT, f"{T1_STEM}.nii.gz", b"this is not gzip data")
    archive.add_file(TIMEPOINT, f"{T1_STEM}.json", "{not json")
    run_import()

    _, stderr = run_import()

    scan = Scan.objects.get()
    assert scan.nifti_stat == ""
    assert scan.sidecar_stat == ""
    assert "The NIfTI header cannot be read" in stderr
    assert "is not valid JSON" in stderr


def test_nifti_failing_header_checks_is_a_warning(archive):
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR, extension=".nii")
    header = bytearray(paths[".nii"].read_bytes())
    # datatype (bytes 70-71 of a NIfTI-1 header) 999 is no NIfTI data type.
    header[70:72] = (999).to_bytes(2, "little")
    paths[".nii"].write_bytes(bytes(header))

    stdout, stderr = run_import()

    scan = Scan.objects.get()
    assert "1 scan created" in summary_line(stdout)
    assert scan.volumes is None
    assert scan.sidecar == SIDECAR
    assert "The NIfTI header cannot be read (data code 999 not recognized)" in stderr


def test_sidecar_moved_to_blacklisted_read_again(archive):
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR)
    run_import()
    blacklisted = archive.nii_dir(TIMEPOINT) / "blacklisted"
    blacklisted.mkdir()
    for path in paths.values():
        os.replace(path, blacklisted / path.name)

    stdout, _ = run_import()

    scan = Scan.objects.get()
    assert "1 updated" in summary_line(stdout)
    assert scan.sidecar_path == f"data/nii/{TIMEPOINT}/blacklisted/{T1_STEM}.json"
    assert scan.sidecar == SIDECAR
    assert scan.volumes == 1


def test_sessions_announced_in_batches(archive, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(importer, "SESSIONS_PER_ANNOUNCEMENT", 2)
    for subject in ("0001", "0002", "0003"):
        archive.add_scan(f"STUDY_SITE_{subject}_01_01_T1_02_SagT1", sidecar=SIDECAR)
    received = []

    def record(sender, study, created, updated, **kwargs):
        received.append(sorted(str(session) for session in created))

    importer.sessions_imported.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_import()
    finally:
        importer.sessions_imported.disconnect(record)

    assert received == [
        ["STUDY_SITE_0001_01_01", "STUDY_SITE_0002_01_01"],
        ["STUDY_SITE_0003_01_01"],
    ]


def test_timepoint_created_again_after_failure(study_site, archive, monkeypatch):
    original = importer._upsert_scan

    def fail_for_first_session(name, values, existing, new_scans):
        if name.startswith(f"{TIMEPOINT}_01_"):
            raise importer.DatabaseError("simulated failure")
        return original(name, values, existing, new_scans)

    monkeypatch.setattr(importer, "_upsert_scan", fail_for_first_session)
    archive.add_scan(T1_STEM, sidecar=SIDECAR)
    archive.add_scan(f"{TIMEPOINT}_02_T1_02_SagT1", sidecar=SIDECAR)

    result = importer.import_archive(study_site.study)

    # The first session's rollback also removed the timepoint it had created.
    session = Session.objects.select_related("timepoint").get()
    assert session.number == 2
    assert session.timepoint.name == TIMEPOINT
    assert [scan.name for scan in Scan.objects.all()] == [f"{TIMEPOINT}_02_T1_02"]
    assert result.counts["timepoints_created"] == 1
    assert len(result.issues_at(importer.IssueLevel.ERROR)) == 1


def test_timepoint_read_again_after_failure(study_site, archive, monkeypatch):
    paths = archive.add_scan(T1_STEM, sidecar=SIDECAR)
    importer.import_archive(study_site.study)
    timepoint_pk = Session.objects.get().timepoint_id
    paths[".json"].write_text(json.dumps({**SIDECAR, "EchoTime": 0.005}))
    set_mtime_ns(paths[".json"], paths[".json"].stat().st_mtime_ns + AN_HOUR_NS)
    archive.add_scan(f"{TIMEPOINT}_02_T1_02_SagT1", sidecar=SIDECAR)
    original = importer._upsert_scan

    def fail_for_first_session(name, values, existing, new_scans):
        if name.startswith(f"{TIMEPOINT}_01_"):
            raise importer.DatabaseError("simulated failure")
        return original(name, values, existing, new_scans)

    monkeypatch.setattr(importer, "_upsert_scan", fail_for_first_session)
    result = importer.import_archive(study_site.study)

    repeat = Session.objects.get(number=2)
    assert repeat.timepoint_id == timepoint_pk
    assert Scan.objects.get(name=f"{TIMEPOINT}_01_T1_02").sidecar == SIDECAR
    assert result.counts["sessions_created"] == 1
    assert len(result.issues_at(importer.IssueLevel.ERROR)) == 1
