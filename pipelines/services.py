"""Download jobs: run a study site's download command for a session that REDCap reports as
scanned until its scans arrive, then run the post-download command once.

Jobs are started by a stored survey record (`start_download`) and moved on by the hourly
`queue_due_downloads` and by archive imports. Commands run only in the background worker,
never inside a web request. A job is claimed with one conditional UPDATE before a command
runs, so two workers never run commands of the same job at once.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from notifications.services import notify_no_data_received
from pipelines.commands import run_command
from pipelines.models import (
    CommandKind,
    DownloadJob,
    DownloadJobStatus,
    DownloadRun,
    DownloadSettings,
    split_command,
)
from redcap.models import RedcapRecord
from studies.datman_ids import IdError, parse_session_id
from studies.models import Session

logger = logging.getLogger(__name__)

# A download is not run again sooner than this after the previous one started, so the
# immediate run and the hourly schedule do not start the same download twice in a row.
RETRY_INTERVAL = timedelta(minutes=55)


def window():
    return timedelta(hours=settings.DOWNLOAD_WINDOW_HOURS)


def _study_site_for(record, ident):
    """Return the study site of the record's configuration that the session ID names, or None."""
    return (
        record.config.study_sites.filter(site__name=ident.site)
        .filter(Q(code=ident.study) | Q(alt_codes__code=ident.study))
        .select_related("study", "site", "download_settings")
        .first()
    )


def find_session(session_name):
    """Return the session a datman session ID names, or None when it does not exist (yet)."""
    try:
        ident = parse_session_id(session_name)
    except IdError:
        return None
    return (
        Session.objects.filter(timepoint__name=ident.timepoint_id, number=ident.session_number)
        .select_related("timepoint")
        .first()
    )


def has_scans(session):
    return session is not None and session.scans.exists()


def start_download(record_id):
    """Create the download job for the session a survey record names and queue its first run.

    Nothing happens when the record names no valid session, its study site has no download
    command, the session's scans exist already, the record is older than the download window
    or a job for the session exists. Return the job created, or None.
    """
    record = RedcapRecord.objects.select_related("config").filter(pk=record_id).first()
    if record is None or not record.session_name:
        return None
    try:
        ident = parse_session_id(record.session_name)
    except IdError:
        return None
    study_site = _study_site_for(record, ident)
    if study_site is None or not hasattr(study_site, "download_settings"):
        return None
    if has_scans(find_session(record.session_name)):
        return None
    deadline = record.fetched_at + window()
    if deadline <= timezone.now():
        return None

    with transaction.atomic():
        job, created = DownloadJob.objects.get_or_create(
            session_name=record.session_name,
            defaults={"study_site": study_site, "record": record, "deadline_at": deadline},
        )
        if created:
            logger.info(
                "download job %s for session %s started by %s, until %s",
                job.pk,
                job.session_name,
                record,
                deadline,
            )
            transaction.on_commit(lambda: queue_run(job.pk))
    return job if created else None


def queue_run(job_id):
    """Queue one run of a job in the background worker."""
    # The command's timeout plus a minute for the bookkeeping; see DOWNLOAD_COMMAND_TIMEOUT.
    async_task(
        "pipelines.tasks.run_download_job",
        job_id,
        timeout=settings.DOWNLOAD_COMMAND_TIMEOUT + 60,
    )


def _claim(job_id, now):
    hold = timedelta(seconds=settings.DOWNLOAD_COMMAND_TIMEOUT + 120)
    return DownloadJob.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), pk=job_id
    ).update(claimed_until=now + hold)


def run_job(job_id, *, now=None):
    """Move one open job on and return what happened, in a few words.

    When the session's scans exist, the post-download command runs once (if there is one) and
    the job is done. Past the deadline without scans, the study's staff contacts are notified
    that no data arrived and the job ends. Otherwise the download command runs, unless it ran less
    than RETRY_INTERVAL ago. A job that another worker holds is left alone.
    """
    now = now or timezone.now()
    if not _claim(job_id, now):
        return "held by another worker"
    try:
        job = DownloadJob.objects.select_related(
            "study_site__study", "study_site__site", "study_site__download_settings"
        ).get(pk=job_id)
        if not job.is_open:
            return job.get_status_display().lower()
        return _advance(job, now)
    finally:
        DownloadJob.objects.filter(pk=job_id).update(claimed_until=None)


