"""load_gold_standards, compute_header_diffs and link_scans through call_command: output, dry
runs, nothing to do, and bad input."""

import json
import os
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from qc.models import GoldStandard, HeaderDiff
from studies.models import Scan
from tests.qc.compliance_factories import (
    GoldStandardFactory,
    HeaderComparisonSettingsFactory,
    make_compliance_site,
)
from tests.studies.archive_builder import ArchiveBuilder
from tests.studies.factories import (
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

REST_JSON = (
    "bids-examples/eyetracking_fmri/sub-01/ses-01/func/sub-01_ses-01_task-rest_run-01_bold.json"
)
DWI_JSON = "bids-examples/dwi_deriv/sub-01/dwi/sub-01_dwi.json"
GOLD_BVAL = (
    "datman/history/tests/fixture_dm-check-bvecs/gold-standards/DTI60-1000/"
    "SPN01_CMH_PHA_FBN0000_DTI60-1000_04_Ax-DTI-60+5-NOASSET.bval"
)
REST_NAME = "SPN01_CMH_0001_01_01_RST_03_Resting.json"
DTI_STEM = "DTI60-1000/SPN01_CMH_PHA_FBN0000_DTI60-1000_04_Ax-DTI-60+5-NOASSET"


@dataclass
class Output:
    stdout: str
    stderr: str


def run(name, *args, **options):
    stdout, stderr = StringIO(), StringIO()
    call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    return Output(stdout.getvalue(), stderr.getvalue())


def run_failing(name, *args, **options):
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError) as error:
        call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    return Output(stdout.getvalue(), stderr.getvalue()), str(error.value)


def last_line(text):
    return text.strip().splitlines()[-1]


@pytest.fixture
def study_site(tmp_path):
    study_site = make_compliance_site()
    study_site.study.archive_path = str(tmp_path)
    study_site.study.save()
    return study_site


@pytest.fixture
def standards(tmp_path, real_fixtures):
    """A standards folder with a real resting-state sidecar and a real DWI sidecar and bval."""
    folder = tmp_path / "metadata" / "standards"
    (folder / "DTI60-1000").mkdir(parents=True)
    (folder / REST_NAME).write_text((real_fixtures / REST_JSON).read_text())
    (folder / f"{DTI_STEM}.json").write_text((real_fixtures / DWI_JSON).read_text())
    (folder / f"{DTI_STEM}.bval").write_text((real_fixtures / GOLD_BVAL).read_text())
    (folder / f"{DTI_STEM}.bvec").write_text("0 0\n")
    return folder


# load_gold_standards


def test_load_creates_standards(study_site, standards, real_fixtures):
    output = run("load_gold_standards", "SPINS")

    assert output.stdout.splitlines() == [
        f"created metadata/standards/{DTI_STEM}.json (CMH DTI60-1000)",
        f"created metadata/standards/{REST_NAME} (CMH RST)",
        "Gold standards of SPINS: 2 created, 0 replaced by a new version, 0 unchanged, 0 skipped",
        "Run compute_header_diffs SPINS to compare the scans with the new standards.",
    ]
    assert output.stderr == ""
    rest = GoldStandard.objects.get(scantype__tag="RST")
    assert rest.sidecar == json.loads((real_fixtures / REST_JSON).read_text())
    assert rest.bvals is None
    assert rest.converter_version == "dcm2niix - v1.0.20200427"
    dti = GoldStandard.objects.get(scantype__tag="DTI60-1000")
    assert len(dti.bvals) == 65
    assert dti.site == study_site.site


def test_load_twice_changes_nothing(study_site, standards):
    run("load_gold_standards", "SPINS")

    output = run("load_gold_standards", "SPINS")

    assert last_line(output.stdout) == (
        "Gold standards of SPINS: 0 created, 0 replaced by a new version, 2 unchanged, 0 skipped"
    )
    assert "compute_header_diffs" not in output.stdout
    assert GoldStandard.objects.count() == 2


