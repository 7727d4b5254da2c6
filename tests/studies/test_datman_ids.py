"""Table-driven tests of the datman ID parser: datman, phantom, KCNI and BIDS names.

The tables hold datman's own valid and invalid examples, plus the cases where qcdash
deliberately differs from datman (phantom pattern, `XX` session, series padding, `.err`).
"""

import pytest

from studies.datman_ids import (
    DatmanId,
    IdError,
    make_filename,
    mangle_description,
    parse,
    parse_bids_filename,
    parse_filename,
    parse_kcni,
    parse_phantom,
    parse_session_id,
    parse_timepoint_id,
    to_kcni,
)

# (text, study, site, subject, timepoint, session)
VALID_IDS = [
    ("SPN01_CMH_0001_01_01", "SPN01", "CMH", "0001", "01", "01"),
    ("DTI_CMH_H001_01_02", "DTI", "CMH", "H001", "01", "02"),
    ("SPN01_CMH_0001_01", "SPN01", "CMH", "0001", "01", ""),
    # qcdash reads a literal XX as an ordinary session, but datman treats it as "no session".
    ("SPN01_CMH_0001_01_XX", "SPN01", "CMH", "0001", "01", "XX"),
    ("PRE01_CMH_0001_01R_01", "PRE01", "CMH", "0001", "01R", "01"),
    ("spn01_cmh_0001_01_01", "spn01", "cmh", "0001", "01", "01"),
    ("SPN01_CMH_0001_01_1A", "SPN01", "CMH", "0001", "01", "1A"),
    ("SPN01_CMH_0001_PHA_01", "SPN01", "CMH", "0001", "PHA", "01"),
    ("S_C_1_1_1", "S", "C", "1", "1", "1"),
    ("SPN01_CMH_PHAX_01_01", "SPN01", "CMH", "PHAX", "01", "01"),
    ("SPN01_CMH_PHA_FBN0001", "SPN01", "CMH", "PHA_FBN0001", "", ""),
    ("OPT01_UTO_PHA_FBN190603", "OPT01", "UTO", "PHA_FBN190603", "", ""),
    ("SPN01_CMH_0001_01_SE01_MR", "SPN01", "CMH", "0001", "01", "01"),
    ("ABC01_CMH_0001_01_SE01_EEG", "ABC01", "CMH", "0001", "01", "01"),
    ("SPN01_CMH_P0001_01_SE01_MR", "SPN01", "CMH", "P0001", "01", "01"),
    ("SPN01_CMH_FBNPHA_12345_MR", "SPN01", "CMH", "PHA_FBN12345", "", ""),
    ("  SPN01_CMH_0001_01_01 \n", "SPN01", "CMH", "0001", "01", "01"),
]

# (text, is_phantom, session_id)
PHANTOM_AND_SESSION_IDS = [
    ("SPN01_CMH_0001_01_01", False, "SPN01_CMH_0001_01_01"),
    ("SPN01_CMH_0001_01", False, "SPN01_CMH_0001_01"),
    ("SPN01_CMH_0001_PHA_01", False, "SPN01_CMH_0001_PHA_01"),
    # Only the full phantom pattern makes a phantom, although datman calls this one a phantom.
    ("SPN01_CMH_PHAX_01_01", False, "SPN01_CMH_PHAX_01_01"),
    ("SPN01_CMH_PHA_FBN0001", True, "SPN01_CMH_PHA_FBN0001"),
    ("OPT01_UTO_PHA_FBN190603", True, "OPT01_UTO_PHA_FBN190603"),
    ("SPN01_CMH_0001_01_SE01_MR", False, "SPN01_CMH_0001_01_01"),
    ("SPN01_CMH_FBNPHA_12345_MR", True, "SPN01_CMH_PHA_FBN12345"),
]

