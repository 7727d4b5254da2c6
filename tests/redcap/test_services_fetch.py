"""The fetch task against the REDCap stand-in: reading, matching, history, failures, retries."""

import logging
from datetime import date

import pytest
from django.urls import reverse
from django_q.models import Schedule

from redcap import tasks
from redcap.models import (
    LinkKind,
    RedcapRecord,
    RedcapRecordVersion,
    SessionSurvey,
    TriggerStatus,
)
from studies.signals import sessions_imported
from tests.redcap.conftest import SESSION_ID, survey_row
from tests.redcap.factories import TOKEN, RedcapConfigFactory, RedcapTriggerFactory
from tests.studies.factories import SessionFactory, StudySiteFactory, TimepointFactory

pytestmark = pytest.mark.django_db


def fetch(config, record_id="12", event_name=""):
    """Run the fetch task of a new trigger, as the worker would; return the trigger."""
    trigger = RedcapTriggerFactory(config=config, record_id=record_id, event_name=event_name)
    tasks.fetch_trigger(trigger.pk)
    trigger.refresh_from_db()
    return trigger


def test_fetch_links_session(redcap, session):
    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.DONE
    assert trigger.attempts == 1
    record = RedcapRecord.objects.get()
    assert trigger.redcap_record == record
    assert record.record_id == "12"
    assert record.session_id_text == SESSION_ID
    assert record.completed_on == date(2024, 3, 1)
    assert record.comment == "Participant moved during the resting state scan."
    link = SessionSurvey.objects.get()
    assert link.session == session
    assert link.kind == LinkKind.MATCHED


def test_fetch_request_fields(redcap, session):
    fetch(redcap.config)

    request = redcap.fake.record_requests()[0]
    assert request.form["token"] == [TOKEN]
    assert request.form["format"] == ["json"]
    assert request.form["type"] == ["flat"]
    assert request.form["returnFormat"] == ["json"]
    assert request.values("records") == ["12"]
    assert request.values("events") == []
    assert request.values("fields") == [
        "record_id",
        "par_id",
        "date",
        "cmts",
        "tigrlab_scan_completed_complete",
    ]


def test_fetch_lower_case_id_with_spaces(redcap, session):
    redcap.fake.set_rows(TOKEN, [survey_row(session_id="  spn01_cmh_0001_01_01 \t")])

    fetch(redcap.config)

    record = RedcapRecord.objects.get()
    assert record.session_id_text == "spn01_cmh_0001_01_01"
    assert record.session_name == SESSION_ID
    assert SessionSurvey.objects.get().session == session


def test_fetch_date_with_time(redcap, session):
    redcap.fake.set_rows(TOKEN, [survey_row(date="2024-03-01 14:20")])

    fetch(redcap.config)

    assert RedcapRecord.objects.get().completed_on == date(2024, 3, 1)


def test_fetch_date_with_seconds(redcap, session):
    redcap.fake.set_rows(TOKEN, [survey_row(date="2024-03-01 14:20:05")])

    fetch(redcap.config)

    assert RedcapRecord.objects.get().completed_on == date(2024, 3, 1)


def test_fetch_long_comment(redcap, session):
    comment = ("The participant asked to stop twice. " * 140)[:5000] + "END"
    redcap.fake.set_rows(TOKEN, [survey_row(cmts=comment)])

    fetch(redcap.config)

    stored = RedcapRecord.objects.get().comment
    assert len(stored) == 5003
    assert stored.endswith("END")


def test_fetch_user_field(redcap, session):
    redcap.config.user_field = "ra_name"
    redcap.config.save()
    redcap.fake.set_rows(TOKEN, [survey_row(ra_name="Jane Doe")])

    fetch(redcap.config)

    assert RedcapRecord.objects.get().entered_by == "Jane Doe"


def test_fetch_nul_characters_removed(redcap, session):
    redcap.fake.set_rows(TOKEN, [survey_row(cmts="before\x00after")])

    fetch(redcap.config)

    assert RedcapRecord.objects.get().comment == "beforeafter"


def test_fetch_incomplete_survey_skipped(redcap, session):
    redcap.fake.set_rows(TOKEN, [survey_row(tigrlab_scan_completed_complete="0")])

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.SKIPPED
    assert "not complete" in trigger.last_error
    assert RedcapRecord.objects.count() == 0


