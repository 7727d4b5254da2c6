"""`manage.py sync_config` against datman's real config files and small configs in tmp_path."""

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from studies.models import (
    AltStudyCode,
    ExpectedScan,
    HeaderComparisonSettings,
    Scantype,
    Site,
    Study,
    StudySite,
)

pytestmark = pytest.mark.django_db

# ExportInfo counts of datman's test study config, identical at both sites. FMAP-6.5, FMAP-8.5
# and PDT2 are left out because the main config's ExportSettings does not define them.
REAL_EXPECTED_COUNTS = {
    "DTI60-1000": 1,
    "EMP": 3,
    "FLAIR": 1,
    "IMI": 1,
    "OBS": 1,
    "RST": 1,
    "T1": 1,
}
REAL_UNDEFINED_TAGS = ("FMAP-6.5", "FMAP-8.5", "PDT2")

MAIN_CONFIG = """\
XnatServer: xnat.example.org
UsesTechNotes: true
SystemSettings:
  test:
    DatmanProjectsDir: archive
    ConfigDir: config
Projects:
  demo: demo.yml
ExportSettings:
  T1: {Formats: [nii, dcm], QcType: anat}
  RST: {Formats: [nii], QcType: fmri, QcPha: default}
  DTI: {Formats: nii, QcType: dti, QcPha: qa_dti}
"""

STUDY_CONFIG = """\
ProjectDir: DEMO
StudyTag: DEM01
FullName: Demo study
Description: A study for tests
PrimaryContact: Dr. Example
SiteTags: [DEMX]
ExportInfo:
  DTI: {Pattern: {SeriesDescription: DTI}, Count: 1}
Sites:
  CMH:
    SiteTags: [DEM01, DEMALT, DEMALT]
    XnatArchive: DEMO_CMH
    ExportInfo:
      T1: {Pattern: {SeriesDescription: [T1, BRAVO]}, Count: 1}
      RST: {Pattern: Rest, Count: 2, PhaCount: 1}
  UTO:
    StudyTag: DEM02
    UsesTechNotes: false
    UsesRedcap: true
    XnatConvention: KCNI
    ExportInfo:
      T1: {Pattern: [MPRAGE, T1w], Count: 1}
      DTI: {Pattern: DTI, Count: 2}
"""


@pytest.fixture(autouse=True)
def no_dm_system(monkeypatch):
    monkeypatch.delenv("DM_SYSTEM", raising=False)


@pytest.fixture
def real_main_config(real_fixtures):
    return real_fixtures / "datman" / "tests" / "fixture_project_settings" / "site_config.yaml"


@pytest.fixture
def demo_config(tmp_path):
    """A main config in tmp_path with one study, DEMO, at sites CMH and UTO."""
    (tmp_path / "archive").mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "demo.yml").write_text(STUDY_CONFIG)
    main = tmp_path / "main.yml"
    main.write_text(MAIN_CONFIG)
    return main


