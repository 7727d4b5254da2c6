"""The review loop: stale-page conflicts, "save and next", scan navigation and next session."""

import datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import Role, StudyMembership
from qc.models import QCState, ScanReview
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    SiteFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def review_url(scan):
    return reverse("qc:scan_review", args=[scan.name])


def scan_url(scan_or_name):
    return reverse("qc:scan_detail", args=[getattr(scan_or_name, "name", scan_or_name)])


def timepoint_url(timepoint):
    return reverse("qc:timepoint_detail", args=[timepoint.name])


NEXT_SESSION_URL = reverse("qc:next_session")


def hidden_review_id(scan_pk=None, value=""):
    # Django leaves the value attribute out when the page showed no review.
    prefix = f"scan{scan_pk}_" if scan_pk else "id_"
    value_attribute = f' value="{value}"' if value != "" else ""
    return (
        f'<input type="hidden" name="expected_review_id"{value_attribute} '
        f'id="{prefix}expected_review_id">'
    )


def make_timepoint(sessions=2, scans=2, **session_fields):
    """A timepoint with `sessions` sessions of `scans` new scans each; return its sessions'
    scans as a list of lists in page order."""
    timepoint = TimepointFactory(study_site=make_study_site())
    result = []
    for number in range(1, sessions + 1):
        session = SessionFactory(timepoint=timepoint, number=number, **session_fields)
        result.append(
            [
                ScanFactory(session=session, scantype=ScantypeFactory(tag=tag), series=series)
                for series, tag in enumerate(("T1", "RST", "DTI60-1000")[:scans], start=2)
            ]
        )
    return result


# --- The id of the newest review in the forms ------------------------------------------------


def test_scan_page_form_carries_newest_review(reviewer_client, other_reviewer):
    scan = ScanFactory()
    ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)
    newest = ScanReviewFactory(
        scan=scan, state=QCState.FLAGGED, comment="x", reviewer=other_reviewer
    )

    response = reviewer_client.get(scan_url(scan))

    assert hidden_review_id(value=newest.pk) in response.text


def test_scan_page_form_empty_without_reviews(reviewer_client):
    scan = ScanFactory()

    response = reviewer_client.get(scan_url(scan))

    assert hidden_review_id(value="") in response.text


def test_timepoint_rows_carry_newest_review(reviewer_client, other_reviewer):
    (reviewed, new), _ = make_timepoint()
    review = ScanReviewFactory(scan=reviewed, state=QCState.APPROVED, reviewer=other_reviewer)

    response = reviewer_client.get(timepoint_url(reviewed.session.timepoint))

    assert hidden_review_id(reviewed.pk, review.pk) in response.text
    assert hidden_review_id(new.pk, "") in response.text


# --- Conflicts ----------------------------------------------------------------------------


def test_stale_scan_page_shows_both_decisions(reviewer_client, other_reviewer):
    scan = ScanFactory()
    theirs = ScanReviewFactory(
        scan=scan, state=QCState.BLACKLISTED, comment="wrong subject", reviewer=other_reviewer
    )

    response = reviewer_client.post(
        review_url(scan),
        {"state": "flagged", "comment": "ghosting in slab", "expected_review_id": ""},
    )

    assert response.status_code == 200
    assert ScanReview.objects.get() == theirs
    text = response.text
    assert 'data-status="review-conflict"' in text
    assert "Not saved: someone reviewed this scan after the page was loaded." in text
    assert f'<span data-field="reviewer">{other_reviewer.display_name}</span>' in text
    assert "wrong subject" in text
    assert theirs.created_at.strftime("%Y-%m-%d %H:%M") in text
    assert 'data-decision="yours"' in text
    assert 'data-state="flagged"' in text
    # What the reviewer typed is kept, and the form now expects the review that won.
    assert ">\nghosting in slab</textarea>" in text
    assert hidden_review_id(value=theirs.pk) in text
    assert 'name="state" value="flagged"' in text
    assert "Save flagged anyway" in text


def test_save_anyway_records_on_top(reviewer_client, reviewer, other_reviewer):
    scan = ScanFactory()
    theirs = ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)

    response = reviewer_client.post(
        review_url(scan),
        {"state": "flagged", "comment": "ghosting", "expected_review_id": str(theirs.pk)},
    )

    assert response.status_code == 302
    newest = ScanReview.objects.newest_for(scan.pk).first()
    assert newest.state == QCState.FLAGGED
    assert newest.reviewer == reviewer
    assert ScanReview.objects.count() == 2


