"""API authentication: pipeline tokens, their admin pages and session sign-in."""

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from api.models import ApiToken, hash_token
from tests.api.conftest import token_client
from tests.studies.factories import UserFactory

pytestmark = pytest.mark.django_db

STUDIES = reverse("api:study_list")


def test_missing_token_is_401(spins):
    response = APIClient().get(STUDIES)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_unknown_token_is_401(spins):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token qcd_not-a-real-token")

    response = client.get(STUDIES)

    assert response.status_code == 401
    assert "Invalid token" in response.json()["message"]


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token \x00"])
def test_malformed_header_is_401(spins, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert client.get(STUDIES).status_code == 401


def test_token_authenticates_as_its_user(api, spins):
    response = api.get(STUDIES)

    assert response.status_code == 200
    assert [study["nickname"] for study in response.json()] == ["SPINS"]


def test_bearer_keyword_accepted(pipeline, spins):
    _row, token = ApiToken.issue(user=pipeline, name="bearer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.get(STUDIES).status_code == 200


def test_revoked_token_is_401(pipeline, spins):
    row, token = ApiToken.issue(user=pipeline, name="old")
    row.revoke()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.get(STUDIES)

    assert response.status_code == 401
    assert "was revoked" in response.json()["message"]


def test_deactivated_user_token_is_401(pipeline, spins):
    client = token_client(pipeline)
    pipeline.is_active = False
    pipeline.save()

    response = client.get(STUDIES)

    assert response.status_code == 401
    assert "deactivated" in response.json()["message"]


def test_token_use_is_recorded(pipeline, spins):
    row, token = ApiToken.issue(user=pipeline, name="use")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    client.get(STUDIES)

    row.refresh_from_db()
    assert row.last_used_at is not None


def test_only_hash_is_stored(pipeline):
    row, token = ApiToken.issue(user=pipeline, name="hash")

    assert row.key_hash == hash_token(token)
    assert token.startswith(row.prefix)
    with connection.cursor() as cursor:
        cursor.execute("SELECT prefix, key_hash, name FROM api_apitoken")
        stored = cursor.fetchall()
    assert all(token not in value for values in stored for value in values)


def test_signed_in_person_may_use_api(client, pipeline, spins):
    client.force_login(pipeline)

    response = client.get(STUDIES)

    assert response.status_code == 200


def test_session_put_needs_csrf_token(pipeline, spins):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(pipeline)

    response = client.put(
        reverse("api:scan_qc", args=[spins[2].name]), {"state": "approved"}, format="json"
    )

    assert response.status_code == 403


# --- Admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    admin = UserFactory(username="boss", is_dashboard_admin=True, is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_admin_shows_new_token_once(admin_client, pipeline):
    response = admin_client.post(
        reverse("admin:api_apitoken_add"), {"user": pipeline.pk, "name": "datman"}
    )

    assert response.status_code == 200
    row = ApiToken.objects.get()
    token = response.context["token"]
    assert row.key_hash == hash_token(token)
    assert token in response.content.decode()
    assert row.created_by.username == "boss"
    change = admin_client.get(reverse("admin:api_apitoken_change", args=[row.pk]))
    assert token not in change.content.decode()


def test_admin_revokes_tokens(admin_client, pipeline):
    row, token = ApiToken.issue(user=pipeline, name="datman")

    admin_client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [row.pk]},
    )

    row.refresh_from_db()
    assert row.is_revoked


def test_admin_cannot_delete_tokens(admin_client, pipeline):
    row, _token = ApiToken.issue(user=pipeline, name="datman")

    response = admin_client.get(reverse("admin:api_apitoken_delete", args=[row.pk]))

    assert response.status_code == 403
