"""The header comparison on real dcm2niix sidecars with datman's real settings, and its rules
on small hand-made headers."""

import copy
import json

import pytest
import yaml

from qc.compliance import (
    BVAL_FIELD,
    ComparisonSettings,
    HeaderDiffStatus,
    compare_headers,
    converter_version,
    deviating_fields,
    diff_rows,
    parse_bvals,
    values_match,
)

EYETRACKING = "bids-examples/eyetracking_fmri/sub-01/ses-01"
REST_RUN_01 = f"{EYETRACKING}/func/sub-01_ses-01_task-rest_run-01_bold.json"
REST_RUN_02 = f"{EYETRACKING}/func/sub-01_ses-01_task-rest_run-02_bold.json"
EPI_AP = f"{EYETRACKING}/fmap/sub-01_ses-01_dir-AP_epi.json"
EPI_PA = f"{EYETRACKING}/fmap/sub-01_ses-01_dir-PA_epi.json"
FIELDMAP = f"{EYETRACKING}/fmap/sub-01_ses-01_fieldmap.json"
GRE = "dcm2bids/tests/data/sidecars/010_gre_field_mapping_20100603125600"
PHASEDIFF = "bids-examples/7t_trt/sub-01/ses-1/fmap/sub-01_ses-1_run-1_phasediff.json"
T1_2020 = f"{EYETRACKING}/anat/sub-01_ses-01_T1w.json"
T1_2021 = "bids-examples/2d_mb_pcasl/sub-1/anat/sub-1_T1w.json"
BOLD_2010 = "dcm2bids/tests/data/sidecars/002_ep2d_bold_20100603125600.json"
BVECS = "datman/history/tests/fixture_dm-check-bvecs"
GOLD_BVAL = (
    f"{BVECS}/gold-standards/DTI60-1000/"
    "SPN01_CMH_PHA_FBN0000_DTI60-1000_04_Ax-DTI-60+5-NOASSET.bval"
)
MATCHING_BVAL = (
    f"{BVECS}/data/nii/SPN01_CMH_PHA_FBN0001/"
    "SPN01_CMH_PHA_FBN0001_DTI60-1000_04_Ax-DTI-60-5-NOASSET.bval"
)
TRUNCATED_BVAL = (
    f"{BVECS}/data/nii/SPN01_CMH_PHA_FBN0000/"
    "SPN01_CMH_PHA_FBN0000_DTI60-1000_04_Ax-DTI-60+5-NOASSET-incomplete.bval"
)

REAL_IGNORED = {
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
}
REAL_TOLERANCES = {
    "ImagingFrequency": 1,
    "EchoTime": 0.005,
    "RepetitionTime": 1,
    "SpacingBetweenSlices": 4,
    "SliceTiming": 0.0026,
    "TotalReadoutTime": 0.001,
}


@pytest.fixture
def read(real_fixtures):
    def read_json(relative):
        return json.loads((real_fixtures / relative).read_text())

    return read_json


@pytest.fixture
def real_settings(real_fixtures):
    """datman's ignore list and tolerances, read from its real test config."""
    main = yaml.safe_load(
        (real_fixtures / "datman/tests/fixture_project_settings/site_config.yaml").read_text()
    )
    study = yaml.safe_load(
        (real_fixtures / "datman/tests/fixture_project_settings/study_settings.yaml").read_text()
    )
    assert "IgnoreHeaderFields" not in study
    return ComparisonSettings.merge(
        (main["IgnoreHeaderFields"], main["HeaderFieldTolerance"]),
        (study.get("IgnoreHeaderFields"), study.get("HeaderFieldTolerance")),
    )


# Real sidecars with datman's settings


def test_real_settings_are_the_documented_ones(real_settings):
    assert real_settings.ignored_fields == REAL_IGNORED
    assert real_settings.tolerances == REAL_TOLERANCES