# (text, fragments the error message must contain: the offending part and the expected form)
INVALID_IDS = [
    ("SPN01_CMH_0001", ["3 fields", "STUDY_SITE_SUBJECT_TIMEPOINT_SESSION"]),
    ("SPN01-CMH-0001-01-01", ["'-'", "STUDY_SITE_SUBJECT_TIMEPOINT_SESSION"]),
    (
        "SPN01_CMH_0001_01_01_extra",
        ["6 fields", "session '01'", "STUDY_SITE_SUBJECT_TIMEPOINT_SE<NN>_<MODALITY>"],
    ),
    (
        "SPN01_CMH_0001_01_01_02",
        ["6 fields", "session '01'", "STUDY_SITE_SUBJECT_TIMEPOINT_SESSION"],
    ),
    ("SPN01_CMH_0001_01_SE", ["session 'SE'", "SPN01_CMH_0001_01_01"]),
    ("SPN01_CMH_0001_01_SE01", ["session 'SE01'", "SPN01_CMH_0001_01_01"]),
    ("SPN01_CMH_0001_01_MRI", ["session 'MRI'", "SPN01_CMH_0001_01_01"]),
    ("SPN01_CMH_0001_01_01_MR", ["session '01'", "SE and 2 digits"]),
    ("SPN01_CMH_0001_01_SE1_MR", ["session 'SE1'", "SE and 2 digits"]),
    ("spn01_cmh_0001_01_se01_mr", ["study 'spn01'", "upper case"]),
    ("ABC1_CMH_0001_01_SE01_MR", ["study 'ABC1'", "3 upper-case letters and 2 digits"]),
    ("ABC01_CMH_001_01_SE01_MR", ["subject '001'", "4 to 8"]),
    ("ABC01_CMH_123456789_01_SE01_MR", ["subject '123456789'", "4 to 8"]),
    ("ABC01_CMH_0001_1_SE01_MR", ["timepoint '1'", "2 digits"]),
    (
        "ABC01_CMH_LEGPHA_0001",
        ["subject 'LEGPHA' ends in 'PHA'", "ABC01_CMH_LEGPHA_0001_MR", "ABC01_CMH_PHA_LEG0001"],
    ),
    ("SPN01_CMH_PHA_FBN001", ["'FBN001'", "4 to 6 digits"]),
    ("SPN01_CMH_PHA_FBN1234567", ["'FBN1234567'", "4 to 6 digits"]),
    ("SPN01_CMH_PHA_fbn0001", ["'fbn0001'", "upper-case"]),
    ("SPN01_CMH_PHA_01_01", ["subject 'PHA'", "STUDY_SITE_PHA_<TYPE><NUMBER>"]),
    (
        "SPN01_CMH_PHA_FBN0001_01_01",
        ["subject 'PHA'", "no timepoint or session", "SPN01_CMH_PHA_FBN0001."],
    ),
    (
        "SPN01_CMH_LEGPHA_01_01",
        ["subject 'LEGPHA' ends in 'PHA'", "phantom number '01'", "4 to 6 digits"],
    ),
    (
        "STUDY_SITE_0001_TIMEPOINT_SESSION_TAG_SERIESNUM_DESCR",
        ["8 fields", "STUDY_SITE_SUBJECT_TIMEPOINT_SESSION"],
    ),
    ("SPN01__0001_01_01", ["empty field"]),
    ("SPN01_CMH 0001_01_01", ["whitespace"]),
    ("", ["empty"]),
    ("   ", ["empty"]),
    (None, ["None", "empty"]),
]

# (KCNI ID, IdMap, datman form, XNAT subject label)
KCNI_MAPPINGS = [
    ("SPN01_CMH_0001_01_SE01_MR", None, "SPN01_CMH_0001_01_01", "SPN01_CMH_0001"),
    ("ABC01_CMH_LEGPHA_0001_MR", None, "ABC01_CMH_PHA_LEG0001", "ABC01_CMH_LEGPHA"),
    (
        "ABC01_UTO_12345678_01_SE02_MR",
        {"Site": {"UTO": "UT2"}},
        "ABC01_UT2_12345678_01_02",
        "ABC01_UTO_12345678",
    ),
    (
        "STU01_UTO_10001_01_SE01_MR",
        {
            "Study": {"STU01": "STUDY1"},
            "Site": {"UTO": "UT2"},
            "Subject": {r"1(P?[0-9]+)->ABC\1": r"ABC(P?[0-9]+)->1\1"},
        },
        "STUDY1_UT2_ABC0001_01_01",
        "STU01_UTO_10001",
    ),
]

