"""Two django-q2 clusters on one database, as on two worker machines, send each email once."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from django_q.tasks import async_task

from notifications.models import Notification, NotificationStatus
from tests.notifications.test_worker import JOB_TIMEOUT, due_session, mail_text  # noqa: F401
from tests.redcap.test_worker import ROOT, database_url


def start_cluster(mail_dir, log_path):
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        Q_WORKERS="2",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
    )
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_cluster(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.postgresql
def test_two_clusters_send_reminder_once(due_session, transactional_db, tmp_path):  # noqa: F811
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    logs = [tmp_path / "cluster-a.log", tmp_path / "cluster-b.log"]
    clusters = [start_cluster(mail_dir, log) for log in logs]
    try:
        # Four runs of the same job, spread over both clusters' four workers.
        for _ in range(4):
            async_task("notifications.tasks.send_survey_reminders")
        deadline = time.monotonic() + JOB_TIMEOUT
        while time.monotonic() < deadline:
            finished = Notification.objects.filter(status=NotificationStatus.SENT).exists()
            if finished and not _queued_tasks():
                break
            time.sleep(0.5)
        # Let any duplicate that slipped through reach the mail folder before counting.
        time.sleep(2)
    finally:
        for cluster in clusters:
            stop_cluster(cluster)

    log_text = "".join(log.read_text() for log in logs)
    assert Notification.objects.count() == 1, log_text
    assert Notification.objects.get().status == NotificationStatus.SENT, log_text
    subject = "Subject: [qcdash] Missing REDCap survey for SPN01_CMH_0001_01_01"
    assert mail_text(mail_dir).count(subject) == 1, log_text


def _queued_tasks():
    from django_q.models import OrmQ

    return OrmQ.objects.exists()
