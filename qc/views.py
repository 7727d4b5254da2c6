"""Reviewer pages: study list, study overview, timepoint, scan, scan review and session sign-off."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.redirects import safe_redirect_url
from integrations.selectors import issues_panel
from pipelines import selectors as pipeline_selectors
from qc import (
    compliance_repair,
    compliance_selectors,
    history,
    notes_selectors,
    selectors,
    services,
    volume_selectors,
)
from qc.forms import ReviewForm, SignOffForm
from redcap.selectors import surveys_for_sessions
from studies.datman_ids import IdError, parse_session_id
from studies.readme import render_readme

logger = logging.getLogger(__name__)

STUDIES_PER_PAGE = 50
TIMEPOINTS_PER_PAGE = 50


def _is_htmx(request):
    return request.headers.get("HX-Request") == "true"


def _row_form(scan, data=None):
    # Field ids carry the scan's key because the timepoint page shows one form per scan.
    return ReviewForm(
        data,
        compact=True,
        auto_id=f"scan{scan.pk}_%s",
        initial={"expected_review_id": scan.qc_review_id},
    )


def _conflict_form(form, conflict):
    """Rebind a review form after a conflict: the comment as typed, the newest review's id.

    Submitting it again saves the decision on top of the review that caused the conflict.
    """
    data = form.data.copy()
    data[form.add_prefix("expected_review_id")] = conflict.current.pk
    fresh = type(form)(data, compact=form.compact, auto_id=form.auto_id)
    fresh.conflict = conflict
    return fresh


def _scan_row_url(scan):
    return f"{reverse('qc:timepoint_detail', args=[scan.session.timepoint.name])}#scan-{scan.pk}"


@login_required
@require_GET
def study_list(request):
    studies = selectors.studies_for_list(
        permissions.visible_studies(request.user),
        timepoints=permissions.visible_timepoints(request.user),
        sessions=permissions.visible_sessions(request.user),
    )
    page = Paginator(studies, STUDIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "qc/study_list.html", {"page": page})


@login_required
@require_GET
def study_detail(request, nickname):
    study = permissions.get_study(request.user, nickname, select_related=["current_readme__author"])
    needs_review_only = request.GET.get("show") == "needs-review"
    sort = request.GET.get("sort") or selectors.DEFAULT_OVERVIEW_SORT
    sort_error = ""
    if sort not in selectors.OVERVIEW_SORTS:
        sort_error = (
            f"Unknown sort order {sort!r}; the table is sorted by timepoint. Choose one of "
            f"{', '.join(selectors.OVERVIEW_SORTS)}."
        )
        sort = selectors.DEFAULT_OVERVIEW_SORT

    timepoints = selectors.timepoints_for_overview(
        permissions.visible_timepoints(request.user).filter(study=study),
        needs_review_only=needs_review_only,
        sort=sort,
    )
    page = Paginator(timepoints, TIMEPOINTS_PER_PAGE).get_page(request.GET.get("page"))
    sessions = [session for timepoint in page.object_list for session in timepoint.session_list]
    compliance_selectors.attach_session_compliance(sessions)
    needs_review_count = selectors.needs_review_count(
        permissions.visible_sessions(request.user).filter(timepoint__study=study)
    )
    readme = study.current_readme
    return render(
        request,
        "qc/study_detail.html",
        {
            "study": study,
            "page": page,
            "needs_review_only": needs_review_only,
            "needs_review_count": needs_review_count,
            "readme": readme,
            # render_readme sanitises the HTML, so it may be marked safe.
            "readme_html": mark_safe(render_readme(readme.text)) if readme else "",  # noqa: S308
            "can_edit_readme": permissions.can_manage_study_settings(request.user, study),
            "pipeline_links": pipeline_selectors.study_links(request.user, study),
            "sort": sort,
            "sort_error": sort_error,
        },
    )


@login_required
@require_GET
def timepoint_detail(request, name):
    return render_timepoint_page(request, name)


def render_timepoint_page(request, name, **notes_forms):
    """Render the timepoint page. `notes_forms` go to `notes_selectors.notes_context`, so a
    comment or finding form with errors is shown with its text as typed."""
    timepoint = permissions.get_timepoint(
        request.user,
        name,
        queryset=selectors.timepoint_for_page(permissions.visible_timepoints(request.user)),
    )
    compliance_selectors.attach_session_compliance(timepoint.session_list)
    selectors.prepare_timepoint(timepoint)
    surveys_for_sessions(timepoint.session_list)
    pipeline_selectors.attach_download_jobs(timepoint.session_list)
    pipeline_links = pipeline_selectors.timepoint_links(
        request.user, timepoint, timepoint.session_list
    )
    for session in timepoint.session_list:
        session.conversion_error_count = sum(
            1 for scan in session.scan_list if scan.conversion_errors
        )
    can_review = permissions.can_review(request.user, timepoint.study, timepoint.site)
    return render(
        request,
        "qc/timepoint_detail.html",
        {
            "timepoint": timepoint,
            "study": timepoint.study,
            "can_review": can_review,
            "can_dismiss_missing_scans": permissions.can_dismiss_missing_scans(
                request.user, timepoint.study, timepoint.site
            ),
            "not_redcap_handler": not permissions.can_handle_redcap(
                request.user, timepoint.study, timepoint.site
            ),
            **notes_selectors.notes_context(request, timepoint, **notes_forms),
            "issues_panel": issues_panel(request.user, timepoint),
            "can_delete_records": permissions.can_delete_records(request.user),
            "pipeline_links": pipeline_links,
        },
    )


def _render_scan_page(request, scan, form):
    study = scan.session.timepoint.study
    site = scan.session.timepoint.site
    compliance_selectors.attach_header_diffs([scan])
    compliance_repair.attach_sidecar_repairs(scan)
    diff = scan.header_diff
    repair_options = None
    if diff is not None and compliance_repair.SLICE_TIMING in diff.deviating_fields:
        repair_options = compliance_repair.repair_options(scan, diff)
    source_visible = (
        scan.source_id is not None
        and permissions.visible_scans(request.user).filter(pk=scan.source_id).exists()
    )
    context = {
        "scan": scan,
        "neighbours": selectors.scan_neighbours(scan),
        "study": study,
        "timepoint": scan.session.timepoint,
        "images": selectors.qc_images(scan),
        "volume": volume_selectors.scan_volume(scan, source_visible=source_visible),
        "sidecar_rows": selectors.sidecar_rows(scan.sidecar),
        "reviews": selectors.review_history(scan),
        "history": history.scan_history_preview(scan),
        "source_visible": source_visible,
        "can_review": permissions.can_review(request.user, study, site),
        "can_resolve_deviations": permissions.can_resolve_deviations(request.user, study, site),
        "can_delete_records": permissions.can_delete_records(request.user),
        "form": form,
        "pipeline_links": pipeline_selectors.scan_links(request.user, scan),
        "repair_options": repair_options,
    }
    return render(request, "qc/scan_detail.html", context)


@login_required
@require_GET
def scan_detail(request, name):
    scan = permissions.get_scan(
        request.user,
        name,
        queryset=selectors.scan_for_page(permissions.visible_scans(request.user)),
    )
    return _render_scan_page(
        request, scan, ReviewForm(initial={"expected_review_id": scan.qc_review_id})
    )


def _redirect_target(request, scan, *, save_and_next):
    if save_and_next:
        # The next scan of the timepoint, or the timepoint page after its last scan.
        following = selectors.scan_neighbours(scan).next
        if following:
            return reverse("qc:scan_detail", args=[following])
        return reverse("qc:timepoint_detail", args=[scan.session.timepoint.name])
    return safe_redirect_url(request, request.POST.get("next", ""), fallback=_scan_row_url(scan))


@login_required
@require_POST
def scan_review(request, name):
    # The study site comes in the same query, for the role check at the scan's site.
    scan = permissions.get_scan(
        request.user,
        name,
        queryset=selectors.scans_for_row().select_related("session__timepoint__study_site"),
    )
    timepoint = scan.session.timepoint
    permissions.require_review(request.user, timepoint.study, timepoint.study_site.site_id)
    htmx = _is_htmx(request)
    form = _row_form(scan, request.POST) if htmx else ReviewForm(request.POST)

    if form.is_valid():
        try:
            review = services.review_scan(
                scan,
                reviewer=request.user,
                state=form.cleaned_data["state"],
                comment=form.cleaned_data["comment"],
                expected_review_id=form.cleaned_data["expected_review_id"],
            )
        except services.ReviewConflict as conflict:
            logger.info("review of scan %s by %s rejected: %s", scan.name, request.user, conflict)
            form = _conflict_form(form, conflict)
        except services.QCError as error:
            logger.info("review of scan %s by %s rejected: %s", scan.name, request.user, error)
            form.add_error(None, str(error))
        else:
            if htmx:
                # Fetch the row again so it shows the state just saved.
                scan = permissions.get_scan(request.user, name, queryset=selectors.scans_for_row())
                return _render_row(request, scan, None)
            messages.success(request, f"{scan.name} marked {review.get_state_display().lower()}.")
            save_and_next = form.cleaned_data.get("save_and_next", False)
            return redirect(_redirect_target(request, scan, save_and_next=save_and_next))

    if htmx:
        return _render_row(request, scan, form)
    # Without htmx the scan page shows the error, with the comment as typed.
    page_scan = permissions.get_scan(
        request.user,
        name,
        queryset=selectors.scan_for_page(permissions.visible_scans(request.user)),
    )
    return _render_scan_page(request, page_scan, form)


def _render_row(request, scan, form):
    # Without a bound form the row template writes out a blank one.
    scan.images = selectors.qc_images(scan)
    scan.review_form = form
    return render(request, "qc/_scan_row.html", {"scan": scan, "can_review": True})


@login_required
@require_GET
def next_session(request):
    """Send the reviewer to the oldest-acquired session they may review that still needs it."""
    session = selectors.next_session_to_review(permissions.reviewable_sessions(request.user))
    if session is None:
        messages.info(request, "No session waits for review in the studies you review.")
        return redirect("qc:study_list")
    url = reverse("qc:timepoint_detail", args=[session.timepoint.name])
    return redirect(f"{url}#session-{session.number}")


def _get_session(user, session_id):
    try:
        ident = parse_session_id(session_id)
    except IdError as error:
        raise Http404(str(error)) from error
    return permissions.get_session(user, ident.timepoint_id, ident.session_number)


@login_required
@require_http_methods(["GET", "POST"])
def session_sign_off(request, session_id):
    session = _get_session(request.user, session_id)
    timepoint = session.timepoint
    permissions.require_review(request.user, timepoint.study, timepoint.study_site.site_id)

    if request.method == "POST":
        form = SignOffForm(request.POST)
        if form.is_valid():
            try:
                sign_off = services.sign_off_session(
                    session,
                    reviewer=request.user,
                    approve_scan_ids=form.cleaned_data["approve_scan_ids"],
                )
            except services.QCError as error:
                logger.info(
                    "sign-off of session %s by %s rejected: %s", session, request.user, error
                )
                messages.error(request, str(error))
            else:
                approved = sign_off.reviews.count()
                scans = "scan" if approved == 1 else "scans"
                messages.success(
                    request, f"Session {session.name} signed off; {approved} new {scans} approved."
                )
                return redirect("qc:timepoint_detail", name=timepoint.name)
        else:
            for message in form.errors.get("approve_scan_ids", []):
                messages.error(request, message)
        return redirect("qc:session_sign_off", session_id=session.name)

    existing = selectors.sign_off_of(session)
    new_scans = [] if existing else services.new_scans(session)
    form = SignOffForm(initial={"approve_scan_ids": [scan.pk for scan in new_scans]})
    return render(
        request,
        "qc/session_sign_off.html",
        {
            "session": session,
            "timepoint": timepoint,
            "study": timepoint.study,
            "existing": existing,
            "new_scans": new_scans,
            "form": form,
        },
    )
