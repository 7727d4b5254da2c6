"""API reads: studies and their configuration, timepoints, sessions, scans, datman read-back."""

import pytest
from django.urls import reverse

from qc.models import QCState
from tests.qc.compliance_factories import GoldStandardFactory
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.studies.factories import (
    AltStudyCodeFactory,
    PhantomTimepointFactory,
    ScanFactory,
    SessionFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db


def test_study_configuration(api, spins):
    study_site, _session, _scan = spins
    AltStudyCodeFactory(study_site=study_site, code="SPNX")

    data = api.get(reverse("api:study_detail", args=["SPINS"])).json()

    assert data["nickname"] == "SPINS"
    site = data["sites"][0]
    assert (site["site"], site["code"], site["alt_codes"]) == ("CMH", "SPN01", ["SPNX"])
    expected = {scan["tag"]: scan["count"] for scan in site["expected_scans"]}
    assert expected == {"DTI60-1000": 2, "RST": 1, "T1": 1}


@pytest.mark.parametrize(
    ("params", "found"),
    [({"code": "spn01"}, ["SPINS"]), ({"site": "CMH"}, ["SPINS"]), ({"code": "NOPE"}, [])],
)
def test_study_list_filters(api, spins, params, found):
    data = api.get(reverse("api:study_list"), params).json()

    assert [study["nickname"] for study in data] == found


def test_unknown_study_404(api, spins):
    response = api.get(reverse("api:study_detail", args=["NOPE"]))

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Study 'NOPE' not found."}


def test_study_timepoints(api, spins):
    study_site = spins[0]
    PhantomTimepointFactory(study_site=study_site, name="SPN01_CMH_PHA_FBN0001")
    url = reverse("api:study_timepoints", args=["SPINS"])

    every = api.get(url).json()
    humans = api.get(url, {"phantoms": "false"}).json()
    first_page = api.get(url, {"limit": 1}).json()

    assert [tp["name"] for tp in every["results"]] == [
        "SPN01_CMH_0001_01",
        "SPN01_CMH_PHA_FBN0001",
    ]
    assert [tp["name"] for tp in humans["results"]] == ["SPN01_CMH_0001_01"]
    assert every["results"][0]["sessions"][0]["name"] == "SPN01_CMH_0001_01_01"
    assert first_page["count"] == 2
    assert first_page["next"]


@pytest.mark.parametrize("value", ["yes", "1", "True", "0"])
def test_boolean_parameter_is_strict(api, spins, value):
    response = api.get(reverse("api:study_timepoints", args=["SPINS"]), {"phantoms": value})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_parameter"
    assert f"phantoms={value!r}" in body["message"]


@pytest.mark.parametrize(
    ("url_name", "args", "parameter"),
    [
        ("api:study_list", [], "code"),
        ("api:study_list", [], "site"),
        ("api:study_timepoints", ["SPINS"], "site"),
        ("api:blacklist", ["SPINS"], "subject"),
    ],
)
def test_nul_in_a_text_parameter_is_422(api, spins, url_name, args, parameter):
    response = api.get(reverse(url_name, args=args), {parameter: "CMH\x00"})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_parameter"
    assert "NUL" in body["message"]
    assert parameter in body["message"]


def test_timepoint_and_session(api, spins):
    _study_site, session, scan = spins
    SessionSignOffFactory(session=session)

    timepoint = api.get(reverse("api:timepoint_detail", args=["spn01_cmh_0001_01"])).json()
    detail = api.get(reverse("api:session", args=[session.name])).json()

    assert timepoint["sessions"][0]["signed_off"] is True
    assert detail["scans"] == [scan.name]
    assert detail["signed_off_by"] == session.sign_off.reviewer.username


@pytest.mark.parametrize(
    ("url_name", "value"),
    [
        ("api:timepoint_detail", "SPN01-CMH-0001"),
        ("api:session", "SPN01_CMH_0001_01"),
        ("api:scan", "SPN01_CMH"),
    ],
)
def test_invalid_id_is_422(api, spins, url_name, value):
    response = api.get(reverse(url_name, args=[value]))

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_id"
    assert value in body["message"]


def test_scan_by_name_and_stem(api, spins):
    scan = spins[2]
    ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment="motion")

    by_name = api.get(reverse("api:scan", args=[scan.name])).json()
    by_stem = api.get(reverse("api:scan", args=[scan.file_stem])).json()

    assert by_name == by_stem
    assert by_name["qc_state"] == "flagged"
    assert by_name["sidecar"]["EchoTime"] == 0.003


def test_scan_qc_state(api, spins):
    scan = spins[2]

    unreviewed = api.get(reverse("api:scan_qc", args=[scan.name])).json()
    ScanReviewFactory(scan=scan, state=QCState.BLACKLISTED, comment="bad")
    reviewed = api.get(reverse("api:scan_qc", args=[scan.name])).json()

    assert (unreviewed["state"], unreviewed["reviewer"]) == ("new", None)
    assert (reviewed["state"], reviewed["comment"]) == ("blacklisted", "bad")


def test_datman_read_back(api, spins):
    _study_site, session, scan = spins
    other = ScanFactory(session=session, series=5)
    ScanReviewFactory(scan=scan, state=QCState.BLACKLISTED, comment="motion, bad")
    SessionSignOffFactory(session=session)
    open_timepoint = TimepointFactory(study_site=spins[0], name="SPN01_CMH_0002_01")
    SessionFactory(timepoint=open_timepoint)

    blacklist = api.get(reverse("api:blacklist", args=["SPINS"])).json()
    checklist = api.get(reverse("api:checklist", args=["SPINS"])).json()
    metadata = api.get(reverse("api:qc_metadata", args=["SPINS"])).json()
    partial = api.get(reverse("api:qc_metadata", args=["SPINS"]), {"allow_partial": "true"})

    assert blacklist == {scan.file_stem: "motion, bad"}
    assert checklist == {
        "SPN01_CMH_0001_01": session.sign_off.reviewer.username,
        "SPN01_CMH_0002_01": "",
    }
    assert metadata == {"SPN01_CMH_0001_01": [scan.file_stem]}
    assert partial.json()["SPN01_CMH_0002_01"] == []
    assert other.file_stem not in blacklist


def test_blacklist_subject_and_bids(api, spins):
    scan = spins[2]
    scan.bids_name = "sub-CMH0001_ses-01_run-1_T1w"
    scan.save()
    ScanReviewFactory(scan=scan, state=QCState.BLACKLISTED, comment="bad")
    url = reverse("api:blacklist", args=["SPINS"])

    bids = api.get(url, {"bids": "true"}).json()
    other_subject = api.get(url, {"subject": "SPN01_CMH_0002_01"}).json()
    bad_subject = api.get(url, {"subject": "nonsense"})

    assert bids == {"sub-CMH0001_ses-01_run-1_T1w": "bad"}
    assert other_subject == {}
    assert bad_subject.status_code == 422
    assert bad_subject.json()["code"] == "invalid_id"


def test_gold_standards_and_header_diff(api, spins):
    study_site, _session, scan = spins
    GoldStandardFactory(study=study_site.study, site=study_site.site, scantype=scan.scantype)

    standards = api.get(reverse("api:gold_standards", args=["SPINS"])).json()
    diff = api.get(reverse("api:header_diff", args=[scan.name]))

    assert [(standard["site"], standard["tag"]) for standard in standards] == [("CMH", "T1")]
    assert diff.status_code == 404
    assert "has no header diff" in diff.json()["message"]