def test_fetch_complete_values_list(redcap, session):
    redcap.config.complete_values = ["1", "2"]
    redcap.config.save()
    redcap.fake.set_rows(TOKEN, [survey_row(tigrlab_scan_completed_complete="1")])

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.DONE


# Longitudinal projects


def longitudinal(redcap):
    rows = [
        survey_row(redcap_event_name="baseline_arm_1"),
        survey_row(redcap_event_name="followup_arm_1", session_id="SPN01_CMH_0001_02_01"),
    ]
    redcap.fake.add_project(TOKEN, rows, events=["baseline_arm_1", "followup_arm_1"])


def test_fetch_longitudinal_with_event_mapping(redcap, session):
    longitudinal(redcap)
    redcap.config.event_ids = {"baseline_arm_1": 41, "followup_arm_1": 42}
    redcap.config.save()

    trigger = fetch(redcap.config, event_name="baseline_arm_1")

    assert trigger.status == TriggerStatus.DONE
    record = RedcapRecord.objects.get()
    assert record.event_name == "baseline_arm_1"
    assert record.event_id == 41
    assert SessionSurvey.objects.get().session == session
    assert redcap.fake.record_requests()[0].values("events") == ["baseline_arm_1"]


def test_fetch_longitudinal_without_event_mapping(redcap, session):
    longitudinal(redcap)
    redcap.config.event_ids = {"followup_arm_1": 42}
    redcap.config.save()

    trigger = fetch(redcap.config, event_name="baseline_arm_1")

    assert trigger.status == TriggerStatus.FAILED
    assert "Event 'baseline_arm_1' has no event ID" in trigger.last_error
    assert "mapped events: followup_arm_1" in trigger.last_error
    assert "RedcapEventId" in trigger.last_error
    assert RedcapRecord.objects.count() == 0
    assert redcap.fake.requests == []


def test_fetch_longitudinal_no_mapping_at_all(redcap, session):
    longitudinal(redcap)

    trigger = fetch(redcap.config, event_name="baseline_arm_1")

    assert trigger.status == TriggerStatus.FAILED
    assert "mapped events: none" in trigger.last_error


# Matching


def test_fetch_session_imported_later(redcap, study_site):
    trigger = fetch(redcap.config)

    record = RedcapRecord.objects.get()
    assert trigger.status == TriggerStatus.DONE
    assert record.session_name == SESSION_ID
    assert "does not exist yet" in record.match_error
    assert list(RedcapRecord.objects.unmatched()) == [record]

    # The next day the archive import creates the session and announces it.
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    session = SessionFactory(timepoint=timepoint, number=1)
    sessions_imported.send(sender=None, study=study_site.study, created=[session], updated=[])

    record.refresh_from_db()
    assert SessionSurvey.objects.get().session == session
    assert record.match_error == ""
    assert list(RedcapRecord.objects.unmatched()) == []


def test_import_signal_ignores_other_sessions(redcap, study_site):
    fetch(redcap.config)
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0002_01")
    other = SessionFactory(timepoint=timepoint, number=1)

    sessions_imported.send(sender=None, study=study_site.study, created=[other], updated=[])

    assert SessionSurvey.objects.count() == 0


def test_fetch_invalid_session_id_unmatched(redcap, session):
    redcap.fake.set_rows(TOKEN, [survey_row(session_id="SPN01_CMH_0001_01")])

    trigger = fetch(redcap.config)

    record = RedcapRecord.objects.get()
    assert trigger.status == TriggerStatus.DONE
    assert record.session_name == ""
    assert "is a timepoint ID" in record.match_error
    assert "SPN01_CMH_0001_01_01" in record.match_error
    assert SessionSurvey.objects.count() == 0


def test_fetch_session_at_other_site_unmatched(redcap, session):
    other_site = StudySiteFactory(code="OTH01")
    redcap.config.study_sites.set([other_site])

    fetch(redcap.config)

    record = RedcapRecord.objects.get()
    assert "is not a study site of" in record.match_error
    assert SessionSurvey.objects.count() == 0


def test_fetch_session_with_other_record_unmatched(redcap, session):
    fetch(redcap.config)
    rows = [survey_row(), survey_row(record_id="13")]
    redcap.fake.set_rows(TOKEN, rows)

    fetch(redcap.config, record_id="13")

    second = RedcapRecord.objects.get(record_id="13")
    assert "already has record 12" in second.match_error
    assert SessionSurvey.objects.get().record.record_id == "12"


