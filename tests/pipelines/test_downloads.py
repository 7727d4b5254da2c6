"""Download jobs with real commands: small shell scripts written into tmp_path."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from notifications.models import Notification, NotificationKind
from pipelines import services
from pipelines.commands import OUTPUT_TAIL_CHARS
from pipelines.models import CommandKind, DownloadJob, DownloadJobStatus, DownloadRun
from tests.pipelines.conftest import SESSION, configure, make_record, write_script
from tests.studies.archive_builder import ArchiveBuilder
from tests.studies.factories import (
    ExpectedScanFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db


def start(record, capture):
    """Start the record's download job and run the runs it queues, as the worker would."""
    with capture(execute=True):
        return services.start_download(record.pk)


def test_download_success_records_run(
    config, study_site, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    script = write_script(tmp_path, "download.sh", 'echo "fetching $2 $3"')
    configure(study_site, f"{script} --verbose")

    job = start(make_record(config), django_capture_on_commit_callbacks)

    run = DownloadRun.objects.get(job=job)
    assert run.kind == CommandKind.DOWNLOAD
    assert run.command == [str(script), "--verbose", "SPINS", SESSION]
    assert run.exit_code == 0
    assert run.output_tail == f"fetching SPINS {SESSION}\n"
    assert run.started_at <= run.finished_at
    assert DownloadJob.objects.get(pk=job.pk).status == DownloadJobStatus.WAITING


def test_download_nonzero_exit_kept(
    config, study_site, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    script = write_script(tmp_path, "fail.sh", 'echo "XNAT refused the login" >&2\nexit 3')
    configure(study_site, script)

    job = start(make_record(config), django_capture_on_commit_callbacks)

    run = DownloadRun.objects.get(job=job)
    assert run.exit_code == 3
    assert run.outcome == "exit code 3"
    assert "XNAT refused the login" in run.output_tail
    assert DownloadJob.objects.get(pk=job.pk).status == DownloadJobStatus.WAITING


def test_download_timeout_kills_command(
    config, study_site, tmp_path, settings, sync_tasks, django_capture_on_commit_callbacks
):
    settings.DOWNLOAD_COMMAND_TIMEOUT = 1
    # The child sleep keeps the output open; the whole process group must be killed.
    script = write_script(tmp_path, "slow.sh", "echo started\nsleep 30 &\nsleep 30")
    configure(study_site, script)

    began = time.monotonic()
    job = start(make_record(config), django_capture_on_commit_callbacks)
    elapsed = time.monotonic() - began

    run = DownloadRun.objects.get(job=job)
    assert run.timed_out
    assert run.exit_code is None
    assert run.outcome == "timed out"
    assert "started" in run.output_tail
    assert elapsed < 10


def test_download_missing_program_recorded(
    config, study_site, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    configure(study_site, tmp_path / "no-such-script.sh")

    job = start(make_record(config), django_capture_on_commit_callbacks)

    run = DownloadRun.objects.get(job=job)
    assert run.exit_code is None
    assert "could not start" in run.error
    assert run.outcome == "did not start"


def test_download_output_tail_bounded(
    config, study_site, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    script = write_script(
        tmp_path, "chatty.sh", 'i=0\nwhile [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done'
    )
    configure(study_site, script)

    job = start(make_record(config), django_capture_on_commit_callbacks)

    tail = DownloadRun.objects.get(job=job).output_tail
    assert len(tail) == OUTPUT_TAIL_CHARS
    assert tail.endswith("line 19999\n")


def test_no_job_without_download_command(config, django_capture_on_commit_callbacks):
    assert start(make_record(config), django_capture_on_commit_callbacks) is None
    assert not DownloadJob.objects.exists()


def test_no_job_when_scans_exist(config, study_site, tmp_path, django_capture_on_commit_callbacks):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    ScanFactory(session=SessionFactory(timepoint=timepoint, number=1))

    assert start(make_record(config), django_capture_on_commit_callbacks) is None
    assert not DownloadJob.objects.exists()


def test_no_job_for_record_past_window(
    config, study_site, tmp_path, django_capture_on_commit_callbacks
):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    old = timezone.now() - timedelta(hours=73)

    assert start(make_record(config, fetched_at=old), django_capture_on_commit_callbacks) is None


def test_no_job_for_other_study_site(config, study_site, tmp_path):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))

    assert services.start_download(make_record(config, "SPN01_ZHH_0001_01_01").pk) is None


def test_second_record_same_session_no_second_job(
    config, study_site, tmp_path, django_capture_on_commit_callbacks
):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    with django_capture_on_commit_callbacks(execute=False):
        first = services.start_download(make_record(config).pk)
        second = services.start_download(make_record(config).pk)

    assert first is not None
    assert second is None
    assert DownloadJob.objects.count() == 1


def test_download_retried_after_interval(config, study_site, tmp_path):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    job = services.start_download(make_record(config).pk)
    now = timezone.now()

    first = services.run_job(job.pk, now=now)
    again = services.run_job(job.pk, now=now + timedelta(minutes=10))
    later = services.run_job(job.pk, now=now + timedelta(hours=1))

    assert first == "download command exit code 0"
    assert again == "download ran less than an hour ago"
    assert later == "download command exit code 0"
    assert DownloadRun.objects.filter(job=job).count() == 2


def test_claimed_job_left_alone(config, study_site, tmp_path):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    job = services.start_download(make_record(config).pk)
    DownloadJob.objects.filter(pk=job.pk).update(
        claimed_until=timezone.now() + timedelta(minutes=5)
    )

    assert services.run_job(job.pk) == "held by another worker"
    assert not DownloadRun.objects.exists()


def test_no_data_notified_once(config, study_site, staff, tmp_path):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    job = services.start_download(make_record(config).pk)
    past_deadline = job.deadline_at + timedelta(minutes=1)

    outcome = services.run_job(job.pk, now=past_deadline)
    DownloadJob.objects.filter(pk=job.pk).update(status=DownloadJobStatus.WAITING)
    services.run_job(job.pk, now=past_deadline)

    notification = Notification.objects.get()
    assert outcome == "no data received"
    assert notification.kind == NotificationKind.NO_DATA_RECEIVED
    assert notification.recipient == staff
    assert SESSION in notification.subject
    assert "import_archive SPINS" in notification.body_text
    assert not DownloadRun.objects.exists()


def test_no_data_sends_email(
    config, study_site, staff, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    job = services.start_download(make_record(config).pk)

    with django_capture_on_commit_callbacks(execute=True):
        services.run_job(job.pk, now=job.deadline_at)

    assert [message.to for message in mail.outbox] == [["staff@example.org"]]
    assert DownloadJob.objects.get(pk=job.pk).status == DownloadJobStatus.NO_DATA


def test_download_then_import_runs_post_download(
    config, study_site, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    """The download command copies the session's files into the archive; the import that
    follows runs the post-download command once."""
    ExpectedScanFactory(study_site=study_site, scantype=ScantypeFactory(tag="T1"))
    staging = ArchiveBuilder(tmp_path / "staging")
    staging.add_scan(f"{SESSION}_T1_02_SagT1Bravo", sidecar={"SeriesDescription": "SagT1"})
    archive = study_site.study.archive_root
    download = write_script(
        tmp_path,
        "download.sh",
        f'mkdir -p "{archive}/data/nii"\n'
        f'cp -r "{tmp_path}/staging/data/nii/." "{archive}/data/nii/"',
    )
    marker = tmp_path / "post-download.txt"
    post = write_script(tmp_path, "post.sh", f'echo "$1 $2" >> "{marker}"')
    configure(study_site, download, post)

    job = start(make_record(config), django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_archive", "SPINS", stdout=open("/dev/null", "w"))  # noqa: SIM115
    services.run_job(job.pk, now=timezone.now() + timedelta(hours=2))

    job.refresh_from_db()
    kinds = list(job.runs.order_by("started_at").values_list("kind", flat=True))
    assert kinds == [CommandKind.DOWNLOAD, CommandKind.POST_DOWNLOAD]
    assert job.status == DownloadJobStatus.DONE
    assert job.session.name == SESSION
    assert marker.read_text() == f"SPINS {SESSION}\n"


def test_scheduled_run_starts_missing_jobs(
    config, study_site, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    script = write_script(tmp_path, "download.sh", "exit 0")
    record = make_record(config)
    configure(study_site, script)

    with django_capture_on_commit_callbacks(execute=True):
        started, queued = services.queue_due_downloads()

    job = DownloadJob.objects.get()
    assert (started, queued) == (1, 0)
    assert job.record == record
    assert job.runs.count() == 1


def test_scheduled_run_queues_open_jobs(config, study_site, tmp_path, sync_tasks):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))
    services.start_download(make_record(config).pk)
    done = services.start_download(make_record(config, "SPN01_CMH_0002_01_01").pk)
    DownloadJob.objects.filter(pk=done.pk).update(status=DownloadJobStatus.DONE)

    started, queued = services.queue_due_downloads()

    assert (started, queued) == (0, 1)
    assert DownloadRun.objects.filter(job__status=DownloadJobStatus.WAITING).count() == 1
    assert not DownloadRun.objects.filter(job=done).exists()


def test_schedule_installed(db):
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115

    schedule = Schedule.objects.get(name="pipelines-downloads")
    assert schedule.func == "pipelines.tasks.queue_due_downloads"
    assert schedule.schedule_type == Schedule.HOURLY


def test_saved_record_queues_start(
    config, study_site, tmp_path, sync_tasks, django_capture_on_commit_callbacks
):
    configure(study_site, write_script(tmp_path, "download.sh", "exit 0"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        make_record(config)

    assert len(callbacks) == 2  # the start task, then the first run it queues
    assert DownloadJob.objects.get().runs.count() == 1


def test_saved_record_queues_nothing_unconfigured(config, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_record(config)

    assert callbacks == []
