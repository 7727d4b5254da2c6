"""Signing in: pending and deactivated accounts, OAuth without outbound traffic, sessions, MFA."""

import pytest
from allauth.account.models import EmailAddress
from allauth.core import context
from allauth.mfa.models import Authenticator
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import complete_social_login
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.test import RequestFactory
from django.urls import reverse

from accounts import services
from accounts.adapters import INACTIVE_STATE_SESSION_KEY
from accounts.models import AccountRequest, AccountRequestStatus, User
from tests.studies.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

GITHUB = {"github": {"APPS": [{"client_id": "test-id", "secret": "test-secret", "key": ""}]}}
LOGIN_URL = reverse("account_login")
INACTIVE_URL = reverse("account_inactive")


@pytest.fixture
def github(settings):
    settings.SOCIALACCOUNT_PROVIDERS = GITHUB


def pending_user(email="pending@example.org"):
    user = UserFactory(username=email.split("@")[0], email=email, is_active=False)
    AccountRequest.objects.create(
        user=user, institution="CAMH", position="RA", studies_and_sites="SPINS", reason="QC"
    )
    return user


def sign_in(client, email, password=TEST_PASSWORD):
    return client.post(LOGIN_URL, {"login": email, "password": password})


def oauth_callback(client, *, uid, email=None, verified=True):
    """Complete a GitHub sign-in as its callback view would, without contacting GitHub.

    The request shares the test client's session, so the client can continue the flow.
    """
    request = RequestFactory().get("/accounts/github/login/callback/")
    request.session = client.session
    request.user = AnonymousUser()
    MessageMiddleware(lambda request: None).process_request(request)
    user = User(email=email or "")
    user.is_active = False
    addresses = [EmailAddress(email=email, verified=verified, primary=True)] if email else []
    provider = get_adapter().get_provider(request, "github")
    sociallogin = SocialLogin(
        provider=provider,
        user=user,
        account=SocialAccount(provider="github", uid=uid, extra_data={"login": uid}),
        email_addresses=addresses,
    )
    with context.request_context(request):
        response = complete_social_login(request, sociallogin)
    request.session.save()
    return response


# --- Password -------------------------------------------------------------------------------


def test_pending_password_sign_in_shows_awaiting_approval(client):
    pending_user()
    response = sign_in(client, "pending@example.org")

    assert response.status_code == 302
    assert response.url == INACTIVE_URL
    page = client.get(INACTIVE_URL)
    assert "awaiting approval" in page.text
    assert "password" not in page.text.lower()
    assert "_auth_user_id" not in client.session


def test_pending_wrong_password_is_plain_failure(client):
    pending_user()
    response = sign_in(client, "pending@example.org", password="wrong")

    assert response.status_code == 200
    assert "awaiting approval" not in response.text
    assert response.context["form"].errors


def test_rejected_sign_in_says_not_approved(client, django_capture_on_commit_callbacks):
    user = pending_user()
    admin = UserFactory(username="boss", is_dashboard_admin=True)
    services.reject_account_request(user.account_requests.get(), actor=admin, reason="Unknown.")
    response = sign_in(client, user.email)

    assert response.url == INACTIVE_URL
    assert "was not approved" in client.get(INACTIVE_URL).text


def test_deactivated_sign_in_says_deactivated(client):
    UserFactory(username="gone", email="gone@example.org", is_active=False)
    response = sign_in(client, "gone@example.org")

    assert response.url == INACTIVE_URL
    assert "deactivated" in client.get(INACTIVE_URL).text


def test_active_sign_in_lands_on_studies(client):
    UserFactory(username="alice", email="alice@example.org")
    response = sign_in(client, "alice@example.org")

    assert response.status_code == 302
    assert response.url == reverse("qc:study_list")


# --- Sessions -------------------------------------------------------------------------------


def test_deactivation_ends_active_session(client):
    user = UserFactory(username="alice", email="alice@example.org")
    admin = UserFactory(username="boss", is_dashboard_admin=True)
    sign_in(client, user.email)
    assert client.get(reverse("qc:study_list")).status_code == 200

    services.deactivate_user(user, actor=admin, reason="Left the lab.")
    response = client.get(reverse("qc:study_list"))

    assert response.status_code == 302
    assert response.url.startswith(LOGIN_URL)


# --- OAuth ----------------------------------------------------------------------------------


def test_oauth_pending_user_sees_awaiting_approval(client, github):
    user = pending_user()
    SocialAccount.objects.create(user=user, provider="github", uid="1001")
    response = oauth_callback(client, uid="1001", email=user.email)

    assert response.status_code == 302
    assert response.url == INACTIVE_URL
    assert client.session[INACTIVE_STATE_SESSION_KEY] == "pending"
    assert "awaiting approval" in client.get(INACTIVE_URL).text