def test_load_changed_contents_adds_version(study_site, standards):
    run("load_gold_standards", "SPINS")
    sidecar = json.loads((standards / REST_NAME).read_text())
    original_echo_time = sidecar["EchoTime"]
    sidecar["EchoTime"] = 0.04
    (standards / REST_NAME).write_text(json.dumps(sidecar))

    output = run("load_gold_standards", "SPINS")

    assert (
        f"new version metadata/standards/{REST_NAME} (CMH RST); the previous one is kept"
        in output.stdout
    )
    assert "1 replaced by a new version, 1 unchanged" in output.stdout
    versions = GoldStandard.objects.filter(scantype__tag="RST").newest_first()
    assert [standard.sidecar["EchoTime"] for standard in versions] == [0.04, original_echo_time]


def test_load_dry_run(study_site, standards):
    output = run("load_gold_standards", "SPINS", dry_run=True)

    assert "Dry run of the gold standards of SPINS: 2 created" in output.stdout
    assert last_line(output.stdout) == "Dry run: every change was rolled back; nothing was saved."
    assert GoldStandard.objects.count() == 0


def test_load_skips_bad_files(study_site, standards):
    (standards / "notes.json").write_text("{}")
    (standards / "SPN01_CMH_0001_01_01_T1_02_SagT1.json").write_text("{not json")
    (standards / "XYZ01_UTO_0001_01_01_T1_02_SagT1.json").write_text("{}")
    (standards / "SPN01_CMH_0001_01_01_NOPE_02_x.json").write_text("{}")
    (standards / "SPN01_CMH_0001_01_01_RST_09_Lonely.bval").write_text("0 1000")

    output, message = run_failing("load_gold_standards", "SPINS")

    lines = output.stderr.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith(
        "SKIPPED metadata/standards/SPN01_CMH_0001_01_01_NOPE_02_x.json: tag NOPE is not a "
        "known scan tag"
    )
    assert lines[1].startswith(
        "SKIPPED metadata/standards/SPN01_CMH_0001_01_01_RST_09_Lonely.bval: a .bval file "
        "without a .json sidecar"
    )
    assert lines[2].startswith(
        "SKIPPED metadata/standards/SPN01_CMH_0001_01_01_T1_02_SagT1.json: "
        "metadata/standards/SPN01_CMH_0001_01_01_T1_02_SagT1.json is not valid JSON"
    )
    assert lines[3].startswith("SKIPPED metadata/standards/XYZ01_UTO_0001_01_01_T1_02_SagT1.json")
    assert "study code XYZ01 and site UTO match no site of study SPINS" in lines[3]
    assert lines[4].startswith("SKIPPED metadata/standards/notes.json: Invalid scan file name")
    assert "2 created, 0 replaced by a new version, 0 unchanged, 5 skipped" in output.stdout
    assert "5 file(s)" in message
    assert "Fix or remove them and run load_gold_standards again." in message
    assert GoldStandard.objects.count() == 2


def test_load_invalid_bval_skips_standard(study_site, standards):
    (standards / f"{DTI_STEM}.bval").write_text("0 1000 lots\n")

    output, _ = run_failing("load_gold_standards", "SPINS")

    assert "value 3 ('lots') is not a number" in output.stderr
    assert not GoldStandard.objects.filter(scantype__tag="DTI60-1000").exists()


def test_load_warns_for_unexpected_tag_and_missing_bval(study_site, standards):
    ScantypeFactory(tag="FLAIR")
    (standards / "SPN01_CMH_0001_01_01_FLAIR_05_Ax-FLAIR.json").write_text('{"EchoTime": 0.1}')
    (standards / f"{DTI_STEM}.bval").unlink()

    output = run("load_gold_standards", "SPINS")

    assert "WARNING metadata/standards/SPN01_CMH_0001_01_01_FLAIR_05_Ax-FLAIR.json: tag FLAIR" in (
        output.stderr
    )
    assert "no .bval file beside it" in output.stderr
    assert "3 created" in output.stdout
    assert GoldStandard.objects.get(scantype__tag="DTI60-1000").bvals is None


