"""Every access rule in qcdash. Views fetch protected objects only through this module.

A person sees a study when they hold a role in it (`StudyMembership`); a membership with a site
covers only that site's timepoints, sessions, scans and files. Dashboard admins see and may do
everything. Roles are ordered (viewer < QC reviewer < RA < study admin) and each may do what the
lower ones may; docs/permissions.md lists what each role adds.

Objects a user may not see raise Http404, so their existence is not revealed; actions the user's
role does not allow raise PermissionDenied (403). Every list starts from a `visible_*(user)`
queryset, and counts are taken from the same querysets, so a site-restricted member never sees
another site's rows or numbers.

The role checks read the user's memberships once per user object: the authentication backend
loads them together with the user (`accounts.backends`), and any other user object loads them on
first use and keeps them (`forget_memberships` drops them after a change).
"""

import json
from pathlib import PurePosixPath

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404

from accounts.models import Role, StudyMembership
from studies.datman_ids import IdError, parse, parse_filename
from studies.models import Scan, Session, Study, StudySite, Timepoint

# The attribute on a user object that caches their memberships as (study id, site id, role).
_MEMBERSHIPS_ATTRIBUTE = "_study_memberships"
# The attribute that caches the StudySite id of each site membership, by (study id, site id).
_STUDY_SITES_ATTRIBUTE = "_membership_study_sites"


# --- Who the user is ------------------------------------------------------------------------


def is_signed_in(user):
    """Whether the user is signed in with an active account."""
    return bool(user.is_authenticated and user.is_active)


def is_dashboard_admin(user):
    """Whether the user manages users, account requests and the admin site, and sees everything."""
    return is_signed_in(user) and bool(getattr(user, "is_dashboard_admin", False))


def membership_study_site_id():
    """Build the subquery of the id of a membership's StudySite (NULL for a study-wide one)."""
    study_sites = StudySite.objects.filter(
        study_id=OuterRef("study_id"), site_id=OuterRef("site_id")
    ).values("pk")[:1]
    return Subquery(study_sites)


def memberships_of(user):
    """Return the user's memberships as (study id, site id or None, Role) tuples.

    The first call on a user object runs one query unless the authentication backend preloaded
    them (`membership_rows`); later calls reuse the result. It also caches the StudySite ids of
    the site memberships for `_visible_filter`.
    """
    cached = getattr(user, _MEMBERSHIPS_ATTRIBUTE, None)
    if cached is not None:
        return cached
    if not is_signed_in(user):
        rows = []
    elif hasattr(user, "membership_rows"):
        rows = json.loads(user.membership_rows) if user.membership_rows else []
    else:
        rows = (
            StudyMembership.objects.filter(user=user)
            .annotate(study_site_id=membership_study_site_id())
            .values_list("study_id", "site_id", "role", "study_site_id")
        )
    memberships = []
    study_sites = {}
    for study_id, site_id, role, study_site_id in rows:
        memberships.append((study_id, site_id, Role(role)))
        if site_id is not None:
            study_sites[(study_id, site_id)] = study_site_id
    setattr(user, _MEMBERSHIPS_ATTRIBUTE, memberships)
    setattr(user, _STUDY_SITES_ATTRIBUTE, study_sites)
    return memberships


def forget_memberships(user):
    """Drop the memberships cached on a user object, after they were changed."""
    for attribute in (_MEMBERSHIPS_ATTRIBUTE, _STUDY_SITES_ATTRIBUTE, "membership_rows"):
        if hasattr(user, attribute):
            delattr(user, attribute)


def _pk(value):
    return getattr(value, "pk", value)


def role_in(user, study, site=None):
    """Return the user's highest Role in the study, or None when they have none.

    With a site, only memberships that cover that site count (the site's own and the study-wide
    ones). Without one, every membership of the study counts, so callers that act on one site's
    data should pass its site. Dashboard admins count as study admins everywhere.
    """
    if not is_signed_in(user):
        return None
    if is_dashboard_admin(user):
        return Role.STUDY_ADMIN
    study_id, site_id = _pk(study), _pk(site)
    roles = [
        role
        for member_study_id, member_site_id, role in memberships_of(user)
        if member_study_id == study_id
        and (site_id is None or member_site_id is None or member_site_id == site_id)
    ]
    return max(roles, default=None)


