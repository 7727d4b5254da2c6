"""make_demo_archive: the files it writes, its config, and an import of the result."""

import json
import struct
import zlib
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from studies.models import Scan, Session, TaskFile, Timepoint
from tests.studies.factories import (
    ExpectedScanFactory,
    ScantypeFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
)

STUDY_ROOT = "DEMO"
MALFORMED = "DEMO/data/nii/DEM01_UTO_0003_01/DEM01_UTO_0003_01_01_T2_11-MR1_Ax-T2-FSE.nii.gz"


def make_demo(path, *args):
    stdout = StringIO()
    call_command("make_demo_archive", str(path), *args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue()


def run_import(*args):
    stdout, stderr = StringIO(), StringIO()
    try:
        call_command("import_archive", *args, stdout=stdout, stderr=stderr)
    except CommandError as error:
        return stdout.getvalue(), stderr.getvalue(), error
    return stdout.getvalue(), stderr.getvalue(), None


def load_yaml(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def create_rows_from_config(root):
    """Create the rows sync_config would create, read from the demo's own config files."""
    main = load_yaml(root / "config" / "main_config.yml")
    settings = load_yaml(root / "config" / "demo_settings.yml")
    study = StudyFactory(
        nickname="DEMO", archive_path=str(root / settings["ProjectDir"]), name=settings["FullName"]
    )
    for site_name, site in settings["Sites"].items():
        study_site = StudySiteFactory(
            study=study,
            site=SiteFactory(name=site_name),
            code=settings["StudyTag"],
            uses_tech_notes=site.get("UsesTechNotes", False),
        )
        for tag, export in site["ExportInfo"].items():
            ExpectedScanFactory(
                study_site=study_site,
                scantype=ScantypeFactory(tag=tag, qc_type=main["ExportSettings"][tag]["QcType"]),
                count=export["Count"],
                phantom_count=export.get("PhaCount", 0),
            )
    return study


@pytest.fixture
def demo(tmp_path):
    root = tmp_path / "archive"
    make_demo(root)
    return root


@pytest.fixture
def imported_demo(db, demo):
    create_rows_from_config(demo)
    return demo, run_import("DEMO")


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    header = data[16 : 16 + length]
    (checksum,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + header) & 0xFFFFFFFF == checksum
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", header[:10])
    return width, height, bit_depth, colour_type


# --- Files and config -----------------------------------------------------------------------


def test_demo_prints_what_it_wrote(tmp_path):
    output = make_demo(tmp_path / "archive")

    assert f"Wrote the demo archive of study DEMO to {tmp_path / 'archive' / 'DEMO'}" in output
    assert "8 timepoints, 9 sessions, 22 NIfTI files, 40 QC images" in output
    malformed = tmp_path / "archive" / MALFORMED
    assert f"Malformed on purpose (import_archive skips it): {malformed}" in output
    assert f"manage.py sync_config {tmp_path / 'archive' / 'config' / 'main_config.yml'}" in output


def test_demo_main_config(demo):
    main = load_yaml(demo / "config" / "main_config.yml")

    assert main["SystemSettings"]["demo"]["DatmanProjectsDir"] == str(demo)
    assert main["SystemSettings"]["demo"]["ConfigDir"] == str(demo / "config")
    assert main["Projects"] == {"DEMO": "demo_settings.yml"}
    assert {tag: values["QcType"] for tag, values in main["ExportSettings"].items()} == {
        "T1": "anat",
        "RST": "fmri",
        "DTI60-1000": "dti",
    }
    assert "SeriesNumber" in main["IgnoreHeaderFields"]
    assert main["HeaderFieldTolerance"]["EchoTime"] == 0.005


def test_demo_study_config(demo):
    settings = load_yaml(demo / "config" / "demo_settings.yml")

    assert settings["ProjectDir"] == "DEMO"
    assert settings["StudyTag"] == "DEM01"
    assert settings["FullName"]
    assert set(settings["Sites"]) == {"CMH", "UTO"}
    for site in settings["Sites"].values():
        assert set(site["ExportInfo"]) == {"T1", "RST", "DTI60-1000"}
        for export in site["ExportInfo"].values():
            assert export["Count"] == 1
            assert export["Pattern"]["SeriesDescription"]


def test_demo_sidecars_look_like_dcm2niix(demo):
    sidecar_path = (
        demo / "DEMO/data/nii/DEM01_CMH_0001_01/DEM01_CMH_0001_01_01_RST_03_Resting-State.json"
    )
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))

    assert sidecar["SeriesDescription"] == "Resting State"
    assert sidecar["SeriesNumber"] == 3
    assert sidecar["RepetitionTime"] == 2.0
    assert sidecar["Manufacturer"] == "GE"
    assert sidecar["ConversionSoftware"] == "dcm2niix"
    assert len(sidecar["SliceTiming"]) == 8


