"""export_qc: datman's formats read back with datman's rules, CSV, JSON and the table."""

import csv
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from qc import exports
from qc.models import QCState
from studies.datman_ids import IdError, parse_filename
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def read_datman_blacklist(text):
    """datman's blacklist reader: split each line on commas and whitespace; the first token
    must parse as a full file stem (with description) or the line is ignored; the other tokens
    joined by single spaces are the comment; the first line of a stem wins."""
    entries = {}
    for line in text.splitlines():
        tokens = [token for token in re.split(r"[,\s]+", line.strip()) if token]
        if not tokens:
            continue
        try:
            parse_filename(tokens[0])
        except IdError:
            continue
        entries.setdefault(tokens[0], " ".join(tokens[1:]))
    return entries


def read_datman_checklist(text):
    """datman's checklist reader: `qc_<ID>.html <comment>`; an empty comment is not reviewed."""
    entries = {}
    for line in text.splitlines():
        tokens = line.split()
        if not tokens:
            continue
        match = re.fullmatch(r"qc_(.+)\.(?:html|pdf)", tokens[0])
        if match:
            entries.setdefault(match[1], " ".join(tokens[1:]))
    return entries


def export(*args):
    output = io.StringIO()
    call_command("export_qc", *args, stdout=output, stderr=io.StringIO())
    return output.getvalue()


def blacklist(scan, comment, user=None):
    return ScanReviewFactory(
        scan=scan, state=QCState.BLACKLISTED, comment=comment, reviewer=user or _USERS["default"]
    )


_USERS = {}


@pytest.fixture
def study_site():
    # One reviewer for every decision, because hashing a password per user is slow.
    _USERS["default"] = UserFactory(username="exporter")
    return make_study_site()


def make_session(study_site, subject="0001", timepoint="01", number=1, tags=("T1", "RST")):
    tp = TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{subject}_{timepoint}")
    session = SessionFactory(timepoint=tp, number=number)
    scans = [
        ScanFactory(session=session, scantype=ScantypeFactory(tag=tag), series=series)
        for series, tag in enumerate(tags, start=2)
    ]
    return session, scans


# --- Blacklist ------------------------------------------------------------------------------


COMMENTS = [
    ("Signal dropout", "Signal dropout"),
    ("motion, then ghosting", "motion; then ghosting"),
    ("tabs\tand  spaces", "tabs and spaces"),
    ("line one\nline two\r\nthree", "line one line two three"),
    # The service strips the comment first.
    ("  ,leading comma", ";leading comma"),
]


def test_blacklist_round_trip(study_site):
    scans = []
    for index, (comment, _expected) in enumerate(COMMENTS):
        session, (t1, _rst) = make_session(study_site, subject=f"{index:04d}")
        blacklist(t1, comment)
        scans.append(t1)

    entries = read_datman_blacklist(export("SPINS", "--what", "blacklist"))

    expected = {scan.file_stem: text for scan, (_, text) in zip(scans, COMMENTS, strict=True)}
    assert entries == expected


def test_blacklist_only_current_blacklisted(study_site):
    session, (t1, rst) = make_session(study_site)
    blacklist(t1, "bad")
    ScanReviewFactory(scan=t1, state=QCState.APPROVED, reviewer=_USERS["default"])
    blacklist(rst, "truncated")
    ScanReviewFactory(scan=rst, state=QCState.FLAGGED, comment="motion", reviewer=_USERS["default"])

    assert read_datman_blacklist(export("SPINS", "--what", "blacklist")) == {}


def test_blacklist_linked_scan_uses_source_decision(study_site):
    session, (t1, _rst) = make_session(study_site)
    other_site = make_study_site(nickname="OTHER", code="OTH01")
    other_tp = TimepointFactory(study_site=other_site, name="OTH01_CMH_0001_01")
    linked = ScanFactory(
        session=SessionFactory(timepoint=other_tp),
        scantype=t1.scantype,
        series=t1.series,
        source=t1,
    )
    blacklist(t1, "shared decision")

    entries = read_datman_blacklist(export("OTHER", "--what", "blacklist"))

    assert entries == {linked.file_stem: "shared decision"}


def test_blacklist_subject_filter(study_site):
    first, (t1, _) = make_session(study_site, subject="0001")
    second, (t1b, _) = make_session(study_site, subject="0002")
    blacklist(t1, "one")
    blacklist(t1b, "two")

    by_timepoint = read_datman_blacklist(
        export("SPINS", "--what", "blacklist", "--subject", "spn01_cmh_0002_01")
    )
    by_session = read_datman_blacklist(
        export("SPINS", "--what", "blacklist", "--subject", "SPN01_CMH_0001_01_01")
    )

    assert by_timepoint == {t1b.file_stem: "two"}
    assert by_session == {t1.file_stem: "one"}


def test_blacklist_json_keeps_comment(study_site):
    session, (t1, _) = make_session(study_site)
    blacklist(t1, "motion, then\tghosting")

    data = json.loads(export("SPINS", "--what", "blacklist", "--format", "json"))

    assert data == {t1.file_stem: "motion, then\tghosting"}


