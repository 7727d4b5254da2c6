"""API writes: idempotent upserts of sessions and scans, QC state and sign-off."""

import datetime

import pytest
from django.urls import reverse

from accounts.models import Role, StudyMembership
from qc.models import QCEvent, QCState, ScanReview, SessionSignOff
from studies.models import Scan, Session, Timepoint
from tests.api.conftest import token_client
from tests.qc.factories import ScanReviewFactory
from tests.studies.factories import ScanFactory, ScantypeFactory, UserFactory

pytestmark = pytest.mark.django_db


def put(client, url, body):
    return client.put(url, body, format="json")


# --- Sessions -------------------------------------------------------------------------------


def test_session_put_creates_then_changes_nothing(api, spins):
    url = reverse("api:session", args=["spn01_cmh_0002_01_01"])
    body = {"acquired_on": "2024-03-01", "timepoint": {"bids_name": "CMH0002"}}

    first = put(api, url, body)
    second = put(api, url, body)

    assert first.status_code == 201
    assert (first.json()["changed"], first.json()["created"]) == (True, True)
    assert second.status_code == 200
    assert (second.json()["changed"], second.json()["created"]) == (False, False)
    timepoint = Timepoint.objects.get(name="SPN01_CMH_0002_01")
    assert timepoint.bids_name == "CMH0002"
    assert Session.objects.get(timepoint=timepoint).acquired_on == datetime.date(2024, 3, 1)


def test_session_put_updates_changed_field(api, spins):
    session = spins[1]
    url = reverse("api:session", args=[session.name])

    response = put(api, url, {"acquired_on": "2024-05-06"})

    assert response.status_code == 200
    assert response.json()["changed"] is True
    session.refresh_from_db()
    assert session.acquired_on == datetime.date(2024, 5, 6)


def test_session_put_phantom(api, spins):
    response = put(api, reverse("api:session", args=["SPN01_CMH_PHA_FBN0002"]), {})

    assert response.status_code == 201
    assert response.json()["session"]["is_phantom"] is True
    assert Timepoint.objects.get(name="SPN01_CMH_PHA_FBN0002").is_phantom


@pytest.mark.parametrize(
    ("session_id", "body", "code", "named"),
    [
        ("SPN01-CMH-0002-01-01", {}, "invalid_id", "SPN01-CMH-0002-01-01"),
        ("SPN01_CMH_0002_01", {}, "invalid_id", "SPN01_CMH_0002_01"),
        ("SPN99_CMH_0002_01_01", {}, "unknown_study_site", "SPN99"),
        ("SPN01_XYZ_0002_01_01", {}, "unknown_study_site", "XYZ"),
        ("SPN01_CMH_0002_01_01", {"acquired_on": "yesterday"}, "invalid_field", "acquired_on"),
        ("SPN01_CMH_0002_01_01", {"timepoint": {"bids_name": 5}}, "invalid_field", "5"),
        ("SPN01_CMH_0002_01_01", {"timepoint": "CMH0002"}, "invalid_field", "timepoint"),
    ],
)
def test_session_put_rejects(api, spins, session_id, body, code, named):
    response = put(api, reverse("api:session", args=[session_id]), body)

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert named in response.json()["message"]
    assert not Timepoint.objects.filter(name__startswith="SPN01_CMH_0002").exists()


def test_session_put_body_must_be_object(api, spins):
    response = put(api, reverse("api:session", args=["SPN01_CMH_0002_01_01"]), [1, 2])

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_body"