def test_demo_qc_images_are_grey_png(demo):
    images = sorted((demo / "DEMO" / "qc").rglob("*.png"))

    assert len(images) == 40
    for image in images:
        assert png_size(image) == (256, 128, 8, 0), image


def test_demo_output_is_deterministic(tmp_path):
    make_demo(tmp_path / "one")
    make_demo(tmp_path / "two")

    first = {p.relative_to(tmp_path / "one"): p for p in (tmp_path / "one").rglob("*")}
    second = {p.relative_to(tmp_path / "two"): p for p in (tmp_path / "two").rglob("*")}
    assert set(first) == set(second)
    for relative, path in first.items():
        if path.is_dir() or relative.parts[0] == "config":
            # The config files name the archive folder, which differs between the two builds.
            continue
        assert path.read_bytes() == second[relative].read_bytes(), relative


def test_demo_refuses_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")

    with pytest.raises(CommandError) as raised:
        make_demo(tmp_path)

    assert f"{tmp_path} is not empty" in str(raised.value)
    assert "--force" in str(raised.value)
    assert not (tmp_path / "DEMO").exists()


def test_demo_force_replaces_previous_build(demo):
    stale = demo / "DEMO" / "data" / "nii" / "DEM01_CMH_0009_01"
    stale.mkdir()
    other = demo / "notes.txt"
    other.write_text("keep me", encoding="utf-8")

    make_demo(demo, "--force")

    assert not stale.exists()
    assert other.read_text(encoding="utf-8") == "keep me"
    assert (demo / MALFORMED).is_file()


def test_demo_force_keeps_unmarked_study_folder(tmp_path):
    (tmp_path / "DEMO").mkdir()
    (tmp_path / "DEMO" / "real.nii.gz").write_bytes(b"data")

    with pytest.raises(CommandError) as raised:
        make_demo(tmp_path, "--force")

    assert "was not written by make_demo_archive" in str(raised.value)
    assert (tmp_path / "DEMO" / "real.nii.gz").read_bytes() == b"data"


# --- Import of the demo archive ---------------------------------------------------------------


def test_demo_import_counts(imported_demo):
    _, (stdout, stderr, error) = imported_demo

    assert Timepoint.objects.count() == 8
    assert Session.objects.count() == 9
    assert Scan.objects.count() == 22
    assert (
        "Imported DEMO: 8 timepoints, 9 sessions, 22 scans created, 0 updated, 0 unchanged, "
        "1 skipped"
    ) in stdout
    assert error is not None


def test_demo_import_skips_malformed_file(imported_demo):
    demo, (_, stderr, _) = imported_demo

    assert f"SKIPPED {demo / MALFORMED}: " in stderr
    assert "series '11-MR1' is not a number" in stderr
    assert stderr.count("SKIPPED") == 1
    assert "WARNING" not in stderr


def test_demo_import_phantom(imported_demo):
    phantom = Timepoint.objects.get(name="DEM01_CMH_PHA_FBN0001")

    assert phantom.is_phantom is True
    assert phantom.bids_name == ""
    assert [session.number for session in phantom.sessions.all()] == [1]
    assert sorted(
        Scan.objects.filter(session__timepoint=phantom).values_list("name", flat=True)
    ) == ["DEM01_CMH_PHA_FBN0001_RST_03", "DEM01_CMH_PHA_FBN0001_T1_02"]