def study_wide_role(user, study):
    """Return the user's highest Role among their memberships that cover every site of the study."""
    if not is_signed_in(user):
        return None
    if is_dashboard_admin(user):
        return Role.STUDY_ADMIN
    study_id = _pk(study)
    roles = [
        role
        for member_study_id, member_site_id, role in memberships_of(user)
        if member_study_id == study_id and member_site_id is None
    ]
    return max(roles, default=None)


def has_role(user, study, minimum, site=None):
    """Whether the user holds `minimum` or a higher role in the study (at the site, if given)."""
    role = role_in(user, study, site)
    return role is not None and role >= minimum


def allowed_site_ids(user, study):
    """Return None when the user sees every site of the study, else the set of site ids they see."""
    if is_dashboard_admin(user) or study_wide_role(user, study) is not None:
        return None
    study_id = _pk(study)
    return {
        site_id
        for member_study_id, site_id, _role in memberships_of(user)
        if member_study_id == study_id and site_id is not None
    }


# --- What the user may see ------------------------------------------------------------------


def _visible_filter(user, prefix, minimum=None):
    """Build the filter that keeps the rows of timepoints the user may see.

    `prefix` is the path from the queried model to Timepoint ("" for Timepoint itself). With
    `minimum`, only memberships of that role or higher count. Returns None when nothing needs
    filtering (a dashboard admin). The filter lists the study ids and the StudySite ids of the
    user's memberships (`memberships_of`, loaded with the user), so it adds no query of its own,
    and PostgreSQL estimates its row count from the statistics of the timepoint's columns. A
    correlated EXISTS on the memberships was estimated at one row, which made the planner join
    every scan of a study before sorting. A filter on the site id of the joined StudySite was
    estimated as an even share of the study's sites, so for a small site the planner walked the
    closest-key index through every other site's scans (qc/search.py).
    """
    if not is_signed_in(user):
        return Q(pk__in=[])
    if is_dashboard_admin(user):
        return None
    study_wide = set()
    sites_by_study = {}
    for study_id, site_id, role in memberships_of(user):
        if minimum is not None and role < minimum:
            continue
        if site_id is None:
            study_wide.add(study_id)
        else:
            sites_by_study.setdefault(study_id, set()).add(site_id)
    condition = Q(**{f"{prefix}study_id__in": sorted(study_wide)})
    study_sites = getattr(user, _STUDY_SITES_ATTRIBUTE, {})
    for study_id, site_ids in sorted(sites_by_study.items()):
        if study_id in study_wide:
            continue
        # A site without a StudySite row in the study has no timepoints there.
        study_site_ids = sorted(
            study_sites[(study_id, site_id)]
            for site_id in site_ids
            if study_sites.get((study_id, site_id)) is not None
        )
        condition |= Q(
            **{f"{prefix}study_id": study_id, f"{prefix}study_site_id__in": study_site_ids}
        )
    return condition


def _restrict(queryset, user, prefix):
    condition = _visible_filter(user, prefix)
    return queryset if condition is None else queryset.filter(condition)


def visible_studies(user):
    """Studies the user holds a role in (every study for a dashboard admin)."""
    if not is_signed_in(user):
        return Study.objects.none()
    if is_dashboard_admin(user):
        return Study.objects.all()
    return Study.objects.filter(
        Exists(StudyMembership.objects.filter(user_id=user.pk, study_id=OuterRef("pk")))
    )


def visible_timepoints(user):
    """Timepoints at the studies and sites the user's memberships cover."""
    return _restrict(Timepoint.objects.all(), user, "")


def visible_sessions(user):
    """Sessions of the timepoints the user may see."""
    return _restrict(Session.objects.all(), user, "timepoint__")


def reviewable_sessions(user):
    """Sessions at the studies and sites where the user may review (see `can_review`)."""
    condition = _visible_filter(user, "timepoint__", minimum=Role.QC_REVIEWER)
    sessions = Session.objects.all()
    return sessions if condition is None else sessions.filter(condition)


def visible_scans(user):
    """Scans of the timepoints the user may see."""
    return _restrict(Scan.objects.all(), user, "session__timepoint__")