def run_sync(main_config, **options):
    out = StringIO()
    call_command("sync_config", str(main_config), stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def summary_line(output):
    return output.strip().splitlines()[-1]


def expected_counts(study, site):
    rows = ExpectedScan.objects.filter(
        study_site__study__nickname=study, study_site__site__name=site
    )
    return {row.scantype.tag: row.count for row in rows.select_related("scantype")}


def write_study(main_config, text):
    (main_config.parent / "config" / "demo.yml").write_text(text)


# Real datman config files


def test_real_fixture_study(real_main_config, real_fixtures):
    run_sync(real_main_config)

    study = Study.objects.get()
    assert study.nickname == "STUDY"
    assert study.name == "Full study name goes here"
    assert study.description == "Description goes here"
    assert study.primary_contact == "PI name goes here"
    assert study.is_open is True
    assert study.archive_path == str(real_fixtures.absolute() / "datman" / "tests" / "STUDY")


def test_real_fixture_study_sites(real_main_config):
    run_sync(real_main_config)

    study_sites = {row.site.name: row for row in StudySite.objects.select_related("site")}
    assert sorted(study_sites) == ["CMH", "SITE"]
    assert study_sites["CMH"].code == "STUDY"
    assert study_sites["SITE"].code == "STUDY"
    assert study_sites["CMH"].xnat_archive == "ARC01"
    assert study_sites["SITE"].xnat_archive == "ARC02"
    assert study_sites["CMH"].xnat_url == "xnat.some-server.someplace.ca:999"
    assert study_sites["SITE"].xnat_url == "xnat.some-server.someplace.ca:999"
    assert study_sites["CMH"].xnat_convention == "DATMAN"
    assert study_sites["CMH"].uses_redcap is False
    assert study_sites["CMH"].uses_tech_notes is False


def test_real_fixture_no_alt_code_duplicates(real_main_config):
    # CMH's SiteTags repeats the StudyTag, which is the study code itself, not an alternate.
    run_sync(real_main_config)

    assert AltStudyCode.objects.count() == 0


def test_real_fixture_scantypes(real_main_config):
    export_settings = yaml.safe_load(real_main_config.read_text())["ExportSettings"]

    run_sync(real_main_config)

    assert set(Scantype.objects.values_list("tag", flat=True)) == set(export_settings)
    t1 = Scantype.objects.get(tag="T1")
    assert t1.qc_type == "anat"
    assert t1.pha_type == ""
    assert t1.formats == ["nii", "dcm", "mnc"]
    dti = Scantype.objects.get(tag="DTI60-1000")
    assert dti.qc_type == "dti"
    assert dti.pha_type == "qa_dti"


def test_real_fixture_expected_scans(real_main_config):
    run_sync(real_main_config)

    assert expected_counts("STUDY", "CMH") == REAL_EXPECTED_COUNTS
    assert expected_counts("STUDY", "SITE") == REAL_EXPECTED_COUNTS
    assert set(ExpectedScan.objects.values_list("phantom_count", flat=True)) == {0}


def test_real_fixture_undefined_tag_warnings(real_main_config):
    output = run_sync(real_main_config)

    for site in ("CMH", "SITE"):
        for tag in REAL_UNDEFINED_TAGS:
            warning = (
                f"tag {tag} in ExportInfo of study STUDY, site {site} is not defined in "
                f"ExportSettings of {real_main_config}; add it there"
            )
            assert output.count(warning) == 1, warning
    assert summary_line(output).endswith(", 6 warnings")


def test_real_fixture_summary_and_rerun(real_main_config):
    scantype_count = len(yaml.safe_load(real_main_config.read_text())["ExportSettings"])
    # One study, two sites, two study sites, seven expected scans at each site and the
    # study's header comparison settings.
    row_count = scantype_count + 1 + 2 + 2 + 14 + 1

    first = run_sync(real_main_config)
    second = run_sync(real_main_config)

    assert summary_line(first) == f"{row_count} created, 0 changed, 0 unchanged, 6 warnings"
    assert "created study STUDY" in first
    assert "created expected scan EMP at STUDY/CMH" in first
    assert summary_line(second) == f"0 created, 0 changed, {row_count} unchanged, 6 warnings"
    assert "created " not in second
    assert "changed " not in second.replace("0 changed", "")


def test_real_template_invalid_yaml(real_fixtures):
    path = real_fixtures / "datman" / "assets" / "config_templates" / "main_config.yml"

    with pytest.raises(CommandError) as error:
        run_sync(path)

    message = str(error.value)
    assert str(path) in message
    assert "not valid YAML at line 87, column 5" in message
    assert "expected ',' or '}'" in message


def test_real_legacy_study_config_rejected(real_fixtures, tmp_path):
    legacy_folder = real_fixtures / "datman" / "history" / "tests" / "fixture_dm-qc-report"
    (tmp_path / "archive").mkdir()
    main = tmp_path / "main.yml"
    main.write_text(
        "SystemSettings:\n"
        f"  test: {{DatmanProjectsDir: archive, ConfigDir: '{legacy_folder}'}}\n"
        "Projects:\n"
        "  STUDY1: project_settings.yml\n"
    )

    with pytest.raises(CommandError) as error:
        run_sync(main)

    message = str(error.value)
    assert str(legacy_folder / "project_settings.yml") in message
    assert "obsolete pre-2018 format" in message
    assert "STUDYNAME" in message
    assert "PROJECTDIR → ProjectDir" in message
    assert "SITE_IDS → SiteTags" in message
    assert Study.objects.count() == 0


def test_real_projects_nested_in_system_settings(real_fixtures):
    path = real_fixtures / "datman" / "tests" / "fixture_dm_config" / "site_config.yml"

    with pytest.raises(CommandError) as error:
        run_sync(path)

    message = str(error.value)
    assert str(path) in message
    assert "Projects is missing at the top level" in message
    assert "indented inside SystemSettings" in message


# Small configs in tmp_path


def test_demo_sync_rows(demo_config, tmp_path):
    output = run_sync(demo_config)

    study = Study.objects.get()
    assert study.nickname == "DEMO"
    assert study.name == "Demo study"
    assert study.description == "A study for tests"
    assert study.primary_contact == "Dr. Example"
    assert study.archive_path == str(tmp_path / "archive" / "DEMO")
    assert summary_line(output) == "16 created, 0 changed, 0 unchanged, 0 warnings"


def test_demo_scantype_formats(demo_config):
    run_sync(demo_config)

    assert Scantype.objects.get(tag="T1").formats == ["nii", "dcm"]
    assert Scantype.objects.get(tag="DTI").formats == ["nii"]
    assert Scantype.objects.get(tag="RST").pha_type == "default"


def test_second_run_changes_nothing(demo_config):
    run_sync(demo_config)

    output = run_sync(demo_config)

    assert output.strip().splitlines() == ["0 created, 0 changed, 16 unchanged, 0 warnings"]


def test_changed_count_reported(demo_config):
    run_sync(demo_config)
    write_study(demo_config, STUDY_CONFIG.replace("Count: 2, PhaCount: 1", "Count: 3, PhaCount: 1"))

    output = run_sync(demo_config)

    assert "changed expected scan RST at DEMO/CMH: count 2 → 3" in output
    assert summary_line(output) == "0 created, 1 changed, 15 unchanged, 0 warnings"
    assert expected_counts("DEMO", "CMH")["RST"] == 3


def test_changed_fields_one_line_each(demo_config):
    run_sync(demo_config)
    changed = STUDY_CONFIG.replace("FullName: Demo study", "FullName: Renamed study").replace(
        "XnatArchive: DEMO_CMH", "XnatArchive: DEMO_CMH2"
    )
    write_study(demo_config, changed)

    output = run_sync(demo_config)

    assert "changed study DEMO: name 'Demo study' → 'Renamed study'" in output
    assert "changed study site DEMO/CMH: xnat_archive 'DEMO_CMH' → 'DEMO_CMH2'" in output
    assert summary_line(output).startswith("0 created, 2 changed, ")


def test_dry_run_leaves_database_empty(demo_config):
    output = run_sync(demo_config, dry_run=True)

    assert "created study DEMO" in output
    assert "dry run" in summary_line(output)
    assert summary_line(output).startswith("16 created, ")
    assert Study.objects.count() == 0
    assert Site.objects.count() == 0
    assert StudySite.objects.count() == 0
    assert Scantype.objects.count() == 0
    assert ExpectedScan.objects.count() == 0


def test_dry_run_of_real_fixture_saves_nothing(real_main_config):
    output = run_sync(real_main_config, dry_run=True)

    assert "dry run" in summary_line(output)
    assert Scantype.objects.count() == 0
    assert Study.objects.count() == 0


def test_study_option_limits_sync(demo_config):
    (demo_config.parent / "config" / "other.yml").write_text(
        "ProjectDir: OTHER\nStudyTag: OTH01\nSites:\n  CMH:\n    ExportInfo:\n"
        "      T1: {Pattern: T1, Count: 1}\n"
    )
    demo_config.write_text(
        MAIN_CONFIG.replace("  demo: demo.yml", "  demo: demo.yml\n  other: other.yml")
    )

    run_sync(demo_config, study="other")

    assert list(Study.objects.values_list("nickname", flat=True)) == ["OTHER"]
    assert StudySite.objects.get().code == "OTH01"


def test_unknown_study_lists_configured(demo_config):
    with pytest.raises(CommandError) as error:
        run_sync(demo_config, study="NOPE")

    message = str(error.value)
    assert "'NOPE' is not configured" in message
    assert "configured studies: DEMO" in message


def test_site_level_study_tag_override(demo_config):
    run_sync(demo_config)

    codes = dict(StudySite.objects.values_list("site__name", "code"))
    assert codes == {"CMH": "DEM01", "UTO": "DEM02"}


def test_alt_codes_deduplicated(demo_config):
    run_sync(demo_config)

    cmh_codes = AltStudyCode.objects.filter(study_site__site__name="CMH")
    assert sorted(cmh_codes.values_list("code", flat=True)) == ["DEMALT", "DEMX"]
    uto_codes = AltStudyCode.objects.filter(study_site__site__name="UTO")
    assert list(uto_codes.values_list("code", flat=True)) == ["DEMX"]


def test_precedence_scalars(demo_config):
    # UsesTechNotes is true in the main config and false in UTO's site block.
    run_sync(demo_config)

    cmh = StudySite.objects.get(site__name="CMH")
    uto = StudySite.objects.get(site__name="UTO")
    assert cmh.uses_tech_notes is True
    assert uto.uses_tech_notes is False
    assert cmh.uses_redcap is False
    assert uto.uses_redcap is True
    assert cmh.xnat_convention == "DATMAN"
    assert uto.xnat_convention == "KCNI"
    assert cmh.xnat_url == "xnat.example.org"


def test_precedence_export_info_merge(demo_config):
    # The study-level ExportInfo adds DTI to both sites, and UTO's own DTI entry wins there.
    run_sync(demo_config)

    assert expected_counts("DEMO", "CMH") == {"DTI": 1, "RST": 2, "T1": 1}
    assert expected_counts("DEMO", "UTO") == {"DTI": 2, "T1": 1}
    rst = ExpectedScan.objects.get(study_site__site__name="CMH", scantype__tag="RST")
    assert rst.phantom_count == 1


def test_nothing_deleted_when_site_removed(demo_config):
    run_sync(demo_config)
    without_uto = STUDY_CONFIG[: STUDY_CONFIG.index("  UTO:")]
    write_study(demo_config, without_uto)

    output = run_sync(demo_config)

    assert StudySite.objects.filter(site__name="UTO").exists()
    assert ExpectedScan.objects.filter(study_site__site__name="UTO").count() == 2
    assert "study site DEMO/UTO is not in Sites of" in output
    assert summary_line(output).startswith("0 created, 0 changed, ")


def test_nothing_deleted_when_tag_removed(demo_config):
    run_sync(demo_config)
    write_study(
        demo_config, STUDY_CONFIG.replace("      RST: {Pattern: Rest, Count: 2, PhaCount: 1}\n", "")
    )

    output = run_sync(demo_config)

    assert expected_counts("DEMO", "CMH")["RST"] == 2
    assert "expected scan RST at DEMO/CMH is not in ExportInfo of" in output


def test_undefined_tag_skipped_rest_synced(demo_config):
    write_study(
        demo_config,
        STUDY_CONFIG.replace(
            "Count: 2, PhaCount: 1}", "Count: 2}\n      FMAP-6.5: {Pattern: TE65, Count: 2}"
        ),
    )

    output = run_sync(demo_config)

    assert "tag FMAP-6.5 in ExportInfo of study DEMO, site CMH is not defined" in output
    assert expected_counts("DEMO", "CMH") == {"DTI": 1, "RST": 2, "T1": 1}
    assert summary_line(output).endswith(", 1 warnings")


# Bad input


def test_missing_main_config(tmp_path):
    path = tmp_path / "nope.yml"

    with pytest.raises(CommandError) as error:
        run_sync(path)

    assert f"Main config {path} not found" in str(error.value)


def test_missing_study_config(demo_config):
    (demo_config.parent / "config" / "demo.yml").unlink()

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert (
        f"Study config {demo_config.parent / 'config' / 'demo.yml'} of study DEMO not found"
        in message
    )
    assert "Projects" in message


def test_study_config_without_sites(demo_config):
    write_study(demo_config, "ProjectDir: DEMO\nStudyTag: DEM01\n")

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert "demo.yml has no Sites" in message
    assert "add Sites" in message


def test_several_systems_need_a_choice(demo_config):
    demo_config.write_text(
        MAIN_CONFIG.replace(
            "SystemSettings:\n",
            "SystemSettings:\n  other:\n    DatmanProjectsDir: /x\n    ConfigDir: /x\n",
        )
    )

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert "several systems (other, test)" in message
    assert "--system" in message


def test_system_option_and_environment(demo_config, monkeypatch):
    demo_config.write_text(
        MAIN_CONFIG.replace(
            "SystemSettings:\n",
            "SystemSettings:\n  other:\n    DatmanProjectsDir: /x\n    ConfigDir: /x\n",
        )
    )

    run_sync(demo_config, system="test", dry_run=True)
    monkeypatch.setenv("DM_SYSTEM", "test")
    output = run_sync(demo_config)

    assert Study.objects.get().nickname == "DEMO"
    assert summary_line(output).startswith("16 created")


def test_unknown_system(demo_config):
    with pytest.raises(CommandError) as error:
        run_sync(demo_config, system="prod")

    message = str(error.value)
    assert "System 'prod' not found" in message
    assert "configured systems: test" in message


def test_relative_folder_not_found(demo_config, tmp_path):
    (tmp_path / "archive").rmdir()

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert "DatmanProjectsDir 'archive'" in message
    assert str(tmp_path / "archive") in message
    assert str(tmp_path.parent / "archive") in message


def test_invalid_count(demo_config):
    write_study(demo_config, STUDY_CONFIG.replace("Count: 2, PhaCount: 1", "Count: two"))

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert "Count in ExportInfo.RST" in message
    assert "'two'" in message
    assert Study.objects.count() == 0


def test_invalid_study_yaml(demo_config):
    write_study(demo_config, "ProjectDir: DEMO\nSites: {CMH: {ExportInfo: {T1: {Count: 1} }\n")

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert "demo.yml is not valid YAML at line" in message


def test_invalid_count_names_its_level(demo_config):
    # DTI's entry for CMH comes from the study level, so the error names the study file itself.
    write_study(
        demo_config,
        STUDY_CONFIG.replace(
            "DTI: {Pattern: {SeriesDescription: DTI}, Count: 1}", "DTI: {Pattern: DTI, Count: -1}"
        ),
    )

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert (
        f"Count in ExportInfo.DTI in {demo_config.parent / 'config' / 'demo.yml'} must be"
        in message
    )
    assert "-1" in message


# Header comparison settings (IgnoreHeaderFields, HeaderFieldTolerance)


REAL_IGNORED_FIELDS = [
    "AcquisitionTime",
    "ConversionSoftwareVersion",
    "ImageOrientationPatientDICOM",
    "ProcedureStepDescription",
    "ProtocolName",
    "SAR",
    "ScanOptions",
    "SeriesDescription",
    "SeriesNumber",
    "ShimSetting",
    "SoftwareVersions",
    "TxRefAmp",
    "WipMemBlock",
]


def header_settings(study="DEMO", site=None):
    return HeaderComparisonSettings.objects.get(study__nickname=study, site__name=site)


def test_real_fixture_header_settings(real_main_config):
    output = run_sync(real_main_config)

    settings = header_settings("STUDY")
    assert settings.ignored_fields == REAL_IGNORED_FIELDS
    assert settings.tolerances == {
        "ImagingFrequency": 1,
        "EchoTime": 0.005,
        "RepetitionTime": 1,
        "SpacingBetweenSlices": 4,
        "SliceTiming": 0.0026,
        "TotalReadoutTime": 0.001,
    }
    assert HeaderComparisonSettings.objects.filter(site__isnull=False).count() == 0
    assert "created header comparison settings of STUDY" in output


def test_demo_without_header_settings_creates_none(demo_config):
    run_sync(demo_config)

    assert HeaderComparisonSettings.objects.count() == 0


HEADER_MAIN = (
    MAIN_CONFIG
    + """IgnoreHeaderFields: [SeriesNumber, AcquisitionTime]
HeaderFieldTolerance: {EchoTime: 0.005, RepetitionTime: 1}
"""
)


def write_header_study(demo_config, study_extra="", cmh_extra=""):
    demo_config.write_text(HEADER_MAIN)
    text = STUDY_CONFIG.replace("SiteTags: [DEMX]\n", f"SiteTags: [DEMX]\n{study_extra}")
    text = text.replace("    XnatArchive: DEMO_CMH\n", f"    XnatArchive: DEMO_CMH\n{cmh_extra}")
    write_study(demo_config, text)


def test_header_settings_merged_across_levels(demo_config):
    write_header_study(
        demo_config,
        study_extra="IgnoreHeaderFields: [ProtocolName, SeriesNumber]\n"
        "HeaderFieldTolerance: {EchoTime: 0.01}\n",
        cmh_extra="    IgnoreHeaderFields: [ShimSetting]\n"
        "    HeaderFieldTolerance: {EchoTime: 0.02, SliceTiming: 0.003}\n",
    )

    run_sync(demo_config)

    study_level = header_settings()
    # Lists are joined over the main and study levels, and the study's tolerance wins.
    assert study_level.ignored_fields == ["AcquisitionTime", "ProtocolName", "SeriesNumber"]
    assert study_level.tolerances == {"EchoTime": 0.01, "RepetitionTime": 1}
    # The CMH row keeps the site's own values, which add to the study's.
    cmh = header_settings(site="CMH")
    assert cmh.ignored_fields == ["ShimSetting"]
    assert cmh.tolerances == {"EchoTime": 0.02, "SliceTiming": 0.003}
    assert not HeaderComparisonSettings.objects.filter(site__name="UTO").exists()


def test_header_settings_changes_reported_and_rerun_unchanged(demo_config):
    write_header_study(demo_config)
    run_sync(demo_config)
    assert "0 changed" in summary_line(run_sync(demo_config))

    demo_config.write_text(HEADER_MAIN.replace("EchoTime: 0.005", "EchoTime: 0.002"))
    output = run_sync(demo_config)

    assert (
        "changed header comparison settings of DEMO: tolerances "
        "{'EchoTime': 0.005, 'RepetitionTime': 1} → {'EchoTime': 0.002, 'RepetitionTime': 1}"
        in output
    )
    assert header_settings().tolerances["EchoTime"] == 0.002


def test_header_settings_kept_when_config_drops_them(demo_config):
    write_header_study(demo_config)
    run_sync(demo_config)
    demo_config.write_text(MAIN_CONFIG)

    output = run_sync(demo_config)

    assert "warning: header comparison settings of DEMO are not set in the config" in output
    assert header_settings().ignored_fields == ["AcquisitionTime", "SeriesNumber"]


def test_single_ignored_field_as_text(demo_config):
    demo_config.write_text(MAIN_CONFIG + "IgnoreHeaderFields: SeriesNumber\n")

    run_sync(demo_config)

    assert header_settings().ignored_fields == ["SeriesNumber"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("HeaderFieldTolerance: {EchoTime: small}\n", "The tolerance of EchoTime is 'small'"),
        ("HeaderFieldTolerance: {EchoTime: -0.1}\n", "The tolerance of EchoTime is -0.1"),
        ("HeaderFieldTolerance: {EchoTime: true}\n", "The tolerance of EchoTime is True"),
        ("IgnoreHeaderFields: [SeriesNumber, {a: 1}]\n", "Ignored fields must be a list"),
    ],
)
def test_invalid_header_settings(demo_config, extra, message):
    demo_config.write_text(MAIN_CONFIG + extra)

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    text = str(error.value)
    assert message in text
    assert str(demo_config) in text
    assert Study.objects.count() == 0