# (datman ID, KCNI form): datman to KCNI pads a numeric subject to 4 digits.
DATMAN_TO_KCNI = [
    ("SPN01_CMH_1_01_02", "SPN01_CMH_0001_01_SE02_MR"),
    ("OPT01_UTO_PHA_FBN190603", "OPT01_UTO_FBNPHA_190603_MR"),
    ("SPN01_CMH_0001_01_01", "SPN01_CMH_0001_01_SE01_MR"),
]

# (KCNI ID, fragments of the error message)
INVALID_KCNI_IDS = [
    ("SPN01_CMH_0001_01", ["4 fields", "STUDY_SITE_SUBJECT_TIMEPOINT_SE<NN>_<MODALITY>"]),
    ("ABC01_CMH_LEGPHA_0001", ["4 fields", "STUDY_SITE_<TYPE>PHA_<NUMBER>_<MODALITY>"]),
    ("SPN01_CMH_FBNPHA_12345_mr", ["modality 'mr'", "upper case"]),
    ("SPN01_CMH_FBNPHA_123_MR", ["phantom number '123'", "4 to 6 digits"]),
    ("SPN01_CM_0001_01_SE01_MR", ["site 'CM'", "3 upper-case letters"]),
    ("SPN01_CMH_0001_01_SE01_M", ["modality 'M'", "2 to 4 upper-case letters"]),
    ("", ["empty"]),
]

# (file name, session ID, tag, series, description, extension, scan name)
VALID_FILENAMES = [
    (
        "STUDY_SITE_0001_01_01_T1_02_SagT1Bravo.nii.gz",
        "STUDY_SITE_0001_01_01",
        "T1",
        "02",
        "SagT1Bravo",
        ".nii.gz",
        "STUDY_SITE_0001_01_01_T1_02",
    ),
    (
        "STUDY_SITE_0001_01_01_T1_2_Sag",
        "STUDY_SITE_0001_01_01",
        "T1",
        "2",
        "Sag",
        "",
        "STUDY_SITE_0001_01_01_T1_02",
    ),
    (
        "STUDY_SITE_0001_01_01_T1_02_",
        "STUDY_SITE_0001_01_01",
        "T1",
        "02",
        "",
        "",
        "STUDY_SITE_0001_01_01_T1_02",
    ),
    (
        "STUDY_SITE_0001_01_01_MAG1_05_field_ECHO-1.nii.gz",
        "STUDY_SITE_0001_01_01",
        "MAG1",
        "05",
        "field_ECHO-1",
        ".nii.gz",
        "STUDY_SITE_0001_01_01_MAG1_05",
    ),
    (
        "SPN01_MRC_PHA_FBN0013_RST_04_EPI-3x3x4xTR2.nii.gz",
        "SPN01_MRC_PHA_FBN0013",
        "RST",
        "04",
        "EPI-3x3x4xTR2",
        ".nii.gz",
        "SPN01_MRC_PHA_FBN0013_RST_04",
    ),
    (
        "STUDY_SITE_0001_01_01_T1_02_SagT1Bravo_manifest.json",
        "STUDY_SITE_0001_01_01",
        "T1",
        "02",
        "SagT1Bravo_manifest",
        ".json",
        "STUDY_SITE_0001_01_01_T1_02",
    ),
    # datman swallows `.err` into the description, but qcdash splits it off as an extension.
    (
        "STUDY_SITE_0001_01_01_T1_02_SagT1Bravo_niix.err",
        "STUDY_SITE_0001_01_01",
        "T1",
        "02",
        "SagT1Bravo_niix",
        ".err",
        "STUDY_SITE_0001_01_01_T1_02",
    ),
    (
        "STUDY_SITE_0001_01_01_DTI60-1000_05_Ax-DTI-60+5.bvec",
        "STUDY_SITE_0001_01_01",
        "DTI60-1000",
        "05",
        "Ax-DTI-60+5",
        ".bvec",
        "STUDY_SITE_0001_01_01_DTI60-1000_05",
    ),
    (
        "STUDY_SITE_0001_01_01_FMAP-6.5_11_TE65.nii",
        "STUDY_SITE_0001_01_01",
        "FMAP-6.5",
        "11",
        "TE65",
        ".nii",
        "STUDY_SITE_0001_01_01_FMAP-6.5_11",
    ),
    (
        "STUDY_SITE_0001_01_01_PHABCD_03_x",
        "STUDY_SITE_0001_01_01",
        "PHABCD",
        "03",
        "x",
        "",
        "STUDY_SITE_0001_01_01_PHABCD_03",
    ),
    (
        "STUDY_SITE_0001_01_01_ABCMR_03_x",
        "STUDY_SITE_0001_01_01",
        "ABCMR",
        "03",
        "x",
        "",
        "STUDY_SITE_0001_01_01_ABCMR_03",
    ),
    (
        "STUDY_SITE_0001_01_01_SEABC_03_x",
        "STUDY_SITE_0001_01_01",
        "SEABC",
        "03",
        "x",
        "",
        "STUDY_SITE_0001_01_01_SEABC_03",
    ),
]

