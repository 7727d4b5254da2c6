"""Reads for the integration pages and for the issues panel of the timepoint page."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts import permissions
from integrations import services
from integrations.models import (
    IssueTracker,
    TimepointIssues,
    XnatPush,
    xnat_configured_filter,
)
from studies.models import Study, StudySite


@dataclass
class IssuesPanel:
    """The issues panel of the timepoint page: the tracker, its stored issues and their age."""

    is_enabled: bool
    tracker: IssueTracker | None = None
    issues: list = field(default_factory=list)
    checked_at: datetime | None = None
    last_error: str = ""
    is_refreshing: bool = False
    can_open_issue: bool = False


def issues_panel(user, timepoint):
    """Return the IssuesPanel of a timepoint, and queue a refresh when the list is stale.

    Runs 1 query without a tracker and 2 with one, plus the refresh's writes when it is due.
    The tracker's query is skipped when the timepoint's study comes with `issue_tracker`
    loaded (`select_related("study__issue_tracker")`). The page never waits for the tracker:
    it shows the stored list and its age.
    """
    tracker = _enabled_tracker(timepoint.study)
    if tracker is None:
        return IssuesPanel(is_enabled=False)
    cached = TimepointIssues.objects.filter(timepoint=timepoint).first()
    panel = IssuesPanel(
        is_enabled=True,
        tracker=tracker,
        can_open_issue=permissions.can_open_issue(user, timepoint.study, timepoint.site),
    )
    now = timezone.now()
    if cached is not None:
        panel.issues = [_with_dates(issue) for issue in cached.issues]
        panel.checked_at = cached.checked_at
        panel.last_error = cached.last_error
    if _refresh_due(cached, now):
        # Another page load may have queued the refresh since `cached` was read; either way
        # one is queued now.
        services.queue_issue_refresh_if_due(timepoint, now=now)
        panel.is_refreshing = True
    elif cached is not None and cached.refresh_queued_at is not None:
        panel.is_refreshing = True
    return panel


def _enabled_tracker(study):
    if not Study.issue_tracker.is_cached(study):
        return services.enabled_tracker(study.pk)
    # A study without a tracker raises RelatedObjectDoesNotExist, an AttributeError.
    tracker = getattr(study, "issue_tracker", None)
    return tracker if tracker is not None and tracker.is_enabled else None


def _refresh_due(cached, now):
    # Same rule as the UPDATE in services.queue_issue_refresh_if_due, checked on the row already
    # read so that a fresh list costs no write.
    stale_after = timedelta(minutes=settings.ISSUE_TRACKER_REFRESH_MINUTES)
    if cached is None:
        return True
    if cached.refresh_queued_at is not None:
        # A refresh that did not finish (worker down) is queued again after the same interval.
        return cached.refresh_queued_at < now - stale_after
    return cached.checked_at is None or cached.checked_at < now - stale_after


def _with_dates(issue):
    return {**issue, "created": parse_datetime(issue.get("created_at") or "")}


def failed_pushes(user):
    """Failed XNAT pushes not yet replaced by a later push, at study sites the user manages."""
    managed = permissions.xnat_push_study_sites(user).filter(
        study_id=OuterRef("study_id"), pk=OuterRef("scan__session__timepoint__study_site_id")
    )
    return XnatPush.objects.unresolved_failures().filter(Exists(managed))


def xnat_is_configured_anywhere():
    """Return whether any study site pushes QC decisions to XNAT."""
    return StudySite.objects.filter(xnat_configured_filter()).exists()
