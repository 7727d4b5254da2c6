"""import_archive: rows from an archive built from real sidecars and manifests, re-runs, and
every kind of bad input."""

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from studies import importer
from studies.models import Scan, Session, Timepoint
from tests.studies.archive_builder import ArchiveBuilder
from tests.studies.factories import (
    AltStudyCodeFactory,
    ExpectedScanFactory,
    ScantypeFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db

TAGS = {"T1": "anat", "RST": "fmri", "DTI60-1000": "dti", "FMAP": "ignore"}

T1_JSON = "bids-examples/eyetracking_fmri/sub-01/ses-01/anat/sub-01_ses-01_T1w.json"
REST_JSON = (
    "bids-examples/eyetracking_fmri/sub-01/ses-01/func/sub-01_ses-01_task-rest_run-01_bold.json"
)
DWI = "bids-examples/dwi_deriv/sub-01/dwi/sub-01_dwi"
PHASEDIFF_JSON = "bids-examples/7t_trt/sub-01/ses-1/fmap/sub-01_ses-1_run-1_phasediff.json"
BOLD_2010_JSON = "dcm2bids/tests/data/sidecars/002_ep2d_bold_20100603125600.json"
DTI_2010_JSON = "dcm2bids/tests/data/sidecars/004_DTI_20100603125600.json"
PHANTOM_T1_JSON = "bids-examples/2d_mb_pcasl/sub-1/anat/sub-1_T1w.json"
MANIFESTS = "datman-dashboard/tests/fixtures/test_datman_utils/STUDY_SITE_0001_01"

TIMEPOINT = "STUDY_SITE_0001_01"
T1_STEM = "STUDY_SITE_0001_01_01_T1_02_SagT1Bravo"
REST_STEM = "STUDY_SITE_0001_01_01_RST_03_Resting"
DTI_STEM = "STUDY_SITE_0001_01_01_DTI60-1000_05_Ax-DTI-60plus5"
FMAP_STEM = "STUDY_SITE_0001_01_01_FMAP_06_fieldmap"
BOLD_ERR_STEM = "STUDY_SITE_0001_01_01_RST_07_ep2d-bold-task-rest"
REPEAT_DTI_STEM = "STUDY_SITE_0001_01_02_DTI60-1000_04_Ax-DTI-60plus5"
PHANTOM = "STUDY_SITE_PHA_FBN0001"
PHANTOM_STEM = "STUDY_SITE_PHA_FBN0001_T1_02_SagT1"
CONVERSION_ERROR = "Warning: Missing images? Expected 36 images, but instance number is 35"

SIMPLE_SIDECAR = {"SeriesNumber": 2, "SeriesDescription": "Sag T1", "EchoTime": 0.003}


@dataclass
class CommandOutput:
    stdout: str
    stderr: str
    error: CommandError | None


def run_import(*args):
    stdout, stderr = StringIO(), StringIO()
    try:
        call_command("import_archive", *args, stdout=stdout, stderr=stderr)
    except CommandError as error:
        return CommandOutput(stdout.getvalue(), stderr.getvalue(), error)
    return CommandOutput(stdout.getvalue(), stderr.getvalue(), None)


def summary_line(output):
    lines = [line for line in output.stdout.splitlines() if line.startswith(("Imported", "Dry"))]
    assert lines, output.stdout
    return lines[0]


@pytest.fixture
def study(tmp_path):
    study = StudyFactory(nickname="STUDY", archive_path=str(tmp_path / "STUDY"))
    study_site = StudySiteFactory(study=study, site=SiteFactory(name="SITE"), code="STUDY")
    for tag, qc_type in TAGS.items():
        ExpectedScanFactory(
            study_site=study_site,
            scantype=ScantypeFactory(tag=tag, qc_type=qc_type),
            count=1,
            phantom_count=1,
        )
    return study


@pytest.fixture
def archive(study):
    return ArchiveBuilder(study.archive_root)


@pytest.fixture
def real_archive(archive, real_fixtures):
    """Two sessions of one timepoint and a phantom, with real sidecars and manifests."""
    archive.add_scan(T1_STEM, sidecar=real_fixtures / T1_JSON)
    archive.add_scan(REST_STEM, shape=(2, 2, 2, 5), sidecar=real_fixtures / REST_JSON)
    archive.add_scan(
        DTI_STEM,
        shape=(2, 2, 2, 38),
        sidecar=real_fixtures / f"{DWI}.json",
        bval=real_fixtures / f"{DWI}.bval",
        bvec=real_fixtures / f"{DWI}.bvec",
    )
    archive.add_scan(FMAP_STEM, sidecar=real_fixtures / PHASEDIFF_JSON)
    archive.add_scan(
        BOLD_ERR_STEM,
        shape=(2, 2, 2, 3),
        sidecar=real_fixtures / BOLD_2010_JSON,
        err=CONVERSION_ERROR + "\n",
    )
    archive.add_scan(REPEAT_DTI_STEM, shape=(2, 2, 2, 7), sidecar=real_fixtures / DTI_2010_JSON)
    archive.add_scan(PHANTOM_STEM, sidecar=real_fixtures / PHANTOM_T1_JSON)
    for manifest in sorted((real_fixtures / MANIFESTS).glob("*_manifest.json")):
        archive.add_manifest(manifest)
    return archive


def real_json(real_fixtures, relative):
    return json.loads((real_fixtures / relative).read_text(encoding="utf-8"))


def qc_file(name):
    return f"qc/{TIMEPOINT}/{name}"


# --- The archive built from real files ------------------------------------------------------


def test_real_archive_summary(real_archive):
    output = run_import("STUDY")

    assert output.error is None, output.stderr
    assert output.stderr == ""
    assert summary_line(output) == (
        "Imported STUDY: 2 timepoints, 3 sessions, 7 scans created, 0 updated, 0 unchanged, "
        "0 skipped"
    )


def test_real_archive_timepoints_and_sessions(real_archive, study):
    run_import("STUDY")

    timepoint = Timepoint.objects.get(name=TIMEPOINT)
    assert timepoint.study == study
    assert timepoint.study_site.site.name == "SITE"
    assert timepoint.is_phantom is False
    assert timepoint.bids_name == "SITE0001"
    assert timepoint.bids_session == "01"
    assert list(timepoint.sessions.values_list("number", flat=True)) == [1, 2]

    phantom = Timepoint.objects.get(name=PHANTOM)
    assert phantom.is_phantom is True
    assert phantom.bids_name == ""
    assert phantom.bids_session == ""
    assert list(phantom.sessions.values_list("number", flat=True)) == [1]


def test_real_archive_scan_fields(real_archive):
    run_import("STUDY")

    expected = {
        "STUDY_SITE_0001_01_01_T1_02": (1, "T1", 2, "SagT1Bravo", T1_STEM, 1),
        "STUDY_SITE_0001_01_01_RST_03": (1, "RST", 3, "Resting", REST_STEM, 5),
        "STUDY_SITE_0001_01_01_DTI60-1000_05": (1, "DTI60-1000", 5, "Ax-DTI-60plus5", DTI_STEM, 38),
        "STUDY_SITE_0001_01_01_FMAP_06": (1, "FMAP", 6, "fieldmap", FMAP_STEM, 1),
        "STUDY_SITE_0001_01_01_RST_07": (1, "RST", 7, "ep2d-bold-task-rest", BOLD_ERR_STEM, 3),
        "STUDY_SITE_0001_01_02_DTI60-1000_04": (
            2,
            "DTI60-1000",
            4,
            "Ax-DTI-60plus5",
            REPEAT_DTI_STEM,
            7,
        ),
        "STUDY_SITE_PHA_FBN0001_T1_02": (1, "T1", 2, "SagT1", PHANTOM_STEM, 1),
    }
    scans = {scan.name: scan for scan in Scan.objects.select_related("session", "scantype")}
    assert set(scans) == set(expected)
    for name, (session, tag, series, description, stem, volumes) in expected.items():
        scan = scans[name]
        folder = PHANTOM if name.startswith(PHANTOM) else TIMEPOINT
        assert scan.session.number == session, name
        assert scan.scantype.tag == tag, name
        assert scan.series == series, name
        assert scan.description == description, name
        assert scan.file_stem == stem, name
        assert scan.nifti_path == f"data/nii/{folder}/{stem}.nii.gz", name
        assert scan.sidecar_path == f"data/nii/{folder}/{stem}.json", name
        assert scan.volumes == volumes, name
        assert scan.sidecar_error == "", name
        assert scan.manifest_error == "", name


def test_real_sidecars_stored_whole(real_archive, real_fixtures):
    run_import("STUDY")

    sources = {
        T1_STEM: T1_JSON,
        REST_STEM: REST_JSON,
        DTI_STEM: f"{DWI}.json",
        FMAP_STEM: PHASEDIFF_JSON,
        BOLD_ERR_STEM: BOLD_2010_JSON,
        REPEAT_DTI_STEM: DTI_2010_JSON,
        PHANTOM_STEM: PHANTOM_T1_JSON,
    }
    for stem, source in sources.items():
        scan = Scan.objects.get(file_stem=stem)
        sidecar_file = real_archive.root / scan.sidecar_path
        modified_at = datetime.fromtimestamp(sidecar_file.stat().st_mtime, tz=UTC)
        assert scan.sidecar == real_json(real_fixtures, source), stem
        assert scan.sidecar_modified_at == modified_at, stem


def test_sidecar_without_series_number_imported(real_archive, real_fixtures):
    output = run_import("STUDY")

    scan = Scan.objects.get(file_stem=FMAP_STEM)
    assert "SeriesNumber" not in real_json(real_fixtures, PHASEDIFF_JSON)
    assert scan.series == 6
    assert scan.sidecar == {
        "EchoTime2": 0.00702,
        "EchoTime1": 0.006,
        "IntendedFor": (
            "bids::sub-01/ses-1/func/sub-01_ses-1_task-rest_acq-fullbrain_run-1_bold.nii.gz"
        ),
    }
    assert FMAP_STEM not in output.stderr


def test_conversion_error_imported(real_archive):
    run_import("STUDY")

    assert Scan.objects.get(file_stem=BOLD_ERR_STEM).conversion_errors == CONVERSION_ERROR
    assert Scan.objects.get(file_stem=T1_STEM).conversion_errors == ""


def test_real_manifests_attach_to_their_session(real_archive):
    run_import("STUDY")

    first_session_dti = Scan.objects.get(name="STUDY_SITE_0001_01_01_DTI60-1000_05")
    repeat_dti = Scan.objects.get(name="STUDY_SITE_0001_01_02_DTI60-1000_04")
    t1 = Scan.objects.get(name="STUDY_SITE_0001_01_01_T1_02")
    assert t1.qc_images == [
        {"file": qc_file(f"{T1_STEM}.png"), "title": None, "caption": None},
    ]
    assert first_session_dti.qc_images == [
        {"file": qc_file(f"{DTI_STEM}_montage.png"), "title": None, "caption": None},
        {"file": qc_file(f"{DTI_STEM}_b0.png"), "title": "b0 Montage", "caption": None},
        {
            "file": qc_file(f"{DTI_STEM}_directions.png"),
            "title": "bvec Directions",
            "caption": None,
        },
    ]
    assert repeat_dti.qc_images == [
        {"file": qc_file(f"{REPEAT_DTI_STEM}_montage.png"), "title": None, "caption": None},
        {"file": qc_file(f"{REPEAT_DTI_STEM}_b0.png"), "title": "b0 Montage", "caption": None},
        {
            "file": qc_file(f"{REPEAT_DTI_STEM}_directions.png"),
            "title": "bvec Directions",
            "caption": None,
        },
    ]
    assert Scan.objects.get(file_stem=REST_STEM).qc_images == []


def test_second_import_changes_nothing(real_archive):
    run_import("STUDY")

    with CaptureQueriesContext(connection) as queries:
        output = run_import("STUDY")

    writes = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert output.error is None, output.stderr
    assert summary_line(output) == (
        "Imported STUDY: 0 timepoints, 0 sessions, 0 scans created, 0 updated, 7 unchanged, "
        "0 skipped"
    )
    assert "No changes" in output.stdout
    assert writes == []


def test_changed_sidecar_updates_only_its_scan(real_archive, real_fixtures):
    run_import("STUDY")
    t1 = Scan.objects.get(file_stem=T1_STEM)
    rest_updated_at = Scan.objects.get(file_stem=REST_STEM).updated_at
    sidecar_file = real_archive.root / t1.sidecar_path
    contents = real_json(real_fixtures, T1_JSON)
    contents["RepetitionTime"] = 2.4
    sidecar_file.write_text(json.dumps(contents), encoding="utf-8")
    modified = sidecar_file.stat().st_mtime + 60
    os.utime(sidecar_file, (modified, modified))

    with CaptureQueriesContext(connection) as queries:
        output = run_import("STUDY")

    updates = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("UPDATE")
    ]
    t1.refresh_from_db()
    assert "0 scans created, 1 updated, 6 unchanged" in summary_line(output)
    assert t1.sidecar["RepetitionTime"] == 2.4
    assert t1.sidecar_modified_at == datetime.fromtimestamp(modified, tz=UTC)
    assert len(updates) == 1
    assert "sidecar" in updates[0]
    assert "nifti_path" not in updates[0]
    assert "conversion_errors" not in updates[0]
    assert Scan.objects.get(file_stem=REST_STEM).updated_at == rest_updated_at


