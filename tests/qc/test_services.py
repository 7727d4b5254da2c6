from datetime import UTC, datetime

import pytest

from qc.models import QCEvent, QCEventKind, QCState, ScanReview, SessionSignOff, with_qc_state
from qc.services import QCError, review_scan, sign_off_session
from studies.models import Scan
from tests.studies.factories import ScanFactory, SessionFactory

pytestmark = pytest.mark.django_db


def current_state(scan):
    return with_qc_state(Scan.objects.filter(pk=scan.pk)).get().qc_state


def test_review_appends_and_newest_wins(reviewer, other_reviewer):
    scan = ScanFactory()
    review_scan(scan, reviewer=reviewer, state=QCState.FLAGGED, comment="motion")
    review_scan(scan, reviewer=other_reviewer, state=QCState.APPROVED)

    assert ScanReview.objects.filter(scan=scan).count() == 2
    assert current_state(scan) == QCState.APPROVED
    assert QCEvent.objects.filter(kind=QCEventKind.SCAN_REVIEWED, scan=scan).count() == 2


@pytest.mark.parametrize("state", [QCState.FLAGGED, QCState.BLACKLISTED])
def test_review_requires_comment(reviewer, state):
    scan = ScanFactory()
    with pytest.raises(QCError, match="comment is required"):
        review_scan(scan, reviewer=reviewer, state=state, comment="   ")
    assert not ScanReview.objects.exists()


def test_review_rejects_nul_and_huge_comment(reviewer):
    scan = ScanFactory()
    with pytest.raises(QCError, match="NUL"):
        review_scan(scan, reviewer=reviewer, state=QCState.FLAGGED, comment="bad\x00")
    with pytest.raises(QCError, match="at most 5000"):
        review_scan(scan, reviewer=reviewer, state=QCState.FLAGGED, comment="x" * 5001)
    assert not ScanReview.objects.exists()


def test_linked_scan_shares_source_reviews(reviewer):
    source = ScanFactory()
    linked = ScanFactory(source=source)
    review_scan(linked, reviewer=reviewer, state=QCState.BLACKLISTED, comment="artefact")

    assert ScanReview.objects.get().scan == source
    assert current_state(source) == QCState.BLACKLISTED
    assert current_state(linked) == QCState.BLACKLISTED


def test_sign_off_approves_listed_new_scans(reviewer):
    session = SessionFactory()
    flagged = ScanFactory(session=session)
    new = ScanFactory(session=session)
    review_scan(flagged, reviewer=reviewer, state=QCState.FLAGGED, comment="ghosting")

    sign_off = sign_off_session(session, reviewer=reviewer, approve_scan_ids=[new.pk])

    assert current_state(flagged) == QCState.FLAGGED
    assert current_state(new) == QCState.APPROVED
    assert ScanReview.objects.get(scan=new).sign_off == sign_off
    event = QCEvent.objects.get(kind=QCEventKind.SESSION_SIGNED_OFF)
    assert event.details["approved_scans"] == [new.name]


def test_sign_off_refuses_unlisted_new_scan(reviewer):
    session = SessionFactory()
    listed = ScanFactory(session=session)
    unlisted = ScanFactory(session=session)

    with pytest.raises(QCError, match=unlisted.name):
        sign_off_session(session, reviewer=reviewer, approve_scan_ids=[listed.pk])
    assert not SessionSignOff.objects.exists()
    assert not ScanReview.objects.exists()


def test_sign_off_twice_is_refused(reviewer, other_reviewer):
    session = SessionFactory()
    sign_off_session(session, reviewer=reviewer)
    with pytest.raises(QCError, match="already signed off by reviewer"):
        sign_off_session(session, reviewer=other_reviewer)
    assert SessionSignOff.objects.count() == 1


def test_repeat_session_leaves_first_sign_off(reviewer):
    first = SessionFactory()
    sign_off_session(first, reviewer=reviewer)
    repeat = SessionFactory(timepoint=first.timepoint, number=2)
    ScanFactory(session=repeat)

    assert SessionSignOff.objects.filter(session=first).exists()
    assert not SessionSignOff.objects.filter(session=repeat).exists()


def test_sign_off_twice_message_shows_zone(reviewer, other_reviewer, settings):
    settings.TIME_ZONE = "America/Toronto"
    session = SessionFactory()
    sign_off_session(session, reviewer=reviewer)
    SessionSignOff.objects.update(created_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC))

    with pytest.raises(QCError) as raised:
        sign_off_session(session, reviewer=other_reviewer)

    assert str(raised.value).endswith("already signed off by reviewer on 2026-01-15 12:30 EST.")
