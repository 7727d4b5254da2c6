"""Timepoint comments, incidental findings and the full history pages of timepoints and scans.

The POST views redirect to the timepoint page with a message on success. On bad input they
render the timepoint page again with the form's errors and the text as typed, so nothing the
user wrote is lost.
"""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from notifications.services import incidental_finding_contacts
from qc import history, notes_services, selectors
from qc.models import IncidentalFinding, TimepointComment
from qc.notes_forms import CommentForm, FindingForm, FindingNoteForm
from qc.views import render_timepoint_page

logger = logging.getLogger(__name__)

HISTORY_PAGE_LENGTH = 100


def _timepoint_url(timepoint, anchor=""):
    url = reverse("qc:timepoint_detail", args=[timepoint.name])
    return f"{url}#{anchor}" if anchor else url


def _get_timepoint(user, name):
    return permissions.get_timepoint(
        user, name, queryset=permissions.visible_timepoints(user).select_related("study")
    )


def _get_comment(user, pk):
    return permissions.get_comment(
        user,
        pk,
        TimepointComment.objects.select_related("timepoint__study", "timepoint__study_site"),
    )


# --- Comments -------------------------------------------------------------------------------


@login_required
@require_POST
def comment_add(request, name):
    timepoint = _get_timepoint(request.user, name)
    permissions.require_comment(request.user, timepoint.study, timepoint.study_site.site_id)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            comment = notes_services.add_comment(
                timepoint=timepoint, author=request.user, text=form.cleaned_data["text"]
            )
        except notes_services.NoteError as error:
            form.add_error("text", str(error))
        else:
            messages.success(request, "Comment added.")
            return redirect(_timepoint_url(timepoint, f"comment-{comment.pk}"))
    return render_timepoint_page(request, name, comment_form=form)


@login_required
@require_POST
def comment_edit(request, pk):
    comment = _get_comment(request.user, pk)
    timepoint = comment.timepoint
    permissions.require_edit_comment(
        request.user, comment, timepoint.study, timepoint.study_site.site_id
    )
    form = CommentForm(request.POST, editing=True, auto_id=f"comment{comment.pk}_%s")
    if form.is_valid():
        try:
            notes_services.edit_comment(
                comment=comment, editor=request.user, text=form.cleaned_data["text"]
            )
        except notes_services.CommentDeletedError as error:
            # The page shows no edit form for a deleted comment, so the error goes on top and
            # the text as typed goes into the new-comment form.
            logger.info("edit of comment %s by %s rejected: %s", comment.pk, request.user, error)
            messages.error(request, str(error))
            new_comment = CommentForm(initial={"text": form.cleaned_data["text"]})
            return render_timepoint_page(request, timepoint.name, comment_form=new_comment)
        except notes_services.NoteError as error:
            form.add_error("text", str(error))
        else:
            messages.success(request, "Comment edited; the earlier text is kept.")
            return redirect(_timepoint_url(timepoint, f"comment-{comment.pk}"))
    return render_timepoint_page(request, timepoint.name, bound_forms={("edit", comment.pk): form})


@login_required
@require_http_methods(["GET", "POST"])
def comment_delete(request, pk):
    """Ask the author to confirm (GET), then delete the comment (POST)."""
    comment = _get_comment(request.user, pk)
    timepoint = comment.timepoint
    permissions.require_edit_comment(
        request.user, comment, timepoint.study, timepoint.study_site.site_id
    )
    if request.method == "GET":
        return render(
            request,
            "qc/comment_confirm_delete.html",
            {
                "comment": comment,
                "revision": comment.revisions.order_by("-created_at", "-pk").first(),
                "timepoint": timepoint,
                "study": timepoint.study,
                "cancel_url": _timepoint_url(timepoint, f"comment-{comment.pk}"),
            },
        )
    try:
        notes_services.delete_comment(comment=comment, user=request.user)
    except notes_services.NoteError as error:
        logger.info("deletion of comment %s by %s rejected: %s", comment.pk, request.user, error)
        messages.error(request, str(error))
    else:
        messages.success(request, "Comment deleted.")
    return redirect(_timepoint_url(timepoint, "comments"))


