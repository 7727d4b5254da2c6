"""Fixtures of the accounts tests."""

import pytest
from django_q.conf import Conf


@pytest.fixture(autouse=True)
def sync_tasks(monkeypatch):
    """Run django-q2 tasks (such as sending account emails) in the calling process as they are
    queued, so the tests see the emails in `mailoutbox`."""
    monkeypatch.setattr(Conf, "SYNC", True)