def test_load_several_files_for_one_tag(study_site, standards):
    older = standards / "SPN01_CMH_0002_01_01_RST_04_Resting.json"
    older.write_text('{"EchoTime": 0.99}')
    os.utime(older, (1_000_000_000, 1_000_000_000))

    output = run("load_gold_standards", "SPINS")

    assert "several standards for RST at site CMH" in output.stderr
    assert "SPN01_CMH_0002_01_01_RST_04_Resting.json ignored" in output.stderr
    assert GoldStandard.objects.get(scantype__tag="RST").source_path.endswith(REST_NAME)


def test_load_path_option(study_site, tmp_path_factory, real_fixtures):
    # A folder outside the study archive is named by its absolute path.
    folder = tmp_path_factory.mktemp("elsewhere")
    (folder / REST_NAME).write_text((real_fixtures / REST_JSON).read_text())

    output = run("load_gold_standards", "spins", path=folder)

    assert f"created {folder / REST_NAME} (CMH RST)" in output.stdout


def test_load_folder_missing(study_site, tmp_path):
    _, message = run_failing("load_gold_standards", "SPINS")

    assert f"Gold standard folder {tmp_path / 'metadata' / 'standards'}" in message
    assert "not found" in message
    assert "--path" in message


def test_load_unknown_study(study_site):
    _, message = run_failing("load_gold_standards", "NOPE")

    assert "Study 'NOPE' not found (known studies: SPINS)" in message


# compute_header_diffs


@pytest.fixture
def compared_study(study_site):
    """Two sessions (a visit and its repeat) of a T1 scan; the repeat's EchoTime differs."""
    GoldStandardFactory(
        study=study_site.study,
        site=study_site.site,
        scantype=ScantypeFactory(tag="T1"),
        sidecar={"EchoTime": 0.003},
    )
    timepoint = TimepointFactory(study_site=study_site)
    for number, echo_time in ((1, 0.003), (2, 0.004)):
        ScanFactory(
            session=SessionFactory(timepoint=timepoint, number=number),
            scantype=ScantypeFactory(tag="T1"),
            sidecar={"EchoTime": echo_time},
        )
    return study_site


def test_compute_output(compared_study):
    output = run("compute_header_diffs", "SPINS")

    lines = output.stdout.splitlines()
    assert lines[0] == "Sessions: 0/2 sessions (0%)"
    assert lines[-2] == "Sessions: 2/2 sessions (100%)"
    assert lines[-1] == (
        "Header diffs of SPINS: 2 sessions, 2 computed (1 match, 1 mismatch, "
        "0 no gold standard, 0 error), 0 up to date, 0 warnings"
    )
    assert HeaderDiff.objects.count() == 2


def test_compute_nothing_to_do(compared_study):
    run("compute_header_diffs", "SPINS")

    output = run("compute_header_diffs", "SPINS")

    assert last_line(output.stdout) == (
        "Header diffs of SPINS: 2 sessions, 0 computed (0 match, 0 mismatch, "
        "0 no gold standard, 0 error), 2 up to date, 0 warnings"
    )


def test_compute_force(compared_study):
    run("compute_header_diffs", "SPINS")

    output = run("compute_header_diffs", "SPINS", force=True)

    assert "2 computed" in last_line(output.stdout)


def test_compute_one_repeat_session(compared_study):
    repeat = Scan.objects.get(session__number=2).session

    output = run("compute_header_diffs", "SPINS", repeat.name)

    assert "1 sessions, 1 computed (0 match, 1 mismatch" in last_line(output.stdout)
    assert HeaderDiff.objects.get().scan.session == repeat


def test_compute_dry_run(compared_study):
    output = run("compute_header_diffs", "SPINS", dry_run=True)

    assert "Dry run of the header diffs of SPINS: 2 sessions, 2 computed" in output.stdout
    assert last_line(output.stdout) == "Dry run: every change was rolled back; nothing was saved."
    assert HeaderDiff.objects.count() == 0


def test_compute_warns_once(compared_study):
    HeaderComparisonSettingsFactory(
        study=compared_study.study, tolerances={"EchoTime": 0.01, "SeriesDescription": 1}
    )
    GoldStandard.objects.update(sidecar={"EchoTime": 0.003, "SeriesDescription": "Sag T1"})

    output = run("compute_header_diffs", "SPINS")

    warnings = output.stderr.splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith("WARNING HeaderFieldTolerance sets 1 for SeriesDescription")
    assert last_line(output.stdout).endswith(", 1 warnings")