# --- Incidental findings --------------------------------------------------------------------


def _finding_reported_message(timepoint):
    """Build the message that names the contacts emailed about a new finding, or says that no
    contact exists, so the reporter knows whether to tell someone."""
    contacts = incidental_finding_contacts(timepoint.study, site=timepoint.study_site.site_id)
    names = [contact.get_full_name() or contact.username for contact in contacts]
    if not names:
        return (
            f"Incidental finding reported. {timepoint.study} has no primary or staff contact, "
            f"so nobody was emailed: tell a study admin, who sees the finding on this page."
        )
    return f"Incidental finding reported; emailing {', '.join(names)}."


@login_required
@require_POST
def finding_report(request, name):
    timepoint = _get_timepoint(request.user, name)
    permissions.require_report_finding(request.user, timepoint.study, timepoint.study_site.site_id)
    form = FindingForm(request.POST)
    if form.is_valid():
        try:
            finding = notes_services.report_finding(
                timepoint=timepoint,
                reporter=request.user,
                description=form.cleaned_data["description"],
            )
        except notes_services.NoteError as error:
            form.add_error("description", str(error))
        else:
            messages.success(request, _finding_reported_message(timepoint))
            return redirect(_timepoint_url(timepoint, f"finding-{finding.pk}"))
    return render_timepoint_page(request, name, finding_form=form)


@login_required
@require_POST
def finding_note_add(request, pk):
    finding = permissions.get_finding(
        request.user,
        pk,
        IncidentalFinding.objects.select_related("timepoint__study", "timepoint__study_site"),
    )
    timepoint = finding.timepoint
    permissions.require_follow_up_findings(
        request.user, timepoint.study, timepoint.study_site.site_id
    )
    form = FindingNoteForm(request.POST, auto_id=f"finding{finding.pk}_%s")
    if form.is_valid():
        try:
            notes_services.add_finding_note(
                finding=finding,
                author=request.user,
                text=form.cleaned_data["text"],
                marks_resolved=form.cleaned_data["marks_resolved"],
            )
        except notes_services.NoteError as error:
            form.add_error("text", str(error))
        else:
            messages.success(request, "Note added to the incidental finding.")
            return redirect(_timepoint_url(timepoint, f"finding-{finding.pk}"))
    return render_timepoint_page(request, timepoint.name, bound_forms={("note", finding.pk): form})


# --- History pages --------------------------------------------------------------------------


def _history_context(request, rows):
    """Return the requested page of history events, as `page` and as `history` for
    `_history.html` (two queries: the count and the page)."""
    page = Paginator(rows, HISTORY_PAGE_LENGTH).get_page(request.GET.get("page"))
    events = history.history_events(page.object_list)
    return {"page": page, "history": history.HistoryPreview(events=events, has_more=False)}


@login_required
@require_GET
def timepoint_history(request, name):
    timepoint = permissions.get_timepoint(
        request.user,
        name,
        queryset=permissions.visible_timepoints(request.user).select_related("study"),
    )
    return render(
        request,
        "qc/history.html",
        {
            "study": timepoint.study,
            "timepoint": timepoint,
            **_history_context(request, history.timepoint_history(timepoint)),
        },
    )


@login_required
@require_GET
def scan_history(request, name):
    scan = permissions.get_scan(
        request.user,
        name,
        queryset=selectors.scan_for_page(permissions.visible_scans(request.user)),
    )
    timepoint = scan.session.timepoint
    return render(
        request,
        "qc/history.html",
        {
            "study": timepoint.study,
            "timepoint": timepoint,
            "scan": scan,
            **_history_context(request, history.scan_history(scan)),
        },
    )
