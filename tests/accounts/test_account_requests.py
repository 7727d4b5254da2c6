"""Account requests: sign-up, the queue, approval and rejection, and their emails."""

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import (
    AccessEvent,
    AccessEventKind,
    AccountRequest,
    AccountRequestStatus,
    Role,
    StudyMembership,
    User,
)
from accounts.services import AccessError, Grant
from tests.studies.factories import SiteFactory, StudyFactory, StudySiteFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "new@example.org",
    "password1": "a long and unusual passphrase",
    "password2": "a long and unusual passphrase",
    "first_name": "Pat",
    "last_name": "Doe",
    "institution": "CAMH",
    "position": "Research assistant",
    "studies_and_sites": "SPINS at CMH",
    "reason": "QC of the CMH scans.",
}


@pytest.fixture
def admin(db):
    return UserFactory(
        username="boss", email="boss@example.org", is_dashboard_admin=True, is_staff=True
    )


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def spins():
    return StudySiteFactory(study=StudyFactory(nickname="SPINS"), site=SiteFactory(name="CMH"))


def sign_up(client, capture, **changes):
    with capture(execute=True):
        return client.post(reverse("account_signup"), {**SIGNUP, **changes})


def test_signup_creates_inactive_user_with_request(
    client, admin, mailoutbox, django_capture_on_commit_callbacks
):
    response = sign_up(client, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response.url == reverse("account_inactive")
    user = User.objects.get(email="new@example.org")
    assert user.is_active is False
    assert user.get_full_name() == "Pat Doe"
    account_request = AccountRequest.objects.get(user=user)
    assert account_request.status == AccountRequestStatus.PENDING
    assert account_request.institution == "CAMH"
    assert account_request.studies_and_sites == "SPINS at CMH"
    assert AccessEvent.objects.filter(kind=AccessEventKind.REQUESTED, user=user).exists()


def test_signup_emails_requester_admins_and_verification(
    client, admin, mailoutbox, django_capture_on_commit_callbacks
):
    sign_up(client, django_capture_on_commit_callbacks)

    by_subject = {message.subject: message for message in mailoutbox}
    received = by_subject["Your qcdash account request was received"]
    assert received.to == ["new@example.org"]
    notice = by_subject["New qcdash account request from new@example.org"]
    assert notice.to == ["boss@example.org"]
    assert "SPINS at CMH" in notice.body
    assert "http://testserver/accounts/requests/" in notice.body
    verification = by_subject["[qcdash] Please Confirm Your Email Address"]
    assert verification.to == ["new@example.org"]


def test_signup_needs_request_fields(client, django_capture_on_commit_callbacks):
    response = sign_up(client, django_capture_on_commit_callbacks, institution="", reason="")

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"institution", "reason"}
    assert not User.objects.filter(email="new@example.org").exists()


def test_signup_closed_by_setting(client, settings):
    settings.ACCOUNT_ALLOW_REGISTRATION = False
    response = client.get(reverse("account_signup"))

    assert "Account requests are closed" in response.text


def test_navbar_counts_pending_requests(admin_client):
    for index in range(3):
        AccountRequest.objects.create(
            user=UserFactory(is_active=False),
            institution="X",
            position="Y",
            studies_and_sites="Z",
            reason=f"r{index}",
        )
    response = admin_client.get(reverse("qc:study_list"))

    assert 'data-testid="account-request-count">3<' in response.text


def test_navbar_count_hidden_from_others(client):
    client.force_login(UserFactory(username="alice"))
    response = client.get(reverse("qc:study_list"))

    assert "account-request-count" not in response.text
    assert reverse("accounts:request_list") not in response.text


def make_request(email="new@example.org"):
    user = UserFactory(username=email.split("@")[0], email=email, is_active=False)
    return AccountRequest.objects.create(
        user=user,
        institution="CAMH",
        position="RA",
        studies_and_sites="SPINS at CMH",
        reason="QC",
    )


