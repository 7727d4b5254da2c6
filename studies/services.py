"""Study actions that write rows: saving a study's README, and deleting (hiding) and restoring
timepoints, sessions and scans.

Deleting hides a row from every page, count, export and API response (see the managers in
studies.models) and records who, when and why on the row and in a DeletionEvent. Files on disk,
the rows' QC history and the rows of the children stay as they are, so a restore brings back
exactly what was hidden.
"""

import logging

from django.db import transaction
from django.utils import timezone

from accounts import permissions
from studies.models import (
    DeletedObjectType,
    DeletionAction,
    DeletionEvent,
    Scan,
    Session,
    Study,
    StudyReadme,
    Timepoint,
)
from studies.readme import README_MAX_CHARS

logger = logging.getLogger(__name__)


class StudyReadmeError(Exception):
    """A README that cannot be saved; the message is meant for the study admin."""


def newest_readme(study):
    """Return the study's current README version with its author, or None (one query)."""
    return StudyReadme.objects.filter(study=study).select_related("author").first()


def save_study_readme(*, study, author, text, based_on_id=None):
    """Save `text` as the newest version of the study's README and return the new StudyReadme.

    Earlier versions are kept. Returns None when the text equals the current version, because
    a version that changes nothing is only noise in the history. `based_on_id` is the version
    the author started from, or None when the study had no README yet. When the current version
    is another one (or a README exists and `based_on_id` is None), StudyReadmeError is raised
    so that neither edit silently replaces the other. Raises StudyReadmeError for text over
    README_MAX_CHARS or with NUL characters, and PermissionDenied when `author` may not change
    the study's settings.
    """
    permissions.require_manage_study_settings(author, study)
    text = clean_readme_text(text)

    with transaction.atomic():
        # Lock the study row so that two saves of the same README are serialised and the
        # second one sees the first one's version.
        Study.objects.select_for_update().only("pk").get(pk=study.pk)
        current = newest_readme(study)
        if current is not None and current.pk != based_on_id:
            saved_at = timezone.localtime(current.created_at)
            raise StudyReadmeError(
                f"{current.author} saved a newer version of the README at "
                f"{saved_at:%Y-%m-%d %H:%M %Z} while you were editing. Your text is "
                f"still in the form: compare it with the current README, merge the two, and "
                f"save again."
            )
        if current is not None and current.text == text:
            return None
        if current is None and not text:
            return None
        readme = StudyReadme.objects.create(study=study, author=author, text=text)
        Study.objects.filter(pk=study.pk).update(current_readme=readme)
        study.current_readme = readme

    logger.info("README of study %s saved by %s (%d characters)", study.nickname, author, len(text))
    return readme