def test_blacklist_bids_keys(study_site):
    session, (t1, rst) = make_session(study_site)
    t1.bids_name = "sub-CMH0001_ses-01_run-1_T1w"
    t1.save()
    blacklist(t1, "bad")
    blacklist(rst, "no BIDS name")

    data = json.loads(export("SPINS", "--what", "blacklist", "--format", "json", "--bids"))

    assert data == {"sub-CMH0001_ses-01_run-1_T1w": "bad"}


def test_blacklist_csv_columns(study_site):
    session, (t1, _) = make_session(study_site)
    blacklist(t1, "a, b\nc", user=UserFactory(username="alice"))

    rows = list(
        csv.DictReader(io.StringIO(export("SPINS", "--what", "blacklist", "--format", "csv")))
    )

    assert list(rows[0]) == list(exports.BLACKLIST_COLUMNS)
    assert rows[0]["comment"] == "a, b\nc"
    assert rows[0]["reviewer"] == "alice"
    assert rows[0]["session"] == session.name


def test_blacklist_skips_unsafe_stem(study_site):
    session, (t1, _) = make_session(study_site)
    t1.file_stem = f"{t1.name}_Sag T1"
    t1.save()
    blacklist(t1, "bad")
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command("export_qc", "SPINS", "--what", "blacklist", stdout=stdout, stderr=stderr)

    assert read_datman_blacklist(stdout.getvalue()) == {}
    assert f"{t1.name} left out of the datman blacklist" in stderr.getvalue()


def test_blacklist_to_file(study_site, tmp_path):
    session, (t1, _) = make_session(study_site)
    blacklist(t1, "bad")
    target = tmp_path / "blacklist.csv"
    target.write_text("old contents")

    call_command("export_qc", "SPINS", "--what", "blacklist", "--output", str(target))

    assert read_datman_blacklist(target.read_text()) == {t1.file_stem: "bad"}
    assert [path.name for path in tmp_path.iterdir()] == ["blacklist.csv"]


# --- Checklist ------------------------------------------------------------------------------


def test_checklist_lists_reviewers_of_signed_off_timepoints(study_site):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    both, _ = make_session(study_site, subject="0001", number=1)
    repeat = SessionFactory(timepoint=both.timepoint, number=2)
    SessionSignOffFactory(session=both, reviewer=alice)
    SessionSignOffFactory(session=repeat, reviewer=bob)
    partial, _ = make_session(study_site, subject="0002", number=1)
    SessionFactory(timepoint=partial.timepoint, number=2)
    SessionSignOffFactory(session=partial, reviewer=alice)
    make_session(study_site, subject="0003")
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))
    SessionSignOffFactory(session=phantom, reviewer=alice)

    text = export("SPINS", "--what", "checklist")

    assert read_datman_checklist(text) == {
        "SPN01_CMH_0001_01": "alice bob",
        "SPN01_CMH_0002_01": "",
        "SPN01_CMH_0003_01": "",
    }
    assert text.splitlines()[0] == "qc_SPN01_CMH_0001_01.html alice bob"


def test_checklist_json_and_bids(study_site):
    session, _ = make_session(study_site)
    session.timepoint.bids_name = "CMH0001"
    session.timepoint.bids_session = "01"
    session.timepoint.save()
    SessionSignOffFactory(session=session, reviewer=UserFactory(username="alice"))

    plain = json.loads(export("SPINS", "--what", "checklist", "--format", "json"))
    bids = json.loads(export("SPINS", "--what", "checklist", "--format", "json", "--bids"))

    assert plain == {"SPN01_CMH_0001_01": "alice"}
    assert bids == {"sub-CMH0001_ses-01": "alice"}


# --- Subject metadata -----------------------------------------------------------------------


def test_metadata_lists_qcd_timepoints(study_site):
    done, (t1, rst) = make_session(study_site, subject="0001")
    SessionSignOffFactory(session=done, reviewer=_USERS["default"])
    blacklist(t1, "bad")
    open_session, (t1_open, _) = make_session(study_site, subject="0002")
    blacklist(t1_open, "bad too")
    phantom_tp = PhantomTimepointFactory(study_site=study_site)
    phantom_scan = ScanFactory(session=SessionFactory(timepoint=phantom_tp), series=9)
    blacklist(phantom_scan, "phantom")

    strict = json.loads(export("SPINS", "--what", "metadata"))
    partial = json.loads(export("SPINS", "--what", "metadata", "--allow-partial"))

    assert strict == {
        "SPN01_CMH_0001_01": [t1.file_stem],
        phantom_tp.name: [phantom_scan.file_stem],
    }
    assert partial["SPN01_CMH_0002_01"] == [t1_open.file_stem]


def test_metadata_csv(study_site):
    done, (t1, _) = make_session(study_site)
    SessionSignOffFactory(session=done, reviewer=_USERS["default"])
    blacklist(t1, "bad, really")

    rows = list(
        csv.DictReader(io.StringIO(export("SPINS", "--what", "metadata", "--format", "csv")))
    )

    assert rows == [
        {"timepoint": done.timepoint.name, "file_stem": t1.file_stem, "comment": "bad, really"}
    ]