# (file name, fragments of the error message)
INVALID_FILENAMES = [
    (
        "STUDY_SITE_0001_01_01_T1_02",
        ["no description after the series '02'", "STUDY_SITE_0001_01_01_T1_02_"],
    ),
    ("STUDY_SITE_0001_01_01_T1_XX_Sag", ["series 'XX'", "STUDY_SITE_0001_01_01_T1_<SERIES>_Sag"]),
    (
        "SPN01_CMH_0001_01_T1_02_Sag",
        ["timepoint ID 'SPN01_CMH_0001_01'", "SPN01_CMH_0001_01_01_T1_02_Sag"],
    ),
    (
        "STUDY_SITE_0001_TIMEPOINT_SESSION_TAG_SERIESNUM_DESCR",
        ["session 'SESSION'", "STUDY_SITE_0001_TIMEPOINT_01"],
    ),
    ("STUDY_SITE_0001_01_1A_T1_02_Sag", ["non-numeric session '1A'", "STUDY_SITE_0001_01_01"]),
    ("T1_02_Sag.nii.gz", ["too few", "<SESSION ID>_<TAG>_<SERIES>_<DESCRIPTION>"]),
    ("", ["empty"]),
    (None, ["None", "empty"]),
]

# (BIDS file name, subject, session, entities, suffix, normalised string)
VALID_BIDS_NAMES = [
    ("sub-CMH0001_ses-01_T1w.nii.gz", "CMH0001", "01", {}, "T1w", "sub-CMH0001_ses-01_run-1_T1w"),
    (
        "sub-CMH0001_ses-01_run-1_T1w.json",
        "CMH0001",
        "01",
        {"run": "1"},
        "T1w",
        "sub-CMH0001_ses-01_run-1_T1w",
    ),
    (
        "sub-CMH0001_ses-01R_task-rest_acq-mb_dir-AP_run-2_echo-1_bold.nii.gz",
        "CMH0001",
        "01R",
        {"task": "rest", "acq": "mb", "dir": "AP", "run": "2", "echo": "1"},
        "bold",
        "sub-CMH0001_ses-01R_task-rest_acq-mb_dir-AP_run-2_echo-1_bold",
    ),
    (
        "bids/sub-UT2ABC0001/ses-01/dwi/sub-UT2ABC0001_ses-01_acq-60_dwi.bval",
        "UT2ABC0001",
        "01",
        {"acq": "60"},
        "dwi",
        "sub-UT2ABC0001_ses-01_acq-60_run-1_dwi",
    ),
    (
        "sub-CMH0001_ses-01_ce-gad_rec-norm_run-1_mod-T1w_defacemask.nii.gz",
        "CMH0001",
        "01",
        {"ce": "gad", "rec": "norm", "run": "1", "mod": "T1w"},
        "defacemask",
        "sub-CMH0001_ses-01_ce-gad_rec-norm_run-1_mod-T1w_defacemask",
    ),
]