def test_oauth_does_not_reactivate_deactivated_user(client, github):
    user = UserFactory(username="gone", email="gone@example.org", is_active=False)
    SocialAccount.objects.create(user=user, provider="github", uid="1002")
    response = oauth_callback(client, uid="1002", email=user.email)

    user.refresh_from_db()
    assert response.url == INACTIVE_URL
    assert user.is_active is False
    assert client.session[INACTIVE_STATE_SESSION_KEY] == "deactivated"
    assert client.get(reverse("qc:study_list")).status_code == 302


def test_oauth_new_person_fills_in_request(
    client, github, mailoutbox, django_capture_on_commit_callbacks
):
    response = oauth_callback(client, uid="2001", email="new@example.org")

    assert response.status_code == 302
    assert response.url == reverse("socialaccount_signup")
    form_page = client.get(response.url)
    assert form_page.status_code == 200
    assert form_page.context["form"]["email"].value() == "new@example.org"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("socialaccount_signup"), request_fields("new@example.org"))

    assert response.status_code == 302
    assert response.url == INACTIVE_URL
    user = User.objects.get(email="new@example.org")
    assert user.is_active is False
    assert user.account_requests.get().status == AccountRequestStatus.PENDING
    assert SocialAccount.objects.filter(user=user, provider="github", uid="2001").exists()


def test_oauth_without_public_email_asks_for_one(
    client, github, django_capture_on_commit_callbacks
):
    response = oauth_callback(client, uid="3001", email=None)

    assert response.status_code == 302
    assert response.url == reverse("socialaccount_signup")
    form_page = client.get(response.url)
    assert form_page.status_code == 200
    assert "did not share an email address" in form_page.text

    missing = client.post(reverse("socialaccount_signup"), request_fields(""))
    assert missing.status_code == 200
    assert "email" in missing.context["form"].errors

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("socialaccount_signup"), request_fields("private@example.org")
        )
    assert response.status_code == 302
    assert User.objects.get(email="private@example.org").is_active is False


def request_fields(email):
    return {
        "email": email,
        "first_name": "Pat",
        "last_name": "Doe",
        "institution": "CAMH",
        "position": "Research assistant",
        "studies_and_sites": "SPINS at CMH",
        "reason": "QC of the CMH scans.",
    }


def test_provider_button_hidden_without_settings(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"github": {}}
    response = client.get(LOGIN_URL)

    assert 'data-testid="providers"' not in response.text
    assert "Sign in with GitHub" not in response.text


def test_provider_button_shown_with_settings(client, github):
    response = client.get(LOGIN_URL)

    assert "Sign in with GitHub" in response.text


# --- MFA ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    admin = UserFactory(username="boss", is_dashboard_admin=True, is_staff=True)
    client.force_login(admin)
    client.admin = admin
    return client


def test_admin_without_totp_sent_to_set_up(admin_client, settings):
    settings.MFA_REQUIRED_FOR_DASHBOARD_ADMINS = True
    response = admin_client.get(reverse("accounts:user_list"))

    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")
    assert admin_client.get(reverse("mfa_index")).status_code == 200


def test_admin_with_totp_passes(admin_client, settings):
    settings.MFA_REQUIRED_FOR_DASHBOARD_ADMINS = True
    Authenticator.objects.create(
        user=admin_client.admin, type=Authenticator.Type.TOTP, data={"secret": "x"}
    )

    assert admin_client.get(reverse("accounts:user_list")).status_code == 200


def test_admin_mfa_not_required_when_off(admin_client, settings):
    settings.MFA_REQUIRED_FOR_DASHBOARD_ADMINS = False

    assert admin_client.get(reverse("accounts:user_list")).status_code == 200


def test_mfa_requirement_spares_other_users(client, settings):
    settings.MFA_REQUIRED_FOR_DASHBOARD_ADMINS = True
    client.force_login(UserFactory(username="alice"))

    assert client.get(reverse("qc:study_list")).status_code == 200


# --- Rate limits ----------------------------------------------------------------------------


def test_failed_sign_ins_rate_limited(client):
    UserFactory(username="alice", email="alice@example.org")
    for _ in range(5):
        response = sign_in(client, "alice@example.org", password="wrong")
        assert "Too many failed login attempts" not in response.text

    response = sign_in(client, "alice@example.org", password="wrong")
    assert "Too many failed login attempts" in response.text

    # The right password is refused too while the limit holds.
    response = sign_in(client, "alice@example.org")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_sign_in_page_links_and_icon(client):
    response = client.get(reverse("account_login"))

    html = response.content.decode()
    assert html.count(reverse("account_reset_password")) == 1
    assert 'rel="icon"' in html


def test_admin_pages_link_the_icon(admin_client):
    response = admin_client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert 'rel="icon"' in response.content.decode()
