"""django-q2 tasks of the notifications: thin wrappers that load by id and call one service."""

from notifications import services
from studies.models import Session, Study


def send_notification(notification_id):
    """Send one notification; returns its status afterwards."""
    status = services.send_notification(notification_id)
    return f"notification {notification_id}: {status}"


def notify_new_sessions(study_id, session_ids, run_id):
    """Create the new-session notices of one import run."""
    study = Study.objects.get(pk=study_id)
    sessions = Session.objects.filter(pk__in=session_ids).select_related("timepoint__study_site")
    created = services.notify_new_sessions(study=study, sessions=sessions, run_id=run_id)
    return f"{len(created)} new-session notices for {study.nickname}"


def _summary(run):
    return f"{run.job}: {run.created} created, {run.sent} sent, {run.failed} failed"


def send_survey_reminders():
    """Send the missing-survey reminders that are due (run hourly)."""
    return _summary(services.send_survey_reminders())


def retry_failed_notifications():
    """Retry the failed notification emails that have attempts left."""
    return _summary(services.retry_failed_notifications())


def send_digests():
    """Send the digests that are due today (run daily)."""
    return _summary(services.send_digests())