def test_compute_no_sessions(study_site):
    output = run("compute_header_diffs", "SPINS")

    assert last_line(output.stdout).startswith("Header diffs of SPINS: 0 sessions, 0 computed")


@pytest.mark.parametrize(
    ("session_id", "message"),
    [
        ("SPN01_CMH_9999_01_01", "Session SPN01_CMH_9999_01_01 not found in study SPINS"),
        ("SPN01_CMH_9999_01", "is a timepoint ID, but a session ID is needed"),
        ("garbage", "Invalid ID 'garbage'"),
    ],
)
def test_compute_bad_session_id(compared_study, session_id, message):
    _, error = run_failing("compute_header_diffs", "SPINS", session_id)

    assert message in error
    assert HeaderDiff.objects.count() == 0


def test_compute_unknown_study():
    _, message = run_failing("compute_header_diffs", "NOPE")

    assert "Study 'NOPE' not found" in message


# link_scans


@pytest.fixture
def linkable(study_site):
    """A T1 and an RST scan in SPINS, and a second study TAY whose CMH site expects T1."""
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    session = SessionFactory(timepoint=timepoint)
    ScanFactory(session=session, scantype=ScantypeFactory(tag="T1"), series=2)
    ScanFactory(session=session, scantype=ScantypeFactory(tag="RST"), series=3)
    target = StudySiteFactory(
        study=StudyFactory(nickname="TAY"), site=SiteFactory(name="CMH"), code="TAY01"
    )
    ExpectedScanFactory(study_site=target, scantype=ScantypeFactory(tag="T1"))
    return session


def test_link_one_scan(linkable):
    output = run("link_scans", "SPN01_CMH_0001_01_01_T1_02", "TAY01_CMH_0001_01_01")

    assert output.stdout.splitlines() == [
        "linked SPN01_CMH_0001_01_01_T1_02 → TAY01_CMH_0001_01_01_T1_02",
        "Linked scans: 1 created, 0 already linked, 0 failed",
    ]
    assert Scan.objects.get(name="TAY01_CMH_0001_01_01_T1_02").source.name == (
        "SPN01_CMH_0001_01_01_T1_02"
    )


def test_link_by_file_name_twice(linkable):
    run("link_scans", "SPN01_CMH_0001_01_01_T1_02_SagT1Bravo.nii.gz", "TAY01_CMH_0001_01_01")

    output = run("link_scans", "SPN01_CMH_0001_01_01_T1_02", "TAY01_CMH_0001_01_01")

    assert output.stdout.splitlines()[0] == (
        "already linked SPN01_CMH_0001_01_01_T1_02 → TAY01_CMH_0001_01_01_T1_02"
    )
    assert Scan.objects.filter(source__isnull=False).count() == 1


def test_link_dry_run(linkable):
    output = run("link_scans", "SPN01_CMH_0001_01_01_T1_02", "TAY01_CMH_0001_01_01", dry_run=True)

    assert "Dry run: would have made 1 created" in output.stdout
    assert Scan.objects.filter(source__isnull=False).count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("SPN01_CMH_0001_01_01_T1_09", "TAY01_CMH_0001_01_01"),
            "Scan SPN01_CMH_0001_01_01_T1_09 not found",
        ),
        (("not-a-scan", "TAY01_CMH_0001_01_01"), "'not-a-scan' is neither a scan name"),
        (
            ("SPN01_CMH_0001_01_01_T1_02", "TAY01_CMH_0001_01"),
            "Target session: 'TAY01_CMH_0001_01' is a timepoint ID",
        ),
        (
            ("SPN01_CMH_0001_01_01_RST_03", "TAY01_CMH_0001_01_01"),
            "Tag RST is not expected at TAY at CMH",
        ),
        (("SPN01_CMH_0001_01_01_T1_02",), "Give SOURCE_SCAN and TARGET_SESSION"),
        ((), "Give SOURCE_SCAN and TARGET_SESSION"),
    ],
)
def test_link_bad_input(linkable, args, message):
    _, error = run_failing("link_scans", *args)

    assert message in error
    assert Scan.objects.filter(source__isnull=False).count() == 0