def test_demo_import_repeat_session(imported_demo):
    timepoint = Timepoint.objects.get(name="DEM01_CMH_0001_01")
    sessions = {session.number: session for session in timepoint.sessions.all()}

    assert set(sessions) == {1, 2}
    assert sorted(sessions[1].scans.values_list("scantype__tag", flat=True)) == ["RST", "T1"]
    assert list(sessions[2].scans.values_list("name", flat=True)) == [
        "DEM01_CMH_0001_01_02_DTI60-1000_02"
    ]


def test_demo_import_missing_expected_scan(imported_demo):
    session = Session.objects.get(timepoint__name="DEM01_UTO_0002_01")
    expected_tags = set(
        session.timepoint.study_site.expected_scans.values_list("scantype__tag", flat=True)
    )
    found_tags = set(session.scans.values_list("scantype__tag", flat=True))

    assert expected_tags - found_tags == {"DTI60-1000"}


def test_demo_import_conversion_error(imported_demo):
    with_errors = Scan.objects.exclude(conversion_errors="")

    assert list(with_errors.values_list("name", flat=True)) == [
        "DEM01_CMH_0002_01_01_DTI60-1000_04"
    ]
    assert "Missing images" in with_errors.get().conversion_errors


def test_demo_import_volumes(imported_demo):
    volumes = dict(
        Scan.objects.filter(session__timepoint__name="DEM01_UTO_0001_01").values_list(
            "scantype__tag", "volumes"
        )
    )

    assert volumes == {"T1": 1, "RST": 6, "DTI60-1000": 8}


def test_demo_import_qc_images_in_order(imported_demo):
    scan = Scan.objects.get(name="DEM01_CMH_0001_01_01_RST_03")
    stem = "DEM01_CMH_0001_01_01_RST_03_Resting-State"
    folder = "qc/DEM01_CMH_0001_01"

    assert scan.qc_images == [
        {"file": f"{folder}/{stem}_montage.png", "title": None, "caption": None},
        {"file": f"{folder}/{stem}_raw.png", "title": "BOLD Montage", "caption": None},
        {"file": f"{folder}/{stem}_sfnr.png", "title": "SFNR Map", "caption": None},
    ]


def test_demo_import_qc_image_files_exist(imported_demo):
    demo, _ = imported_demo

    images = [image["file"] for scan in Scan.objects.all() for image in scan.qc_images]
    assert len(images) == 40
    for image in images:
        assert (demo / STUDY_ROOT / image).is_file(), image


def test_demo_import_tech_notes_and_task_files(imported_demo):
    root, _ = imported_demo

    with_notes = Session.objects.exclude(tech_notes_path="").select_related("timepoint")
    assert sorted(session.name for session in with_notes) == [
        "DEM01_CMH_0001_01_01",
        "DEM01_CMH_0001_01_02",
        "DEM01_CMH_0001_02_01",
        "DEM01_CMH_0002_01_01",
    ]
    notes = (root / "DEMO" / with_notes[0].tech_notes_path).read_bytes()
    assert notes.startswith(b"%PDF-1.4")
    assert notes.rstrip().endswith(b"%%EOF")
    task_files = TaskFile.objects.select_related("session__timepoint")
    assert len(task_files) == 7
    task_file = task_files.get(session__timepoint__name="DEM01_UTO_0002_01")
    assert task_file.path == "task/DEM01_UTO_0002_01_01/DEM01_UTO_0002_01_01_RST_behav.csv"
    assert task_file.size == len((root / "DEMO" / task_file.path).read_bytes())


def test_demo_second_import_changes_nothing(imported_demo):
    stdout, _, _ = run_import("DEMO")

    assert (
        "Imported DEMO: 0 timepoints, 0 sessions, 0 scans created, 0 updated, 22 unchanged, "
        "1 skipped"
    ) in stdout


def test_demo_archive_has_gold_standards(tmp_path):
    from studies.demo import build_demo_archive

    archive = build_demo_archive(tmp_path / "demo")

    standards = sorted(
        path.name for path in (archive.study_root / "metadata" / "standards").iterdir()
    )
    assert len([name for name in standards if name.endswith(".json")]) == 6
    assert len([name for name in standards if name.endswith(".bval")]) == 2
    assert "DEM01_CMH_0001_01_01_T1_02_Sag-T1-BRAVO.json" in standards