# (BIDS file name, fragments of the error message)
INVALID_BIDS_NAMES = [
    ("sub-CMH0001_ses-01_part-mag_T1w.nii.gz", ["entity 'part-mag'", "task, acq, ce"]),
    ("sub-CMH0001_ses-01_inv-1_MP2RAGE.nii.gz", ["entity 'inv-1'", "task, acq, ce"]),
    ("sub-CMH0001_ses-01_flip-2_MP2RAGE.nii.gz", ["entity 'flip-2'", "task, acq, ce"]),
    ("sub-cmh0001_ses-01_T1w.nii.gz", ["subject label 'cmh0001'", "sub-CMH0001"]),
    (
        "sub-CMH0001_ses-01_rec-norm_dir-AP_epi.nii.gz",
        ["entity 'dir' comes after 'rec'", "task, acq, ce, dir, rec, run, echo, mod"],
    ),
    ("sub-CMH0001_ses-01_run-1_task-rest_bold.nii.gz", ["entity 'task' comes after 'run'"]),
    ("sub-CMH0001_ses-01_T1w_run-1.nii", ["ends in 'run-1'", "T1w"]),
    ("sub-CMH0001_ses-01_run-_T1w.nii", ["entity 'run' has no value", "run-1"]),
    ("sub-CMH0001_ses-0.1_T1w.nii", ["session label '0.1'", "ses-01"]),
    ("CMH0001_01_T1w.nii.gz", ["sub-<LABEL>_ses-<LABEL>", "sub-CMH0001_ses-01_T1w.nii.gz"]),
    ("", ["empty"]),
]


def assert_message_contains(error, fragments):
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


@pytest.mark.parametrize(("text", "study", "site", "subject", "timepoint", "session"), VALID_IDS)
def test_parse_valid_id(text, study, site, subject, timepoint, session):
    ident = parse(text)

    assert ident.study == study
    assert ident.site == site
    assert ident.subject == subject
    assert ident.timepoint == timepoint
    assert ident.session == session


@pytest.mark.parametrize(("text", "is_phantom", "session_id"), PHANTOM_AND_SESSION_IDS)
def test_parse_phantom_and_session_id(text, is_phantom, session_id):
    ident = parse(text)

    assert ident.is_phantom is is_phantom
    assert ident.session_id == session_id


@pytest.mark.parametrize(("text", "fragments"), INVALID_IDS)
def test_parse_invalid_id(text, fragments):
    with pytest.raises(IdError) as error:
        parse(text)

    assert_message_contains(error, fragments)


def test_phantom_pattern_decides_phantom():
    ident = parse("SPN01_CMH_PHAX_01_01")

    assert not ident.is_phantom
    assert ident.timepoint_id == "SPN01_CMH_PHAX_01"
    assert ident.session_number == 1
    assert ident.bids_subject == "CMHPHAX"


def test_phantom_derived_forms():
    ident = parse("SPN01_CMH_PHA_FBN0001")

    assert ident.timepoint_id == "SPN01_CMH_PHA_FBN0001"
    assert ident.session_number == 1
    assert ident.bids_subject == ""
    assert ident.bids_session == ""


def test_parse_phantom_rejects_human_id():
    with pytest.raises(IdError) as error:
        parse_phantom("SPN01_CMH_0001_01")

    assert_message_contains(error, ["'SPN01_CMH_0001_01'", "STUDY_SITE_PHA_<TYPE><NUMBER>"])


