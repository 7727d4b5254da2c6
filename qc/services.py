"""QC actions: review a scan, sign off a session. Each writes new rows and an audit event."""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from qc import signals
from qc.models import (
    STATES_NEEDING_COMMENT,
    QCEvent,
    QCEventKind,
    QCState,
    ScanReview,
    SessionSignOff,
    with_qc_state,
)
from studies.models import Scan, Session

logger = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 5000


class QCError(Exception):
    """A QC action that cannot be done; the message is meant for the reviewer."""


class ReviewConflict(QCError):
    """A review rejected because the scan got a newer review than the one the reviewer saw.

    `current` is the scan's newest review (reviewer loaded), `state` and `comment` are the
    decision that was not saved.
    """

    def __init__(self, scan, *, current, state, comment):
        self.current = current
        self.state = state
        self.comment = comment
        reviewed_at = timezone.localtime(current.created_at)
        super().__init__(
            f"{scan} was marked {current.get_state_display().lower()} by "
            f"{current.reviewer.display_name} at {reviewed_at:%Y-%m-%d %H:%M %Z} after this "
            f"page was loaded, so your decision ({state.label.lower()}) was not saved. Read "
            f"their decision, then save yours again if it still applies."
        )


# The default of `review_scan(expected_review_id=...)`: record the review whatever the scan's
# newest review is (for commands and API calls that do not send one).
ANY_REVIEW = object()


def clean_comment(comment):
    """Strip a comment and check it; raise QCError with the fix when it is unusable."""
    comment = (comment or "").strip()
    if "\x00" in comment:
        raise QCError("The comment contains a NUL character; remove it and save again.")
    if len(comment) > MAX_COMMENT_LENGTH:
        raise QCError(
            f"The comment is {len(comment)} characters long; shorten it to at most "
            f"{MAX_COMMENT_LENGTH}."
        )
    return comment


def review_scan(scan, *, reviewer, state, comment="", expected_review_id=ANY_REVIEW):
    """Record a QC decision on a scan and return the new ScanReview.

    A linked scan's decision is recorded on its source scan, so every study that shares the
    acquisition sees it. Flagging and blacklisting need a comment.

    `expected_review_id` is the id of the newest review the reviewer was shown, or None when
    the scan showed no review. When the scan's newest review is another one (someone reviewed
    it meanwhile), nothing is saved and ReviewConflict is raised.
    """
    state = QCState(state)
    comment = clean_comment(comment)
    if state in STATES_NEEDING_COMMENT and not comment:
        raise QCError(
            f"A comment is required to mark {scan} as {state.label.lower()}: say what is wrong."
        )

    with transaction.atomic():
        # Lock the session first, then the scan, in the same order as sign_off_session. A review
        # and a sign-off of one session then wait for each other instead of deadlocking, so a
        # sign-off never approves a scan that a review is flagging at that moment.
        Session.objects.select_for_update().only("pk").get(pk=scan.session_id)
        target = Scan.objects.select_for_update().get(pk=scan.review_target_id)
        if expected_review_id is not ANY_REVIEW:
            _check_newest_review(scan, target, expected_review_id, state=state, comment=comment)
        review = ScanReview.objects.create(
            scan=target, state=state, comment=comment, reviewer=reviewer
        )
        study = scan.session.timepoint.study
        QCEvent.objects.create(
            kind=QCEventKind.SCAN_REVIEWED,
            actor=reviewer,
            study=study,
            session_id=scan.session_id,
            scan=scan,
            review=review,
            details={"state": state.value, "comment": comment, "reviewed_scan": target.name},
        )
    logger.info("scan %s marked %s by %s", target.name, state.value, reviewer)
    return review


def _check_newest_review(scan, target, expected_review_id, *, state, comment):
    # Runs under the row locks of the target scan and of the scan's session. Every review_scan
    # call takes the first and sign_off_session takes the second, so no review lands between
    # this check and the insert that follows it.
    # NOTE: a sign-off of a source scan's own session does not lock the source scan, so for a
    # linked scan a sign-off approval there may still land between the check and the insert.
    current = ScanReview.objects.newest_for(target.pk).select_related("reviewer").first()
    current_id = current.pk if current else None
    if current_id == expected_review_id:
        return
    if current is None:
        raise QCError(
            f"Review {expected_review_id} is not a review of {scan}, which has none yet; reload "
            f"the page and save again."
        )
    raise ReviewConflict(scan, current=current, state=state, comment=comment)


def new_scans(session):
    """Scans of the session whose current QC state is new, in series order."""
    scans = with_qc_state(Scan.objects.filter(session=session)).select_related("scantype")
    return [scan for scan in scans.order_by("series", "name") if scan.qc_state in (None, "new")]


def sign_off_session(session, *, reviewer, approve_scan_ids=()):
    """Sign off a session and return the SessionSignOff.

    Scans still new are approved as part of the sign-off, but only those the reviewer was shown
    (`approve_scan_ids`): a scan that became new after the confirmation was displayed stops the
    sign-off, so nothing is approved unseen.
    """
    approve_scan_ids = {int(pk) for pk in approve_scan_ids}
    with transaction.atomic():
        session = (
            Session.objects.select_for_update()
            .select_related("timepoint__study")
            .get(pk=session.pk)
        )
        existing = SessionSignOff.objects.filter(session=session).select_related("reviewer")
        existing = existing.first()
        if existing:
            raise QCError(
                f"Session {session} was already signed off by {existing.reviewer} on "
                f"{timezone.localtime(existing.created_at):%Y-%m-%d %H:%M %Z}."
            )

        pending = new_scans(session)
        unseen = [scan.name for scan in pending if scan.pk not in approve_scan_ids]
        if unseen:
            raise QCError(
                f"Session {session} has new scans that were not listed when you confirmed: "
                f"{', '.join(unseen)}. Review the list again and confirm."
            )

        sign_off = SessionSignOff.objects.create(session=session, reviewer=reviewer)
        study = session.timepoint.study
        approved = [scan.name for scan in pending]
        # One statement each for the reviews, their events and the scans' states, however
        # many scans the session has.
        reviews = ScanReview.objects.bulk_create(
            ScanReview(
                scan_id=scan.review_target_id,
                state=QCState.APPROVED,
                reviewer=reviewer,
                sign_off=sign_off,
            )
            for scan in pending
        )
        QCEvent.objects.bulk_create(
            QCEvent(
                kind=QCEventKind.SCAN_REVIEWED,
                actor=reviewer,
                study=study,
                session=session,
                scan=scan,
                review=review,
                sign_off=sign_off,
                details={"state": QCState.APPROVED.value, "comment": "", "via": "sign-off"},
            )
            for scan, review in zip(pending, reviews, strict=True)
        )
        # bulk_create sends no post_save, so apps that act on each new decision (XNAT
        # write-back) hear of these through one signal.
        signals.reviews_bulk_created.send(sender=ScanReview, reviews=reviews)
        if pending:
            # bulk_create skips ScanReview.save(), which copies the state to the scans.
            target_ids = [scan.review_target_id for scan in pending]
            Scan.all_objects.filter(Q(pk__in=target_ids) | Q(source_id__in=target_ids)).update(
                review_state=QCState.APPROVED
            )
        QCEvent.objects.create(
            kind=QCEventKind.SESSION_SIGNED_OFF,
            actor=reviewer,
            study=study,
            session=session,
            sign_off=sign_off,
            details={"approved_scans": approved},
        )
    logger.info(
        "session %s signed off by %s (%d new scans approved)", session, reviewer, len(approved)
    )
    return sign_off
