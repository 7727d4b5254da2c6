"""Who may call each API endpoint: (endpoint, method, persona) -> status.

The personas hold roles in SPINS, which has one session at CMH and one at ZHH; the
site reviewer is a QC reviewer at CMH only. Requests name the ZHH objects, so a site-restricted
member gets the same status as an outsider.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from qc.models import QCEvent, ScanReview, SessionSignOff
from studies.models import Scan, Session
from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db

OK, CREATED, FORBIDDEN, NOT_FOUND, INVALID, UNAUTHORIZED = 200, 201, 403, 404, 422, 401

# (URL name, method): status for (anonymous, outsider, site_reviewer, viewer, qc_reviewer,
# study_admin, dashboard_admin). PUT of a session or scan in a study site the user cannot see
# is 422 unknown_study_site, the status for a study site that does not exist.
PERSONAS = (
    "anonymous",
    "outsider",
    "site_reviewer",
    "viewer",
    "qc_reviewer",
    "study_admin",
    "dashboard_admin",
)
R = (UNAUTHORIZED, NOT_FOUND, NOT_FOUND, OK, OK, OK, OK)
MATRIX = {
    ("api:study_detail", "GET"): (UNAUTHORIZED, NOT_FOUND, OK, OK, OK, OK, OK),
    ("api:study_timepoints", "GET"): (UNAUTHORIZED, NOT_FOUND, OK, OK, OK, OK, OK),
    ("api:blacklist", "GET"): (UNAUTHORIZED, NOT_FOUND, OK, OK, OK, OK, OK),
    ("api:checklist", "GET"): (UNAUTHORIZED, NOT_FOUND, OK, OK, OK, OK, OK),
    ("api:qc_metadata", "GET"): (UNAUTHORIZED, NOT_FOUND, OK, OK, OK, OK, OK),
    ("api:gold_standards", "GET"): (UNAUTHORIZED, NOT_FOUND, OK, OK, OK, OK, OK),
    ("api:timepoint_detail", "GET"): R,
    ("api:session", "GET"): R,
    ("api:session", "PUT"): (UNAUTHORIZED, INVALID, INVALID, FORBIDDEN, FORBIDDEN, OK, OK),
    ("api:session_sign_off", "GET"): R,
    ("api:session_sign_off", "POST"): (
        UNAUTHORIZED,
        NOT_FOUND,
        NOT_FOUND,
        FORBIDDEN,
        CREATED,
        CREATED,
        CREATED,
    ),
    ("api:scan", "GET"): R,
    ("api:scan", "PUT"): (UNAUTHORIZED, INVALID, INVALID, FORBIDDEN, FORBIDDEN, OK, OK),
    ("api:scan_qc", "GET"): R,
    ("api:scan_qc", "PUT"): (UNAUTHORIZED, NOT_FOUND, NOT_FOUND, FORBIDDEN, OK, OK, OK),
    # Every signed-in persona may see the header diff URL; the ZHH scan has no diff yet.
    ("api:header_diff", "GET"): (
        UNAUTHORIZED,
        NOT_FOUND,
        NOT_FOUND,
        NOT_FOUND,
        NOT_FOUND,
        NOT_FOUND,
        NOT_FOUND,
    ),
}
CASES = [
    (name, method, persona, statuses[index])
    for (name, method), statuses in MATRIX.items()
    for index, persona in enumerate(PERSONAS)
]
# URLs every signed-in user may call whatever their roles.
UNSCOPED = {"api:schema", "api:docs", "api:study_list"}


def url_for(name, world):
    zhh = world.zhh
    args = {
        "api:study_detail": ["SPINS"],
        "api:study_timepoints": ["SPINS"],
        "api:blacklist": ["SPINS"],
        "api:checklist": ["SPINS"],
        "api:qc_metadata": ["SPINS"],
        "api:gold_standards": ["SPINS"],
        "api:timepoint_detail": [zhh.timepoint.name],
        "api:session": [zhh.session.name],
        "api:session_sign_off": [zhh.session.name],
        "api:scan": [zhh.scan.name],
        "api:scan_qc": [zhh.scan.name],
        "api:header_diff": [zhh.scan.name],
    }[name]
    if name == "api:scan":
        args = [zhh.scan.file_stem]
    return reverse(name, args=args)


def body_for(name, world):
    if name == "api:scan_qc":
        return {"state": "flagged", "comment": "motion"}
    if name == "api:session_sign_off":
        return {"approve_all_new": True}
    if name == "api:session":
        return {"acquired_on": "2024-01-02"}
    if name == "api:scan":
        return {"volumes": 5}
    return None


def client_for(persona, users):
    if persona == "anonymous":
        return APIClient()
    return token_client(users[persona])


def writes():
    return (
        ScanReview.objects.count(),
        SessionSignOff.objects.count(),
        QCEvent.objects.count(),
        Session.objects.exclude(acquired_on=None).count(),
        Scan.objects.exclude(volumes=None).count(),
    )


@pytest.fixture
def world(persona_study, personas):
    # The factories give every scan tag T1; the study sites must expect it for a PUT.
    from tests.studies.factories import ExpectedScanFactory

    for study_site in (persona_study.cmh.study_site, persona_study.zhh.study_site):
        ExpectedScanFactory(study_site=study_site, scantype=persona_study.zhh.scan.scantype)
    return persona_study


@pytest.mark.parametrize(("name", "method", "persona", "expected"), CASES)
def test_api_permission_matrix(world, personas, name, method, persona, expected):
    client = client_for(persona, personas)
    url = url_for(name, world)
    body = body_for(name, world)
    before = writes()

    if method == "GET":
        response = client.get(url)
    elif method == "PUT":
        response = client.put(url, body, format="json")
    else:
        response = client.post(url, body, format="json")

    assert response.status_code == expected, response.content
    if expected not in (OK, CREATED) or method == "GET":
        assert writes() == before


@pytest.mark.parametrize("persona", ["outsider", "site_reviewer"])
def test_api_lists_hide_other_sites(world, personas, persona):
    client = client_for(persona, personas)

    studies = client.get(reverse("api:study_list")).json()
    timepoints = client.get(reverse("api:study_timepoints", args=["SPINS"]))

    if persona == "outsider":
        assert studies == []
        assert timepoints.status_code == 404
    else:
        assert [site["site"] for site in studies[0]["sites"]] == ["CMH"]
        names = [tp["name"] for tp in timepoints.json()["results"]]
        assert names == [world.cmh.timepoint.name]


def test_api_read_back_hides_other_sites(world, personas):
    from qc.models import QCState
    from tests.qc.factories import ScanReviewFactory

    for site in (world.cmh, world.zhh):
        ScanReviewFactory(scan=site.scan, state=QCState.BLACKLISTED, comment="bad")
    client = client_for("site_reviewer", personas)

    blacklist = client.get(reverse("api:blacklist", args=["SPINS"])).json()
    checklist = client.get(reverse("api:checklist", args=["SPINS"])).json()
    metadata = client.get(
        reverse("api:qc_metadata", args=["SPINS"]), {"allow_partial": "true"}
    ).json()

    assert blacklist == {world.cmh.scan.file_stem: "bad"}
    assert list(checklist) == [world.cmh.timepoint.name]
    assert list(metadata) == [world.cmh.timepoint.name]


def collect_url_names(patterns, namespace=""):
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            names |= collect_url_names(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
    return names


def test_matrix_covers_every_api_url():
    names = {
        name for name in collect_url_names(get_resolver().url_patterns) if name.startswith("api:")
    }
    covered = {name for name, _ in MATRIX} | UNSCOPED

    assert names - covered == set(), "API URLs missing from MATRIX"
    assert covered - names == set(), "MATRIX names API URLs that no longer exist"