def test_xx_session_is_ordinary():
    ident = parse("SPN01_CMH_0001_01_XX")

    assert ident.session == "XX"
    assert ident.session_id == "SPN01_CMH_0001_01_XX"
    with pytest.raises(IdError) as error:
        _ = ident.session_number
    assert_message_contains(error, ["non-numeric session 'XX'", "SPN01_CMH_0001_01_01"])


def test_session_number_non_numeric():
    with pytest.raises(IdError) as error:
        _ = parse("SPN01_CMH_0001_01_1A").session_number

    assert_message_contains(error, ["non-numeric session '1A'", "SPN01_CMH_0001_01_01"])


def test_session_number_rejects_unicode_digits():
    # '²' passes str.isdigit() but int() rejects it, and the error must still be an IdError.
    with pytest.raises(IdError) as error:
        _ = parse("SPN01_CMH_0001_01_²").session_number

    assert_message_contains(error, ["non-numeric session '²'"])


def test_session_number_missing():
    with pytest.raises(IdError) as error:
        _ = parse("SPN01_CMH_0001_01").session_number

    assert_message_contains(error, ["no session number", "SPN01_CMH_0001_01_01"])


def test_lower_case_id_parses():
    ident = parse("spn01_cmh_0001_01_01")

    assert ident.session_id == "spn01_cmh_0001_01_01"
    assert str(ident.upper()) == "SPN01_CMH_0001_01_01"


def test_timepoint_id_and_bids_labels():
    ident = parse("PRE01_CMH_0001_01R_02")

    assert ident.subject_id == "PRE01_CMH_0001"
    assert ident.timepoint_id == "PRE01_CMH_0001_01R"
    assert ident.session_number == 2
    assert ident.bids_subject == "CMH0001"
    assert ident.bids_session == "01R"


def test_parse_session_id_rejects_timepoint_id():
    with pytest.raises(IdError) as error:
        parse_session_id("SPN01_CMH_0001_01")

    assert_message_contains(error, ["is a timepoint ID", "SPN01_CMH_0001_01_01"])


def test_parse_session_id_rejects_non_numeric_session():
    with pytest.raises(IdError) as error:
        parse_session_id("SPN01_CMH_0001_01_XX")

    assert_message_contains(error, ["non-numeric session 'XX'"])


def test_parse_session_id_accepts_phantom():
    ident = parse_session_id("SPN01_CMH_PHA_FBN0001")

    assert ident.is_phantom
    assert ident.session_id == "SPN01_CMH_PHA_FBN0001"


def test_parse_timepoint_id_rejects_session_id():
    with pytest.raises(IdError) as error:
        parse_timepoint_id("SPN01_CMH_0001_01_02")

    assert_message_contains(error, ["is a session ID", "SPN01_CMH_0001_01."])


def test_parse_timepoint_id_accepts_timepoint():
    assert parse_timepoint_id("SPN01_CMH_0001_01").timepoint_id == "SPN01_CMH_0001_01"


@pytest.mark.parametrize(("text", "id_map", "datman_id", "xnat_subject"), KCNI_MAPPINGS)
def test_parse_kcni_mapping(text, id_map, datman_id, xnat_subject):
    kcni = parse_kcni(text, id_map)

    assert kcni.datman.session_id == datman_id
    assert kcni.xnat_subject_id == xnat_subject
    assert kcni.original == text


@pytest.mark.parametrize(("text", "id_map", "datman_id", "xnat_subject"), KCNI_MAPPINGS)
def test_to_kcni_inverts_mapping(text, id_map, datman_id, xnat_subject):
    assert to_kcni(parse(datman_id), id_map) == text


def test_kcni_mapping_bids_subject():
    kcni = parse_kcni("STU01_UTO_10001_01_SE01_MR", KCNI_MAPPINGS[3][1])

    assert kcni.datman.bids_subject == "UT2ABC0001"
    assert kcni.modality == "MR"


