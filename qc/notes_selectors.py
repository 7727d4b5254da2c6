"""Reads of the timepoint page's comments, incidental findings and history sections."""

from django.db.models import Prefetch

from accounts import permissions
from qc import history
from qc.models import FindingNote, IncidentalFinding, TimepointComment
from qc.notes_forms import CommentForm, FindingForm, FindingNoteForm


def comments_of(timepoint):
    """Return the timepoint's comments, deleted ones too, oldest first, with authors and
    revisions (two queries)."""
    return list(TimepointComment.objects.filter(timepoint_id=timepoint.pk).for_page())


def findings_for(user, timepoint):
    """Return the timepoint's incidental findings that the user may see, newest first, with
    reporters and notes (two queries, or one when there are none)."""
    notes = FindingNote.objects.select_related("author").order_by("created_at", "id")
    findings = permissions.visible_findings(
        user, IncidentalFinding.objects.filter(timepoint_id=timepoint.pk)
    )
    findings = findings.select_related("reporter").prefetch_related(
        Prefetch("notes", queryset=notes, to_attr="note_list")
    )
    findings = list(findings.order_by("-created_at", "-id"))
    for finding in findings:
        finding.is_resolved = any(note.marks_resolved for note in finding.note_list)
    return findings


def notes_context(request, timepoint, *, comment_form=None, finding_form=None, bound_forms=None):
    """Build the template context of the timepoint page's history, comments and findings.

    `comment_form` and `finding_form` replace the empty forms, so errors show with the text as
    typed. `bound_forms` maps ("edit", comment pk) to a bound form that replaces that
    comment's edit form, and ("note", finding pk) to one that replaces that finding's note form.
    """
    user = request.user
    study, site = timepoint.study, timepoint.study_site.site_id
    bound_forms = bound_forms or {}

    can_comment = permissions.can_comment(user, study, site)
    comments = comments_of(timepoint)
    for comment in comments:
        comment.can_edit = not comment.is_deleted and permissions.can_edit_comment(
            user, comment, study, site
        )
        if comment.can_edit:
            initial = {"text": comment.current.text if comment.current else ""}
            comment.edit_form = bound_forms.get(("edit", comment.pk)) or CommentForm(
                initial=initial, editing=True, auto_id=f"comment{comment.pk}_%s"
            )

    can_report = permissions.can_report_finding(user, study, site)
    findings = findings_for(user, timepoint)
    can_follow_up = bool(findings) and permissions.can_follow_up_findings(user, study, site)
    for finding in findings:
        if can_follow_up:
            finding.note_form = bound_forms.get(("note", finding.pk)) or FindingNoteForm(
                auto_id=f"finding{finding.pk}_%s"
            )

    return {
        "history": history.timepoint_history_preview(timepoint),
        "comments": comments,
        "live_comment_count": sum(1 for comment in comments if not comment.is_deleted),
        "can_comment": can_comment,
        "comment_form": comment_form or (CommentForm() if can_comment else None),
        "findings": findings,
        "show_findings": can_report or bool(findings),
        "can_report_finding": can_report,
        "finding_form": finding_form or (FindingForm() if can_report else None),
    }
