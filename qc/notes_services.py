"""Timepoint comments and incidental findings. Every change is a new row, except that deleting
a comment marks it deleted; no text is ever overwritten."""

import logging

from django.db import transaction
from django.utils import timezone

from notifications.services import notify_incidental_finding
from qc.models import FindingNote, IncidentalFinding, TimepointComment, TimepointCommentRevision

logger = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 5000
MAX_FINDING_LENGTH = 5000


class NoteError(Exception):
    """A comment or finding action that cannot be done; the message is meant for the user."""


class CommentDeletedError(NoteError):
    """The comment acted on was deleted, so it cannot be edited or deleted again."""


def clean_text(text, *, label, max_length, required=True):
    """Strip and return `text`, or raise NoteError naming `label` and the fix when it is
    unusable."""
    text = (text or "").strip()
    if "\x00" in text:
        raise NoteError(f"The {label} contains a NUL character; remove it and save again.")
    if required and not text:
        raise NoteError(f"The {label} is empty; write some text and save again.")
    if len(text) > max_length:
        raise NoteError(
            f"The {label} is {len(text)} characters long; shorten it to at most {max_length}."
        )
    return text


# --- Comments -------------------------------------------------------------------------------


def add_comment(*, timepoint, author, text):
    """Add a comment to the timepoint and return it, with its text as the first revision."""
    text = clean_text(text, label="comment", max_length=MAX_COMMENT_LENGTH)
    with transaction.atomic():
        comment = TimepointComment.objects.create(timepoint=timepoint, author=author)
        TimepointCommentRevision.objects.create(comment=comment, text=text)
    logger.info("comment %s added to %s by %s", comment.pk, timepoint.name, author)
    return comment


def _locked(comment):
    return TimepointComment.objects.select_for_update().get(pk=comment.pk)


def _check_not_deleted(comment):
    if comment.deleted_at is not None:
        deleted_at = timezone.localtime(comment.deleted_at)
        raise CommentDeletedError(
            f"This comment was deleted on {deleted_at:%Y-%m-%d %H:%M %Z}; a deleted comment "
            f"cannot be changed. Add a new comment instead."
        )


def edit_comment(*, comment, editor, text):
    """Record a new revision of the comment's text and return it. The earlier text is kept.

    Only the author may edit. The view checks that first, and this check guards other callers.
    """
    text = clean_text(text, label="comment", max_length=MAX_COMMENT_LENGTH)
    with transaction.atomic():
        # The lock makes an edit and a delete of one comment wait for each other, so no
        # revision is added to a comment that is deleted at that moment.
        comment = _locked(comment)
        if comment.author_id != editor.pk:
            raise NoteError("Only the author of a comment may edit it.")
        _check_not_deleted(comment)
        current = comment.revisions.order_by("-created_at", "-id").first()
        if current is not None and current.text == text:
            raise NoteError("The comment text is unchanged; change it before saving.")
        revision = TimepointCommentRevision.objects.create(comment=comment, text=text)
    logger.info("comment %s edited by %s", comment.pk, editor)
    return revision


def delete_comment(*, comment, user):
    """Mark the comment deleted by `user` and return it. Its row and revisions stay."""
    with transaction.atomic():
        comment = _locked(comment)
        if comment.author_id != user.pk:
            raise NoteError("Only the author of a comment may delete it.")
        _check_not_deleted(comment)
        comment.deleted_at = timezone.now()
        comment.deleted_by = user
        comment.save(update_fields=["deleted_at", "deleted_by"])
    logger.info("comment %s deleted by %s", comment.pk, user)
    return comment


# --- Incidental findings --------------------------------------------------------------------


def report_finding(*, timepoint, reporter, description):
    """Record an incidental finding on the timepoint and return it.

    The study's primary and staff contacts at the timepoint's site are notified once the
    transaction commits, so no email announces a finding that was rolled back.
    """
    description = clean_text(description, label="description", max_length=MAX_FINDING_LENGTH)
    study, site_id = timepoint.study, timepoint.study_site.site_id
    with transaction.atomic():
        finding = IncidentalFinding.objects.create(
            timepoint=timepoint, reporter=reporter, description=description
        )
        transaction.on_commit(
            lambda: notify_incidental_finding(
                finding.pk, study, description, reporter, site=site_id
            )
        )
    logger.info("incidental finding %s reported on %s by %s", finding.pk, timepoint.name, reporter)
    return finding


def add_finding_note(*, finding, author, text, marks_resolved=False):
    """Add a follow-up note to the finding and return it; `marks_resolved` records that the
    finding was dealt with. A note without text is allowed only when it marks it resolved."""
    text = clean_text(
        text, label="note", max_length=MAX_FINDING_LENGTH, required=not marks_resolved
    )
    with transaction.atomic():
        note = FindingNote.objects.create(
            finding=finding, author=author, text=text, marks_resolved=marks_resolved
        )
    logger.info(
        "note %s on incidental finding %s by %s%s",
        note.pk,
        finding.pk,
        author,
        " (resolved)" if marks_resolved else "",
    )
    return note
