"""Fixtures of the pipelines tests: SPINS at CMH with a REDCap configuration, and scripts."""

import stat

import pytest
from django_q.conf import Conf

from accounts.models import Role, StudyMembership
from pipelines.models import DownloadSettings
from tests.redcap.factories import RedcapConfigFactory, RedcapRecordFactory
from tests.studies.factories import SiteFactory, StudyFactory, StudySiteFactory, UserFactory

SESSION = "SPN01_CMH_0001_01_01"


@pytest.fixture
def sync_tasks(monkeypatch):
    """Run django-q2 tasks in the calling process as they are queued (its `sync` option)."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def study_site(db, tmp_path):
    """SPINS at CMH (study code SPN01), whose archive is tmp_path/archive."""
    archive = tmp_path / "archive"
    archive.mkdir()
    return StudySiteFactory(
        study=StudyFactory(nickname="SPINS", archive_path=str(archive)),
        site=SiteFactory(name="CMH"),
        code="SPN01",
        uses_redcap=True,
    )


@pytest.fixture
def config(study_site):
    return RedcapConfigFactory(study_sites=[study_site])


@pytest.fixture
def staff(study_site):
    user = UserFactory(username="staff", email="staff@example.org")
    StudyMembership.objects.create(
        user=user, study=study_site.study, role=Role.VIEWER, is_staff_contact=True
    )
    return user


def make_record(config, session_name=SESSION, **kwargs):
    return RedcapRecordFactory(
        config=config, session_id_text=session_name, session_name=session_name, **kwargs
    )


def write_script(folder, name, body):
    """Write an executable shell script and return its path."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def configure(study_site, download, post_download=""):
    return DownloadSettings.objects.create(
        study_site=study_site,
        download_command=str(download),
        post_download_command=str(post_download) if post_download else "",
    )
