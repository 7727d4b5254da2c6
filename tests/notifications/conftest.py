"""Fixtures of the notification tests: a REDCap study site, its people and a failing backend."""

import os
import smtplib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone
from django_q.conf import Conf

from accounts.models import Role, StudyMembership
from studies.models import Session
from tests.studies.factories import (
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


class FailingBackend(BaseEmailBackend):
    """An email backend whose server rejects every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPException("421 service not available")


FAILING_BACKEND = "tests.notifications.conftest.FailingBackend"


@pytest.fixture
def sync_tasks(monkeypatch):
    """Run django-q2 tasks in the calling process as they are queued."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def study_site(db):
    """SPINS at CMH (study code SPN01), which expects a REDCap survey for each session."""
    return StudySiteFactory(
        study=StudyFactory(nickname="SPINS"),
        site=SiteFactory(name="CMH"),
        code="SPN01",
        uses_redcap=True,
    )


def member(username, study_site, role, *, site=None, **flags):
    user = UserFactory(username=username, email=f"{username}@example.org")
    StudyMembership.objects.create(user=user, study=study_site.study, site=site, role=role, **flags)
    return user


@pytest.fixture
def people(study_site):
    """An RA at CMH, a staff contact, a primary contact and a QC reviewer of SPINS."""
    return {
        "ra": member("ra", study_site, Role.RA, site=study_site.site),
        "staff": member("staff", study_site, Role.VIEWER, is_staff_contact=True),
        "primary": member("primary", study_site, Role.STUDY_ADMIN, is_primary_contact=True),
        "reviewer": member("reviewer", study_site, Role.QC_REVIEWER),
    }


def make_session(study_site, subject="0001", *, hours_ago=72, phantom=False):
    name = f"SPN01_CMH_{subject}_01" if not phantom else f"SPN01_CMH_PHA_FBN{subject}"
    timepoint = TimepointFactory(study_site=study_site, name=name, is_phantom=phantom)
    session = SessionFactory(timepoint=timepoint, number=1)
    Session.objects.filter(pk=session.pk).update(
        created_at=timezone.now() - timedelta(hours=hours_ago)
    )
    return session