# Saving again


def test_fetch_again_unchanged(redcap, session):
    fetch(redcap.config)
    fetched_at = RedcapRecord.objects.get().fetched_at

    fetch(redcap.config)

    assert RedcapRecord.objects.count() == 1
    assert RedcapRecord.objects.get().fetched_at == fetched_at
    assert RedcapRecordVersion.objects.count() == 0


def test_fetch_again_changed_keeps_history(redcap, session):
    fetch(redcap.config)
    redcap.fake.set_rows(TOKEN, [survey_row(cmts="Corrected comment.")])

    fetch(redcap.config)

    record = RedcapRecord.objects.get()
    assert record.comment == "Corrected comment."
    version = RedcapRecordVersion.objects.get()
    assert version.record == record
    assert version.comment == "Participant moved during the resting state scan."
    assert SessionSurvey.objects.get().session == session


def test_fetch_again_new_session_id_relinks(redcap, session, study_site):
    fetch(redcap.config)
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0002_01")
    corrected = SessionFactory(timepoint=timepoint, number=1)
    redcap.fake.set_rows(TOKEN, [survey_row(session_id="SPN01_CMH_0002_01_01")])

    fetch(redcap.config)

    assert SessionSurvey.objects.get().session == corrected
    assert RedcapRecordVersion.objects.get().session_id_text == SESSION_ID


# REDCap failures


def test_fetch_record_not_found(redcap, session):
    trigger = fetch(redcap.config, record_id="99")

    assert trigger.status == TriggerStatus.FAILED
    assert "REDCap has no record 99" in trigger.last_error


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (survey_row(date="03/01/2024"), "Field 'date' of record 12 is '03/01/2024', which is not"),
        (survey_row(date="2024-02-30"), "which is not a date"),
        ({"record_id": "12", "date": "", "tigrlab_scan_completed_complete": "2"}, "'par_id'"),
        (survey_row(par_id="X" * 300), "is 300 characters long"),
    ],
    ids=["date format", "impossible date", "missing field", "long session ID"],
)
def test_fetch_odd_record(redcap, session, row, message):
    redcap.fake.set_rows(TOKEN, [row])
    redcap.fake.projects[TOKEN].fields = ["par_id", "cmts"]

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.FAILED
    assert message in trigger.last_error
    assert RedcapRecord.objects.count() == 0


def test_fetch_two_rows_for_record(redcap, session):
    rows = [survey_row(redcap_repeat_instance="1"), survey_row(redcap_repeat_instance="2")]
    redcap.fake.set_rows(TOKEN, rows)

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.FAILED
    assert "returned 2 rows for record 12" in trigger.last_error


def test_fetch_wrong_record_key(redcap, session):
    redcap.config.record_key_field = "study_id"
    redcap.config.save()
    redcap.fake.projects[TOKEN].fields = ["study_id"]

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.FAILED
    assert "no field 'study_id'" in trigger.last_error


def test_fetch_unknown_field(redcap, session):
    redcap.config.comment_field = "comments"
    redcap.config.save()

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.FAILED
    assert "HTTP 400" in trigger.last_error
    assert "comments" in trigger.last_error


def test_fetch_not_json(redcap, session):
    redcap.fake.respond_with("<html>Login</html>", "text/html")

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.FAILED
    assert "not JSON" in trigger.last_error
    assert "<html>Login</html>" in trigger.last_error


def test_fetch_rejected_token(redcap, session, caplog):
    redcap.config.token = "F" * 32
    redcap.config.save()

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.FAILED
    assert "HTTP 403" in trigger.last_error
    assert "API token" in trigger.last_error
    assert "F" * 32 not in trigger.last_error
    assert "F" * 32 not in caplog.text


def test_fetch_without_token(redcap, session):
    redcap.config.token = ""
    redcap.config.save()

    trigger = fetch(redcap.config)

    assert trigger.status == TriggerStatus.FAILED
    assert "has no API token" in trigger.last_error
    assert redcap.fake.requests == []


