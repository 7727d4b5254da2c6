"""The unmatched-record and failed-fetch pages and their POST actions."""

import pytest
from django.urls import reverse

from redcap.models import LinkKind, SessionSurvey, TriggerStatus
from tests.redcap.factories import (
    RedcapConfigFactory,
    RedcapRecordFactory,
    RedcapTriggerFactory,
    SessionSurveyFactory,
)
from tests.studies.factories import SessionFactory, TimepointFactory

pytestmark = pytest.mark.django_db

UNMATCHED_URL = reverse("redcap:unmatched_records")
FAILED_URL = reverse("redcap:failed_triggers")


def failed_trigger(config, **values):
    values.setdefault("status", TriggerStatus.FAILED)
    values.setdefault("attempts", 3)
    values.setdefault("last_error", "REDCap at http://127.0.0.1:9/api/ returned HTTP 500.")
    return RedcapTriggerFactory(config=config, **values)


# Unmatched records


def test_unmatched_lists_only_unmatched(ra_client, config):
    unmatched = RedcapRecordFactory(
        config=config,
        session_id_text="spn01_cmh_0404_01_01",
        match_error="Session does not exist yet.",
    )
    SessionSurveyFactory(record=RedcapRecordFactory(config=config))
    RedcapRecordFactory()  # of a configuration no site of the RA's uses

    response = ra_client.get(UNMATCHED_URL)

    assert response.status_code == 200
    assert list(response.context["page"].object_list) == [unmatched]
    assert "spn01_cmh_0404_01_01" in response.text
    assert "Session does not exist yet." in response.text


def test_unmatched_empty(ra_client):
    response = ra_client.get(UNMATCHED_URL)

    assert "No unmatched records." in response.text


@pytest.mark.parametrize("count", [1, 20])
def test_unmatched_query_count(ra_client, config, django_assert_num_queries, count):
    RedcapRecordFactory.create_batch(count, config=config)

    # 1 session, 2 user with memberships, 3 paginator count, 4 records with their
    # configuration.
    with django_assert_num_queries(4):
        response = ra_client.get(UNMATCHED_URL)

    assert len(response.context["page"].object_list) == count


def test_link_record_by_hand(ra_client, ra, session, config):
    record = RedcapRecordFactory(config=config, session_id_text="SPN01-CMH-0001")

    response = ra_client.post(
        reverse("redcap:link_record", args=[record.pk]), {"session_id": " spn01_cmh_0001_01_01 "}
    )

    assert response.status_code == 302
    assert response.url == UNMATCHED_URL
    link = SessionSurvey.objects.get()
    assert link.session == session
    assert link.record == record
    assert link.kind == LinkKind.MANUAL
    assert link.linked_by == ra


@pytest.mark.parametrize(
    ("session_id", "message"),
    [
        ("SPN01_CMH_0001_01", "is a timepoint ID"),
        ("SPN01_CMH_0404_01_01", "Session SPN01_CMH_0404_01_01 not found"),
        ("", "Enter the session ID"),
    ],
)
def test_link_record_bad_session(ra_client, session, config, session_id, message):
    record = RedcapRecordFactory(config=config)

    response = ra_client.post(
        reverse("redcap:link_record", args=[record.pk]), {"session_id": session_id}, follow=True
    )

    assert message in response.text
    assert SessionSurvey.objects.count() == 0


def test_link_record_session_taken(ra_client, session, config):
    SessionSurveyFactory(session=session)
    record = RedcapRecordFactory(config=config)

    response = ra_client.post(
        reverse("redcap:link_record", args=[record.pk]),
        {"session_id": "SPN01_CMH_0001_01_01"},
        follow=True,
    )

    assert "already has record" in response.text
    assert SessionSurvey.objects.filter(record=record).count() == 0


def test_link_unknown_record(ra_client):
    response = ra_client.post(
        reverse("redcap:link_record", args=[999]), {"session_id": "SPN01_CMH_0001_01_01"}
    )

    assert response.status_code == 404


# Failed fetches


def test_failed_lists_only_failed(ra_client, config):
    failed = failed_trigger(config)
    RedcapTriggerFactory(config=config, status=TriggerStatus.DONE)
    RedcapTriggerFactory(config=config, status=TriggerStatus.RETRYING)
    failed_trigger(RedcapConfigFactory())  # of a configuration no site of the RA's uses

    response = ra_client.get(FAILED_URL)

    assert list(response.context["page"].object_list) == [failed]
    assert "returned HTTP 500" in response.text
    assert reverse("redcap:retry_trigger", args=[failed.pk]) in response.text


@pytest.mark.parametrize("count", [1, 20])
def test_failed_query_count(ra_client, config, django_assert_num_queries, count):
    for _ in range(count):
        failed_trigger(config)

    # 1 session, 2 user with memberships, 3 paginator count, 4 triggers with their
    # configuration.
    with django_assert_num_queries(4):
        response = ra_client.get(FAILED_URL)

    assert len(response.context["page"].object_list) == count


def test_retry_queues_again(ra_client, config, django_capture_on_commit_callbacks):
    trigger = failed_trigger(config)

    with django_capture_on_commit_callbacks() as callbacks:
        response = ra_client.post(reverse("redcap:retry_trigger", args=[trigger.pk]))

    assert response.status_code == 302
    assert response.url == FAILED_URL
    assert len(callbacks) == 1
    trigger.refresh_from_db()
    assert trigger.status == TriggerStatus.QUEUED
    assert trigger.attempts == 0


def test_retry_only_failed(ra_client, config):
    trigger = RedcapTriggerFactory(config=config, status=TriggerStatus.DONE)

    response = ra_client.post(reverse("redcap:retry_trigger", args=[trigger.pk]), follow=True)

    assert "only failed fetches can be retried" in response.text
    trigger.refresh_from_db()
    assert trigger.status == TriggerStatus.DONE


def test_unmatched_page_links_to_redcap(ra_client, config):
    record = RedcapRecordFactory(config=config, record_id="12")
    record.config.url = "https://redcap.example.org/"
    record.config.project_id = 1234
    record.config.save()

    response = ra_client.get(UNMATCHED_URL)

    assert (
        'href="https://redcap.example.org/redcap_v14.5.2/DataEntry/record_home.php?pid=1234&amp;id=12"'
        in response.text
    )


def test_session_delete_keeps_shared_record(session):
    record = RedcapRecordFactory()
    SessionSurveyFactory(session=session, record=record)
    other = SessionFactory(timepoint=TimepointFactory(study_site=session.timepoint.study_site))
    SessionSurveyFactory(session=other, record=record, kind=LinkKind.SHARED)

    other.delete()

    assert SessionSurvey.objects.get().session == session
    assert SessionSurvey.objects.get().record == record