def test_stale_row_returns_conflict_row(reviewer_client, other_reviewer):
    scan = ScanFactory()
    shown = ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)
    theirs = ScanReviewFactory(
        scan=scan, state=QCState.FLAGGED, comment="motion", reviewer=other_reviewer
    )

    response = reviewer_client.post(
        review_url(scan),
        {"state": "blacklisted", "comment": "no signal", "expected_review_id": str(shown.pk)},
        **HTMX,
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith("<tbody")
    assert 'data-status="review-conflict"' in response.text
    assert "Save blacklisted anyway" in response.text
    assert ">\nno signal</textarea>" in response.text
    assert hidden_review_id(scan.pk, theirs.pk) in response.text
    # The row itself shows the decision that won.
    assert ScanReview.objects.count() == 2
    assert response.text.count('data-state="flagged"') == 2


@pytest.mark.parametrize("value", ["abc", "0", "-3"])
def test_invalid_review_id_rejected(reviewer_client, value):
    scan = ScanFactory()

    response = reviewer_client.post(
        review_url(scan), {"state": "approved", "comment": "kept", "expected_review_id": value}
    )

    assert response.status_code == 200
    assert "The form carries an invalid review id; reload the page and save again." in (
        response.text
    )
    assert ">\nkept</textarea>" in response.text
    assert not ScanReview.objects.exists()


# --- Save and next ------------------------------------------------------------------------


def test_save_and_next_opens_next_scan(reviewer_client):
    (first, second), _ = make_timepoint()

    response = reviewer_client.post(
        review_url(first), {"state": "approved", "save_and_next": "on", "expected_review_id": ""}
    )

    assert response.status_code == 302
    assert response.url == scan_url(second)
    assert ScanReview.objects.get().scan == first


def test_save_and_next_crosses_sessions(reviewer_client):
    (_, last_of_first), (first_of_second, _) = make_timepoint()

    response = reviewer_client.post(
        review_url(last_of_first), {"state": "approved", "save_and_next": "on"}
    )

    assert response.url == scan_url(first_of_second)


def test_save_and_next_ends_at_timepoint(reviewer_client):
    _, (_, last) = make_timepoint()

    response = reviewer_client.post(review_url(last), {"state": "approved", "save_and_next": "on"})

    assert response.url == timepoint_url(last.session.timepoint)
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == [f"{last.name} marked approved."]


def test_save_and_next_box_ticked_on_page(reviewer_client):
    scan = ScanFactory()

    response = reviewer_client.get(scan_url(scan))

    assert 'name="save_and_next"' in response.text
    assert response.context["form"]["save_and_next"].value() is True


def test_scan_page_links_neighbours(reviewer_client):
    (first, second), (third, _) = make_timepoint()

    response = reviewer_client.get(scan_url(second))

    assert response.context["neighbours"].previous == first.name
    assert response.context["neighbours"].next == third.name
    assert f'href="{scan_url(first)}" rel="prev" data-shortcut="previous-scan"' in response.text
    assert f'href="{scan_url(third)}" rel="next" data-shortcut="next-scan"' in response.text


def test_first_scan_has_no_previous(reviewer_client):
    (first, _), _ = make_timepoint()

    response = reviewer_client.get(scan_url(first))

    assert response.context["neighbours"].previous is None
    assert 'data-shortcut="previous-scan"' not in response.text


# --- Next session to review ---------------------------------------------------------------


def test_next_session_is_oldest_waiting(reviewer_client):
    study_site = make_study_site()
    older = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2024, 1, 5)
    )
    SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2024, 3, 1)
    )

    response = reviewer_client.get(NEXT_SESSION_URL)

    assert response.status_code == 302
    assert response.url == f"{timepoint_url(older.timepoint)}#session-1"


def test_next_session_skips_finished_sessions(reviewer_client, reviewer):
    study_site = make_study_site()
    done = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2024, 1, 1)
    )
    ScanReviewFactory(scan=ScanFactory(session=done), state=QCState.APPROVED, reviewer=reviewer)
    SessionSignOffFactory(session=done, reviewer=reviewer)
    # A phantom needs no sign-off, so with every scan reviewed it waits for nothing.
    phantom = SessionFactory(
        timepoint=PhantomTimepointFactory(study_site=study_site),
        acquired_on=datetime.date(2024, 1, 2),
    )
    ScanReviewFactory(scan=ScanFactory(session=phantom), state=QCState.APPROVED, reviewer=reviewer)
    waiting = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2024, 2, 1)
    )

    response = reviewer_client.get(NEXT_SESSION_URL)

    assert response.url == f"{timepoint_url(waiting.timepoint)}#session-1"


def test_next_session_signed_off_with_new_scan(reviewer_client, reviewer):
    study_site = make_study_site()
    signed_off = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2024, 1, 1)
    )
    SessionSignOffFactory(session=signed_off, reviewer=reviewer)
    ScanFactory(session=signed_off)
    SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2024, 2, 1)
    )

    response = reviewer_client.get(NEXT_SESSION_URL)

    assert response.url == f"{timepoint_url(signed_off.timepoint)}#session-1"


