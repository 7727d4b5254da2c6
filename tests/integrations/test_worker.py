"""End to end: a QC decision posted to the page, a real django-q2 worker, the XNAT stand-in."""

import time

import pytest
from django.urls import reverse

from integrations.models import PushStatus, XnatPush
from tests.redcap.test_worker import qcluster

__all__ = ["qcluster"]  # the fixture, imported for the test below

# The worker needs a few seconds to start; the push itself takes milliseconds.
PUSH_TIMEOUT = 30


def test_worker_pushes_decision(xnat, reviewer, client, qcluster):
    client.force_login(reviewer)

    response = client.post(
        reverse("qc:scan_review", args=[xnat.scan.name]),
        {"state": "flagged", "comment": "Motion in the last volumes."},
    )
    assert response.status_code == 302

    deadline = time.monotonic() + PUSH_TIMEOUT
    while time.monotonic() < deadline:
        if XnatPush.objects.filter(status=PushStatus.DONE).exists():
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no push done within {PUSH_TIMEOUT} s; worker log:\n{qcluster.read_text()}")

    assert xnat.fake.quality(xnat.path) == "questionable"
    assert XnatPush.objects.get().attempts == 1