def get_study(user, nickname, select_related=()):
    """Return the study `nickname` with the `select_related` paths loaded, or raise Http404
    when the user may not see it."""
    studies = visible_studies(user).select_related(*select_related)
    return get_object_or_404(studies, nickname=nickname)


def get_timepoint(user, name, queryset=None):
    """Return the timepoint named `name` from `queryset`, or raise Http404 when the user may not
    see it. The visibility filter is applied to any queryset passed in."""
    queryset = Timepoint.objects.all() if queryset is None else queryset
    return get_object_or_404(_restrict(queryset, user, ""), name=name)


def get_session(user, timepoint_name, number):
    return get_object_or_404(
        visible_sessions(user).select_related("timepoint__study", "timepoint__study_site__site"),
        timepoint__name=timepoint_name,
        number=number,
    )


def get_scan(user, name, queryset=None):
    """Return the scan named `name` from `queryset`, or raise Http404 when the user may not see
    it. The visibility filter is applied to any queryset passed in."""
    queryset = Scan.objects.all() if queryset is None else queryset
    return get_object_or_404(_restrict(queryset, user, "session__timepoint__"), name=name)


def _site_codes_in_path(relative_path):
    """Return the site codes of every datman ID in the path's folders and file name."""
    sites = set()
    for part in PurePosixPath(relative_path).parts:
        for parser in (parse, parse_filename):
            try:
                parsed = parser(part)
            except IdError:
                continue
            sites.add(getattr(parsed, "ident", parsed).site.upper())
            break
    return sites


def can_view_file(user, study, relative_path):
    """Whether the user may download this archive file of the study.

    A member who covers every site may download any file. A site-restricted member may download
    only files whose path names a datman ID (in a folder or the file name), and only when every
    ID in it is at one of their sites; other files (configs, study-wide tables) are refused.
    """
    if not can_view_files(user, study):
        return False
    site_ids = allowed_site_ids(user, study)
    if site_ids is None:
        return True
    path_sites = _site_codes_in_path(relative_path)
    if not path_sites:
        return False
    allowed_names = {
        name.upper()
        for name in study.study_sites.filter(site_id__in=site_ids).values_list(
            "site__name", flat=True
        )
    }
    return path_sites <= allowed_names


def can_view_files(user, study):
    """Whether the user may download archive files (NIfTI, QC images) of the study at all.

    Site-restricted members pass this check; `can_view_file` decides per file.
    """
    return role_in(user, study) is not None


# --- What the user may do -------------------------------------------------------------------


def can_review(user, study, site=None):
    """Whether the user may record QC decisions and sign off sessions in the study (QC reviewer
    or higher, at the site when one is given)."""
    return has_role(user, study, Role.QC_REVIEWER, site)


def require_review(user, study, site=None):
    if not can_review(user, study, site):
        raise PermissionDenied(f"You may not review scans in {study}; this needs a QC reviewer.")


def can_comment(user, study, site=None):
    """Whether the user may comment on timepoints in the study (RA or higher)."""
    return has_role(user, study, Role.RA, site)


def require_comment(user, study, site=None):
    if not can_comment(user, study, site):
        raise PermissionDenied(f"You may not comment in {study}; this needs an RA.")


def can_manage_members(user, study):
    """Whether the user may grant and revoke roles in the study: a dashboard admin, or a study
    admin whose membership covers every site of the study."""
    role = study_wide_role(user, study)
    return role is not None and role >= Role.STUDY_ADMIN


def require_manage_members(user, study):
    if not can_manage_members(user, study):
        raise PermissionDenied(
            f"You may not manage the members of {study}; this needs a study admin of all sites."
        )


def can_manage_study_settings(user, study):
    """Whether the user may change the study's settings (the same people who manage members)."""
    return can_manage_members(user, study)


def require_manage_study_settings(user, study):
    if not can_manage_study_settings(user, study):
        raise PermissionDenied(f"You may not change the settings of {study}.")


def grantable_roles(user, study):
    """Roles the user may grant in the study, lowest first (none unless they manage members)."""
    if not can_manage_members(user, study):
        return []
    return list(Role)


def can_manage_users(user):
    """Whether the user may manage every user, account requests and the admin site."""
    return is_dashboard_admin(user)


def require_manage_users(user):
    if not can_manage_users(user):
        raise PermissionDenied("Only dashboard admins may manage users and account requests.")


