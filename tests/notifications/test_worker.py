"""End to end: the reminder job runs in a real django-q2 worker process and sends by email."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from django_q.tasks import async_task

from accounts.models import Role
from notifications.models import JobRun, Notification, NotificationStatus
from tests.notifications.conftest import make_session, member
from tests.redcap.factories import SessionSurveyFactory
from tests.redcap.test_worker import ROOT, database_url

# The worker needs a few seconds to start; the job itself takes milliseconds.
JOB_TIMEOUT = 30


@pytest.fixture
def qcluster(transactional_db, tmp_path):
    """A `manage.py qcluster` process on the test database that writes emails to files."""
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        Q_WORKERS="1",
        LOG_LEVEL="INFO",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
    )
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
        yield mail_dir, log_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(condition, log_path, description):
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(
        f"{description} not seen within {JOB_TIMEOUT} s; worker log:\n{log_path.read_text()}"
    )


@pytest.fixture
def due_session(study_site):
    """A session at a REDCap site whose survey is due at once, and the site's RA."""
    study_site.study.survey_reminder_hours = 0
    study_site.study.save(update_fields=["survey_reminder_hours"])
    member("ra", study_site, Role.RA, site=study_site.site)
    return make_session(study_site, hours_ago=0)


def mail_text(mail_dir):
    return "".join(path.read_text() for path in sorted(mail_dir.iterdir()))


def test_worker_sends_one_reminder(due_session, qcluster):
    mail_dir, log_path = qcluster

    async_task("notifications.tasks.send_survey_reminders")
    wait_for(
        lambda: Notification.objects.filter(status=NotificationStatus.SENT).exists(),
        log_path,
        "a sent reminder",
    )

    notification = Notification.objects.get()
    assert notification.key == "missing-survey:SPN01_CMH_0001_01_01"
    assert notification.recipient.username == "ra"
    text = mail_text(mail_dir)
    assert text.count("Subject: [qcdash] Missing REDCap survey for SPN01_CMH_0001_01_01") == 1
    assert "To: ra@example.org" in text


def test_worker_sends_nothing_after_survey(due_session, qcluster):
    mail_dir, log_path = qcluster
    SessionSurveyFactory(session=due_session)

    async_task("notifications.tasks.send_survey_reminders")
    wait_for(
        lambda: JobRun.objects.filter(
            job="send_survey_reminders", finished_at__isnull=False
        ).exists(),
        log_path,
        "a finished reminder job",
    )

    assert not Notification.objects.exists()
    assert list(mail_dir.iterdir()) == []