def test_invalid_site_header_settings_names_site(demo_config):
    write_header_study(demo_config, cmh_extra="    HeaderFieldTolerance: [EchoTime]\n")

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    assert "HeaderFieldTolerance in Sites.CMH of" in str(error.value)
    assert "must map field names to numbers" in str(error.value)


# REDCap settings (synced by redcap.config_sync through the registered sync step)

REDCAP_TOKEN = "0123456789ABCDEF0123456789ABCDEF"
REDCAP_STUDY_KEYS = """\
RedcapUrl: https://redcap.example.org
RedcapProjectId: 42
RedcapInstrument: tigrlab_scan_completed
RedcapToken: redcap_token
"""


def write_redcap_study(demo_config, keys=REDCAP_STUDY_KEYS, token=REDCAP_TOKEN):
    """Write the demo study with REDCap keys at study level, and its token file."""
    write_study(demo_config, STUDY_CONFIG + keys)
    metadata = demo_config.parent / "archive" / "DEMO" / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    if token is not None:
        (metadata / "redcap_token").write_text(f"{token}\n")


def redcap_configs():
    from redcap.models import RedcapConfig

    return list(RedcapConfig.objects.prefetch_related("study_sites__site"))


def test_redcap_config_synced_with_defaults(demo_config):
    write_redcap_study(demo_config)

    output = run_sync(demo_config)

    (config,) = redcap_configs()
    assert config.url == "https://redcap.example.org/"
    assert config.project_id == 42
    assert config.instrument == "tigrlab_scan_completed"
    assert config.token == REDCAP_TOKEN
    assert config.record_key_field == "record_id"
    assert config.session_field == "par_id"
    assert config.date_field == "date"
    assert config.comment_field == "cmts"
    assert config.status_field == "tigrlab_scan_completed_complete"
    assert config.complete_values == ["2"]
    assert config.event_ids == {}
    assert config.api_url == ""
    assert sorted(site.site.name for site in config.study_sites.all()) == ["CMH", "UTO"]
    assert (
        "created REDCap configuration 42 tigrlab_scan_completed at https://redcap.example.org/"
        in output
    )
    assert REDCAP_TOKEN not in output


