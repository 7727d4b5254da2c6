"""End to end: a trigger POST, a real django-q2 worker process, the REDCap stand-in, a link."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django.urls import reverse

from redcap.models import RedcapTrigger, SessionSurvey, TriggerStatus

ROOT = Path(__file__).resolve().parents[2]
# The worker needs a few seconds to start; the fetch itself takes milliseconds.
LINK_TIMEOUT = 30


def database_url():
    """The test database as a DATABASE_URL for a subprocess."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings["USER"] or "")
    password = f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else ""
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@pytest.fixture
def qcluster(transactional_db, tmp_path):
    """A `manage.py qcluster` process on the test database, stopped after the test."""
    env = dict(os.environ, DATABASE_URL=database_url(), Q_WORKERS="1", LOG_LEVEL="INFO")
    log_path = tmp_path / "qcluster.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log_path
    finally:
        # The cluster process stops its own workers on SIGTERM; anything left in its process
        # group after that is killed.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def test_worker_fetches_and_links(client, redcap, session, qcluster):
    config = redcap.config
    body = urlencode(
        {
            "redcap_url": config.url,
            "project_id": str(config.project_id),
            "username": "ra_jane",
            "record": "12",
            "instrument": config.instrument,
            f"{config.instrument}_complete": "2",
        }
    )

    started = time.monotonic()
    response = client.post(
        reverse("redcap:trigger", args=[config.trigger_secret]),
        data=body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200

    deadline = started + LINK_TIMEOUT
    while time.monotonic() < deadline:
        if SessionSurvey.objects.filter(session=session).exists():
            break
        time.sleep(0.2)
    else:
        pytest.fail(
            f"no survey linked within {LINK_TIMEOUT} s; worker log:\n{qcluster.read_text()}"
        )

    link = SessionSurvey.objects.select_related("record").get(session=session)
    assert link.record.record_id == "12"
    assert RedcapTrigger.objects.get().status == TriggerStatus.DONE
    assert len(redcap.fake.record_requests()) == 1