def test_rest_run_02_differs_in_phase_encoding(read, real_settings):
    result = compare_headers(read(REST_RUN_02), read(REST_RUN_01), real_settings)

    assert result.diff["fields"] == {
        "PhaseEncodingDirection": {"expected": "j-", "actual": "j", "tolerance": None}
    }
    assert result.diff["missing"] == []
    assert result.diff["problems"] == []
    assert "bval" not in result.diff
    assert result.status == HeaderDiffStatus.MISMATCH


def test_epi_pa_differs_from_ap(read, real_settings):
    result = compare_headers(read(EPI_PA), read(EPI_AP), real_settings)

    assert result.diff["fields"] == {
        "PhaseEncodingDirection": {"expected": "j-", "actual": "j", "tolerance": None}
    }
    assert result.diff["missing"] == []


def test_fieldmap_matches_ap(read, real_settings):
    # The fieldmap has one field more than the AP file; extra scan fields are not deviations.
    fieldmap, epi_ap = read(FIELDMAP), read(EPI_AP)
    assert set(fieldmap) - set(epi_ap)

    result = compare_headers(fieldmap, epi_ap, real_settings)

    assert result.diff == {"fields": {}, "missing": [], "problems": []}
    assert result.status == HeaderDiffStatus.MATCH
    assert result.deviating_fields == []


def test_gre_echo_2_against_echo_1(read, real_settings):
    result = compare_headers(read(f"{GRE}_e2.json"), read(f"{GRE}_e1.json"), real_settings)

    assert result.diff["fields"] == {
        "EchoTest": {"expected": 1, "actual": 2, "tolerance": None},
        "EchoNumber": {"expected": 1, "actual": 2, "tolerance": None},
    }
    # The 2.46 ms EchoTime change is within the 5 ms tolerance.
    assert "EchoTime" not in result.diff["fields"]
    assert result.diff["missing"] == ["PhaseEncodingDirection"]
    assert result.deviating_fields == ["EchoTest", "EchoNumber", "PhaseEncodingDirection"]


def test_gre_echo_time_differs_without_tolerance(read):
    result = compare_headers(read(f"{GRE}_e2.json"), read(f"{GRE}_e1.json"))

    assert result.diff["fields"]["EchoTime"] == {
        "expected": 0.00492,
        "actual": 0.00738,
        "tolerance": None,
    }


def test_minimal_sidecar_lists_every_field_missing(read, real_settings):
    standard = read(REST_RUN_01)
    result = compare_headers(read(PHASEDIFF), standard, real_settings)

    expected_missing = [name for name in standard if name not in REAL_IGNORED]
    assert result.diff["missing"] == expected_missing
    assert len(result.diff["missing"]) > 40
    assert result.diff["fields"] == {}
    assert result.status == HeaderDiffStatus.MISMATCH


def test_without_ignore_list_six_fields_differ(read):
    result = compare_headers(read(REST_RUN_02), read(REST_RUN_01))

    assert sorted(result.diff["fields"]) == [
        "AcquisitionTime",
        "PhaseEncodingDirection",
        "ProtocolName",
        "SeriesDescription",
        "SeriesNumber",
        "WipMemBlock",
    ]


def test_standard_not_mutated(read, real_settings):
    standard = read(REST_RUN_01)
    original = copy.deepcopy(standard)

    compare_headers(read(REST_RUN_02), standard, real_settings)

    assert standard == original


def test_dwi_bvals_match_gold_standard(real_fixtures):
    gold = parse_bvals((real_fixtures / GOLD_BVAL).read_text())
    series = parse_bvals((real_fixtures / MATCHING_BVAL).read_text())
    # The gold file ends its line with a space; the comparison ignores that.
    assert (real_fixtures / GOLD_BVAL).read_text().rstrip("\n").endswith(" ")

    result = compare_headers({}, {}, check_bvals=True, standard_bvals=gold, scan_bvals=series)

    assert len(gold) == 65
    assert result.diff["bval"] == {"expected": gold, "actual": series, "match": True}
    assert result.status == HeaderDiffStatus.MATCH


