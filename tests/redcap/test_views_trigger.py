"""The Data Entry Trigger endpoint: what it accepts, what it rejects, and what it queues."""

import logging
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from redcap.models import RedcapConfig, RedcapRecord, RedcapTrigger, TriggerStatus
from redcap.views import MAX_TRIGGER_BODY
from tests.redcap.conftest import SESSION_ID

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


def trigger_fields(config, **overrides):
    """The fields REDCap posts when a record of `config`'s instrument is saved."""
    fields = {
        "redcap_url": config.url,
        "project_url": f"{config.url}redcap_v14.5.2/index.php?pid={config.project_id}",
        "project_id": str(config.project_id),
        "username": "ra_jane",
        "record": "12",
        "instrument": config.instrument,
        f"{config.instrument}_complete": "2",
    }
    fields.update(overrides)
    return {name: value for name, value in fields.items() if value is not None}


def post_trigger(client, config, body=None, content_type=FORM, secret=None, **overrides):
    url = reverse("redcap:trigger", args=[secret or config.trigger_secret])
    if body is None:
        body = urlencode(trigger_fields(config, **overrides))
    return client.post(url, data=body, content_type=content_type)


def test_trigger_stores_and_fetches(
    client, redcap, session, sync_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_trigger(client, redcap.config)

    assert response.status_code == 200
    assert len(callbacks) == 1
    trigger = RedcapTrigger.objects.get()
    assert trigger.record_id == "12"
    assert trigger.status == TriggerStatus.DONE
    record = RedcapRecord.objects.get()
    assert record.session_links.get().session == session


def test_trigger_responds_before_fetching(client, redcap, django_capture_on_commit_callbacks):
    # Without a worker the fetch stays queued: the request itself never calls REDCap.
    with django_capture_on_commit_callbacks(execute=True):
        response = post_trigger(client, redcap.config)

    assert response.status_code == 200
    assert RedcapTrigger.objects.get().status == TriggerStatus.QUEUED
    assert redcap.fake.requests == []


def test_trigger_needs_no_csrf_token(redcap):
    client = Client(enforce_csrf_checks=True)

    response = post_trigger(client, redcap.config)

    assert response.status_code == 200


def test_trigger_unknown_secret(client, redcap, caplog):
    response = post_trigger(client, redcap.config, secret="x" * 43)

    assert response.status_code == 404
    assert RedcapTrigger.objects.count() == 0
    assert redcap.fake.requests == []


def test_trigger_get_not_allowed(client, redcap):
    response = client.get(reverse("redcap:trigger", args=[redcap.config.trigger_secret]))

    assert response.status_code == 405


def test_trigger_body_too_large(client, redcap):
    body = urlencode(trigger_fields(redcap.config, padding="x" * MAX_TRIGGER_BODY))

    response = post_trigger(client, redcap.config, body=body)

    assert response.status_code == 413
    assert RedcapTrigger.objects.count() == 0


def test_trigger_untracked_instrument_counted(client, redcap, caplog):
    caplog.set_level(logging.INFO)

    first = post_trigger(client, redcap.config, instrument="demographics", record="7")
    second = post_trigger(client, redcap.config, instrument="demographics", record=None)

    assert first.status_code == 200
    assert second.status_code == 200
    config = RedcapConfig.objects.get()
    assert config.untracked_trigger_count == 2
    assert config.last_untracked_instrument == "demographics"
    assert RedcapTrigger.objects.count() == 0
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


def test_trigger_longitudinal_event_stored(client, redcap):
    response = post_trigger(client, redcap.config, redcap_event_name="baseline_arm_1")

    assert response.status_code == 200
    assert RedcapTrigger.objects.get().event_name == "baseline_arm_1"


def test_trigger_record_id_stripped(client, redcap):
    response = post_trigger(client, redcap.config, record=" 12 ")

    assert response.status_code == 200
    assert RedcapTrigger.objects.get().record_id == "12"


HOSTILE_BODIES = [
    ("missing record", {"record": None}, "record is missing"),
    ("empty record", {"record": "  "}, "record is missing"),
    ("long record", {"record": "9" * 5000}, "record is longer than 100 characters"),
    ("record with newline", {"record": "12\nSPN01"}, "record contains control characters"),
    ("missing project", {"project_id": None}, "project_id is missing"),
    ("text project", {"project_id": "12; DROP TABLE"}, "project_id is not a number"),
    ("other project", {"project_id": "999999"}, "project_id does not match this trigger URL"),
    ("missing instrument", {"instrument": None}, "instrument is missing"),
    ("odd instrument", {"instrument": "<script>"}, "instrument is not a REDCap instrument name"),
    ("odd event", {"redcap_event_name": "../etc"}, "redcap_event_name is not a REDCap event"),
    ("NUL in a field", {"username": "ra\x00jane"}, "the body contains a NUL character"),
    ("NUL in the record", {"record": "12\x00"}, "the body contains a NUL character"),
]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [case[1:] for case in HOSTILE_BODIES],
    ids=[case[0] for case in HOSTILE_BODIES],
)
def test_trigger_rejects_bad_fields(client, redcap, caplog, overrides, reason):
    response = post_trigger(client, redcap.config, **overrides)

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert RedcapTrigger.objects.count() == 0
    assert redcap.fake.requests == []
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert reason in warnings[0].getMessage()
    assert redcap.config.trigger_secret not in caplog.text
    for value in overrides.values():
        if value and value.strip():
            assert value not in caplog.text


RAW_BODIES = [
    ("invalid UTF-8 escape", b"project_id=1&record=%FF%FE&instrument=x", FORM, "not valid UTF-8"),
    ("invalid UTF-8 bytes", b"project_id=1&record=\xff\xfe&instrument=x", FORM, "not valid UTF-8"),
    ("JSON body", b'{"record": "12"}', "application/json", "x-www-form-urlencoded"),
    ("too many fields", b"&".join([b"a=1"] * 60), FORM, "more than 50 fields"),
    ("repeated record", b"record=1&record=2", FORM, "record is given more than once"),
    ("empty body", b"", FORM, "project_id is missing"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [case[1:] for case in RAW_BODIES],
    ids=[case[0] for case in RAW_BODIES],
)
def test_trigger_rejects_bad_bodies(client, redcap, caplog, body, content_type, reason):
    response = post_trigger(client, redcap.config, body=body, content_type=content_type)

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert RedcapTrigger.objects.count() == 0
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert redcap.config.trigger_secret not in caplog.text


def test_trigger_response_is_short_text(client, redcap):
    response = post_trigger(client, redcap.config, record=None)

    assert response["Content-Type"].startswith("text/plain")
    assert len(response.content) < 100
    assert SESSION_ID not in response.content.decode()