def studies_with_role(user, minimum):
    """Studies in which the user holds `minimum` or a higher role at some site (all for a
    dashboard admin), for pages that span studies."""
    if not is_signed_in(user):
        return Study.objects.none()
    if is_dashboard_admin(user):
        return Study.objects.all()
    return Study.objects.filter(
        Exists(
            StudyMembership.objects.filter(
                user_id=user.pk, study_id=OuterRef("pk"), role__gte=minimum
            )
        )
    )


def can_handle_redcap(user, study=None, site=None):
    """Whether the user may link REDCap records, retry fetches and dismiss missing surveys.

    `study` is the study of the session acted on (RA or higher there, at `site` when given);
    None asks about the REDCap list pages, which span studies (RA or higher in any study).
    """
    if study is None:
        return is_dashboard_admin(user) or any(
            role >= Role.RA for _study, _site, role in memberships_of(user)
        )
    return has_role(user, study, Role.RA, site)


def can_resolve_deviations(user, study, site=None):
    """Whether the user may accept header deviations or confirm them as protocol violations."""
    return can_review(user, study, site)


def require_resolve_deviations(user, study, site=None):
    if not can_resolve_deviations(user, study, site):
        raise PermissionDenied(f"You may not resolve header deviations in {study}.")


def can_dismiss_missing_scans(user, study, site=None):
    """Whether the user may dismiss a session's missing-scans warning in the study."""
    return can_review(user, study, site)


def require_dismiss_missing_scans(user, study, site=None):
    if not can_dismiss_missing_scans(user, study, site):
        raise PermissionDenied(f"You may not dismiss missing scans in {study}.")


def redcap_study_sites(user):
    """Study sites whose REDCap records and fetches the user may handle: those where they are
    RA or higher (every study site for a dashboard admin)."""
    if not is_signed_in(user):
        return StudySite.objects.none()
    if is_dashboard_admin(user):
        return StudySite.objects.all()
    covering = StudyMembership.objects.filter(
        user_id=user.pk, study_id=OuterRef("study_id"), role__gte=Role.RA
    ).filter(Q(site__isnull=True) | Q(site_id=OuterRef("site_id")))
    return StudySite.objects.filter(Exists(covering))


def can_record_sessions(user, study, site=None):
    """Whether the user may create and update sessions and scans of the study through the API,
    as a pipeline that imports the archive does (study admin, at the site when one is given)."""
    return has_role(user, study, Role.STUDY_ADMIN, site)


def require_record_sessions(user, study, site=None):
    if not can_record_sessions(user, study, site):
        where = f"{study} at {site}" if site is not None else f"{study}"
        raise PermissionDenied(
            f"You may not record sessions or scans of {where}; this needs a study admin."
        )


def can_view_notification_log(user):
    """Whether the user may see the log of notification emails (dashboard admins)."""
    return is_dashboard_admin(user)


def require_view_notification_log(user):
    if not can_view_notification_log(user):
        raise PermissionDenied


# --- Timepoint comments and incidental findings ---------------------------------------------
# These take a queryset of the qc app's models and filter it by field paths, because accounts
# does not import qc.


def get_comment(user, pk, queryset):
    """Return the timepoint comment `pk` from `queryset`, or raise Http404 when the user may not
    see its timepoint or the timepoint is deleted. Deleted comments are returned too; the caller
    decides what they allow."""
    queryset = queryset.filter(timepoint__deleted_at__isnull=True)
    return get_object_or_404(_restrict(queryset, user, "timepoint__"), pk=pk)


def can_edit_comment(user, comment, study, site=None):
    """Return whether the user may edit or delete the comment. Only its author may, and only
    while they may still comment in the study (at the timepoint's site when given)."""
    return comment.author_id == user.pk and can_comment(user, study, site)


def require_edit_comment(user, comment, study, site=None):
    if not can_edit_comment(user, comment, study, site):
        raise PermissionDenied(
            "You may not change this comment; only its author may edit or delete it."
        )


def can_report_finding(user, study, site=None):
    """Return whether the user may report an incidental finding on a timepoint: QC reviewer or
    higher, at the site when one is given."""
    return can_review(user, study, site)