def test_truncated_dwi_bvals_mismatch(real_fixtures):
    gold = parse_bvals((real_fixtures / GOLD_BVAL).read_text())
    truncated = parse_bvals((real_fixtures / TRUNCATED_BVAL).read_text())

    result = compare_headers({}, {}, check_bvals=True, standard_bvals=gold, scan_bvals=truncated)

    assert len(truncated) == 60
    assert result.diff["bval"]["match"] is False
    assert result.status == HeaderDiffStatus.MISMATCH
    assert result.deviating_fields == [BVAL_FIELD]
    row = diff_rows(result.diff)[0]
    assert row.kind == "bval"
    assert row.detail == "60 items instead of 65"


def test_missing_scan_bval_is_a_problem():
    result = compare_headers(
        {},
        {},
        check_bvals=True,
        standard_bvals=[0, 1000],
        scan_bvals=None,
        scan_bval_problem="data/nii/X/x.bval does not exist",
    )

    assert result.status == HeaderDiffStatus.ERROR
    assert result.diff["problems"] == ["data/nii/X/x.bval does not exist"]
    assert result.diff["bval"] == {"expected": [0, 1000], "actual": None, "match": False}


def test_standard_without_bvals_is_a_problem():
    result = compare_headers({}, {}, check_bvals=True, standard_bvals=None, scan_bvals=[0])

    assert result.status == HeaderDiffStatus.ERROR
    assert "gold standard has no b-values" in result.diff["problems"][0]


def test_converter_versions(read):
    assert converter_version(read(T1_2020)) == "dcm2niix - v1.0.20200427"
    assert converter_version(read(T1_2021)) == "dcm2niix - v1.0.20211006"
    assert converter_version(read(BOLD_2010)) == ("Name Not Available - Version Not Available")
    assert converter_version({"ConversionSoftware": "dcm2niix"}) == (
        "dcm2niix - Version Not Available"
    )
    assert converter_version(None) == "Name Not Available - Version Not Available"


# Comparison rules


@pytest.mark.parametrize(
    ("expected", "actual", "tolerance", "matches"),
    [
        (0.03, 0.030001, None, False),
        (0.03, 0.030001, 0.0001, True),
        (0.03, 0.0301, 0.0001, True),  # on the bound: inclusive
        (1.0, 1.1, 0.1, True),  # on the bound despite float rounding
        (0.03, 0.0302, 0.0001, False),
        (2, 2.0, None, True),
        (True, 1, None, False),
        (1, True, 0.5, False),
        ("0.03", 0.03, None, False),
        ([1, 2, 3], [1.0, 2.0, 3.0], None, True),
        ([0.1, 0.2], [0.1001, 0.2001], 0.0001, True),
        ([0.1, 0.2], [0.1001, 0.2002], 0.0001, False),
        ([1, 2], [1, 2, 3], None, False),
        ([1, 2], [1, 2, 3], 10, False),
        (["ORIGINAL", "PRIMARY"], ["ORIGINAL", "PRIMARY"], None, True),
        (None, None, None, True),
        (None, 0, None, False),
    ],
)
def test_values_match(expected, actual, tolerance, matches):
    assert values_match(expected, actual, tolerance) is matches


def test_echo_time_with_and_without_tolerance():
    standard, scan = {"EchoTime": 0.03}, {"EchoTime": 0.030001}

    exact = compare_headers(scan, standard)
    tolerant = compare_headers(scan, standard, ComparisonSettings(tolerances={"EchoTime": 0.0001}))

    assert exact.diff["fields"] == {
        "EchoTime": {"expected": 0.03, "actual": 0.030001, "tolerance": None}
    }
    assert tolerant.diff["fields"] == {}
    assert tolerant.status == HeaderDiffStatus.MATCH


