"""User management by dashboard admins, a study's members by its study admins, the profile."""

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import AccessEvent, AccessEventKind, Role, StudyMembership, User
from accounts.services import AccessError, Grant
from tests.studies.factories import SiteFactory, StudyFactory, StudySiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return UserFactory(username="boss", is_dashboard_admin=True, is_staff=True)


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def spins():
    study_site = StudySiteFactory(
        study=StudyFactory(nickname="SPINS"), site=SiteFactory(name="CMH")
    )
    StudySiteFactory(study=study_site.study, site=SiteFactory(name="ZHH"))
    return study_site.study


def member(study, role, site=None, username=None):
    user = UserFactory(username=username) if username else UserFactory()
    StudyMembership.objects.create(user=user, study=study, site=site, role=role)
    return user


def test_admin_grants_and_revokes(admin_client, admin, spins):
    user = UserFactory(username="alice")
    response = admin_client.post(
        reverse("accounts:user_grant", args=[user.pk]),
        {"study": spins.pk, "site": "", "role": Role.RA, "is_primary_contact": "on"},
    )

    assert response.status_code == 302
    membership = StudyMembership.objects.get(user=user)
    assert membership.role == Role.RA
    assert membership.site is None
    assert membership.is_primary_contact is True

    response = admin_client.post(reverse("accounts:user_revoke", args=[user.pk, membership.pk]))
    assert response.status_code == 302
    assert not StudyMembership.objects.filter(user=user).exists()
    events = AccessEvent.objects.filter(user=user).order_by("id")
    assert [event.kind for event in events] == [AccessEventKind.GRANTED, AccessEventKind.REVOKED]
    assert all(event.actor == admin for event in events)
    assert events[0].detail == "RA in SPINS, all sites (primary contact)"


def test_grant_again_changes_role(admin, spins):
    user = UserFactory(username="alice")
    services.grant_role(user, actor=admin, grant=Grant(study=spins, role=Role.VIEWER))
    services.grant_role(user, actor=admin, grant=Grant(study=spins, role=Role.RA))

    assert StudyMembership.objects.get(user=user).role == Role.RA
    assert AccessEvent.objects.filter(user=user, kind=AccessEventKind.CHANGED).count() == 1


def test_grant_rejects_site_outside_study(admin_client, spins):
    user = UserFactory(username="alice")
    elsewhere = SiteFactory(name="UTO")
    response = admin_client.post(
        reverse("accounts:user_grant", args=[user.pk]),
        {"study": spins.pk, "site": elsewhere.pk, "role": Role.VIEWER},
    )

    assert response.status_code == 400
    assert "UTO is not a site of SPINS" in response.text
    assert not StudyMembership.objects.exists()


def test_deactivate_and_reactivate(admin_client, admin):
    user = UserFactory(username="alice")
    response = admin_client.post(
        reverse("accounts:user_deactivate", args=[user.pk]), {"reason": "Left the lab."}
    )
    user.refresh_from_db()
    assert response.status_code == 302
    assert user.is_active is False
    event = AccessEvent.objects.get(kind=AccessEventKind.DEACTIVATED)
    assert (event.actor, event.user, event.detail) == (admin, user, "Left the lab.")

    admin_client.post(reverse("accounts:user_reactivate", args=[user.pk]))
    user.refresh_from_db()
    assert user.is_active is True
    assert AccessEvent.objects.filter(kind=AccessEventKind.REACTIVATED, user=user).exists()


def test_admin_cannot_deactivate_self(admin):
    with pytest.raises(AccessError, match="your own account"):
        services.deactivate_user(admin, actor=admin)


def test_pending_user_not_reactivated_by_hand(admin):
    from accounts.models import AccountRequest

    user = UserFactory(username="new", is_active=False)
    AccountRequest.objects.create(
        user=user, institution="X", position="Y", studies_and_sites="Z", reason="W"
    )
    with pytest.raises(AccessError, match="pending account request"):
        services.reactivate_user(user, actor=admin)


@pytest.mark.parametrize("count", [1, 20])
def test_user_list_query_count(admin_client, django_assert_num_queries, spins, count):
    for _ in range(count):
        member(spins, Role.VIEWER)

    # 1 session, 2 user with memberships, 3 paginator count, 4 users with role counts,
    # 5 pending account requests for the navigation bar.
    with django_assert_num_queries(5):
        response = admin_client.get(reverse("accounts:user_list"))

    # The admin is listed too.
    assert len(response.context["page"].object_list) == count + 1


def test_user_list_search(admin_client):
    UserFactory(username="alice", email="alice@example.org")
    UserFactory(username="bob", email="bob@example.org")
    response = admin_client.get(reverse("accounts:user_list") + "?q=alic")

    assert [user.username for user in response.context["page"].object_list] == ["alice"]


@pytest.mark.parametrize("count", [1, 20])
def test_user_detail_query_count(admin_client, django_assert_num_queries, spins, count):
    user = UserFactory(username="alice")
    studies = [spins] + [StudyFactory() for _ in range(count - 1)]
    for study in studies:
        StudyMembership.objects.create(user=user, study=study, role=Role.VIEWER)

    # 1 session, 2 user with memberships, 3 managed user, 4 memberships with study and site,
    # 5 events, 6 studies and 7 sites of the grant form, 8 pending account requests for the
    # navigation bar. The managed user is active, so no account request is read.
    with django_assert_num_queries(8):
        response = admin_client.get(reverse("accounts:user_detail", args=[user.pk]))

    assert len(response.context["memberships"]) == count


# --- A study's members ----------------------------------------------------------------------


