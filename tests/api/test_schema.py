"""The OpenAPI schema and the Swagger UI page, served from this server's static files."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_schema_lists_every_operation():
    response = APIClient().get(reverse("api:schema"), {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths["/api/v1/scans/{name}/qc/"]) >= {"get", "put"}
    assert set(paths["/api/v1/sessions/{session_id}/"]) >= {"get", "put"}
    assert "post" in paths["/api/v1/sessions/{session_id}/sign-off/"]
    assert schema["components"]["securitySchemes"]["tokenAuth"]["in"] == "header"


def test_schema_marks_booleans_strict():
    schema = APIClient().get(reverse("api:schema"), {"format": "json"}).json()
    body = schema["components"]["schemas"]["SignOffRequestRequest"]

    assert body["properties"]["approve_all_new"]["type"] == "boolean"


def test_docs_page_uses_local_assets(client):
    response = client.get(reverse("api:docs"))

    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert not [source for source in sources if "//" in source]
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source


def test_docs_script_is_served_separately(client):
    response = client.get(reverse("api:docs"), {"script": ""})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in response.content.decode()