def test_malformed_json_is_400(api, spins):
    response = api.put(
        reverse("api:session", args=["SPN01_CMH_0002_01_01"]),
        "{not json",
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_session_put_needs_study_admin(spins):
    reviewer = UserFactory(username="qcer")
    StudyMembership.objects.create(user=reviewer, study=spins[0].study, role=Role.QC_REVIEWER)

    response = put(
        token_client(reviewer), reverse("api:session", args=["SPN01_CMH_0002_01_01"]), {}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


# --- Scans ----------------------------------------------------------------------------------

SIDECAR = {"SeriesDescription": "Resting", "RepetitionTime": 2.0, "SliceTiming": [0.0, 1.0]}


def test_scan_put_creates_then_changes_nothing(api, spins):
    ScantypeFactory(tag="RST")
    url = reverse("api:scan", args=["SPN01_CMH_0001_01_01_RST_04_Resting-State"])
    body = {"sidecar": SIDECAR, "conversion_errors": None, "volumes": 200}

    first = put(api, url, body)
    second = put(api, url, body)
    third = put(api, url, {**body, "conversion_errors": "dcm2niix: slice missing"})

    assert first.status_code == 201
    assert first.json()["scan"]["name"] == "SPN01_CMH_0001_01_01_RST_04"
    assert second.status_code == 200
    assert second.json()["changed"] is False
    assert third.json()["changed"] is True
    scan = Scan.objects.get(name="SPN01_CMH_0001_01_01_RST_04")
    assert (scan.description, scan.file_stem, scan.volumes) == (
        "Resting-State",
        "SPN01_CMH_0001_01_01_RST_04_Resting-State",
        200,
    )
    assert scan.sidecar == SIDECAR
    assert scan.conversion_errors == "dcm2niix: slice missing"


@pytest.mark.parametrize(
    ("stem", "body", "status", "code", "named"),
    [
        ("SPN01_CMH_0001_01_01_T1_x_Sag", {}, 422, "invalid_id", "'x'"),
        ("SPN01_CMH_0001_01_01_T1_03_Sag.nii.gz", {}, 422, "invalid_id", ".nii.gz"),
        ("SPN01_CMH_0001_01_01_FMRI_03_Task", {}, 422, "tag_not_expected", "FMRI"),
        ("SPN01_CMH_0009_01_01_T1_03_Sag", {}, 422, "unknown_session", "SPN01_CMH_0009_01_01"),
        (
            "SPN01_CMH_0001_01_01_T1_02_Other",
            {},
            409,
            "stem_conflict",
            "SPN01_CMH_0001_01_01_T1_02",
        ),
        ("SPN01_CMH_0001_01_01_T1_03_Sag", {"volumes": "3"}, 422, "invalid_field", "'3'"),
        ("SPN01_CMH_0001_01_01_T1_03_Sag", {"volumes": True}, 422, "invalid_field", "True"),
        ("SPN01_CMH_0001_01_01_T1_03_Sag", {"sidecar": [1]}, 422, "invalid_field", "[1]"),
        ("SPN01_CMH_0001_01_01_T1_03_Sag", {"nifti_path": "a\x00b"}, 422, "invalid_field", "NUL"),
    ],
)
def test_scan_put_rejects(api, spins, stem, body, status, code, named):
    ScantypeFactory(tag="FMRI")
    before = Scan.objects.count()

    response = put(api, reverse("api:scan", args=[stem]), body)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert named in response.json()["message"]
    assert Scan.objects.count() == before


# --- QC state -------------------------------------------------------------------------------


def test_qc_put_is_idempotent(api, spins):
    url = reverse("api:scan_qc", args=[spins[2].name])

    first = put(api, url, {"state": "flagged", "comment": "motion"})
    second = put(api, url, {"state": "flagged", "comment": "motion"})

    assert first.status_code == 200
    assert first.json()["changed"] is True
    assert second.status_code == 200
    assert second.json()["changed"] is False
    assert ScanReview.objects.count() == 1
    assert QCEvent.objects.count() == 1
    assert first.json()["reviewer"] == "pipeline"


def test_qc_put_new_clears(api, spins):
    scan = spins[2]
    ScanReviewFactory(scan=scan, state=QCState.BLACKLISTED, comment="bad")

    response = put(api, reverse("api:scan_qc", args=[scan.name]), {"state": "new"})

    assert response.json()["state"] == "new"
    assert ScanReview.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"state": "flagged"}, "invalid_decision", "A comment is required"),
        ({"state": "maybe"}, "invalid_field", "'maybe' is not a QC state"),
        ({"state": "approved", "comment": 7}, "invalid_field", "7"),
        ({}, "invalid_field", "state"),
    ],
)
def test_qc_put_rejects(api, spins, body, code, named):
    response = put(api, reverse("api:scan_qc", args=[spins[2].name]), body)

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert named in response.json()["message"]
    assert ScanReview.objects.count() == 0


def test_qc_put_needs_reviewer(spins):
    viewer = UserFactory(username="looker")
    StudyMembership.objects.create(user=viewer, study=spins[0].study, role=Role.VIEWER)

    response = put(
        token_client(viewer), reverse("api:scan_qc", args=[spins[2].name]), {"state": "approved"}
    )

    assert response.status_code == 403
    assert ScanReview.objects.count() == 0


# --- Sign-off -------------------------------------------------------------------------------