def test_removed_err_file_clears_error(real_archive):
    run_import("STUDY")
    (real_archive.nii_dir(TIMEPOINT) / f"{BOLD_ERR_STEM}.err").unlink()

    output = run_import("STUDY")

    assert Scan.objects.get(file_stem=BOLD_ERR_STEM).conversion_errors == ""
    assert "1 updated, 6 unchanged" in summary_line(output)


def test_sidecar_with_null_image_type_imported(archive, real_fixtures):
    contents = real_json(real_fixtures, T1_JSON)
    contents["ImageType"] = None
    archive.add_scan(T1_STEM, sidecar=contents)

    output = run_import("STUDY")

    scan = Scan.objects.get(file_stem=T1_STEM)
    assert output.error is None, output.stderr
    assert output.stderr == ""
    assert scan.sidecar["ImageType"] is None
    assert scan.sidecar["SeriesNumber"] == 37


def test_progress_printed_for_timepoint_folders(real_archive):
    output = run_import("STUDY")

    assert "Timepoint folders: 0/2 folders (0%)" in output.stdout
    assert "Timepoint folders: 2/2 folders (100%)" in output.stdout


# --- Bad input -------------------------------------------------------------------------------


def test_folder_not_datman_id_skipped(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    stray = archive.add_file("scans_from_tuesday", "notes.txt", "to sort")

    output = run_import("STUDY")

    assert output.error is not None
    assert f"SKIPPED {stray.parent}: The folder name is not a timepoint or phantom ID" in (
        output.stderr
    )
    assert "rename the folder" in output.stderr
    assert "1 scan created" in summary_line(output)
    assert "1 skipped" in summary_line(output)


def test_series_not_a_number_skipped(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    bad = archive.add_scan("STUDY_SITE_0001_01_01_T1_2-MR1_SagT1", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is not None
    for path in bad.values():
        assert f"SKIPPED {path}: " in output.stderr
    assert "series '2-MR1' is not a number" in output.stderr
    assert "must be the DICOM series number" in output.stderr
    assert list(Scan.objects.values_list("name", flat=True)) == ["STUDY_SITE_0001_01_01_T1_02"]
    assert "2 skipped" in summary_line(output)


def test_invalid_json_sidecar_is_a_warning(archive):
    text = '{\n  "SeriesNumber": 2,\n  "EchoTime": 0.003,,\n}'
    paths = archive.add_scan(T1_STEM, sidecar=text)

    output = run_import("STUDY")

    scan = Scan.objects.get(file_stem=T1_STEM)
    assert output.error is None
    assert scan.sidecar is None
    assert scan.sidecar_error == (
        f"data/nii/{TIMEPOINT}/{T1_STEM}.json is not valid JSON: Expecting property name "
        f"enclosed in double quotes at line 3, column 21."
    )
    assert f"WARNING {paths['.json']}: " in output.stderr
    assert "so it can still be reviewed" in output.stderr
    assert "1 warning" in summary_line(output)


def test_sidecar_with_nan_is_a_warning(archive):
    archive.add_scan(T1_STEM, sidecar='{"SeriesNumber": 2, "EchoTime": NaN}')

    output = run_import("STUDY")

    scan = Scan.objects.get(file_stem=T1_STEM)
    assert output.error is None
    assert scan.sidecar is None
    assert "contains the value NaN" in scan.sidecar_error


def test_sidecar_with_nul_is_a_warning(archive):
    archive.add_scan(T1_STEM, sidecar='{"SeriesNumber": 2, "SeriesDescription": "T1\\u0000"}')

    output = run_import("STUDY")

    scan = Scan.objects.get(file_stem=T1_STEM)
    assert output.error is None
    assert scan.sidecar is None
    assert "contains a NUL character" in scan.sidecar_error


def test_sidecar_not_an_object_is_a_warning(archive):
    archive.add_scan(T1_STEM, sidecar="[1, 2, 3]")

    run_import("STUDY")

    scan = Scan.objects.get(file_stem=T1_STEM)
    assert scan.sidecar is None
    assert "holds a JSON list, not an object" in scan.sidecar_error


def test_invalid_sidecar_fixed_later_is_stored(archive):
    paths = archive.add_scan(T1_STEM, sidecar="{broken")
    run_import("STUDY")
    paths[".json"].write_text(json.dumps(SIMPLE_SIDECAR), encoding="utf-8")

    output = run_import("STUDY")

    scan = Scan.objects.get(file_stem=T1_STEM)
    assert scan.sidecar == SIMPLE_SIDECAR
    assert scan.sidecar_error == ""
    assert "1 updated" in summary_line(output)


def test_unexpected_tag_skipped_with_fix(archive, study):
    other_site = StudySiteFactory(site=SiteFactory(name="ELSE"), code="ELSE01")
    ExpectedScanFactory(study_site=other_site, scantype=ScantypeFactory(tag="T2"))
    t2 = archive.add_scan("STUDY_SITE_0001_01_01_T2_04_AxT2", sidecar=SIMPLE_SIDECAR)
    flair = archive.add_scan("STUDY_SITE_0001_01_01_FLAIR_05_AxFLAIR", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is not None
    assert not Scan.objects.exists()
    assert f"SKIPPED {t2['.nii.gz']}: Tag T2 is not expected at study site STUDY at SITE" in (
        output.stderr
    )
    assert "so this scan and its 1 other file were skipped" in output.stderr
    fix = "Add T2 to ExportInfo of site SITE in the study's datman config, then run sync_config"
    assert fix in output.stderr
    assert f"SKIPPED {flair['.nii.gz']}: Tag FLAIR" in output.stderr
    assert "define FLAIR in ExportSettings of the main config" in output.stderr
    assert "define T2 in ExportSettings" not in output.stderr
    assert Session.objects.get().name == "STUDY_SITE_0001_01_01"


def test_timepoint_id_as_session_argument(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)

    with pytest.raises(CommandError) as raised:
        call_command("import_archive", "STUDY", TIMEPOINT, stdout=StringIO(), stderr=StringIO())

    assert "is a timepoint ID" in str(raised.value)
    assert f"{TIMEPOINT}_01" in str(raised.value)
    assert not Scan.objects.exists()


def test_session_argument_of_other_study_site(archive):
    with pytest.raises(CommandError) as raised:
        call_command(
            "import_archive", "STUDY", "OTHER_SITE_0001_01_01", stdout=StringIO(), stderr=StringIO()
        )

    assert "Session OTHER_SITE_0001_01_01: study code OTHER and site SITE match no study site" in (
        str(raised.value)
    )


def test_lower_case_folder_imported_upper_case(archive, study):
    study_site = StudySiteFactory(study=study, site=SiteFactory(name="CMH"), code="SPN01")
    ExpectedScanFactory(study_site=study_site, scantype=ScantypeFactory(tag="T1"))
    stem = "spn01_cmh_0001_01_01_T1_02_SagT1"
    archive.add_scan(stem, sidecar=SIMPLE_SIDECAR)
    folder = archive.nii_dir("spn01_cmh_0001_01")

    output = run_import("STUDY")

    scan = Scan.objects.select_related("session__timepoint").get()
    assert output.error is None, output.stderr
    assert scan.name == "SPN01_CMH_0001_01_01_T1_02"
    assert scan.session.timepoint.name == "SPN01_CMH_0001_01"
    assert scan.session.timepoint.study_site == study_site
    assert scan.session.timepoint.bids_name == "CMH0001"
    assert scan.file_stem == stem
    assert scan.nifti_path == f"data/nii/spn01_cmh_0001_01/{stem}.nii.gz"
    assert f"NOTE {folder}: The folder name is in lower case" in output.stderr
    assert "upper-case ID SPN01_CMH_0001_01" in output.stderr


KNOWN_STUDY_SITES = "(its study codes and sites: STUDY at SITE)"
CONFIG_FIX = "add the site and code to the study's datman config"


@pytest.mark.parametrize(
    ("folder", "expected", "fix"),
    [
        (
            "OTHER_SITE_0001_01",
            "study code OTHER and site SITE match no study site of STUDY",
            f"{KNOWN_STUDY_SITES}. Fix the ID, or {CONFIG_FIX}",
        ),
        (
            "STUDY_XYZ_0001_01",
            "study code STUDY and site XYZ match no study site of STUDY",
            f"{KNOWN_STUDY_SITES}. Fix the ID, or {CONFIG_FIX}",
        ),
        (
            "ELSE01_ELSE_0001_01",
            "study code ELSE01 at site ELSE belongs to study ELSEWHERE, not STUDY",
            "import it with `import_archive ELSEWHERE`",
        ),
    ],
)
def test_folder_of_no_study_site_skipped(archive, folder, expected, fix):
    StudySiteFactory(
        study=StudyFactory(nickname="ELSEWHERE"), site=SiteFactory(name="ELSE"), code="ELSE01"
    )
    archive.add_scan(f"{folder}_01_T1_02_SagT1", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is not None
    assert f"SKIPPED {archive.nii_dir(folder)}: Folder {folder}: {expected}" in output.stderr
    assert fix in output.stderr
    assert not Timepoint.objects.exists()


def test_alt_study_code_folder_imported(archive, study):
    AltStudyCodeFactory(study_site=study.study_sites.get(), code="STUDYB")
    archive.add_scan("STUDYB_SITE_0001_01_01_T1_02_SagT1", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is None, output.stderr
    assert Timepoint.objects.get().name == "STUDYB_SITE_0001_01"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (f"{T1_STEM}.nii.gz", b"this is not gzip data"),
        (f"{T1_STEM}.nii", b"\x00" * 100),
    ],
)
def test_unreadable_nifti_header_is_a_warning(archive, name, content):
    nifti = archive.add_file(TIMEPOINT, name, content)
    archive.add_file(TIMEPOINT, f"{T1_STEM}.json", json.dumps(SIMPLE_SIDECAR))

    output = run_import("STUDY")

    scan = Scan.objects.get()
    assert output.error is None, output.stderr
    assert scan.volumes is None
    assert scan.sidecar == SIMPLE_SIDECAR
    assert f"WARNING {nifti}: The NIfTI header cannot be read" in output.stderr


def test_file_in_wrong_timepoint_folder_skipped(archive):
    paths = archive.add_scan(
        "STUDY_SITE_0002_01_01_T1_02_SagT1", folder=TIMEPOINT, sidecar=SIMPLE_SIDECAR
    )

    output = run_import("STUDY")

    assert output.error is not None
    assert f"SKIPPED {paths['.nii.gz']}: The file belongs to timepoint STUDY_SITE_0002_01" in (
        output.stderr
    )
    assert "Move it to data/nii/STUDY_SITE_0002_01/" in output.stderr
    assert not Scan.objects.exists()


def test_unexpected_file_type_skipped(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    picture = archive.add_file(TIMEPOINT, f"{T1_STEM}.png", b"\x89PNG")

    output = run_import("STUDY")

    assert output.error is not None
    assert f"SKIPPED {picture}: Unexpected file type" in output.stderr
    assert Scan.objects.count() == 1


def test_file_in_nii_root_skipped(archive):
    stray = archive.root / "data" / "nii" / "README.txt"
    stray.write_text("notes", encoding="utf-8")

    output = run_import("STUDY")

    assert output.error is not None
    assert f"SKIPPED {stray}: data/nii/ must contain only timepoint folders" in output.stderr


def test_same_series_with_two_descriptions_skipped(archive):
    archive.add_scan("STUDY_SITE_0001_01_01_T1_02_A", sidecar=SIMPLE_SIDECAR)
    second = archive.add_scan("STUDY_SITE_0001_01_01_T1_02_B", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is not None
    assert f"SKIPPED {second['.nii.gz']}: The file has the same scan name" in output.stderr
    assert Scan.objects.get().file_stem == "STUDY_SITE_0001_01_01_T1_02_A"


def test_unpadded_series_names_one_scan(archive):
    archive.add_scan("STUDY_SITE_0001_01_01_T1_2_SagT1", sidecar=SIMPLE_SIDECAR)

    run_import("STUDY")

    scan = Scan.objects.get()
    assert scan.name == "STUDY_SITE_0001_01_01_T1_02"
    assert scan.series == 2
    assert scan.file_stem == "STUDY_SITE_0001_01_01_T1_2_SagT1"


def test_timepoint_of_other_study_skipped(archive):
    other_site = StudySiteFactory(study=StudyFactory(nickname="OTHER"), code="STUDY")
    TimepointFactory(study_site=other_site, name=TIMEPOINT)
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is not None
    assert f"Timepoint {TIMEPOINT} already belongs to study OTHER" in output.stderr
    assert not Scan.objects.exists()


def test_folders_differing_in_case_skipped(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    archive.add_scan(T1_STEM.lower(), sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is not None
    assert "is the same timepoint STUDY_SITE_0001_01 as folder" in output.stderr
    assert Scan.objects.count() == 1


def test_blacklisted_files_imported(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR, blacklisted=True)

    output = run_import("STUDY")

    scan = Scan.objects.get()
    assert output.error is None, output.stderr
    assert scan.nifti_path == f"data/nii/{TIMEPOINT}/blacklisted/{T1_STEM}.nii.gz"
    assert scan.sidecar == SIMPLE_SIDECAR


def test_conversion_error_without_nifti_imported(archive):
    paths = archive.add_scan(T1_STEM, nifti=False, err="dcm2niix failed to convert series 2\n")

    output = run_import("STUDY")

    scan = Scan.objects.get()
    assert output.error is None, output.stderr
    assert scan.conversion_errors == "dcm2niix failed to convert series 2"
    assert scan.nifti_path == ""
    assert scan.volumes is None
    assert f"WARNING {paths['.err']}: Series STUDY_SITE_0001_01_01_T1_02 has no NIfTI" in (
        output.stderr
    )


def test_empty_err_file_still_marks_error(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR, err="")

    run_import("STUDY")

    expected = f"The conversion error file {T1_STEM}.err is empty."
    assert Scan.objects.get().conversion_errors == expected


def test_nifti_without_sidecar_is_a_warning(archive):
    paths = archive.add_scan(T1_STEM)

    output = run_import("STUDY")

    scan = Scan.objects.get()
    assert output.error is None
    assert scan.sidecar is None
    assert scan.sidecar_path == ""
    assert f"WARNING {paths['.nii.gz']}: The NIfTI file has no JSON sidecar" in output.stderr


def test_manifest_entries_without_order_sorted_last(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    archive.add_manifest(
        {
            "b.png": {"title": "No order", "caption": "last"},
            "a.png": {"order": 2, "title": None, "caption": None},
            "c.png": {"order": 1, "title": "First", "caption": None},
        },
        name=f"{T1_STEM}_manifest.json",
    )

    run_import("STUDY")

    assert Scan.objects.get().qc_images == [
        {"file": qc_file("c.png"), "title": "First", "caption": None},
        {"file": qc_file("a.png"), "title": None, "caption": None},
        {"file": qc_file("b.png"), "title": "No order", "caption": "last"},
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{broken", "not valid JSON: Expecting property name enclosed in double quotes"),
        ('["a.png"]', "expected a JSON object of image file names"),
        ({"../../secret.png": {"order": 1}}, "image '../../secret.png' is not a plain file name"),
        ({"a.png": {"order": "1"}}, "entry 'a.png' has order '1'; expected a whole number"),
        ({"a.png": "first"}, "entry 'a.png' is not an object"),
    ],
)
def test_unreadable_manifest_recorded(archive, content, expected):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    manifest = archive.add_manifest(content, name=f"{T1_STEM}_manifest.json")

    output = run_import("STUDY")

    scan = Scan.objects.get()
    assert output.error is None, output.stderr
    assert scan.qc_images == []
    assert scan.manifest_error.startswith(f"qc/{TIMEPOINT}/{T1_STEM}_manifest.json: ")
    assert expected in scan.manifest_error
    assert f"WARNING {manifest}: QC manifest unreadable" in output.stderr


def test_manifest_without_scan_is_a_warning(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    orphan = archive.add_manifest(
        {"x.png": {"order": 1}}, name="STUDY_SITE_0001_01_01_RST_03_Rest_manifest.json"
    )

    output = run_import("STUDY")

    assert output.error is None
    assert f"WARNING {orphan}: QC manifest for series STUDY_SITE_0001_01_01_RST_03" in (
        output.stderr
    )


# --- Arguments and options -------------------------------------------------------------------


def test_session_arguments_limit_import(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    archive.add_scan("STUDY_SITE_0001_01_02_T1_02_SagT1", sidecar=SIMPLE_SIDECAR)
    archive.add_scan("STUDY_SITE_0002_01_01_T1_02_SagT1", sidecar=SIMPLE_SIDECAR)
    archive.add_file("not_an_id", "notes.txt", "ignored when sessions are named")

    output = run_import("STUDY", "STUDY_SITE_0001_01_02")

    assert output.error is None, output.stderr
    assert list(Scan.objects.values_list("name", flat=True)) == ["STUDY_SITE_0001_01_02_T1_02"]
    assert list(Session.objects.values_list("number", flat=True)) == [2]


def test_session_argument_not_in_archive(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY", "STUDY_SITE_0001_01_01", "STUDY_SITE_0009_01_01")

    assert output.error is not None
    assert "ERROR" in output.stderr
    assert "Session STUDY_SITE_0009_01_01 not found in the archive" in output.stderr
    assert Scan.objects.count() == 1


def test_dry_run_saves_nothing(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    archive.add_scan("STUDY_SITE_0001_01_02_T1_02_SagT1", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY", "--dry-run")

    assert output.error is None, output.stderr
    assert summary_line(output) == (
        "Dry run of the import of STUDY: 1 timepoint, 2 sessions, 2 scans created, 0 updated, "
        "0 unchanged, 0 skipped"
    )
    assert "Dry run: every change was rolled back; nothing was saved." in output.stdout
    assert not Timepoint.objects.exists()
    assert not Scan.objects.exists()


def test_missing_archive_folder(study, tmp_path):
    with pytest.raises(CommandError) as raised:
        call_command("import_archive", "STUDY", stdout=StringIO(), stderr=StringIO())

    assert f"Archive folder {tmp_path / 'STUDY'} of study STUDY not found" in str(raised.value)
    assert "--archive PATH" in str(raised.value)


def test_archive_without_nii_folder(study, tmp_path):
    (tmp_path / "elsewhere").mkdir()

    with pytest.raises(CommandError) as raised:
        call_command(
            "import_archive",
            "STUDY",
            "--archive",
            str(tmp_path / "elsewhere"),
            stdout=StringIO(),
            stderr=StringIO(),
        )

    assert f"Archive folder {tmp_path / 'elsewhere'} has no data/nii/ folder" in str(raised.value)


def test_archive_option_replaces_study_path(study, tmp_path):
    archive = ArchiveBuilder(tmp_path / "copy")
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY", "--archive", str(archive.root))

    assert output.error is None, output.stderr
    assert Scan.objects.get().nifti_path == f"data/nii/{TIMEPOINT}/{T1_STEM}.nii.gz"


def test_unknown_study(db):
    with pytest.raises(CommandError) as raised:
        call_command("import_archive", "NOPE", stdout=StringIO(), stderr=StringIO())

    assert "Study 'NOPE' not found" in str(raised.value)
    assert "sync_config" in str(raised.value)


def test_skips_fail_after_summary(archive):
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    archive.add_file(TIMEPOINT, "junk.nii.gz", b"")

    output = run_import("STUDY")

    assert "1 scan created" in summary_line(output)
    assert str(output.error) == (
        "The import of STUDY is incomplete: 1 skipped and 0 errors, listed above with their "
        "paths. Fix them and run import_archive again."
    )


def test_failed_session_does_not_stop_run(archive, monkeypatch):
    original = importer._upsert_scan

    def fail_for_second_session(name, values, existing, new_scans):
        if name.startswith("STUDY_SITE_0001_01_02"):
            raise IntegrityError("simulated constraint failure")
        return original(name, values, existing, new_scans)

    monkeypatch.setattr(importer, "_upsert_scan", fail_for_second_session)
    archive.add_scan(T1_STEM, sidecar=SIMPLE_SIDECAR)
    archive.add_scan("STUDY_SITE_0001_01_02_T1_02_SagT1", sidecar=SIMPLE_SIDECAR)
    archive.add_scan("STUDY_SITE_0002_01_01_T1_02_SagT1", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is not None
    assert (
        f"ERROR {archive.nii_dir(TIMEPOINT)}: Saving STUDY_SITE_0001_01 session 02 failed, so "
        f"none of its scans were saved: simulated constraint failure"
    ) in output.stderr
    assert sorted(Scan.objects.values_list("name", flat=True)) == [
        "STUDY_SITE_0001_01_01_T1_02",
        "STUDY_SITE_0002_01_01_T1_02",
    ]
    assert not Session.objects.filter(number=2).exists()
    assert "2 timepoints, 2 sessions, 2 scans created" in summary_line(output)
    assert "1 error" in summary_line(output)


def test_sessions_imported_signal_once_per_change(real_archive, django_capture_on_commit_callbacks):
    received = []

    def record(sender, study, created, updated, **kwargs):
        received.append((study.nickname, [str(s) for s in created], [str(s) for s in updated]))

    importer.sessions_imported.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_import("STUDY")
        first_run = list(received)
        received.clear()
        with django_capture_on_commit_callbacks(execute=True):
            run_import("STUDY")
    finally:
        importer.sessions_imported.disconnect(record)

    created = sorted(name for _, names, _ in first_run for name in names)
    assert created == sorted(str(session) for session in Session.objects.all())
    assert all(nickname == "STUDY" for nickname, _, _ in first_run)
    assert received == []


def test_import_finished_signal_once_per_run(real_archive, django_capture_on_commit_callbacks):
    received = []

    def record(sender, study, created, run_id, **kwargs):
        received.append((study.nickname, sorted(str(session) for session in created), run_id))

    importer.import_finished.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_import("STUDY", "--dry-run")
        dry_runs = list(received)
        with django_capture_on_commit_callbacks(execute=True):
            run_import("STUDY")
        with django_capture_on_commit_callbacks(execute=True):
            run_import("STUDY")
    finally:
        importer.import_finished.disconnect(record)

    assert dry_runs == []
    assert len(received) == 2
    (nickname, created, first_id), (_, created_again, second_id) = received
    assert nickname == "STUDY"
    assert created == sorted(str(session) for session in Session.objects.all())
    assert created_again == []
    assert first_id != second_id


def test_acquisition_date_taken_from_the_earliest_sidecar(archive):
    archive.add_scan(
        T1_STEM,
        sidecar=json.dumps({**SIMPLE_SIDECAR, "AcquisitionDateTime": "2024-03-15T10:01:02"}),
    )
    archive.add_scan(
        REST_STEM,
        sidecar=json.dumps({"SeriesNumber": 3, "AcquisitionDateTime": "2024-03-14T23:59:00.5"}),
    )

    output = run_import("STUDY")
    session = Session.objects.get(timepoint__name=TIMEPOINT, number=1)

    assert session.acquired_on == date(2024, 3, 14)
    assert "acquisition date of 1 session set" in summary_line(output)
    assert "acquisition date" not in summary_line(run_import("STUDY"))


def test_acquisition_date_set_before_is_kept(archive):
    archive.add_scan(
        T1_STEM, sidecar=json.dumps({**SIMPLE_SIDECAR, "AcquisitionDateTime": "2024-03-15T10:01"})
    )
    run_import("STUDY")
    Session.objects.update(acquired_on=date(2024, 1, 2))

    run_import("STUDY")

    assert Session.objects.get().acquired_on == date(2024, 1, 2)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"AcquisitionDate": "20240315"}, date(2024, 3, 15)),
        ({"AcquisitionDate": "2024-03-15"}, date(2024, 3, 15)),
        ({"AcquisitionDateTime": "2024-13-45T10:00"}, None),
        ({"AcquisitionDateTime": 20240315}, None),
        ({"AcquisitionDateTime": ""}, None),
        ({"AcquisitionTime": "10:01:02"}, None),
    ],
)
def test_acquisition_date_forms(archive, fields, expected):
    archive.add_scan(T1_STEM, sidecar=json.dumps({**SIMPLE_SIDECAR, **fields}))

    output = run_import("STUDY")

    assert output.error is None
    assert Session.objects.get().acquired_on == expected