def test_tolerance_reported_when_exceeded():
    settings = ComparisonSettings(tolerances={"EchoTime": 0.0001})

    result = compare_headers({"EchoTime": 0.031}, {"EchoTime": 0.03}, settings)

    assert result.diff["fields"]["EchoTime"]["tolerance"] == 0.0001


def test_integer_equals_float():
    result = compare_headers({"EchoNumber": 2.0}, {"EchoNumber": 2})

    assert result.status == HeaderDiffStatus.MATCH


def test_tolerance_on_text_field_is_a_warning():
    settings = ComparisonSettings(tolerances={"SeriesDescription": 0.1})

    result = compare_headers(
        {"SeriesDescription": "Sag T1 v2"}, {"SeriesDescription": "Sag T1"}, settings
    )

    assert result.status == HeaderDiffStatus.MISMATCH
    assert result.diff["fields"]["SeriesDescription"]["actual"] == "Sag T1 v2"
    assert len(result.warnings) == 1
    assert "SeriesDescription" in result.warnings[0]
    assert "compared exactly" in result.warnings[0]
    assert result.diff["problems"] == result.warnings


def test_invalid_tolerance_value_is_a_warning():
    settings = ComparisonSettings(tolerances={"EchoTime": "small"})

    result = compare_headers({"EchoTime": 0.03}, {"EchoTime": 0.03}, settings)

    assert result.status == HeaderDiffStatus.MATCH
    assert "'small'" in result.warnings[0]


def test_ignored_fields_skipped_on_both_sides():
    settings = ComparisonSettings(ignored_fields=frozenset({"SeriesNumber", "AcquisitionTime"}))

    result = compare_headers(
        {"SeriesNumber": 3}, {"SeriesNumber": 2, "AcquisitionTime": "x"}, settings
    )

    assert result.diff == {"fields": {}, "missing": [], "problems": []}


def test_scan_without_sidecar_is_an_error():
    result = compare_headers(None, {"EchoTime": 0.03})

    assert result.status == HeaderDiffStatus.ERROR
    assert "no readable JSON sidecar" in result.diff["problems"][0]


def test_settings_merge_unions_lists_and_overrides_tolerances():
    merged = ComparisonSettings.merge(
        (["SeriesNumber"], {"EchoTime": 0.005, "RepetitionTime": 1}),
        None,
        (["AcquisitionTime"], {"EchoTime": 0.001}),
    )

    assert merged.ignored_fields == {"SeriesNumber", "AcquisitionTime"}
    assert merged.tolerances == {"EchoTime": 0.001, "RepetitionTime": 1}


def test_settings_json_is_order_independent():
    first = ComparisonSettings(frozenset({"B", "A"}), {"Y": 1, "X": 2})
    second = ComparisonSettings(frozenset({"A", "B"}), {"X": 2, "Y": 1})

    assert first.as_json() == second.as_json()


def test_list_detail_names_first_differing_item():
    standard = {"SliceTiming": [0.0, 0.1, 0.2, 0.3]}
    scan = {"SliceTiming": [0.0, 0.1, 0.25, 0.35]}

    rows = diff_rows(compare_headers(scan, standard).diff)

    assert rows[0].detail == "2 of 4 items differ, the first is item 3"


def test_deviating_fields_of_empty_diff():
    assert deviating_fields({}) == []
    assert deviating_fields(None) == []


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("0 1000 1000 \n", [0, 1000, 1000]),
        ("0\t1000\n1000\r\n", [0, 1000, 1000]),
        ("0 1000.0 2.5e3", [0, 1000.0, 2500]),
    ],
)
def test_parse_bvals(text, values):
    assert parse_bvals(text) == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no b-values"),
        ("0 1000 abc", "value 3 ('abc') is not a number"),
        ("0 nan", "value 2 ('nan') is not a finite number"),
    ],
)
def test_parse_bvals_invalid(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_bvals(text)