def test_fetch_down_then_back(
    redcap, session, ra_client, sync_tasks, django_capture_on_commit_callbacks
):
    redcap.fake.fail_with(500)
    trigger = RedcapTriggerFactory(config=redcap.config, record_id="12")

    with django_capture_on_commit_callbacks(execute=True):
        tasks.fetch_trigger(trigger.pk)
    trigger.refresh_from_db()
    assert trigger.status == TriggerStatus.RETRYING
    assert trigger.attempts == 1
    assert "HTTP 500" in trigger.last_error
    retry = Schedule.objects.get()
    assert retry.func == "redcap.tasks.fetch_trigger"
    assert retry.args == f"({trigger.pk},)"
    assert retry.schedule_type == Schedule.ONCE
    first_delay = (retry.next_run - trigger.received_at).total_seconds()
    assert 59 <= first_delay <= 70

    # The scheduler runs the retries; the third attempt is the last (REDCAP_MAX_ATTEMPTS).
    with django_capture_on_commit_callbacks(execute=True):
        tasks.fetch_trigger(trigger.pk)
        tasks.fetch_trigger(trigger.pk)
    trigger.refresh_from_db()
    assert trigger.status == TriggerStatus.FAILED
    assert trigger.attempts == 3
    assert "Gave up after 3 attempts" in trigger.last_error
    assert Schedule.objects.count() == 2
    delays = sorted(
        (schedule.next_run - trigger.received_at).total_seconds()
        for schedule in Schedule.objects.all()
    )
    assert 119 <= delays[1] <= 130

    # REDCap is back; a person presses "Retry" on the failed list.
    redcap.fake.recover()
    with django_capture_on_commit_callbacks(execute=True):
        response = ra_client.post(reverse("redcap:retry_trigger", args=[trigger.pk]))
    assert response.status_code == 302
    trigger.refresh_from_db()
    assert trigger.status == TriggerStatus.DONE
    assert trigger.last_error == ""
    assert SessionSurvey.objects.get().session == session


def test_fetch_timeout_retried(redcap, session, django_capture_on_commit_callbacks):
    redcap.fake.respond_slowly(1.5)
    trigger = RedcapTriggerFactory(config=redcap.config, record_id="12")

    with django_capture_on_commit_callbacks(execute=True):
        summary = tasks.fetch_trigger(trigger.pk)

    trigger.refresh_from_db()
    assert trigger.status == TriggerStatus.RETRYING
    assert "timed out after 0.5 seconds" in trigger.last_error
    assert "retrying in 60 s" in summary


def test_fetch_refused_connection_retried(redcap, session, django_capture_on_commit_callbacks):
    redcap.config.api_url = "http://127.0.0.1:9/api/"
    redcap.config.save()
    trigger = RedcapTriggerFactory(config=redcap.config, record_id="12")

    with django_capture_on_commit_callbacks(execute=True):
        tasks.fetch_trigger(trigger.pk)

    trigger.refresh_from_db()
    assert trigger.status == TriggerStatus.RETRYING
    assert "cannot be reached" in trigger.last_error


def test_fetch_done_trigger_not_fetched_again(redcap, session):
    trigger = fetch(redcap.config)
    requests = len(redcap.fake.requests)

    summary = tasks.fetch_trigger(trigger.pk)

    assert "already done" in summary
    assert len(redcap.fake.requests) == requests


def test_fetch_token_never_logged(redcap, session, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    fetch(redcap.config)
    redcap.fake.fail_with(503)
    with django_capture_on_commit_callbacks(execute=True):
        fetch(redcap.config, record_id="12")
    redcap.fake.recover()
    redcap.fake.set_rows(TOKEN, [])
    fetch(redcap.config, record_id="12")

    assert caplog.records
    assert TOKEN not in caplog.text


def test_fetch_learns_redcap_version(redcap, session):
    redcap.config.redcap_version = ""
    redcap.config.save()

    fetch(redcap.config)

    redcap.config.refresh_from_db()
    assert redcap.config.redcap_version == "14.5.2"


def test_other_config_same_record_id(redcap, session, study_site):
    redcap.fake.add_project("A" * 32, [survey_row(session_id="SPN01_CMH_0003_01_01")])
    other = RedcapConfigFactory(
        url=redcap.fake.url,
        api_url=redcap.fake.api_url,
        token="A" * 32,
        instrument="other_survey",
        study_sites=[study_site],
    )

    fetch(redcap.config)
    fetch(other)

    assert RedcapRecord.objects.filter(record_id="12").count() == 2
