"""`next` and "return to" targets lead only to qcdash's own pages."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from accounts.redirects import is_safe_redirect, safe_redirect_url
from tests.studies.factories import TEST_PASSWORD, UserFactory

UNSAFE = [
    "//other.example/x",
    "https://other.example/",
    "/\\other.example",
    "%2F%2Fother.example",
    "/accounts/logout/",
    "http://testserver.other.example/",
    "javascript:alert(1)",
    "%252F%252Fother.example",
    "relative/path",
    "",
]
SAFE = ["/", "/studies/SPINS/", "/timepoints/SPN01_CMH_0001_01/?show=all#scan-3"]


@pytest.fixture
def request_():
    return RequestFactory().get("/")


@pytest.mark.parametrize("target", UNSAFE)
def test_unsafe_target_rejected(request_, target):
    assert is_safe_redirect(target, request_) is False
    assert safe_redirect_url(request_, target) == reverse("qc:study_list")


@pytest.mark.parametrize("target", SAFE)
def test_own_page_accepted(request_, target):
    assert is_safe_redirect(target, request_) is True
    assert safe_redirect_url(request_, target) == target


@pytest.mark.django_db
@pytest.mark.parametrize("target", UNSAFE)
def test_sign_in_next_falls_back_home(client, target):
    UserFactory(username="alice", email="alice@example.org")
    response = client.post(
        f"{reverse('account_login')}",
        {"login": "alice@example.org", "password": TEST_PASSWORD, "next": target},
    )

    assert response.status_code == 302
    assert response.url == reverse("qc:study_list")


@pytest.mark.django_db
def test_sign_in_next_to_own_page(client):
    UserFactory(username="alice", email="alice@example.org")
    response = client.post(
        reverse("account_login"),
        {"login": "alice@example.org", "password": TEST_PASSWORD, "next": "/studies/SPINS/"},
    )

    assert response.url == "/studies/SPINS/"


@pytest.mark.django_db
@pytest.mark.parametrize("target", UNSAFE)
def test_review_next_falls_back_to_row(reviewer_client, target):
    from tests.studies.factories import ScanFactory

    scan = ScanFactory()
    response = reviewer_client.post(
        reverse("qc:scan_review", args=[scan.name]), {"state": "approved", "next": target}
    )

    assert response.status_code == 302
    assert response.url == (
        f"{reverse('qc:timepoint_detail', args=[scan.session.timepoint.name])}#scan-{scan.pk}"
    )