def test_next_session_undated_come_last(reviewer_client):
    study_site = make_study_site()
    SessionFactory(timepoint=TimepointFactory(study_site=study_site), acquired_on=None)
    dated = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2025, 1, 1)
    )

    response = reviewer_client.get(NEXT_SESSION_URL)

    assert response.url == f"{timepoint_url(dated.timepoint)}#session-1"


def test_next_session_repeat_session_anchor(reviewer_client, reviewer):
    study_site = make_study_site()
    timepoint = TimepointFactory(study_site=study_site)
    first = SessionFactory(timepoint=timepoint, number=1, acquired_on=datetime.date(2024, 1, 1))
    SessionSignOffFactory(session=first, reviewer=reviewer)
    SessionFactory(timepoint=timepoint, number=2, acquired_on=datetime.date(2024, 1, 8))

    response = reviewer_client.get(NEXT_SESSION_URL)

    assert response.url == f"{timepoint_url(timepoint)}#session-2"


def test_next_session_only_where_user_reviews(client):
    study_site = make_study_site()
    other_site = StudySiteFactory(
        study=study_site.study, site=SiteFactory(name="MRC"), code=study_site.code
    )
    viewed_study_site = make_study_site(nickname="ASCEND", code="ASC01")
    user = UserFactory()
    StudyMembership.objects.create(
        user=user, study=study_site.study, site=study_site.site, role=Role.QC_REVIEWER
    )
    StudyMembership.objects.create(user=user, study=viewed_study_site.study, role=Role.VIEWER)
    # Older sessions at a site the user is not a member of and in a study they only view.
    SessionFactory(
        timepoint=TimepointFactory(study_site=other_site), acquired_on=datetime.date(2023, 1, 1)
    )
    SessionFactory(
        timepoint=TimepointFactory(study_site=viewed_study_site),
        acquired_on=datetime.date(2023, 1, 1),
    )
    own = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=datetime.date(2024, 1, 1)
    )
    client.force_login(user)

    response = client.get(NEXT_SESSION_URL)

    assert response.url == f"{timepoint_url(own.timepoint)}#session-1"


def test_next_session_none_left(client):
    user = UserFactory()
    study_site = make_study_site()
    StudyMembership.objects.create(user=user, study=study_site.study, role=Role.QC_REVIEWER)
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    SessionSignOffFactory(session=session, reviewer=user)
    client.force_login(user)

    response = client.get(NEXT_SESSION_URL)

    assert response.status_code == 302
    assert response.url == reverse("qc:study_list")
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == ["No session waits for review in the studies you review."]


@pytest.mark.parametrize("count", [1, 20])
def test_next_session_query_count(client, django_assert_num_queries, count):
    study_site = make_study_site()
    user = UserFactory()
    StudyMembership.objects.create(
        user=user, study=study_site.study, site=study_site.site, role=Role.QC_REVIEWER
    )
    for index in range(count):
        session = SessionFactory(
            timepoint=TimepointFactory(study_site=study_site),
            acquired_on=datetime.date(2024, 1, 1) + datetime.timedelta(days=index),
        )
        ScanFactory(session=session)
    client.force_login(user)

    # 1 session, 2 user, 3 the oldest waiting session with its timepoint.
    with django_assert_num_queries(3):
        response = client.get(NEXT_SESSION_URL)

    assert response.status_code == 302


# --- Query counts -------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_checked_review_query_count(reviewer_client, django_assert_num_queries, htmx):
    scan = ScanFactory()
    headers = HTMX if htmx else {}

    # 1 session, 2 user, 3 scan with QC state, session, timepoint and study, 4 savepoint,
    # 5 lock the session, 6 lock the reviewed scan, 7 newest review with its reviewer,
    # 8 insert review, 9 copy its state to the scan, 10 insert audit event, 11 release
    # savepoint. htmx then fetches the row again (12).
    expected = 12 if htmx else 11
    with django_assert_num_queries(expected):
        response = reviewer_client.post(
            review_url(scan), {"state": "approved", "expected_review_id": ""}, **headers
        )

    assert response.status_code == (200 if htmx else 302)


def test_conflict_query_count(reviewer_client, other_reviewer, django_assert_num_queries):
    scan = ScanFactory()
    ScanReviewFactory(scan=scan, state=QCState.APPROVED, reviewer=other_reviewer)

    # 1 session, 2 user, 3 scan with QC state, session, timepoint and study, 4 savepoint,
    # 5 lock the session, 6 lock the reviewed scan, 7 newest review with its reviewer,
    # 8 roll back to and 9 release the savepoint. The row shows the scan fetched in 3.
    with django_assert_num_queries(9):
        response = reviewer_client.post(
            review_url(scan), {"state": "approved", "expected_review_id": ""}, **HTMX
        )

    assert 'data-status="review-conflict"' in response.text
