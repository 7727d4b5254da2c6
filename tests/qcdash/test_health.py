"""/healthz and /readyz."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Task

from qcdash.health import HEARTBEAT_FUNC

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive_root(tmp_path, settings):
    settings.ARCHIVE_ROOT = tmp_path
    return tmp_path


def record_heartbeat(age):
    stopped = timezone.now() - age
    Task.objects.create(
        id=f"heartbeat{int(age.total_seconds())}",
        name="heartbeat",
        func=HEARTBEAT_FUNC,
        started=stopped,
        stopped=stopped,
        success=True,
    )


def test_healthz_needs_no_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ready_with_recent_heartbeat(client, archive_root):
    record_heartbeat(timedelta(seconds=30))

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert set(checks) == {"database", "migrations", "worker", "archive"}
    assert all(check["ok"] for check in checks.values())


def test_readyz_without_worker_is_unavailable(client, archive_root):
    response = client.get("/readyz")

    assert response.status_code == 503
    worker = response.json()["checks"]["worker"]
    assert worker["ok"] is False
    assert "qcluster" in worker["detail"]


def test_readyz_stale_heartbeat_is_unavailable(client, archive_root):
    record_heartbeat(timedelta(minutes=10))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert "600 s ago" in response.json()["checks"]["worker"]["detail"]


def test_readyz_missing_archive_is_unavailable(client, settings, tmp_path):
    settings.ARCHIVE_ROOT = tmp_path / "absent"
    record_heartbeat(timedelta(seconds=5))

    response = client.get("/readyz")

    assert response.status_code == 503
    archive = response.json()["checks"]["archive"]
    assert archive["ok"] is False
    assert str(tmp_path) not in archive["detail"]


def test_readyz_rejects_post(client):
    assert client.post("/readyz").status_code == 405
