from datetime import timedelta

import pytest
from django.utils import timezone

from qc import history, notes_services
from qc.compliance import HeaderDiffStatus
from qc.models import (
    DeviationDecision,
    DeviationResolution,
    HeaderDiff,
    MissingScanDismissal,
    QCState,
    ScanReview,
    SessionSignOff,
)
from tests.qc.factories import ScanReviewFactory
from tests.studies.factories import ScanFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

START = timezone.now() - timedelta(days=1)


def at_minute(model, pk, minute):
    """Move a row's creation time, so the order of events does not depend on test speed."""
    model.objects.filter(pk=pk).update(created_at=START + timedelta(minutes=minute))


@pytest.fixture
def world():
    """A session with two scans, and a second session of the same timepoint with one."""
    session = SessionFactory()
    other_session = SessionFactory(timepoint=session.timepoint, number=2)
    return {
        "session": session,
        "scan": ScanFactory(session=session, series=2),
        "sibling": ScanFactory(session=session, series=3),
        "other": ScanFactory(session=other_session, series=2),
        "reviewer": UserFactory(username="rev", first_name="Rita", last_name="Voss"),
        "plain": UserFactory(username="plainuser"),
    }


def every_kind(world):
    """One event of each kind on `scan` or its session, one minute apart, oldest first."""
    scan, session, reviewer = world["scan"], world["session"], world["reviewer"]
    review = ScanReviewFactory(
        scan=scan, state=QCState.FLAGGED, comment="motion", reviewer=reviewer
    )
    at_minute(ScanReview, review.pk, 1)
    header_diff = HeaderDiff.objects.create(
        scan=scan,
        status=HeaderDiffStatus.MISMATCH,
        fingerprint="f",
        computed_at=timezone.now(),
    )
    resolution = DeviationResolution.objects.create(
        header_diff=header_diff,
        field="EchoTime",
        decision=DeviationDecision.ACCEPTED,
        reason="Rounding.",
        reviewer=reviewer,
    )
    at_minute(DeviationResolution, resolution.pk, 2)
    dismissal = MissingScanDismissal.objects.create(
        session=session, reason="Stopped early.", reviewer=reviewer
    )
    at_minute(MissingScanDismissal, dismissal.pk, 3)
    sign_off = SessionSignOff.objects.create(session=session, reviewer=world["plain"])
    at_minute(SessionSignOff, sign_off.pk, 4)
    comment = notes_services.add_comment(
        timepoint=session.timepoint, author=world["plain"], text="Arrived late."
    )
    revision = notes_services.edit_comment(
        comment=comment, editor=world["plain"], text="Arrived 20 minutes late."
    )
    first_revision = comment.revisions.order_by("id").first()
    type(first_revision).objects.filter(pk=first_revision.pk).update(
        created_at=START + timedelta(minutes=5)
    )
    type(revision).objects.filter(pk=revision.pk).update(created_at=START + timedelta(minutes=6))
    return comment


def kinds(events):
    return [event.kind for event in events]


def test_timepoint_history_every_kind_newest_first(world):
    every_kind(world)

    events = history.history_events(history.timepoint_history(world["session"].timepoint))

    assert kinds(events) == [
        "comment_edited",
        "comment_added",
        "sign_off",
        "dismissal",
        "deviation",
        "review",
    ]


def test_history_event_fields(world):
    every_kind(world)

    events = {
        event.kind: event
        for event in history.history_events(
            history.timepoint_history(world["scan"].session.timepoint)
        )
    }

    review = events["review"]
    assert review.actor_name == "Rita Voss"
    assert review.subject == world["scan"].name
    assert review.label == "marked flagged"
    assert review.text == "motion"
    assert review.at == START + timedelta(minutes=1)
    assert events["deviation"].label == "accepted: EchoTime"
    assert events["deviation"].text == "Rounding."
    assert events["dismissal"].number == 1
    assert events["dismissal"].text == "Stopped early."
    assert events["sign_off"].actor_name == "plainuser"
    assert events["comment_added"].text == "Arrived late."
    assert events["comment_edited"].text == "Arrived 20 minutes late."


