"""Every access rule in qcdash. Views fetch protected objects only through this module.

Until per-study roles exist, every active signed-in user may see and review every study; the
functions below are the single place where that changes. Objects a user may not see raise
Http404 (their existence is not revealed); actions the user may not take raise PermissionDenied.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from studies.models import Scan, Session, Study, Timepoint


def visible_studies(user):
    """Studies the user may see."""
    if not (user.is_authenticated and user.is_active):
        return Study.objects.none()
    return Study.objects.all()


def visible_timepoints(user):
    return Timepoint.objects.filter(study__in=visible_studies(user))


def visible_sessions(user):
    return Session.objects.filter(timepoint__study__in=visible_studies(user))


def visible_scans(user):
    return Scan.objects.filter(session__timepoint__study__in=visible_studies(user))


def get_study(user, nickname):
    return get_object_or_404(visible_studies(user), nickname=nickname)


def get_timepoint(user, name, queryset=None):
    queryset = visible_timepoints(user) if queryset is None else queryset
    return get_object_or_404(queryset.filter(study__in=visible_studies(user)), name=name)


def get_session(user, timepoint_name, number):
    return get_object_or_404(
        visible_sessions(user).select_related("timepoint__study", "timepoint__study_site__site"),
        timepoint__name=timepoint_name,
        number=number,
    )


def get_scan(user, name, queryset=None):
    queryset = Scan.objects.all() if queryset is None else queryset
    return get_object_or_404(
        queryset.filter(session__timepoint__study__in=visible_studies(user)), name=name
    )


def can_review(user, study):
    """Whether the user may record QC decisions and sign off sessions in the study."""
    return user.is_authenticated and user.is_active


def require_review(user, study):
    if not can_review(user, study):
        raise PermissionDenied(f"You may not review scans in {study}.")


def can_view_files(user, study):
    """Whether the user may download archive files (NIfTI, QC images) of the study."""
    return visible_studies(user).filter(pk=study.pk).exists()
