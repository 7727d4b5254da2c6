"""Study actions that write rows: saving a study's README."""

import logging

from django.db import transaction

from accounts import permissions
from studies.models import Study, StudyReadme
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
    the author started from: when someone saved another version since, StudyReadmeError is
    raised so that neither edit silently replaces the other. Raises StudyReadmeError for text
    over README_MAX_CHARS or with NUL characters, and PermissionDenied when `author` may not
    change the study's settings.
    """
    permissions.require_manage_study_settings(author, study)
    text = clean_readme_text(text)

    with transaction.atomic():
        # Lock the study row so that two saves of the same README are serialised and the
        # second one sees the first one's version.
        Study.objects.select_for_update().only("pk").get(pk=study.pk)
        current = newest_readme(study)
        if current is not None and based_on_id is not None and current.pk != based_on_id:
            raise StudyReadmeError(
                f"{current.author} saved a newer version of the README at "
                f"{current.created_at:%Y-%m-%d %H:%M} UTC while you were editing. Your text is "
                f"still in the form: compare it with the current README, merge the two, and "
                f"save again."
            )
        if current is not None and current.text == text:
            return None
        if current is None and not text:
            return None
        readme = StudyReadme.objects.create(study=study, author=author, text=text)

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
