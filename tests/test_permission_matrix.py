"""Who may do what on every qc and studies URL: (URL name, method, persona) -> status.

Personas: anonymous, a signed-in reviewer and a deactivated user. Django's ModelBackend does not
load an inactive user from the session, so a deactivated user reaches the pages as anonymous.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from qc.models import QCEvent, ScanReview, SessionSignOff
from tests.studies.factories import ScanFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "login"  # a redirect to the sign-in page
OK, FOUND, NOT_ALLOWED = 200, 302, 405

# (URL name, method): status for (anonymous, reviewer, inactive).
MATRIX = {
    ("qc:study_list", "GET"): (LOGIN, OK, LOGIN),
    ("qc:study_list", "POST"): (LOGIN, NOT_ALLOWED, LOGIN),
    ("qc:study_detail", "GET"): (LOGIN, OK, LOGIN),
    ("qc:study_detail", "POST"): (LOGIN, NOT_ALLOWED, LOGIN),
    ("qc:timepoint_detail", "GET"): (LOGIN, OK, LOGIN),
    ("qc:timepoint_detail", "POST"): (LOGIN, NOT_ALLOWED, LOGIN),
    ("qc:scan_detail", "GET"): (LOGIN, OK, LOGIN),
    ("qc:scan_detail", "POST"): (LOGIN, NOT_ALLOWED, LOGIN),
    ("qc:scan_review", "GET"): (LOGIN, NOT_ALLOWED, LOGIN),
    ("qc:scan_review", "POST"): (LOGIN, FOUND, LOGIN),
    ("qc:session_sign_off", "GET"): (LOGIN, OK, LOGIN),
    ("qc:session_sign_off", "POST"): (LOGIN, FOUND, LOGIN),
    ("studies:archive_file", "GET"): (LOGIN, OK, LOGIN),
    ("studies:archive_file", "POST"): (LOGIN, NOT_ALLOWED, LOGIN),
}
PERSONAS = ("anonymous", "reviewer", "inactive")
CASES = [
    (name, method, persona, statuses[index])
    for (name, method), statuses in MATRIX.items()
    for index, persona in enumerate(PERSONAS)
]
POST_ONLY = sorted(
    name for (name, method), statuses in MATRIX.items() if method == "GET" and statuses[1] == 405
)


@pytest.fixture
def objects(tmp_path):
    """One of everything the URLs name, with a QC image on disk for the archive file URL."""
    (tmp_path / "qc").mkdir()
    (tmp_path / "qc" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    scan = ScanFactory()
    study = scan.session.timepoint.study
    study.archive_path = str(tmp_path)
    study.save()
    return scan


def url_for(name, scan):
    session = scan.session
    kwargs = {
        "qc:study_list": {},
        "qc:study_detail": {"nickname": session.timepoint.study.nickname},
        "qc:timepoint_detail": {"name": session.timepoint.name},
        "qc:scan_detail": {"name": scan.name},
        "qc:scan_review": {"name": scan.name},
        "qc:session_sign_off": {"session_id": session.name},
        "studies:archive_file": {
            "study": session.timepoint.study.nickname,
            "relative_path": "qc/image.png",
        },
    }[name]
    return reverse(name, kwargs=kwargs)


def post_data(name, scan):
    """A valid form for each mutating URL, so the reviewer's POST succeeds."""
    if name == "qc:scan_review":
        return {"state": "flagged", "comment": "motion"}
    if name == "qc:session_sign_off":
        return {"approve_scan_ids": [scan.pk]}
    return {}


def client_for(client, persona):
    if persona == "reviewer":
        client.force_login(UserFactory(username="matrix-reviewer"))
    elif persona == "inactive":
        client.force_login(UserFactory(username="matrix-inactive", is_active=False))
    return client


def writes():
    return (ScanReview.objects.count(), SessionSignOff.objects.count(), QCEvent.objects.count())


@pytest.mark.parametrize(("name", "method", "persona", "expected"), CASES)
def test_permission_matrix(client, objects, name, method, persona, expected):
    client = client_for(client, persona)
    url = url_for(name, objects)
    data = post_data(name, objects)
    response = client.get(url) if method == "GET" else client.post(url, data)

    if expected == LOGIN:
        assert response.status_code == 302
        assert response.url.startswith(f"{reverse('account_login')}?next=")
    else:
        assert response.status_code == expected
    if expected != FOUND:
        assert writes() == (0, 0, 0)


@pytest.mark.parametrize(
    ("name", "expected_writes"),
    # Flagging writes a review and its event; signing off approves the new scan (a review
    # and an event), writes the sign-off and its own event.
    [("qc:scan_review", (1, 0, 1)), ("qc:session_sign_off", (1, 1, 2))],
)
def test_reviewer_post_writes(client, objects, name, expected_writes):
    client = client_for(client, "reviewer")
    response = client.post(url_for(name, objects), post_data(name, objects))

    assert response.status_code == 302
    assert writes() == expected_writes


@pytest.mark.parametrize("name", POST_ONLY)
def test_get_on_post_only_url(client, objects, name):
    client = client_for(client, "reviewer")
    response = client.get(url_for(name, objects))

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert writes() == (0, 0, 0)


@pytest.mark.parametrize("name", sorted({name for name, _ in MATRIX}))
def test_get_writes_nothing(client, objects, name):
    client = client_for(client, "reviewer")
    client.get(url_for(name, objects))

    assert writes() == (0, 0, 0)


def test_post_only_urls_found():
    assert POST_ONLY == ["qc:scan_review"]


def collect_url_names(patterns, namespace=""):
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or namespace
            if pattern.namespace and namespace:
                inner = f"{namespace}:{pattern.namespace}"
            names |= collect_url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
    return names


def test_matrix_covers_every_url():
    names = {
        name
        for name in collect_url_names(get_resolver().url_patterns)
        if name.split(":")[0] in ("qc", "studies")
    }
    covered = {name for name, _ in MATRIX}

    assert names, "no qc or studies URLs found in the URLconf"
    assert names - covered == set(), "URLs missing from MATRIX"
    assert covered - names == set(), "MATRIX names URLs that no longer exist"


@pytest.mark.parametrize(
    "name",
    ["qc:study_detail", "qc:timepoint_detail", "qc:scan_detail", "qc:session_sign_off"],
)
def test_unknown_objects_404(reviewer_client, name):
    StudyFactory(nickname="SPINS")
    kwargs = {
        "qc:study_detail": {"nickname": "NOPE"},
        "qc:timepoint_detail": {"name": "SPN01_CMH_9999_01"},
        "qc:scan_detail": {"name": "SPN01_CMH_9999_01_01_T1_02"},
        "qc:session_sign_off": {"session_id": "SPN01_CMH_9999_01_01"},
    }[name]

    assert reviewer_client.get(reverse(name, kwargs=kwargs)).status_code == 404
