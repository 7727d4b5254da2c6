"""Scan.review_state, the stored copy of each scan's newest review state."""

import pytest

from qc.models import QCState, ScanReview, refresh_review_states
from qc.services import review_scan, sign_off_session
from studies.models import Scan
from tests.qc.factories import ScanReviewFactory
from tests.studies.factories import ScanFactory, SessionFactory

pytestmark = pytest.mark.django_db


def stored_state(scan):
    return Scan.all_objects.values_list("review_state", flat=True).get(pk=scan.pk)


def newest_state(scan):
    review = ScanReview.objects.newest_for(scan.review_target_id).first()
    return review.state if review else None


def test_unreviewed_scan_has_no_state():
    scan = ScanFactory()

    assert stored_state(scan) is None


def test_each_review_updates_state(reviewer, other_reviewer):
    scan = ScanFactory()

    review_scan(scan, reviewer=reviewer, state=QCState.FLAGGED, comment="motion")
    assert stored_state(scan) == QCState.FLAGGED

    review_scan(scan, reviewer=other_reviewer, state=QCState.APPROVED)
    assert stored_state(scan) == QCState.APPROVED

    review_scan(scan, reviewer=reviewer, state=QCState.NEW)
    assert stored_state(scan) == QCState.NEW


def test_review_of_link_updates_source_and_links(reviewer):
    source = ScanFactory()
    first_link = ScanFactory(source=source)
    second_link = ScanFactory(source=source)
    unrelated = ScanFactory()

    review_scan(first_link, reviewer=reviewer, state=QCState.BLACKLISTED, comment="artefact")

    assert stored_state(source) == QCState.BLACKLISTED
    assert stored_state(first_link) == QCState.BLACKLISTED
    assert stored_state(second_link) == QCState.BLACKLISTED
    assert stored_state(unrelated) is None


def test_new_link_starts_with_source_state(reviewer):
    source = ScanFactory()
    review_scan(source, reviewer=reviewer, state=QCState.FLAGGED, comment="ghosting")

    link = ScanFactory(source=source)

    assert stored_state(link) == QCState.FLAGGED


def test_sign_off_approves_stored_states(reviewer):
    session = SessionFactory()
    flagged = ScanFactory(session=session, series=2)
    new = ScanFactory(session=session, series=3)
    link_elsewhere = ScanFactory(source=new)
    review_scan(flagged, reviewer=reviewer, state=QCState.FLAGGED, comment="motion")

    sign_off_session(session, reviewer=reviewer, approve_scan_ids=[new.pk])

    assert stored_state(flagged) == QCState.FLAGGED
    assert stored_state(new) == QCState.APPROVED
    assert stored_state(link_elsewhere) == QCState.APPROVED


def test_refresh_recomputes_after_deletion(reviewer, other_reviewer):
    scan = ScanFactory()
    ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment="motion", reviewer=reviewer)
    newest = ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)
    assert stored_state(scan) == QCState.APPROVED

    newest.delete()
    updated = refresh_review_states(Scan.all_objects.filter(pk=scan.pk))

    assert updated == 1
    assert stored_state(scan) == QCState.FLAGGED == newest_state(scan)


def test_refresh_clears_state_without_reviews(reviewer):
    scan = ScanFactory()
    review = ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=reviewer)

    review.delete()
    refresh_review_states(Scan.all_objects.filter(pk=scan.pk))

    assert stored_state(scan) is None