def test_approve_activates_and_grants(
    admin_client, admin, spins, mailoutbox, django_capture_on_commit_callbacks
):
    account_request = make_request()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("accounts:request_approve", args=[account_request.pk]),
            {"scopes": [f"{spins.study_id}:{spins.site_id}"], "role": Role.QC_REVIEWER},
        )

    assert response.status_code == 302
    account_request.refresh_from_db()
    user = account_request.user
    user.refresh_from_db()
    assert account_request.status == AccountRequestStatus.APPROVED
    assert account_request.decided_by == admin
    assert user.is_active is True
    membership = StudyMembership.objects.get(user=user)
    assert (membership.study, membership.site, membership.role) == (
        spins.study,
        spins.site,
        Role.QC_REVIEWER,
    )
    kinds = set(AccessEvent.objects.filter(user=user).values_list("kind", flat=True))
    assert kinds == {AccessEventKind.APPROVED, AccessEventKind.GRANTED}
    approved = [message for message in mailoutbox if message.to == ["new@example.org"]]
    assert [message.subject for message in approved] == ["Your qcdash account is approved"]
    assert "QC reviewer in SPINS at CMH" in approved[0].body
    assert "http://testserver/accounts/login/" in approved[0].body
    admin_mail = [message for message in mailoutbox if message.to == ["boss@example.org"]]
    assert "approved" in admin_mail[0].subject


def test_approve_needs_a_scope(admin_client, spins):
    account_request = make_request()
    response = admin_client.post(
        reverse("accounts:request_approve", args=[account_request.pk]),
        {"role": Role.VIEWER},
    )

    assert response.status_code == 400
    account_request.refresh_from_db()
    assert account_request.status == AccountRequestStatus.PENDING


def test_reject_keeps_user_and_reason(admin_client, mailoutbox, django_capture_on_commit_callbacks):
    account_request = make_request()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("accounts:request_reject", args=[account_request.pk]),
            {"reason": "Not part of the study team."},
        )

    assert response.status_code == 302
    account_request.refresh_from_db()
    assert account_request.status == AccountRequestStatus.REJECTED
    assert account_request.rejection_reason == "Not part of the study team."
    assert User.objects.filter(pk=account_request.user_id, is_active=False).exists()
    rejected = [message for message in mailoutbox if message.to == ["new@example.org"]]
    assert "Not part of the study team." in rejected[0].body
    assert AccessEvent.objects.get(kind=AccessEventKind.REJECTED).detail == (
        "Not part of the study team."
    )


def test_reject_needs_reason(admin_client):
    account_request = make_request()
    response = admin_client.post(
        reverse("accounts:request_reject", args=[account_request.pk]), {"reason": ""}
    )

    assert response.status_code == 400
    account_request.refresh_from_db()
    assert account_request.status == AccountRequestStatus.PENDING


def test_decided_request_cannot_be_decided_again(admin, spins):
    account_request = make_request()
    services.reject_account_request(account_request, actor=admin, reason="No.")

    with pytest.raises(AccessError, match="already rejected"):
        services.approve_account_request(
            account_request, actor=admin, grants=[Grant(study=spins.study)]
        )


def test_grant_at_foreign_site_rejected(admin, spins):
    other_site = SiteFactory(name="ZHH")
    account_request = make_request()

    with pytest.raises(AccessError, match="ZHH is not a site of SPINS"):
        services.approve_account_request(
            account_request, actor=admin, grants=[Grant(study=spins.study, site=other_site)]
        )


def test_only_admins_approve(spins):
    account_request = make_request()
    viewer = UserFactory(username="viewer")

    with pytest.raises(Exception, match="Only dashboard admins"):
        services.approve_account_request(
            account_request, actor=viewer, grants=[Grant(study=spins.study)]
        )


def test_request_queue_shows_pending_only(admin_client, admin):
    pending = make_request("a@example.org")
    decided = make_request("b@example.org")
    services.reject_account_request(decided, actor=admin, reason="No.")

    response = admin_client.get(reverse("accounts:request_list"))
    listed = [row.pk for row in response.context["page"].object_list]
    assert listed == [pending.pk]

    response = admin_client.get(reverse("accounts:request_list") + "?show=all")
    assert {row.pk for row in response.context["page"].object_list} == {pending.pk, decided.pk}


@pytest.mark.parametrize("count", [1, 20])
def test_request_queue_query_count(admin_client, django_assert_num_queries, count):
    for index in range(count):
        make_request(f"person{index}@example.org")

    # 1 session, 2 user with memberships, 3 paginator count, 4 requests with user and decider,
    # 5 pending count for the navigation bar.
    with django_assert_num_queries(5):
        response = admin_client.get(reverse("accounts:request_list"))

    assert len(response.context["page"].object_list) == count