def test_history_hides_deleted_comment_text(world):
    comment = every_kind(world)
    notes_services.delete_comment(comment=comment, user=world["plain"])

    events = history.history_events(history.timepoint_history(world["session"].timepoint))

    assert events[0].kind == "comment_deleted"
    assert events[0].actor_name == "plainuser"
    comment_events = [event for event in events if event.kind.startswith("comment_")]
    assert len(comment_events) == 3
    assert all(event.comment_deleted for event in comment_events)
    assert all(event.text == "" for event in comment_events)


def test_scan_history_limited_to_scan(world):
    every_kind(world)
    ScanReviewFactory(scan=world["sibling"], reviewer=world["reviewer"])
    ScanReviewFactory(scan=world["other"], reviewer=world["reviewer"])
    SessionSignOff.objects.create(session=world["other"].session, reviewer=world["reviewer"])

    scan_events = history.history_events(history.scan_history(world["scan"]))
    timepoint_events = history.history_events(history.timepoint_history(world["session"].timepoint))

    assert sorted(kinds(scan_events)) == sorted(
        ["comment_edited", "comment_added", "sign_off", "dismissal", "deviation", "review"]
    )
    assert len(timepoint_events) == len(scan_events) + 3


def test_linked_scan_shows_source_reviews(world):
    source = world["other"]
    linked = ScanFactory(session=SessionFactory(), source=source, series=4)
    ScanReviewFactory(scan=source, state=QCState.BLACKLISTED, comment="artefact")

    scan_events = history.history_events(history.scan_history(linked))
    timepoint_events = history.history_events(history.timepoint_history(linked.session.timepoint))

    assert kinds(scan_events) == ["review"]
    assert scan_events[0].subject == source.name
    assert kinds(timepoint_events) == ["review"]


def test_history_preview_bounded(world, django_assert_num_queries):
    for index in range(history.HISTORY_PREVIEW_LENGTH + 1):
        review = ScanReviewFactory(scan=world["scan"], reviewer=world["reviewer"])
        at_minute(ScanReview, review.pk, index)

    with django_assert_num_queries(1):
        preview = history.history_preview(history.scan_history(world["scan"]))

    assert len(preview.events) == history.HISTORY_PREVIEW_LENGTH
    assert preview.has_more is True
    assert preview.events[0].at == START + timedelta(minutes=history.HISTORY_PREVIEW_LENGTH)


def test_history_preview_short(world):
    ScanReviewFactory(scan=world["scan"], reviewer=world["reviewer"])

    preview = history.history_preview(history.scan_history(world["scan"]))

    assert len(preview.events) == 1
    assert preview.has_more is False


def test_history_empty(world):
    preview = history.history_preview(history.timepoint_history(world["session"].timepoint))

    assert preview.events == []
    assert preview.has_more is False


def test_compiled_previews_match_orm(world, django_assert_num_queries):
    every_kind(world)
    ScanReviewFactory(scan=world["other"], reviewer=world["reviewer"])
    linked = ScanFactory(session=SessionFactory(), source=world["other"], series=4)
    ScanReviewFactory(scan=ScanFactory(session=linked.session, series=5), reviewer=world["plain"])
    timepoints = [world["session"].timepoint, linked.session.timepoint]
    scans = [world["scan"], world["sibling"], world["other"], linked]

    # The first preview of each kind compiles its SQL, and later ones reuse it with their ids.
    for timepoint in timepoints:
        with django_assert_num_queries(1):
            preview = history.timepoint_history_preview(timepoint)
        assert preview.events
        assert preview == history.history_preview(history.timepoint_history(timepoint))
    for scan in scans:
        with django_assert_num_queries(1):
            preview = history.scan_history_preview(scan)
        assert preview.events
        assert preview == history.history_preview(history.scan_history(scan))


def test_compiled_preview_bounded(world):
    for index in range(history.HISTORY_PREVIEW_LENGTH + 1):
        review = ScanReviewFactory(scan=world["scan"], reviewer=world["reviewer"])
        at_minute(ScanReview, review.pk, index)

    preview = history.scan_history_preview(world["scan"])
    short = history.scan_history_preview(world["scan"], length=3)

    assert len(preview.events) == history.HISTORY_PREVIEW_LENGTH
    assert preview.has_more is True
    assert preview.events[0].at == START + timedelta(minutes=history.HISTORY_PREVIEW_LENGTH)
    assert [event.event_id for event in short.events] == [
        event.event_id for event in preview.events[:3]
    ]