# --- Analysis table -------------------------------------------------------------------------


def table(*args):
    return list(csv.DictReader(io.StringIO(export("SPINS", "--what", "table", *args))))


def test_table_includes_signed_off_subject(study_site):
    session, (t1, rst) = make_session(study_site)
    SessionSignOffFactory(session=session, reviewer=_USERS["default"])
    ScanReviewFactory(scan=rst, state=QCState.FLAGGED, comment="motion", reviewer=_USERS["default"])

    rows = table()

    assert [row["scan"] for row in rows] == [t1.name, rst.name]
    assert {row["subject_included"] for row in rows} == {"true"}
    assert rows[1]["qc_state"] == "flagged"
    assert rows[0]["qc_state"] == "new"
    assert list(rows[0]) == list(exports.TABLE_COLUMNS)


def test_table_excludes_subject_with_unsigned_session(study_site):
    first, _ = make_session(study_site, subject="0001", timepoint="01")
    SessionSignOffFactory(session=first, reviewer=_USERS["default"])
    make_session(study_site, subject="0001", timepoint="02")

    rows = table()

    assert {row["subject"] for row in rows} == {"SPN01_CMH_0001"}
    assert {row["subject_included"] for row in rows} == {"false"}
    assert rows[0]["exclusion_reason"] == "session SPN01_CMH_0001_02_01 is not signed off"


def test_table_excludes_blacklisted_required_tag(study_site):
    session, (t1, _rst, _extra) = make_session(study_site, tags=("T1", "RST", "EXTRA"))
    SessionSignOffFactory(session=session, reviewer=_USERS["default"])
    blacklist(t1, "bad")

    rows = table()

    assert {row["subject_included"] for row in rows} == {"false"}
    assert rows[0]["exclusion_reason"] == f"T1 scan {t1.name} is blacklisted"


def test_table_ignores_blacklisted_optional_tag(study_site):
    # EXTRA is not among the study site's expected scans, so it is not required.
    session, scans = make_session(study_site, tags=("T1", "EXTRA"))
    SessionSignOffFactory(session=session, reviewer=_USERS["default"])
    blacklist(scans[1], "bad")

    rows = table()

    assert {row["subject_included"] for row in rows} == {"true"}
    assert rows[1]["qc_state"] == "blacklisted"


def test_table_phantoms_only_on_request(study_site):
    make_session(study_site)
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))
    ScanFactory(session=phantom, series=5)

    assert len(table()) == 2
    assert len(table("--phantoms")) == 3


def test_table_json(study_site):
    session, _ = make_session(study_site)
    SessionSignOffFactory(session=session, reviewer=_USERS["default"])

    rows = json.loads(export("SPINS", "--what", "table", "--format", "json"))

    assert rows[0]["subject_included"] is True
    assert rows[0]["series"] == 2


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["NOPE", "--what", "blacklist"], "Study 'NOPE' not found"),
        (["SPINS", "--what", "table", "--format", "datman"], "datman has no format for the table"),
        (["SPINS", "--what", "blacklist", "--bids"], "--bids needs --format json or csv"),
        (["SPINS", "--what", "table", "--bids"], "--bids applies to blacklist and checklist"),
        (["SPINS", "--what", "checklist", "--subject", "SPN01_CMH_0001_01"], "--subject applies"),
        (["SPINS", "--what", "blacklist", "--subject", "SPN01-CMH-0001"], "Invalid ID"),
        (["SPINS", "--what", "blacklist", "--subject", "SPN01_CMH_9999_01"], "not found in study"),
        (["SPINS", "--what", "blacklist", "--allow-partial"], "--allow-partial applies"),
        (["SPINS", "--what", "metadata", "--phantoms"], "--phantoms applies"),
        (["SPINS", "--what", "blacklist", "--output", "/nonexistent/dir/x.csv"], "not found"),
    ],
)
def test_export_rejects_bad_input(study_site, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("export_qc", *args, stdout=io.StringIO())


def test_export_empty_study(study_site):
    assert export("SPINS", "--what", "blacklist") == "series reason\n"
    assert export("SPINS", "--what", "checklist") == ""
    assert json.loads(export("SPINS", "--what", "metadata")) == {}


# --- Query counts ---------------------------------------------------------------------------

QUERIES = {"blacklist": 2, "checklist": 2, "metadata": 3, "table": 4}


@pytest.mark.parametrize("count", [1, 20])
@pytest.mark.parametrize("what", sorted(QUERIES))
def test_export_query_count(study_site, count, what):
    for index in range(count):
        session, (t1, rst) = make_session(study_site, subject=f"{index:04d}")
        SessionSignOffFactory(session=session, reviewer=_USERS["default"])
        blacklist(rst, "bad")

    with CaptureQueriesContext(connection) as queries:
        text = export("SPINS", "--what", what)

    # 1 the study, then blacklist: the scans; checklist: the sessions; metadata: sessions and
    # scans; table: sessions, blacklisted scans and every scan.
    assert len(queries) == QUERIES[what], [query["sql"] for query in queries]
    assert text.count("SPN01_CMH_") >= count