def test_study_admin_grants_within_study(client, spins):
    study_admin = member(spins, Role.STUDY_ADMIN, username="lead")
    UserFactory(username="alice", email="alice@example.org")
    client.force_login(study_admin)
    cmh = spins.study_sites.get(site__name="CMH").site
    response = client.post(
        reverse("accounts:study_member_grant", args=["SPINS"]),
        {"study": spins.pk, "email": "alice@example.org", "site": cmh.pk, "role": Role.STUDY_ADMIN},
    )

    assert response.status_code == 302
    membership = StudyMembership.objects.get(user__username="alice")
    assert (membership.study, membership.site, membership.role) == (spins, cmh, Role.STUDY_ADMIN)


def test_study_admin_cannot_grant_in_other_study(client, spins):
    other = StudyFactory(nickname="OTHER")
    study_admin = member(spins, Role.STUDY_ADMIN, username="lead")
    UserFactory(username="alice", email="alice@example.org")
    client.force_login(study_admin)
    response = client.post(
        reverse("accounts:study_member_grant", args=["SPINS"]),
        {"study": other.pk, "email": "alice@example.org", "role": Role.VIEWER},
    )

    assert response.status_code == 400
    assert not StudyMembership.objects.filter(user__username="alice").exists()
    assert client.get(reverse("accounts:study_members", args=["OTHER"])).status_code == 404


def test_study_admin_cannot_make_dashboard_admin(client, spins):
    study_admin = member(spins, Role.STUDY_ADMIN, username="lead")
    alice = UserFactory(username="alice", email="alice@example.org")
    client.force_login(study_admin)
    client.post(
        reverse("accounts:study_member_grant", args=["SPINS"]),
        {
            "study": spins.pk,
            "email": "alice@example.org",
            "role": Role.STUDY_ADMIN,
            "is_dashboard_admin": "on",
        },
    )

    alice.refresh_from_db()
    assert alice.is_dashboard_admin is False
    assert client.get(reverse("accounts:user_list")).status_code == 403


def test_site_limited_study_admin_cannot_manage_members(client, spins):
    cmh = spins.study_sites.get(site__name="CMH").site
    client.force_login(member(spins, Role.STUDY_ADMIN, site=cmh))

    assert client.get(reverse("accounts:study_members", args=["SPINS"])).status_code == 403


def test_grant_unknown_email(client, spins):
    client.force_login(member(spins, Role.STUDY_ADMIN))
    response = client.post(
        reverse("accounts:study_member_grant", args=["SPINS"]),
        {"study": spins.pk, "email": "nobody@example.org", "role": Role.VIEWER},
    )

    assert response.status_code == 400
    assert "No account uses nobody@example.org" in response.text


def test_study_admin_revokes_member(client, spins):
    client.force_login(member(spins, Role.STUDY_ADMIN))
    viewer = member(spins, Role.VIEWER, username="alice")
    membership = StudyMembership.objects.get(user=viewer)
    response = client.post(
        reverse("accounts:study_member_revoke", args=["SPINS", membership.pk]),
        {"next": "https://other.example/"},
    )

    assert response.status_code == 302
    assert response.url == reverse("accounts:study_members", args=["SPINS"])
    assert not StudyMembership.objects.filter(pk=membership.pk).exists()


@pytest.mark.parametrize("count", [1, 20])
def test_study_members_query_count(client, django_assert_num_queries, spins, count):
    client.force_login(member(spins, Role.STUDY_ADMIN))
    for _ in range(count):
        member(spins, Role.VIEWER)

    # 1 session, 2 user with memberships, 3 study, 4 memberships with user and site,
    # 5 sites of the grant form.
    with django_assert_num_queries(5):
        response = client.get(reverse("accounts:study_members", args=["SPINS"]))

    assert len(response.context["memberships"]) == count + 1


# --- Profile --------------------------------------------------------------------------------


def test_profile_edits_own_details(client, spins):
    user = member(spins, Role.QC_REVIEWER, username="alice")
    client.force_login(user)
    response = client.post(
        reverse("accounts:profile"),
        {
            "first_name": "Alice",
            "last_name": "Liddell",
            "phone": "+1 416 555 0100",
            "institution": "CAMH",
            "position": "RA",
            "is_dashboard_admin": "on",
        },
    )

    user.refresh_from_db()
    assert response.status_code == 302
    assert (user.first_name, user.phone, user.institution) == ("Alice", "+1 416 555 0100", "CAMH")
    assert user.is_dashboard_admin is False


@pytest.mark.parametrize("count", [1, 20])
def test_profile_query_count(client, django_assert_num_queries, count):
    user = UserFactory(username="alice")
    for _ in range(count):
        StudyMembership.objects.create(user=user, study=StudyFactory(), role=Role.VIEWER)
    client.force_login(user)

    # 1 session, 2 user with memberships, 3 memberships with study and site.
    with django_assert_num_queries(3):
        response = client.get(reverse("accounts:profile"))

    assert response.status_code == 200
    assert response.text.count("data-membership=") == count


@pytest.mark.parametrize("is_admin", [False, True])
def test_profile_links_notification_pages(client, is_admin):
    client.force_login(UserFactory(is_dashboard_admin=is_admin))

    html = client.get(reverse("accounts:profile")).text

    assert reverse("notifications:preferences") in html
    assert (reverse("notifications:failed") in html) is is_admin
    assert (reverse("integrations:failed_pushes") in html) is is_admin


def test_user_str_and_membership_str(spins):
    user = member(spins, Role.RA, username="alice")

    assert str(StudyMembership.objects.get(user=user)) == "alice RA in SPINS (all sites)"
    assert str(User.objects.get(pk=user.pk)) == "alice"