def test_redcap_rerun_unchanged(demo_config):
    write_redcap_study(demo_config)
    run_sync(demo_config)

    output = run_sync(demo_config)

    assert "created " not in output
    assert "changed " not in output.replace("0 changed", "")


def test_redcap_keys_mapped(demo_config):
    keys = REDCAP_STUDY_KEYS + (
        "RedcapApiUrl: https://redcap.example.org/api/\n"
        "RedcapSubj: session_id\n"
        "RedcapDate: scan_date\n"
        "RedcapComments: ra_notes\n"
        "RedcapStatus: scan_log_complete\n"
        "RedcapRecordKey: study_id\n"
        "RedcapStatusValue: ['1', 2]\n"
        "RedcapEventId: {baseline_arm_1: 41, followup_arm_1: '42'}\n"
    )
    write_redcap_study(demo_config, keys)

    run_sync(demo_config)

    (config,) = redcap_configs()
    assert config.api_url == "https://redcap.example.org/api/"
    assert config.session_field == "session_id"
    assert config.date_field == "scan_date"
    assert config.comment_field == "ra_notes"
    assert config.status_field == "scan_log_complete"
    assert config.record_key_field == "study_id"
    assert config.complete_values == ["1", "2"]
    assert config.event_ids == {"baseline_arm_1": 41, "followup_arm_1": 42}