def _advance(job, now):
    session = find_session(job.session_name)
    if session is not None and job.session_id != session.pk:
        job.session = session
        job.save(update_fields=["session", "updated_at"])
    download_settings = getattr(job.study_site, "download_settings", None)

    if has_scans(session):
        if job.status == DownloadJobStatus.WAITING:
            _set_status(job, DownloadJobStatus.ARRIVED)
        post_command = download_settings.post_download_command if download_settings else ""
        if post_command and not job.runs.filter(kind=CommandKind.POST_DOWNLOAD).exists():
            run = _run(job, CommandKind.POST_DOWNLOAD, post_command)
            _set_status(job, DownloadJobStatus.DONE)
            return f"scans arrived; post-download command {run.outcome}"
        _set_status(job, DownloadJobStatus.DONE)
        return "scans arrived"

    if now >= job.deadline_at:
        _set_status(job, DownloadJobStatus.NO_DATA)
        created = notify_no_data_received(
            study_site=job.study_site, session_name=job.session_name, since=job.created_at
        )
        logger.warning(
            "download job %s: no data received for session %s by %s; %d staff contacts notified",
            job.pk,
            job.session_name,
            job.deadline_at,
            len(created),
        )
        return "no data received"

    if download_settings is None:
        return "no download command configured"
    last = job.runs.filter(kind=CommandKind.DOWNLOAD).order_by("-started_at").first()
    if last is not None and now - last.started_at < RETRY_INTERVAL:
        return "download ran less than an hour ago"
    run = _run(job, CommandKind.DOWNLOAD, download_settings.download_command)
    return f"download command {run.outcome}"


def _set_status(job, status):
    if job.status != status:
        logger.info("download job %s of %s: %s", job.pk, job.session_name, status.label.lower())
        job.status = status
        job.save(update_fields=["status", "updated_at"])


def _run(job, kind, command_line):
    study = job.study_site.study
    arguments = [*split_command(command_line), study.nickname, job.session_name]
    result = run_command(arguments, timeout=settings.DOWNLOAD_COMMAND_TIMEOUT)
    run = DownloadRun.objects.create(
        job=job,
        kind=kind,
        command=arguments,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        error=result.error,
        output_tail=result.output_tail,
        started_at=result.started_at,
        finished_at=result.finished_at,
    )
    level = logging.INFO if run.succeeded else logging.WARNING
    logger.log(level, "%s command of session %s: %s", kind, job.session_name, run.outcome)
    return run


def start_missing_jobs(now=None):
    """Start jobs for survey records within the download window that have none yet.

    This catches records stored while the worker was down, and records of study sites whose
    download command was configured after the survey arrived. Return the jobs started.
    """
    now = now or timezone.now()
    study_site_ids = DownloadSettings.objects.values("study_site_id")
    records = (
        RedcapRecord.objects.filter(
            fetched_at__gt=now - window(), config__study_sites__in=study_site_ids
        )
        .exclude(session_name="")
        .exclude(session_name__in=DownloadJob.objects.values("session_name"))
        .values_list("pk", flat=True)
        .distinct()
    )
    return [job for job in (start_download(pk) for pk in records) if job is not None]


def queue_due_downloads():
    """Start missing jobs and queue a run of every open job (the hourly schedule)."""
    started = start_missing_jobs()
    open_jobs = DownloadJob.objects.filter(
        status__in=[DownloadJobStatus.WAITING, DownloadJobStatus.ARRIVED]
    ).exclude(pk__in=[job.pk for job in started])
    queued = 0
    for job_id in open_jobs.values_list("pk", flat=True):
        queue_run(job_id)
        queued += 1
    return len(started), queued


def handle_sessions_imported(sender, *, study, created=(), updated=(), **kwargs):
    """Queue a run of the open jobs of imported sessions, so the post-download command runs.

    Connected to `studies.signals.sessions_imported`; the import has committed, so an error is
    logged and left to the hourly schedule.
    """
    names = [session.name for session in (*created, *updated)]
    if not names:
        return
    try:
        job_ids = list(
            DownloadJob.objects.filter(
                session_name__in=names,
                status__in=[DownloadJobStatus.WAITING, DownloadJobStatus.ARRIVED],
            ).values_list("pk", flat=True)
        )
        for job_id in job_ids:
            queue_run(job_id)
    except Exception:
        logger.exception("queueing download jobs after an import of study %s failed", study)
