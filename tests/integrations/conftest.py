"""Fixtures of the integration tests: stand-in servers, configured study sites, sync tasks."""

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django_q.conf import Conf

from accounts.models import Role, StudyMembership
from integrations.models import IssueTracker, TrackerAccount, TrackerProvider, XnatSiteSettings
from studies.models import XnatConvention
from tests.integrations.fake_servers import FakeTracker, FakeXnat
from tests.studies.factories import (
    ScanFactory,
    SessionFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

# The worker test runs `manage.py qcluster` in another process, which cannot open an in-memory
# SQLite database, so on SQLite the test database is a file (as in tests/redcap).
if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        Path(tempfile.gettempdir()) / f"qcdash-test-{os.getpid()}.sqlite3"
    )

CREDENTIALS_VARIABLE = "XNAT_CREDENTIALS_TEST"
TOKEN_VARIABLE = "ISSUE_TRACKER_TOKEN_TEST"
TIMEPOINT = "SPN01_CMH_0001_01"
SESSION = f"{TIMEPOINT}_01"


@pytest.fixture
def sync_tasks(monkeypatch):
    """Run django-q2 tasks in the calling process as they are queued (its `sync` option)."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def integration_settings(settings):
    """Short timeouts, so failure tests take milliseconds."""
    settings.XNAT_TIMEOUT = 0.5
    settings.XNAT_MAX_ATTEMPTS = 3
    settings.XNAT_RETRY_DELAY = 60
    settings.ISSUE_TRACKER_TIMEOUT = 0.5
    settings.ISSUE_TRACKER_REFRESH_MINUTES = 15
    return settings


@pytest.fixture
def fake_xnat():
    with FakeXnat() as fake:
        yield fake


@pytest.fixture
def fake_tracker():
    with FakeTracker() as fake:
        yield fake


def xnat_site(study_nickname, site_name, code, url, *, project, convention=XnatConvention.DATMAN):
    """A study site whose pushes go to `url`, with credentials in CREDENTIALS_VARIABLE."""
    study_site = StudySiteFactory(
        study=StudyFactory(nickname=study_nickname),
        site=SiteFactory(name=site_name),
        code=code,
        xnat_url=url,
        xnat_archive=project,
        xnat_convention=convention,
    )
    XnatSiteSettings.objects.create(
        study_site=study_site, credentials_variable=CREDENTIALS_VARIABLE
    )
    return study_site


@pytest.fixture
def xnat(fake_xnat, monkeypatch, integration_settings, db):
    """SPINS at CMH pushing to the stand-in, which has scan 2 of session SPN01_CMH_0001_01_01."""
    monkeypatch.setenv(CREDENTIALS_VARIABLE, f"{fake_xnat.user}:{fake_xnat.password}")
    study_site = xnat_site("SPINS", "CMH", "SPN01", fake_xnat.url, project="SPINS")
    timepoint = TimepointFactory(study_site=study_site, name=TIMEPOINT)
    session = SessionFactory(timepoint=timepoint, number=1)
    scan = ScanFactory(session=session, series=2)
    path = fake_xnat.add_scan("SPINS", SESSION, SESSION, "2", quality="usable")
    return SimpleNamespace(
        fake=fake_xnat, study_site=study_site, session=session, scan=scan, path=path
    )


@pytest.fixture
def tracker_study(db):
    """SPINS at CMH with timepoint SPN01_CMH_0001_01 and no tracker."""
    study_site = StudySiteFactory(
        study=StudyFactory(nickname="SPINS"), site=SiteFactory(name="CMH"), code="SPN01"
    )
    timepoint = TimepointFactory(study_site=study_site, name=TIMEPOINT)
    SessionFactory(timepoint=timepoint, number=1)
    return SimpleNamespace(study=study_site.study, study_site=study_site, timepoint=timepoint)


def staff_contact(study, username, *, github="", gitlab=""):
    user = UserFactory(username=username, email=f"{username}@example.org")
    StudyMembership.objects.create(user=user, study=study, role=Role.VIEWER, is_staff_contact=True)
    TrackerAccount.objects.create(user=user, github_username=github, gitlab_username=gitlab)
    return user


@pytest.fixture
def tracker(tracker_study, fake_tracker, monkeypatch, integration_settings):
    """A GitHub tracker for SPINS at the stand-in, with the token in TOKEN_VARIABLE."""
    monkeypatch.setenv(TOKEN_VARIABLE, fake_tracker.token)
    row = IssueTracker.objects.create(
        study=tracker_study.study,
        provider=TrackerProvider.GITHUB,
        api_url=fake_tracker.url,
        repository=fake_tracker.repository,
        token_variable=TOKEN_VARIABLE,
    )
    return SimpleNamespace(fake=fake_tracker, row=row, **vars(tracker_study))
