"""Twenty identical triggers at once store one record: the database constraint decides."""

import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from redcap.models import RedcapRecord, RedcapTrigger, SessionSurvey, TriggerStatus
from tests.redcap.factories import RedcapRecordFactory

TRIGGERS = 20


def trigger_body(config):
    return urlencode(
        {
            "project_id": str(config.project_id),
            "record": "12",
            "instrument": config.instrument,
            f"{config.instrument}_complete": "2",
        }
    ).encode()


@pytest.mark.django_db(transaction=True)
def test_twenty_triggers_one_record(live_server, redcap, session, sync_tasks, settings):
    """On PostgreSQL the POSTs run in parallel threads; SQLite serialises its writers anyway."""
    # The production timeout: twenty fetches at once on a busy machine can take longer than the
    # half second that the failure tests use, and a timeout would queue a retry.
    settings.REDCAP_TIMEOUT = 10.0
    url = live_server.url + reverse("redcap:trigger", args=[redcap.config.trigger_secret])
    body = trigger_body(redcap.config)
    start = threading.Barrier(TRIGGERS if connection.vendor == "postgresql" else 1)

    def post(_):
        if start.parties > 1:
            start.wait(timeout=10)
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    workers = TRIGGERS if connection.vendor == "postgresql" else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        statuses = list(pool.map(post, range(TRIGGERS)))

    assert statuses == [200] * TRIGGERS
    assert RedcapTrigger.objects.count() == TRIGGERS
    assert set(RedcapTrigger.objects.values_list("status", flat=True)) == {TriggerStatus.DONE}
    assert RedcapRecord.objects.count() == 1
    assert SessionSurvey.objects.get().session == session
    assert len(redcap.fake.record_requests()) == TRIGGERS


@pytest.mark.django_db
def test_record_uniqueness_is_a_constraint():
    record = RedcapRecordFactory(record_id="12", event_name="")

    with pytest.raises(IntegrityError), transaction.atomic():
        RedcapRecordFactory(config=record.config, record_id="12", event_name="")