def test_link_from_file(linkable, tmp_path):
    link_file = tmp_path / "external-links.csv"
    link_file.write_text(
        "subject\ttarget_subject\ttags\n"
        "SPN01_CMH_0001_01_01\tTAY01_CMH_0001_01_01\n"
        "SPN01_CMH_0001_01_01\tTAY01_CMH_0002_01_01\tT1,RST\n"
        "SPN01_CMH_0404_01_01\tTAY01_CMH_0003_01_01\n"
        "broken line with too many fields\n"
    )

    output, message = run_failing("link_scans", from_file=str(link_file))

    assert output.stdout.splitlines() == [
        "linked SPN01_CMH_0001_01_01_T1_02 → TAY01_CMH_0001_01_01_T1_02",
        "linked SPN01_CMH_0001_01_01_T1_02 → TAY01_CMH_0002_01_01_T1_02",
        "Linked scans: 2 created, 0 already linked, 3 failed",
    ]
    errors = output.stderr.splitlines()
    assert errors[0].startswith(f"SKIPPED {link_file}, line 5: expected 'SOURCE_SESSION")
    assert errors[1].startswith("FAILED SPN01_CMH_0001_01_01_RST_03: Tag RST is not expected")
    assert errors[2] == (
        f"SKIPPED {link_file}, line 4: Source session SPN01_CMH_0404_01_01 not found. Check "
        f"the ID, or import its study's archive first."
    )
    assert "3 link(s) failed" in message


def test_link_from_file_and_scan_together(linkable, tmp_path):
    _, message = run_failing(
        "link_scans", "SPN01_CMH_0001_01_01_T1_02", from_file=str(tmp_path / "x.csv")
    )

    assert "not both" in message


def test_link_from_missing_file(linkable, tmp_path):
    _, message = run_failing("link_scans", from_file=str(tmp_path / "x.csv"))

    assert f"Link file {tmp_path / 'x.csv'} not found" in message


# The whole path: standards loaded, archive imported, diffs computed by the import signal


TRUNCATED_BVAL = (
    "datman/history/tests/fixture_dm-check-bvecs/data/nii/SPN01_CMH_PHA_FBN0000/"
    "SPN01_CMH_PHA_FBN0000_DTI60-1000_04_Ax-DTI-60+5-NOASSET-incomplete.bval"
)


def test_import_computes_diffs_against_loaded_standards(
    study_site, standards, tmp_path, real_fixtures, django_capture_on_commit_callbacks
):
    builder = ArchiveBuilder(tmp_path)
    dwi = real_fixtures / DWI_JSON
    builder.add_scan(
        "SPN01_CMH_0001_01_01_DTI60-1000_05_Ax-DTI", sidecar=dwi, bval=real_fixtures / GOLD_BVAL
    )
    builder.add_scan(
        "SPN01_CMH_0001_01_02_DTI60-1000_05_Ax-DTI",
        sidecar=dwi,
        bval=real_fixtures / TRUNCATED_BVAL,
    )
    builder.add_scan("SPN01_CMH_0001_01_02_T1_02_Sag-T1", sidecar={"EchoTime": 0.003})
    run("load_gold_standards", "SPINS")

    with django_capture_on_commit_callbacks(execute=True):
        run("import_archive", "SPINS")

    diffs = {diff.scan.name: diff for diff in HeaderDiff.objects.current().select_related("scan")}
    first = diffs["SPN01_CMH_0001_01_01_DTI60-1000_05"]
    repeat = diffs["SPN01_CMH_0001_01_02_DTI60-1000_05"]
    assert first.status == "match"
    assert first.diff["bval"]["match"] is True
    assert repeat.status == "mismatch"
    assert repeat.deviating_fields == [".bval"]
    assert diffs["SPN01_CMH_0001_01_02_T1_02"].status == "no_gold_standard"
