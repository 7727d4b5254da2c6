"""XNAT pushes and issue tracker actions. Everything that talks to a server runs here."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from accounts.models import StudyMembership
from integrations import tracker as tracker_client
from integrations import xnat
from integrations.http import ServiceError, ServiceUnavailable
from integrations.models import (
    XNAT_QUALITY,
    IssueRequest,
    IssueRequestStatus,
    IssueTracker,
    PushStatus,
    TimepointIssues,
    XnatPush,
    xnat_configured_filter,
)
from qc.models import QCState, ScanReview
from studies.models import Scan

logger = logging.getLogger(__name__)

PUSH_TASK = "integrations.tasks.push_to_xnat"
REFRESH_TASK = "integrations.tasks.refresh_timepoint_issues"
MAX_BODY_LENGTH = 20000


class IntegrationError(Exception):
    """An integration action that cannot be done; the message gives the reason and the fix."""


# ---------------------------------------------------------------------------------------------
# XNAT pushes


def queue_pushes_for_review_targets(scan_ids, *, requested_by=None):
    """Create and queue a push for each scan and each scan linked to one at an XNAT site.

    `scan_ids` are the scans decisions were recorded on (a linked scan's source). Return the
    pushes created; none when no site involved has XNAT configured. One query finds the scans.
    """
    scans = (
        Scan.objects.filter(Q(pk__in=scan_ids) | Q(source_id__in=scan_ids))
        .filter(xnat_configured_filter("session__timepoint__study_site__"))
        .select_related("session__timepoint")
        .order_by("pk")
    )
    pushes = [
        XnatPush(scan=scan, study_id=scan.session.timepoint.study_id, requested_by=requested_by)
        for scan in scans
    ]
    if not pushes:
        return []
    with transaction.atomic():
        pushes = XnatPush.objects.bulk_create(pushes)
        for push in pushes:
            transaction.on_commit(lambda pk=push.pk: queue_push(pk))
    return pushes


def queue_push(push_id):
    # Inside a transaction the ORM broker reuses the open connection (see redcap.services).
    with transaction.atomic():
        async_task(PUSH_TASK, push_id, group="xnat-push")


def push_again(push, *, user):
    """Queue a new push of a failed push's scan; the failed row stays as it was."""
    study_site = push.scan.session.timepoint.study_site
    if not XnatPush.objects.filter(pk=push.pk, status=PushStatus.FAILED).exists():
        raise IntegrationError(f"{push} has not failed; only failed pushes can be pushed again.")
    if not type(study_site).objects.filter(xnat_configured_filter(), pk=study_site.pk).exists():
        raise IntegrationError(
            f"XNAT is not configured for {study_site.study}/{study_site.site} any more; set its "
            f"XNAT server, project and credentials in the admin first."
        )
    with transaction.atomic():
        new_push = XnatPush.objects.create(scan=push.scan, study=push.study, requested_by=user)
        transaction.on_commit(lambda: queue_push(new_push.pk))
    logger.info("XNAT push of %s queued again by %s", push.scan, user)
    return new_push


def current_state(scan):
    """Return the scan's QC state now: its newest decision (its source's, for a linked scan)."""
    state = (
        ScanReview.objects.newest_for(scan.review_target_id).values_list("state", flat=True).first()
    )
    return QCState(state) if state else QCState.NEW


def push_to_xnat(push_id):
    """Push the current QC state of the push's scan to XNAT; return a one-line summary.

    A failure that may pass (XNAT down, slow or overloaded) is retried after a delay that
    doubles each time, up to XNAT_MAX_ATTEMPTS attempts. Other failures (bad credentials,
    scan not in XNAT, missing settings) mark the push failed at once.
    """
    push = (
        XnatPush.objects.select_related(
            "scan__session__timepoint__study_site__xnat_settings",
            "scan__session__timepoint__study_site__site",
        )
        .filter(pk=push_id)
        .first()
    )
    if push is None:
        return f"XNAT push {push_id} no longer exists"
    if push.status not in (PushStatus.QUEUED, PushStatus.RETRYING):
        return f"{push} is already {push.get_status_display().lower()}"

    now = timezone.now()
    XnatPush.objects.filter(pk=push.pk).update(attempts=F("attempts") + 1, last_attempt_at=now)
    push.attempts += 1
    scan = push.scan
    study_site = scan.session.timepoint.study_site
    state = current_state(scan)
    quality = XNAT_QUALITY[state]
    XnatPush.objects.filter(pk=push.pk).update(state=state.value, quality=quality)

    try:
        xnat_settings = _xnat_settings(study_site)
        target = xnat.target_for(scan, study_site)
        XnatPush.objects.filter(pk=push.pk).update(xnat_path=target.path)
        credentials = xnat.read_credentials(xnat_settings)
        xnat.set_scan_quality(
            study_site.xnat_url, credentials, target, quality, timeout=settings.XNAT_TIMEOUT
        )
    except ServiceUnavailable as error:
        return _retry_later(push, str(error))
    except (ServiceError, xnat.XnatConfigError) as error:
        logger.error("XNAT push of %s (%s) failed: %s", scan, state.value, error)
        return _finish(push, PushStatus.FAILED, error=str(error))

    logger.info("XNAT quality of %s set to %r (%s)", scan, quality, state.value)
    return _finish(push, PushStatus.DONE)


def _xnat_settings(study_site):
    xnat_settings = getattr(study_site, "xnat_settings", None)
    where = f"{study_site.study}/{study_site.site}"
    if xnat_settings is None or not xnat_settings.push_enabled:
        raise xnat.XnatConfigError(f"XNAT pushes are off for {where}; turn them on in the admin.")
    if not study_site.xnat_url or not study_site.xnat_archive:
        raise xnat.XnatConfigError(
            f"{where} has no XNAT server or project; set XnatServer and XnatArchive in datman's "
            f"config and run sync_config, or set them in the admin."
        )
    if not xnat_settings.has_credentials_source:
        raise xnat.XnatConfigError(
            f"{where} has no XNAT credentials; name an environment variable or a credentials "
            f"file in the admin."
        )
    return xnat_settings


def _retry_later(push, message):
    max_attempts = settings.XNAT_MAX_ATTEMPTS
    if push.attempts >= max_attempts:
        logger.error(
            "XNAT push of %s failed after %d attempts: %s", push.scan, push.attempts, message
        )
        return _finish(
            push, PushStatus.FAILED, error=f"{message} Gave up after {push.attempts} attempts."
        )
    delay = settings.XNAT_RETRY_DELAY * 2 ** (push.attempts - 1)
    next_attempt_at = timezone.now() + timedelta(seconds=delay)
    XnatPush.objects.filter(pk=push.pk).update(
        status=PushStatus.RETRYING, last_error=message, next_attempt_at=next_attempt_at
    )
    transaction.on_commit(
        lambda: schedule(PUSH_TASK, push.pk, schedule_type=Schedule.ONCE, next_run=next_attempt_at)
    )
    logger.warning(
        "XNAT push of %s failed (attempt %d of %d), next attempt at %s: %s",
        push.scan,
        push.attempts,
        max_attempts,
        next_attempt_at.isoformat(timespec="seconds"),
        message,
    )
    return f"{push}: attempt {push.attempts} failed, retrying in {delay} s: {message}"


def _finish(push, status, *, error=""):
    XnatPush.objects.filter(pk=push.pk).update(
        status=status, last_error=error, next_attempt_at=None, finished_at=timezone.now()
    )
    summary = f"{push}: {PushStatus(status).label.lower()}"
    return f"{summary}: {error}" if error else summary


# ---------------------------------------------------------------------------------------------
# Issue tracker


def enabled_tracker(study):
    """Return the study's issue tracker when it is on, else None."""
    return IssueTracker.objects.filter(study=study, is_enabled=True).first()


def queue_issue_refresh(timepoint, *, now=None):
    """Mark a timepoint's issue list as being refreshed and queue the refresh after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = TimepointIssues.objects.filter(timepoint=timepoint).update(refresh_queued_at=now)
        if not updated:
            TimepointIssues.objects.create(timepoint=timepoint, refresh_queued_at=now)
        _queue_refresh_task(timepoint)


def queue_issue_refresh_if_due(timepoint, *, now):
    """Queue a refresh of a timepoint's issue list unless one was queued or finished within
    ISSUE_TRACKER_REFRESH_MINUTES before `now`. Return whether this call queued it.

    Marking the list as queued is a conditional UPDATE (or the INSERT of the first row), so of
    several page loads that find the list stale at the same moment only one queues a task.
    """
    stale_before = now - timedelta(minutes=settings.ISSUE_TRACKER_REFRESH_MINUTES)
    due = Q(refresh_queued_at__lt=stale_before) | Q(
        Q(checked_at__isnull=True) | Q(checked_at__lt=stale_before), refresh_queued_at__isnull=True
    )
    updated = TimepointIssues.objects.filter(due, timepoint=timepoint).update(refresh_queued_at=now)
    if not updated:
        try:
            with transaction.atomic():
                TimepointIssues.objects.create(timepoint=timepoint, refresh_queued_at=now)
        except IntegrityError:
            # The row exists, and either is not due or another request just marked it queued.
            return False
    _queue_refresh_task(timepoint)
    return True


def _queue_refresh_task(timepoint):
    transaction.on_commit(lambda: async_task(REFRESH_TASK, timepoint.pk, group="tracker-refresh"))


def refresh_timepoint_issues(timepoint):
    """Fetch the issues that mention a timepoint from its study's tracker and store them.

    A tracker that fails keeps the previous list and stores the error, which the page shows.
    """
    tracker = enabled_tracker(timepoint.study_id)
    if tracker is None:
        return f"{timepoint}: the study has no issue tracker"
    values = {"checked_at": timezone.now(), "refresh_queued_at": None}
    try:
        issues = tracker_client.find_issues(
            tracker, timepoint.name, timeout=settings.ISSUE_TRACKER_TIMEOUT
        )
    except (ServiceError, tracker_client.TrackerConfigError) as error:
        logger.warning("issues of %s from %s not fetched: %s", timepoint, tracker, error)
        values["last_error"] = str(error)
        summary = f"{timepoint}: fetching issues failed: {error}"
    else:
        values.update(issues=issues, last_error="")
        summary = f"{timepoint}: {len(issues)} issues"
    TimepointIssues.objects.update_or_create(timepoint=timepoint, defaults=values)
    return summary


def clean_issue_title(timepoint, title):
    """Return the title with the timepoint ID in front; the ID alone when the title is empty."""
    title = " ".join((title or "").split()).strip(" -")
    if not title:
        return timepoint.name
    if timepoint.name.casefold() not in title.casefold():
        title = f"{timepoint.name} - {title}"
    return title


def next_staff_contact(tracker):
    """Return (user, tracker user name) of the next staff contact in turn, or (None, '').

    Staff contacts with a user name on the tracker's provider take turns in order of their
    user ID, starting after the tracker's last assignee.
    """
    field = f"user__tracker_account__{tracker.provider}_username"
    contacts = (
        StudyMembership.objects.filter(
            study_id=tracker.study_id, is_staff_contact=True, user__is_active=True
        )
        .filter(**{f"{field}__gt": ""})
        .select_related("user__tracker_account")
        .order_by("user_id")
    )
    users = list({membership.user_id: membership.user for membership in contacts}.values())
    if not users:
        return None, ""
    later = [user for user in users if user.pk > (tracker.last_assignee_id or 0)]
    user = (later or users)[0]
    return user, user.tracker_account.username_for(tracker.provider)


def open_issue(timepoint, *, user, title, body):
    """Open an issue about a timepoint on its study's tracker and return the IssueRequest.

    The issue is assigned to the next staff contact in turn. The request is kept whether the
    tracker accepts it or not. When it fails, the IntegrationError message gives the reason,
    and the turn stays with the same staff contact.
    """
    title = clean_issue_title(timepoint, title)
    body = (body or "").strip()
    if len(title) > tracker_client.MAX_TITLE_LENGTH:
        raise IntegrationError(
            f"The title is {len(title)} characters long; shorten it to at most "
            f"{tracker_client.MAX_TITLE_LENGTH}."
        )
    if len(body) > MAX_BODY_LENGTH:
        raise IntegrationError(
            f"The description is {len(body)} characters long; shorten it to at most "
            f"{MAX_BODY_LENGTH}."
        )
    if "\x00" in title or "\x00" in body:
        raise IntegrationError("The text contains a NUL character; remove it and send again.")
    if enabled_tracker(timepoint.study_id) is None:
        raise IntegrationError(
            f"{timepoint.study} has no issue tracker; a dashboard admin can add one in the admin."
        )

    values = {"timepoint": timepoint, "requested_by": user, "title": title, "body": body}
    try:
        with transaction.atomic():
            tracker = IssueTracker.objects.select_for_update().get(study_id=timepoint.study_id)
            assignee, username = next_staff_contact(tracker)
            values.update(assignee=assignee, assignee_username=username)
            created = tracker_client.create_issue(
                tracker,
                title=title,
                body=body,
                assignee_username=username,
                timeout=settings.ISSUE_TRACKER_TIMEOUT,
            )
            if assignee is not None:
                tracker.last_assignee = assignee
                tracker.save(update_fields=["last_assignee", "updated_at"])
            request = IssueRequest.objects.create(
                **values,
                status=IssueRequestStatus.CREATED,
                issue_number=created.number,
                issue_url=created.url,
            )
    except (ServiceError, tracker_client.TrackerConfigError) as error:
        IssueRequest.objects.create(**values, status=IssueRequestStatus.FAILED, error=str(error))
        logger.warning("issue about %s by %s not opened: %s", timepoint, user, error)
        raise IntegrationError(f"The issue was not opened: {error}") from None

    logger.info(
        "issue %s about %s opened by %s, assigned to %s",
        created.number,
        timepoint,
        user,
        username or "nobody",
    )
    queue_issue_refresh(timepoint)
    return request