def test_redcap_legacy_api_key(demo_config):
    write_redcap_study(demo_config, REDCAP_STUDY_KEYS + "RedcapApi: https://api.example.org/\n")

    run_sync(demo_config)

    assert redcap_configs()[0].api_url == "https://api.example.org/"


def test_redcap_token_change_masked(demo_config):
    write_redcap_study(demo_config)
    run_sync(demo_config)
    new_token = "FEDCBA9876543210FEDCBA9876543210"
    write_redcap_study(demo_config, token=new_token)

    output = run_sync(demo_config)

    assert (
        "changed REDCap configuration 42 tigrlab_scan_completed at https://redcap.example.org/: "
        "token '…CDEF' → '…3210'"
    ) in output
    assert new_token not in output
    assert REDCAP_TOKEN not in output
    assert redcap_configs()[0].token == new_token


def test_redcap_missing_token_file_keeps_token(demo_config):
    write_redcap_study(demo_config)
    run_sync(demo_config)
    (demo_config.parent / "archive" / "DEMO" / "metadata" / "redcap_token").unlink()

    output = run_sync(demo_config)

    assert "REDCap token file" in output
    assert "not found; the stored token was kept" in output
    assert redcap_configs()[0].token == REDCAP_TOKEN


def test_redcap_token_from_environment(demo_config, monkeypatch):
    monkeypatch.setenv("REDCAP_TOKEN", REDCAP_TOKEN.lower())
    write_redcap_study(demo_config, REDCAP_STUDY_KEYS.replace("RedcapToken: redcap_token\n", ""))

    run_sync(demo_config)

    assert redcap_configs()[0].token == REDCAP_TOKEN.lower()


