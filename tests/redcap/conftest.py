"""Fixtures of the REDCap tests: the REDCap stand-in, a configured study and synchronous tasks."""

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django_q.conf import Conf

from accounts.models import Role, StudyMembership
from tests.redcap.factories import TOKEN, RedcapConfigFactory
from tests.redcap.fake_redcap import FakeRedcap
from tests.studies.factories import (
    SessionFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

# The worker test runs `manage.py qcluster` in another process, which cannot open an in-memory
# SQLite database, so on SQLite the test database is a file. The process id keeps runs that
# happen at the same time apart.
if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        Path(tempfile.gettempdir()) / f"qcdash-test-{os.getpid()}.sqlite3"
    )

SESSION_ID = "SPN01_CMH_0001_01_01"


def survey_row(record_id="12", session_id=SESSION_ID, **values):
    """One record of the scan-completed survey as REDCap exports it (flat, all text)."""
    row = {
        "record_id": record_id,
        "par_id": session_id,
        "date": "2024-03-01",
        "cmts": "Participant moved during the resting state scan.",
        "tigrlab_scan_completed_complete": "2",
    }
    row.update(values)
    return row


@pytest.fixture
def fake_redcap():
    with FakeRedcap() as fake:
        yield fake


@pytest.fixture
def redcap_settings(settings):
    """Short timeouts and retry delays, so failure tests take milliseconds."""
    settings.REDCAP_TIMEOUT = 0.5
    settings.REDCAP_MAX_ATTEMPTS = 3
    settings.REDCAP_RETRY_DELAY = 60
    return settings


@pytest.fixture
def sync_tasks(monkeypatch):
    """Run django-q2 tasks in the calling process as they are queued (its `sync` option)."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def study_site(db):
    """SPINS at CMH (study code SPN01), which expects a survey for each session."""
    return StudySiteFactory(
        study=StudyFactory(nickname="SPINS"),
        site=SiteFactory(name="CMH"),
        code="SPN01",
        uses_redcap=True,
    )


@pytest.fixture
def session(study_site):
    """Session SPN01_CMH_0001_01_01."""
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    return SessionFactory(timepoint=timepoint, number=1)


def member(username, study_site, role, *, site_only=False):
    """A user with `role` in the study of `study_site` (at its site only, if `site_only`)."""
    user = UserFactory(username=username, email=f"{username}@example.org")
    site = study_site.site if site_only else None
    StudyMembership.objects.create(user=user, study=study_site.study, site=site, role=role)
    return user


@pytest.fixture
def ra(study_site):
    """An RA of SPINS at every site: handles its REDCap records and missing surveys."""
    return member("ra", study_site, Role.RA)


@pytest.fixture
def ra_client(client, ra):
    client.force_login(ra)
    return client


@pytest.fixture
def config(study_site):
    """A configuration for SPINS/CMH that no test server serves (for page tests)."""
    return RedcapConfigFactory(study_sites=[study_site])


@pytest.fixture
def redcap(fake_redcap, study_site, redcap_settings):
    """A configuration for SPINS/CMH that points at the stand-in, which has record 12."""
    fake_redcap.add_project(TOKEN, [survey_row()])
    config = RedcapConfigFactory(
        url=fake_redcap.url, api_url=fake_redcap.api_url, study_sites=[study_site]
    )
    return SimpleNamespace(fake=fake_redcap, config=config)