def test_sign_off_post_is_idempotent(api, spins):
    session, scan = spins[1], spins[2]
    url = reverse("api:session_sign_off", args=[session.name])

    first = api.post(url, {"approve_scans": [scan.name]}, format="json")
    second = api.post(url, {"approve_scans": [scan.name]}, format="json")

    assert first.status_code == 201
    assert first.json()["approved_scans"] == [scan.name]
    assert second.status_code == 200
    assert second.json()["changed"] is False
    assert SessionSignOff.objects.count() == 1
    assert ScanReview.objects.get().state == "approved"


def test_sign_off_approve_all_new(api, spins):
    session = spins[1]
    ScanFactory(session=session, scantype=ScantypeFactory(tag="RST"), series=3)

    response = api.post(
        reverse("api:session_sign_off", args=[session.name]),
        {"approve_all_new": True},
        format="json",
    )

    assert response.status_code == 201
    assert len(response.json()["approved_scans"]) == 2


@pytest.mark.parametrize(
    ("body", "status", "code", "named"),
    [
        ({"approve_all_new": "yes"}, 422, "invalid_field", "'yes' is not a JSON boolean"),
        ({"approve_all_new": 1}, 422, "invalid_field", "1 is not a JSON boolean"),
        ({}, 409, "sign_off_rejected", "SPN01_CMH_0001_01_01_T1_02"),
        ({"approve_scans": ["SPN01_CMH_0001_01_01_RST_09"]}, 422, "not_a_new_scan", "RST_09"),
        ({"approve_scans": "SPN01"}, 422, "invalid_field", "approve_scans"),
    ],
)
def test_sign_off_rejects(api, spins, body, status, code, named):
    response = api.post(reverse("api:session_sign_off", args=[spins[1].name]), body, format="json")

    assert response.status_code == status
    assert response.json()["code"] == code
    assert named in response.json()["message"]
    assert SessionSignOff.objects.count() == 0


def test_sign_off_get(api, spins):
    data = api.get(reverse("api:session_sign_off", args=[spins[1].name])).json()

    assert data == {
        "session": "SPN01_CMH_0001_01_01",
        "signed_off": False,
        "reviewer": None,
        "signed_off_at": None,
        "approved_scans": [],
    }


def test_qc_put_with_current_review_id(api, spins):
    scan = spins[2]
    url = reverse("api:scan_qc", args=[scan.name])
    shown = api.get(url).json()

    response = put(api, url, {"state": "approved", "expected_review_id": shown["review_id"]})

    assert shown["review_id"] is None
    assert response.status_code == 200
    assert response.json()["changed"] is True
    assert response.json()["review_id"] == ScanReview.objects.get().pk


def test_qc_put_stale_review_id_conflicts(api, spins):
    scan = spins[2]
    shown = ScanReviewFactory(scan=scan, state=QCState.APPROVED)
    newer = ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment="motion")

    response = put(
        api,
        reverse("api:scan_qc", args=[scan.name]),
        {"state": "blacklisted", "comment": "bad", "expected_review_id": shown.pk},
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "review_conflict"
    assert (
        f"has newest review {newer.pk} (flagged by {newer.reviewer.username}" in (body["message"])
    )
    assert f"but the request expected {shown.pk}; nothing was saved" in body["message"]
    assert ScanReview.objects.count() == 2


def test_qc_put_stale_unchanged_conflicts(api, spins):
    scan = spins[2]
    ScanReviewFactory(scan=scan, state=QCState.APPROVED)

    response = put(
        api,
        reverse("api:scan_qc", args=[scan.name]),
        {"state": "approved", "expected_review_id": None},
    )

    assert response.status_code == 409
    assert "but the request expected none" in response.json()["message"]
    assert ScanReview.objects.count() == 1


def test_qc_put_without_review_id_unchecked(api, spins):
    scan = spins[2]
    ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment="motion")

    response = put(api, reverse("api:scan_qc", args=[scan.name]), {"state": "approved"})

    assert response.status_code == 200
    assert response.json()["state"] == "approved"


def test_qc_put_conflict_time_has_zone(api, spins, settings):
    settings.TIME_ZONE = "America/Toronto"
    scan = spins[2]
    newer = ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment="motion")
    ScanReview.objects.filter(pk=newer.pk).update(
        created_at=datetime.datetime(2026, 1, 15, 17, 30, tzinfo=datetime.UTC)
    )

    response = put(
        api,
        reverse("api:scan_qc", args=[scan.name]),
        {"state": "approved", "expected_review_id": None},
    )

    assert response.status_code == 409
    assert f"by {newer.reviewer.username} at 2026-01-15 12:30 EST)" in response.json()["message"]