def test_redcap_invalid_token_file(demo_config):
    write_redcap_study(demo_config, token="not a token")

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert "metadata/redcap_token" in message
    assert "does not contain a REDCap API token" in message
    assert "not a token" not in message
    assert Study.objects.count() == 0


def test_redcap_admin_event_ids_kept(demo_config):
    write_redcap_study(demo_config)
    run_sync(demo_config)
    config = redcap_configs()[0]
    config.event_ids = {"baseline_arm_1": 41}
    config.save()

    output = run_sync(demo_config)

    assert redcap_configs()[0].event_ids == {"baseline_arm_1": 41}
    assert "changed REDCap" not in output


def test_redcap_site_added_reported(demo_config):
    keys = "Sites:\n  CMH:\n" + "".join(f"    {line}\n" for line in REDCAP_STUDY_KEYS.splitlines())
    write_study(demo_config, STUDY_CONFIG.replace("Sites:\n  CMH:\n", keys))
    metadata = demo_config.parent / "archive" / "DEMO" / "metadata"
    metadata.mkdir(parents=True)
    (metadata / "redcap_token").write_text(REDCAP_TOKEN)
    run_sync(demo_config)
    assert [site.site.name for site in redcap_configs()[0].study_sites.all()] == ["CMH"]

    write_redcap_study(demo_config)
    output = run_sync(demo_config)

    assert "study_sites" in output
    assert sorted(site.site.name for site in redcap_configs()[0].study_sites.all()) == [
        "CMH",
        "UTO",
    ]
    assert summary_line(output).startswith("0 created, 1 changed, ")


