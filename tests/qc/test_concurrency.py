"""Two reviewers acting on one session at the same moment (PostgreSQL row locks)."""

import threading

import pytest
from django.db import connection

from qc.models import QCState, ScanReview, SessionSignOff, with_qc_state
from qc.services import QCError, ReviewConflict, review_scan, sign_off_session
from studies.models import Scan
from tests.studies.factories import ScanFactory, SessionFactory, UserFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def run_together(*actions):
    """Run the actions in threads that start at once and return the exceptions raised."""
    barrier = threading.Barrier(len(actions))
    errors = []

    def run(action):
        barrier.wait()
        try:
            action()
        except Exception as error:  # noqa: BLE001 - the test reports every failure
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


@pytest.mark.parametrize("attempt", range(5))
def test_review_and_sign_off_at_once(attempt):
    alice, bob = UserFactory(), UserFactory()
    session = SessionFactory()
    scans = [ScanFactory(session=session) for _ in range(3)]
    flagged = scans[1]

    errors = run_together(
        lambda: sign_off_session(
            session, reviewer=alice, approve_scan_ids=[scan.pk for scan in scans]
        ),
        lambda: review_scan(flagged, reviewer=bob, state=QCState.FLAGGED, comment="ghosting"),
    )

    assert [error for error in errors if not isinstance(error, QCError)] == []
    assert ScanReview.objects.filter(scan=flagged, state=QCState.FLAGGED).count() == 1
    assert SessionSignOff.objects.filter(session=session).count() == 1
    current = with_qc_state(Scan.objects.filter(pk=flagged.pk)).get().qc_state
    # Whichever came first, bob's flag is kept: either the sign-off saw it and left the scan
    # alone, or the flag came after the sign-off's approval and is the newest decision.
    assert current == QCState.FLAGGED


@pytest.mark.parametrize("attempt", range(5))
def test_two_reviews_from_one_page_state(attempt):
    alice, bob = UserFactory(), UserFactory()
    scan = ScanFactory()

    errors = run_together(
        lambda: review_scan(scan, reviewer=alice, state=QCState.APPROVED, expected_review_id=None),
        lambda: review_scan(
            scan, reviewer=bob, state=QCState.FLAGGED, comment="motion", expected_review_id=None
        ),
    )

    # Both saw a scan without reviews: the first save wins, the second is a conflict.
    assert len(errors) == 1
    assert isinstance(errors[0], ReviewConflict)
    assert ScanReview.objects.filter(scan=scan).count() == 1
