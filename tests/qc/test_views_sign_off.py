import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from qc.models import QCEvent, QCEventKind, QCState, ScanReview, SessionSignOff, with_qc_state
from studies.models import Scan
from tests.qc.scenarios import fill_session, make_study_site
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    SessionFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db


def sign_off_url(session_id):
    return reverse("qc:session_sign_off", args=[session_id])


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def states(scans):
    annotated = with_qc_state(Scan.objects.filter(pk__in=[scan.pk for scan in scans]))
    return {scan.name: scan.qc_state for scan in annotated}


@pytest.fixture
def session(reviewer):
    session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    session.filled_scans = fill_session(session, reviewer)
    return session


def test_confirmation_lists_new_scans(reviewer_client, session):
    new = session.filled_scans[2]
    response = reviewer_client.get(sign_off_url(session.name))

    assert response.status_code == 200
    assert [scan.name for scan in response.context["new_scans"]] == [new.name]
    assert f'<input type="hidden" name="approve_scan_ids" value="{new.pk}"' in response.text
    assert "1 scan is still new and will be <strong>approved</strong>" in response.text
    assert not SessionSignOff.objects.exists()


def test_sign_off_approves_listed_new_scans(reviewer_client, reviewer, session):
    t1, rst, dti = session.filled_scans
    response = reviewer_client.post(sign_off_url(session.name), {"approve_scan_ids": [dti.pk]})

    assert response.status_code == 302
    assert response.url == reverse("qc:timepoint_detail", args=[session.timepoint.name])
    sign_off = SessionSignOff.objects.get(session=session)
    assert sign_off.reviewer == reviewer
    assert states([t1, rst, dti]) == {
        t1.name: QCState.APPROVED,
        rst.name: QCState.FLAGGED,
        dti.name: QCState.APPROVED,
    }
    assert ScanReview.objects.get(scan=dti).sign_off == sign_off
    assert QCEvent.objects.filter(kind=QCEventKind.SESSION_SIGNED_OFF, session=session).exists()
    assert messages_of(response) == [f"Session {session.name} signed off; 1 new scan approved."]


def test_sign_off_twice_shows_message(reviewer_client, session):
    ids = {"approve_scan_ids": [session.filled_scans[2].pk]}
    reviewer_client.post(sign_off_url(session.name), ids)
    response = reviewer_client.post(sign_off_url(session.name), ids)

    assert response.status_code == 302
    assert response.url == sign_off_url(session.name)
    # The first sign-off's success message is still waiting to be shown as well.
    messages = messages_of(response)
    assert len(messages) == 2
    assert messages[1].startswith(f"Session {session.name} was already signed off by reviewer on ")
    assert SessionSignOff.objects.count() == 1


def test_confirmation_after_sign_off_shows_who(reviewer_client, session):
    reviewer_client.post(
        sign_off_url(session.name), {"approve_scan_ids": [session.filled_scans[2].pk]}
    )
    response = reviewer_client.get(sign_off_url(session.name))

    assert response.status_code == 200
    assert f"Session {session.name} was signed off by reviewer on" in response.text
    assert 'name="approve_scan_ids"' not in response.text


def test_sign_off_rejects_unlisted_new_scan(reviewer_client, session):
    listed = session.filled_scans[2]
    added_later = ScanFactory(session=session, series=20)
    response = reviewer_client.post(sign_off_url(session.name), {"approve_scan_ids": [listed.pk]})

    assert response.url == sign_off_url(session.name)
    messages = messages_of(response)
    assert len(messages) == 1
    assert added_later.name in messages[0]
    assert not SessionSignOff.objects.exists()


def test_sign_off_invalid_scan_id(reviewer_client, session):
    response = reviewer_client.post(sign_off_url(session.name), {"approve_scan_ids": ["12x"]})

    assert response.url == sign_off_url(session.name)
    assert messages_of(response) == [
        "Invalid scan id '12x' in the sign-off form; reload the confirmation page and confirm "
        "again."
    ]
    assert not SessionSignOff.objects.exists()


def test_repeat_session_after_sign_off_needs_review(reviewer_client, reviewer, session):
    reviewer_client.post(
        sign_off_url(session.name), {"approve_scan_ids": [session.filled_scans[2].pk]}
    )
    repeat = SessionFactory(timepoint=session.timepoint, number=2)
    fill_session(repeat, reviewer)

    overview = reviewer_client.get(reverse("qc:study_detail", args=["SPINS"]))
    sessions = {item.number: item for item in overview.context["page"].object_list[0].session_list}
    assert sessions[1].signed_off_by == "reviewer"
    assert sessions[1].needs_review is False
    assert sessions[2].signed_off_by is None
    assert sessions[2].needs_review is True
    study = reviewer_client.get(reverse("qc:study_list")).context["page"].object_list[0]
    assert study.needs_review_count == 1
    confirmation = reviewer_client.get(sign_off_url(repeat.name))
    assert confirmation.context["existing"] is None


def test_phantom_sign_off_by_phantom_id(reviewer_client):
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=make_study_site()))
    scan = ScanFactory(session=phantom)
    response = reviewer_client.post(sign_off_url(phantom.name), {"approve_scan_ids": [scan.pk]})

    assert response.status_code == 302
    assert SessionSignOff.objects.get().session == phantom


@pytest.mark.parametrize(
    "session_id",
    [
        "not-an-id",
        "SPN01_CMH_0001_01",  # a timepoint ID, not a session ID
        "SPN01_CMH_0001_01_AB",  # non-numeric session
        "SPN01_CMH_9999_01_01",  # well formed, but unknown
    ],
)
def test_sign_off_bad_session_id_404(reviewer_client, session_id):
    assert reviewer_client.get(sign_off_url(session_id)).status_code == 404
    assert reviewer_client.post(sign_off_url(session_id)).status_code == 404


def test_get_writes_nothing(reviewer_client, session):
    reviewer_client.get(sign_off_url(session.name))

    assert not SessionSignOff.objects.exists()
    assert ScanReview.objects.count() == 2
    assert not QCEvent.objects.exists()


@pytest.mark.parametrize("count", [1, 20])
def test_confirmation_query_count(reviewer_client, django_assert_num_queries, count, reviewer):
    session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    for series in range(count):
        ScanFactory(session=session, series=series + 2)

    # 1 session, 2 user, 3 datman session with timepoint, study and site, 4 existing sign-off,
    # 5 new scans with their tags.
    with django_assert_num_queries(5):
        response = reviewer_client.get(sign_off_url(session.name))

    assert len(response.context["new_scans"]) == count


@pytest.mark.parametrize("count", [1, 20])
def test_sign_off_query_count(reviewer_client, django_assert_num_queries, count):
    session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    scans = [ScanFactory(session=session, series=series + 2) for series in range(count)]

    # 1 session, 2 user, 3 datman session with timepoint, study and site, 4 savepoint, 5 lock
    # the session, 6 existing sign-off, 7 new scans, 8 insert the sign-off, 9 insert the
    # reviews, 10 insert their events, 11 update the scans' states, 12 insert the sign-off
    # event, 13 release the savepoint, 14 count the approved scans for the message.
    with django_assert_num_queries(14):
        response = reviewer_client.post(
            sign_off_url(session.name), {"approve_scan_ids": [scan.pk for scan in scans]}
        )

    assert response.status_code == 302
    assert states(scans) == {scan.name: QCState.APPROVED for scan in scans}
    assert QCEvent.objects.filter(kind=QCEventKind.SCAN_REVIEWED).count() == count