def test_redcap_partial_keys_warn(demo_config):
    write_study(demo_config, STUDY_CONFIG + "RedcapUrl: https://redcap.example.org\n")

    output = run_sync(demo_config)

    assert (
        "site CMH of study DEMO sets RedcapUrl but not RedcapProjectId, RedcapInstrument; no "
        "REDCap configuration was synced for it"
    ) in output
    assert redcap_configs() == []


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            REDCAP_STUDY_KEYS.replace("RedcapProjectId: 42", "RedcapProjectId: forty-two"),
            "RedcapProjectId in",
        ),
        (
            REDCAP_STUDY_KEYS.replace("https://redcap.example.org", "redcap.example.org"),
            "RedcapUrl 'redcap.example.org' in",
        ),
        (REDCAP_STUDY_KEYS + "RedcapEventId: [41]\n", "RedcapEventId in"),
        (REDCAP_STUDY_KEYS + "RedcapEventId: {baseline: first}\n", "RedcapEventId.baseline in"),
        (REDCAP_STUDY_KEYS + "RedcapStatusValue: {a: 1}\n", "RedcapStatusValue in"),
    ],
    ids=["project id", "url", "event list", "event id", "status value"],
)
def test_redcap_invalid_keys(demo_config, keys, message):
    write_redcap_study(demo_config, keys)

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    assert message in str(error.value)
    assert Study.objects.count() == 0


def test_redcap_sites_disagree(demo_config):
    write_redcap_study(demo_config)
    uto_subj = "    UsesRedcap: true\n    RedcapSubj: subj\n"
    write_study(
        demo_config, STUDY_CONFIG.replace("    UsesRedcap: true\n", uto_subj) + REDCAP_STUDY_KEYS
    )

    with pytest.raises(CommandError) as error:
        run_sync(demo_config)

    message = str(error.value)
    assert "with different session_field: 'par_id' and 'subj'" in message


def test_redcap_dry_run_saves_nothing(demo_config):
    write_redcap_study(demo_config)

    output = run_sync(demo_config, dry_run=True)

    assert "created REDCap configuration" in output
    assert redcap_configs() == []