def require_report_finding(user, study, site=None):
    if not can_report_finding(user, study, site):
        raise PermissionDenied(
            f"You may not report incidental findings in {study}; this needs a QC reviewer."
        )


def _finding_overseers(user, study_ref, site_ref):
    """Memberships that let the user see every incidental finding at the site: study admin, or
    the study's primary or staff contact, covering that site."""
    return (
        StudyMembership.objects.filter(user_id=user.pk, study_id=study_ref)
        .filter(Q(site__isnull=True) | Q(site_id=site_ref))
        .filter(
            Q(role__gte=Role.STUDY_ADMIN) | Q(is_primary_contact=True) | Q(is_staff_contact=True)
        )
    )


def visible_findings(user, findings):
    """Keep the incidental findings of `findings` (an IncidentalFinding queryset) that the user
    may see, without an extra query.

    A finding is visible to dashboard admins, to study admins and the study's primary and staff
    contacts whose membership covers the timepoint's site, and to the person who reported it.
    For everyone else the queryset is empty, so not even a count is shown.
    """
    findings = _restrict(findings, user, "timepoint__")
    if not is_signed_in(user) or is_dashboard_admin(user):
        return findings
    overseers = _finding_overseers(
        user, OuterRef("timepoint__study_id"), OuterRef("timepoint__study_site__site_id")
    )
    return findings.filter(Q(reporter_id=user.pk) | Exists(overseers))


def get_finding(user, pk, queryset):
    """Return the incidental finding `pk` from `queryset`, or raise Http404 when the user may not
    see it or its timepoint is deleted (as if it did not exist)."""
    queryset = queryset.filter(timepoint__deleted_at__isnull=True)
    return get_object_or_404(visible_findings(user, queryset), pk=pk)


def can_follow_up_findings(user, study, site=None):
    """Return whether the user may add notes to incidental findings and mark them resolved: a
    dashboard admin, or a study admin or primary or staff contact covering the site.

    Runs one query unless the user is a dashboard admin or a study admin there.
    """
    if not is_signed_in(user):
        return False
    if has_role(user, study, Role.STUDY_ADMIN, site):
        return True
    site_id = _pk(site)
    overseers = StudyMembership.objects.filter(user_id=user.pk, study_id=_pk(study)).filter(
        Q(is_primary_contact=True) | Q(is_staff_contact=True)
    )
    if site_id is not None:
        overseers = overseers.filter(Q(site__isnull=True) | Q(site_id=site_id))
    return overseers.exists()


def require_follow_up_findings(user, study, site=None):
    if not can_follow_up_findings(user, study, site):
        raise PermissionDenied(
            "You may not follow up incidental findings; this needs a study admin or a study "
            "contact."
        )


def xnat_push_study_sites(user):
    """Study sites whose XNAT push failures the user may see and push again: those where they
    are study admin (every study site for a dashboard admin)."""
    if not is_signed_in(user):
        return StudySite.objects.none()
    if is_dashboard_admin(user):
        return StudySite.objects.all()
    covering = StudyMembership.objects.filter(
        user_id=user.pk, study_id=OuterRef("study_id"), role__gte=Role.STUDY_ADMIN
    ).filter(Q(site__isnull=True) | Q(site_id=OuterRef("site_id")))
    return StudySite.objects.filter(Exists(covering))


def can_view_xnat_pushes(user):
    """Return whether the user may open the list of failed XNAT pushes, which spans studies."""
    return is_dashboard_admin(user) or any(
        role >= Role.STUDY_ADMIN for _study, _site, role in memberships_of(user)
    )


def can_push_to_xnat(user, study, site=None):
    """Return whether the user may push a scan's QC state to XNAT again (study admin there)."""
    return has_role(user, study, Role.STUDY_ADMIN, site)


def can_open_issue(user, study, site=None):
    """Return whether the user may open an issue about a timepoint on the study's tracker."""
    return can_review(user, study, site)


def can_delete_records(user):
    """Return whether the user may delete (hide) timepoints, sessions and scans and restore
    them. Only dashboard admins may. No web request removes files on disk."""
    return is_dashboard_admin(user)


def require_delete_records(user):
    if not can_delete_records(user):
        raise PermissionDenied("Only dashboard admins may delete timepoints, sessions and scans.")
