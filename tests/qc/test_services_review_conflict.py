"""review_scan's stale-page check: `expected_review_id` against the scan's newest review."""

from datetime import UTC, datetime

import pytest

from qc.models import QCEvent, QCState, ScanReview
from qc.services import QCError, ReviewConflict, review_scan
from tests.qc.factories import ScanReviewFactory
from tests.studies.factories import ScanFactory

pytestmark = pytest.mark.django_db


def test_first_review_expects_none(reviewer):
    scan = ScanFactory()

    review = review_scan(scan, reviewer=reviewer, state=QCState.APPROVED, expected_review_id=None)

    assert review.state == QCState.APPROVED
    assert ScanReview.objects.get() == review


def test_review_on_top_of_shown_review(reviewer, other_reviewer):
    scan = ScanFactory()
    shown = ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)

    review = review_scan(
        scan,
        reviewer=reviewer,
        state=QCState.FLAGGED,
        comment="motion",
        expected_review_id=shown.pk,
    )

    assert ScanReview.objects.newest_for(scan.pk).first() == review
    assert ScanReview.objects.count() == 2


def test_newer_review_raises_conflict(reviewer, other_reviewer):
    scan = ScanFactory()
    shown = ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=reviewer)
    newer = ScanReviewFactory(
        scan=scan, state=QCState.BLACKLISTED, comment="wrong subject", reviewer=other_reviewer
    )

    with pytest.raises(ReviewConflict) as caught:
        review_scan(
            scan,
            reviewer=reviewer,
            state=QCState.FLAGGED,
            comment="ghosting",
            expected_review_id=shown.pk,
        )

    conflict = caught.value
    assert conflict.current == newer
    assert conflict.state == QCState.FLAGGED
    assert conflict.comment == "ghosting"
    assert f"marked blacklisted by {other_reviewer.display_name}" in str(conflict)
    assert "your decision (flagged) was not saved" in str(conflict)
    assert ScanReview.objects.count() == 2
    assert not QCEvent.objects.exists()


def test_review_after_page_without_reviews_conflicts(reviewer, other_reviewer):
    scan = ScanFactory()
    ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)

    with pytest.raises(ReviewConflict):
        review_scan(scan, reviewer=reviewer, state=QCState.APPROVED, expected_review_id=None)

    assert ScanReview.objects.count() == 1


def test_conflict_is_a_qc_error(reviewer, other_reviewer):
    scan = ScanFactory()
    ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)

    with pytest.raises(QCError):
        review_scan(scan, reviewer=reviewer, state=QCState.APPROVED, expected_review_id=None)


def test_unknown_review_id_without_reviews(reviewer):
    scan = ScanFactory()

    with pytest.raises(QCError, match=rf"Review 999 is not a review of {scan.name}"):
        review_scan(scan, reviewer=reviewer, state=QCState.APPROVED, expected_review_id=999)

    assert not ScanReview.objects.exists()


def test_without_expected_id_no_check(reviewer, other_reviewer):
    scan = ScanFactory()
    ScanReviewFactory(scan=scan, state=QCState.BLACKLISTED, comment="x", reviewer=other_reviewer)

    review_scan(scan, reviewer=reviewer, state=QCState.APPROVED)

    assert ScanReview.objects.newest_for(scan.pk).first().state == QCState.APPROVED


def test_linked_scan_checks_source_reviews(reviewer, other_reviewer):
    source = ScanFactory()
    linked = ScanFactory(source=source)
    shown = ScanReviewFactory(scan=source, state=QCState.APPROVED, reviewer=other_reviewer)

    review = review_scan(
        linked,
        reviewer=reviewer,
        state=QCState.FLAGGED,
        comment="motion",
        expected_review_id=shown.pk,
    )

    assert review.scan == source
    with pytest.raises(ReviewConflict):
        review_scan(linked, reviewer=reviewer, state=QCState.APPROVED, expected_review_id=shown.pk)


def test_conflict_message_shows_zone(reviewer, other_reviewer, settings):
    settings.TIME_ZONE = "America/Toronto"
    scan = ScanFactory()
    newer = ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)
    ScanReview.objects.filter(pk=newer.pk).update(
        created_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
    )

    with pytest.raises(ReviewConflict) as caught:
        review_scan(
            scan,
            reviewer=reviewer,
            state=QCState.FLAGGED,
            comment="motion",
            expected_review_id=None,
        )

    assert f"by {other_reviewer.display_name} at 2026-01-15 12:30 EST after" in str(caught.value)
