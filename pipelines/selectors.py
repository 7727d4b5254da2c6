"""Reads of download jobs and pipeline page links for the reviewer pages."""

from django.db.models import Prefetch

from pipelines import pages
from pipelines.models import DownloadJob, DownloadRun, PageScope

# Runs shown per job on the timepoint page; a job retried hourly for days has dozens.
RUNS_SHOWN = 5


def attach_download_jobs(sessions):
    """Set `download_job` (or None) on each session, with `runs_shown`, its newest runs.

    One query for the jobs and, when there are any, one for their runs.
    """
    names = {session.name: session for session in sessions}
    for session in sessions:
        session.download_job = None
    if not names:
        return
    jobs = DownloadJob.objects.filter(session_name__in=names).prefetch_related(
        Prefetch("runs", queryset=DownloadRun.objects.order_by("-started_at", "-id"))
    )
    for job in jobs:
        runs = list(job.runs.all())
        job.runs_shown = runs[:RUNS_SHOWN]
        job.run_count = len(runs)
        names[job.session_name].download_job = job


def study_links(user, study):
    """Return the study page's pipeline links (one query)."""
    grouped = pages.pages_by_scope(study)
    return pages.links(grouped[PageScope.STUDY], user, study)


def timepoint_links(user, timepoint, sessions):
    """Return the timepoint page's links, and set each session's as `session.pipeline_links`
    (one query)."""
    study = timepoint.study
    grouped = pages.pages_by_scope(study)
    for session in sessions:
        session.pipeline_links = pages.links(
            grouped[PageScope.SESSION], user, study, timepoint=timepoint, session=session
        )
    return pages.links(grouped[PageScope.TIMEPOINT], user, study, timepoint=timepoint)


def scan_links(user, scan):
    """Return the scan page's pipeline links (one query)."""
    session = scan.session
    timepoint = session.timepoint
    grouped = pages.pages_by_scope(timepoint.study)
    return pages.links(
        grouped[PageScope.SCAN],
        user,
        timepoint.study,
        timepoint=timepoint,
        session=session,
        scan=scan,
    )