def test_kcni_modality_kept():
    assert parse_kcni("ABC01_CMH_0001_01_SE01_EEG").modality == "EEG"


@pytest.mark.parametrize(("datman_id", "kcni_id"), DATMAN_TO_KCNI)
def test_to_kcni(datman_id, kcni_id):
    assert to_kcni(parse(datman_id)) == kcni_id


def test_to_kcni_rejects_timepoint_id():
    with pytest.raises(IdError) as error:
        to_kcni(parse("SPN01_CMH_0001_01"))

    assert_message_contains(error, ["no session number", "SPN01_CMH_0001_01_01"])


@pytest.mark.parametrize(("text", "fragments"), INVALID_KCNI_IDS)
def test_parse_kcni_invalid(text, fragments):
    with pytest.raises(IdError) as error:
        parse_kcni(text)

    assert_message_contains(error, fragments)


@pytest.mark.parametrize(
    ("name", "session_id", "tag", "series", "description", "extension", "scan_name"),
    VALID_FILENAMES,
)
def test_parse_filename_valid(name, session_id, tag, series, description, extension, scan_name):
    parsed = parse_filename(name)

    assert parsed.ident.session_id == session_id
    assert parsed.tag == tag
    assert parsed.series == series
    assert parsed.description == description
    assert parsed.extension == extension
    assert parsed.scan_name == scan_name


@pytest.mark.parametrize(("name", "fragments"), INVALID_FILENAMES)
def test_parse_filename_invalid(name, fragments):
    with pytest.raises(IdError) as error:
        parse_filename(name)

    assert_message_contains(error, fragments)


def test_series_padding_gives_same_scan_name():
    padded = parse_filename("STUDY_SITE_0001_01_01_T1_02_Sag.nii.gz")
    unpadded = parse_filename("STUDY_SITE_0001_01_01_T1_2_Sag.nii.gz")

    assert unpadded.scan_name == padded.scan_name
    assert unpadded.stem == padded.stem
    assert unpadded.series_number == 2


def test_err_is_known_extension():
    parsed = parse_filename("STUDY_SITE_0001_01_01_T1_02_SagT1Bravo.err")

    assert parsed.extension == ".err"
    assert parsed.description == "SagT1Bravo"
    assert parsed.stem == "STUDY_SITE_0001_01_01_T1_02_SagT1Bravo"


def test_make_filename_round_trip():
    ident = parse("SPN01_CMH_0001_01_01")

    name = make_filename(ident, "DTI60-1000", 5, "Ax DTI 60+5/ASSET", ".nii.gz")

    assert name == "SPN01_CMH_0001_01_01_DTI60-1000_05_Ax-DTI-60+5-ASSET.nii.gz"
    assert parse_filename(name).scan_name == "SPN01_CMH_0001_01_01_DTI60-1000_05"


def test_mangle_description_keeps_dot_and_plus():
    assert mangle_description("Sag T1.1 (BRAVO)+") == "Sag-T1.1-BRAVO-+"


@pytest.mark.parametrize(
    ("name", "subject", "session", "entities", "suffix", "normalised"), VALID_BIDS_NAMES
)
def test_parse_bids_filename_valid(name, subject, session, entities, suffix, normalised):
    parsed = parse_bids_filename(name)

    assert parsed.subject == subject
    assert parsed.session == session
    assert parsed.entities == entities
    assert parsed.suffix == suffix
    assert str(parsed) == normalised


@pytest.mark.parametrize(("name", "fragments"), INVALID_BIDS_NAMES)
def test_parse_bids_filename_invalid(name, fragments):
    with pytest.raises(IdError) as error:
        parse_bids_filename(name)

    assert_message_contains(error, fragments)


def test_datman_id_str_is_session_id():
    assert str(DatmanId("SPN01", "CMH", "0001", "01", "02")) == "SPN01_CMH_0001_01_02"