def clean_readme_text(text):
    """Normalise line endings and check the size; raise StudyReadmeError with the fix."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if "\x00" in text:
        raise StudyReadmeError("The README contains a NUL character; remove it and save again.")
    if len(text) > README_MAX_CHARS:
        raise StudyReadmeError(
            f"The README is {len(text):,} characters long, over the limit of "
            f"{README_MAX_CHARS:,}. Shorten it, or move long sections into a document that the "
            f"README links to."
        )
    return text


# --- Deleting and restoring ------------------------------------------------------------------

MAX_REASON_LENGTH = 1000


class DeletionError(Exception):
    """A delete or restore that cannot be done. Its message is meant for the admin."""


def clean_reason(reason):
    """Strip a deletion or restore reason and check it, or raise DeletionError with the fix."""
    reason = (reason or "").strip()
    if not reason:
        raise DeletionError("A reason is required: say why, for example 'scanned twice'.")
    if "\x00" in reason:
        raise DeletionError("The reason contains a NUL character; remove it and try again.")
    if len(reason) > MAX_REASON_LENGTH:
        raise DeletionError(
            f"The reason is {len(reason)} characters long; shorten it to at most "
            f"{MAX_REASON_LENGTH}."
        )
    return reason


def _object_type(obj):
    if isinstance(obj, Timepoint):
        return DeletedObjectType.TIMEPOINT
    if isinstance(obj, Session):
        return DeletedObjectType.SESSION
    if isinstance(obj, Scan):
        return DeletedObjectType.SCAN
    raise TypeError(f"Only timepoints, sessions and scans can be deleted, not {obj!r}.")


def _locked(obj):
    """Lock and reload the row, hidden or not, with the parents its checks and names need."""
    if isinstance(obj, Timepoint):
        return Timepoint.all_objects.select_for_update().get(pk=obj.pk)
    if isinstance(obj, Session):
        return Session.all_objects.select_for_update().select_related("timepoint").get(pk=obj.pk)
    return Scan.all_objects.select_for_update().select_related("session__timepoint").get(pk=obj.pk)


def _deleted_parent(obj):
    """Return the deleted parent that hides the row (its session or timepoint), or None."""
    if isinstance(obj, Scan):
        if obj.session.is_deleted:
            return obj.session
        obj = obj.session
    if isinstance(obj, Session) and obj.timepoint.is_deleted:
        return obj.timepoint
    return None


def _study_id(obj):
    if isinstance(obj, Timepoint):
        return obj.study_id
    if isinstance(obj, Session):
        return obj.timepoint.study_id
    return obj.session.timepoint.study_id


def _describe(obj):
    return f"{_object_type(obj).label.lower()} {obj}"


def _record(obj, *, action, user, reason):
    return DeletionEvent.objects.create(
        object_type=_object_type(obj),
        object_id=obj.pk,
        object_name=str(obj),
        study_id=_study_id(obj),
        action=action,
        actor=user,
        reason=reason,
    )


def delete_object(obj, *, user, reason):
    """Hide a timepoint, session or scan, with its children, and return the DeletionEvent.

    The caller checks that `user` may delete (accounts.permissions.can_delete_records).
    Raises DeletionError when the row is already deleted or hidden by a deleted parent, or
    when the reason is missing or too long.
    """
    reason = clean_reason(reason)
    _object_type(obj)
    with transaction.atomic():
        obj = _locked(obj)
        if obj.is_deleted:
            raise DeletionError(
                f"The {_describe(obj)} is already deleted "
                f"(by {obj.deleted_by} on "
                f"{timezone.localtime(obj.deleted_at):%Y-%m-%d %H:%M %Z})."
            )
        parent = _deleted_parent(obj)
        if parent is not None:
            raise DeletionError(
                f"The {_describe(obj)} is already hidden because its {_describe(parent)} is "
                f"deleted."
            )
        obj.deleted_at = timezone.now()
        obj.deleted_by = user
        obj.deletion_reason = reason
        obj.save(update_fields=["deleted_at", "deleted_by", "deletion_reason"])
        event = _record(obj, action=DeletionAction.DELETE, user=user, reason=reason)
    logger.info("%s deleted by %s: %s", _describe(obj), user, reason)
    return event


def restore_object(obj, *, user, reason):
    """Show a deleted timepoint, session or scan again and return the DeletionEvent.

    Children that were deleted on their own before stay deleted. Raises DeletionError when the
    row is not deleted, when a deleted parent would still hide it, or when the reason is
    missing or too long.
    """
    reason = clean_reason(reason)
    _object_type(obj)
    with transaction.atomic():
        obj = _locked(obj)
        parent = _deleted_parent(obj)
        if not obj.is_deleted:
            if parent is not None:
                raise DeletionError(
                    f"The {_describe(obj)} is not deleted itself. It is hidden because its "
                    f"{_describe(parent)} is deleted. Restore that instead."
                )
            raise DeletionError(
                f"The {_describe(obj)} is not deleted, so there is nothing to restore."
            )
        if parent is not None:
            raise DeletionError(
                f"The {_describe(obj)} is in the deleted {_describe(parent)}; restore that first."
            )
        obj.deleted_at = None
        obj.deleted_by = None
        obj.deletion_reason = ""
        obj.save(update_fields=["deleted_at", "deleted_by", "deletion_reason"])
        event = _record(obj, action=DeletionAction.RESTORE, user=user, reason=reason)
    logger.info("%s restored by %s: %s", _describe(obj), user, reason)
    return event
