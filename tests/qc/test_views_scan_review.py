import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from qc.models import QCEvent, QCEventKind, QCState, ScanReview
from tests.studies.factories import ScanFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def review_url(scan):
    return reverse("qc:scan_review", args=[scan.name])


def timepoint_url(scan):
    return reverse("qc:timepoint_detail", args=[scan.session.timepoint.name])


def test_review_approves_and_redirects(reviewer_client, reviewer):
    scan = ScanFactory()
    response = reviewer_client.post(review_url(scan), {"state": "approved", "comment": ""})

    assert response.status_code == 302
    assert response.url == f"{timepoint_url(scan)}#scan-{scan.pk}"
    review = ScanReview.objects.get()
    assert review.scan == scan
    assert review.state == QCState.APPROVED
    assert review.reviewer == reviewer
    assert QCEvent.objects.filter(kind=QCEventKind.SCAN_REVIEWED, scan=scan).count() == 1
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == [f"{scan.name} marked approved."]


def test_review_redirects_to_next(reviewer_client):
    scan = ScanFactory()
    scan_page = reverse("qc:scan_detail", args=[scan.name])
    response = reviewer_client.post(
        review_url(scan), {"state": "flagged", "comment": "motion", "next": scan_page}
    )

    assert response.status_code == 302
    assert response.url == scan_page


def test_review_ignores_offsite_next(reviewer_client):
    scan = ScanFactory()
    response = reviewer_client.post(
        review_url(scan),
        {"state": "approved", "next": "https://evil.example.org/"},
    )

    assert response.url == f"{timepoint_url(scan)}#scan-{scan.pk}"


def test_flag_without_comment_keeps_form(reviewer_client):
    scan = ScanFactory()
    response = reviewer_client.post(review_url(scan), {"state": "flagged", "comment": "   "})

    assert response.status_code == 200
    assert f"A comment is required to mark {scan.name} as flagged" in response.text
    assert response.context["form"].data["state"] == "flagged"
    assert response.context["form"].data["comment"] == "   "
    assert response.context["scan"] == scan
    assert not ScanReview.objects.exists()


def test_blacklist_without_comment_htmx(reviewer_client):
    scan = ScanFactory()
    response = reviewer_client.post(review_url(scan), {"state": "blacklisted"}, **HTMX)

    assert response.status_code == 200
    assert response.text.lstrip().startswith("<tbody")
    assert "A comment is required" in response.text
    assert 'data-state="new"' in response.text
    assert not ScanReview.objects.exists()


def test_htmx_review_returns_row(reviewer_client):
    scan = ScanFactory()
    response = reviewer_client.post(
        review_url(scan), {"state": "flagged", "comment": "ghosting artefact"}, **HTMX
    )

    assert response.status_code == 200
    assert [template.name for template in response.templates][0] == "qc/_scan_row.html"
    assert "<html" not in response.text
    assert f'<tbody id="scan-{scan.pk}"' in response.text
    assert 'data-state="flagged"' in response.text
    assert "ghosting artefact" in response.text
    assert ScanReview.objects.get().state == QCState.FLAGGED
    # The comment box is empty again, ready for the next decision.
    assert f'id="scan{scan.pk}_comment">\n</textarea>' in response.text
    assert not list(get_messages(response.wsgi_request))


def test_huge_comment_rejected(reviewer_client):
    scan = ScanFactory()
    comment = "x" * 5001
    response = reviewer_client.post(review_url(scan), {"state": "flagged", "comment": comment})

    assert response.status_code == 200
    assert "The comment is 5001 characters long; shorten it to at most 5000." in response.text
    assert comment in response.text
    assert not ScanReview.objects.exists()


def test_nul_comment_rejected(reviewer_client):
    scan = ScanFactory()
    response = reviewer_client.post(
        review_url(scan), {"state": "flagged", "comment": "bad\x00byte"}, **HTMX
    )

    assert response.status_code == 200
    assert "The comment contains a NUL character; remove it and save again." in response.text
    assert not ScanReview.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"comment": "x"}, "Choose a QC state (new, approved, flagged, blacklisted)"),
        ({"state": "lost", "comment": "x"}, "lost is not a QC state"),
    ],
)
def test_missing_or_invalid_state(reviewer_client, data, message):
    scan = ScanFactory()
    response = reviewer_client.post(review_url(scan), data)

    assert response.status_code == 200
    assert message in response.text
    assert not ScanReview.objects.exists()


def test_review_of_linked_scan_goes_to_source(reviewer_client):
    source = ScanFactory()
    linked = ScanFactory(source=source)
    reviewer_client.post(review_url(linked), {"state": "blacklisted", "comment": "artefact"})

    assert ScanReview.objects.get().scan == source


def test_review_unknown_scan_404(reviewer_client):
    response = reviewer_client.post(
        reverse("qc:scan_review", args=["SPN01_CMH_0001_01_01_T1_02"]), {"state": "approved"}
    )

    assert response.status_code == 404
    assert not ScanReview.objects.exists()


def test_review_requires_csrf(client, reviewer):
    client.handler.enforce_csrf_checks = True
    client.force_login(reviewer)
    scan = ScanFactory()
    response = client.post(review_url(scan), {"state": "approved"})

    assert response.status_code == 403
    assert not ScanReview.objects.exists()


@pytest.mark.parametrize("htmx", [False, True])
def test_review_query_count(reviewer_client, django_assert_num_queries, htmx):
    scan = ScanFactory()
    headers = HTMX if htmx else {}

    # 1 session, 2 user, 3 scan with QC state, session, timepoint and study, 4 savepoint,
    # 5 lock the session, 6 lock the reviewed scan, 7 insert review, 8 copy its state to the
    # scan, 9 insert audit event, 10 release savepoint. htmx then fetches the row again (11).
    # A redirect stores its message in a cookie.
    expected = 11 if htmx else 10
    with django_assert_num_queries(expected):
        response = reviewer_client.post(review_url(scan), {"state": "approved"}, **headers)

    assert response.status_code == (200 if htmx else 302)
