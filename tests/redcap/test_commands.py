"""`manage.py sync_redcap` and `manage.py share_redcap_record`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError

from redcap.models import LinkKind, RedcapConfig, RedcapRecord, RedcapRecordVersion, SessionSurvey
from redcap.schedules import SCHEDULES
from redcap.tasks import sync_all_configs
from tests.redcap.conftest import SESSION_ID, survey_row
from tests.redcap.factories import TOKEN, RedcapConfigFactory, SessionSurveyFactory
from tests.studies.factories import ScanFactory, SessionFactory, StudyFactory, TimepointFactory

pytestmark = pytest.mark.django_db


def run(command, *args):
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def summary_line(output):
    return output.strip().splitlines()[-1]


# sync_redcap


def test_sync_catches_lost_trigger(redcap, session):
    # Record 12 was saved in REDCap, but its trigger never arrived.
    output, _ = run("sync_redcap")

    record = RedcapRecord.objects.get()
    assert SessionSurvey.objects.get().record == record
    assert summary_line(output) == (
        "REDCap sync of 1 configurations: 1 records fetched: 1 created, 0 changed, "
        "0 unchanged, 0 not complete, 1 linked, 0 unmatched, 0 errors"
    )


def test_sync_second_run_changes_nothing(redcap, session):
    redcap.fake.set_rows(
        TOKEN,
        [
            survey_row(),
            survey_row(record_id="13", session_id="SPN01_CMH_0009_01_01"),
            survey_row(record_id="14", tigrlab_scan_completed_complete="0"),
        ],
    )
    run("sync_redcap")
    records = list(RedcapRecord.objects.values())

    output, _ = run("sync_redcap")

    assert summary_line(output) == (
        "REDCap sync of 1 configurations: 3 records fetched: 0 created, 0 changed, "
        "2 unchanged, 1 not complete, 0 linked, 1 unmatched, 0 errors"
    )
    assert list(RedcapRecord.objects.values()) == records
    assert RedcapRecordVersion.objects.count() == 0
    assert SessionSurvey.objects.count() == 1


def test_sync_reports_changes(redcap, session):
    run("sync_redcap")
    redcap.fake.set_rows(TOKEN, [survey_row(cmts="Changed in REDCap.")])

    output, _ = run("sync_redcap")

    assert "1 changed" in summary_line(output)
    assert RedcapRecord.objects.get().comment == "Changed in REDCap."
    assert RedcapRecordVersion.objects.count() == 1


def test_sync_links_session_imported_since(redcap, study_site):
    run("sync_redcap")
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    SessionFactory(timepoint=timepoint, number=1)

    output, _ = run("sync_redcap")

    assert "1 linked, 0 unmatched" in summary_line(output)
    assert SessionSurvey.objects.count() == 1


def test_sync_line_per_config(redcap, session):
    output, _ = run("sync_redcap")

    assert output.splitlines()[0].startswith(f"{redcap.config}: 1 records fetched")


def test_sync_dry_run(redcap, session):
    output, _ = run("sync_redcap", "--dry-run")

    assert "1 created" in summary_line(output)
    assert "dry run" in summary_line(output)
    assert RedcapRecord.objects.count() == 0


def test_sync_study_filter(redcap, session):
    other = RedcapConfigFactory(url=redcap.fake.url, api_url=redcap.fake.api_url)
    StudyFactory(nickname="OTHER")

    output, _ = run("sync_redcap", "spins")

    assert summary_line(output).startswith("REDCap sync of 1 configurations")
    assert not RedcapRecord.objects.filter(config=other).exists()


def test_sync_study_without_config(redcap):
    StudyFactory(nickname="OTHER")

    output, _ = run("sync_redcap", "OTHER")

    assert output.strip() == (
        "No REDCap configuration for the sites of OTHER; add one in the admin or with sync_config."
    )


def test_sync_unknown_study(redcap):
    with pytest.raises(CommandError) as error:
        run("sync_redcap", "NOPE")

    assert str(error.value) == "Study 'NOPE' not found; known studies: SPINS."


def test_sync_redcap_down(redcap, session):
    redcap.fake.fail_with(503, "Service Unavailable")

    with pytest.raises(CommandError) as error:
        run("sync_redcap")

    assert "1 of 1 configurations had errors" in str(error.value)
    config = RedcapConfig.objects.get()
    assert "HTTP 503" in config.last_sync_summary
    assert config.last_synced_at is not None


def test_sync_errors_listed(redcap, session):
    redcap.fake.set_rows(TOKEN, [survey_row(), survey_row(record_id="13", date="yesterday")])

    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("sync_redcap", stdout=out, stderr=err)
    output, errors = out.getvalue(), err.getvalue()

    assert "1 created" in summary_line(output)
    assert "1 errors" in summary_line(output)
    assert "Field 'date' of record 13 is 'yesterday'" in errors


def test_sync_task_summary(redcap, session):
    summary = sync_all_configs()

    assert summary.startswith("REDCap sync of 1 configurations: 1 records fetched")


def test_schedule_definition():
    (daily,) = SCHEDULES

    assert daily["func"] == "redcap.tasks.sync_all_configs"
    assert daily["name"] == "redcap-daily-sync"
    assert daily["schedule_type"] == "D"


# share_redcap_record


@pytest.fixture
def shared_pair(session, study_site):
    link = SessionSurveyFactory(session=session)
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0099_01")
    target = SessionFactory(timepoint=timepoint, number=1)
    return link, target


def test_share_record(shared_pair):
    link, target = shared_pair

    output, _ = run("share_redcap_record", SESSION_ID, "spn01_cmh_0099_01_01")

    shared = SessionSurvey.objects.get(session=target)
    assert shared.record == link.record
    assert shared.kind == LinkKind.SHARED
    assert "now also describes SPN01_CMH_0099_01_01" in output


def test_share_record_twice_no_change(shared_pair):
    run("share_redcap_record", SESSION_ID, "SPN01_CMH_0099_01_01")

    output, _ = run("share_redcap_record", SESSION_ID, "SPN01_CMH_0099_01_01")

    assert "already shares" in output
    assert SessionSurvey.objects.count() == 2


def test_share_record_delete_one_session(shared_pair):
    link, target = shared_pair
    run("share_redcap_record", SESSION_ID, "SPN01_CMH_0099_01_01")

    target.delete()

    assert RedcapRecord.objects.filter(pk=link.record_id).exists()
    assert SessionSurvey.objects.get().session == link.session


def test_record_in_use_cannot_be_deleted(shared_pair):
    link, _ = shared_pair

    with pytest.raises(ProtectedError):
        link.record.delete()


def test_session_with_scans_keeps_survey(shared_pair):
    # Sessions with scans are protected, so their survey link stays too.
    link, _ = shared_pair
    ScanFactory(session=link.session)

    with pytest.raises(ProtectedError):
        link.session.delete()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("SPN01_CMH_0099_01_01", SESSION_ID), "Session SPN01_CMH_0099_01_01 has no REDCap survey"),
        ((SESSION_ID, "SPN01_CMH_0050_01_01"), "TARGET_SESSION: session SPN01_CMH_0050_01_01 not"),
        ((SESSION_ID, "SPN01_CMH_0099_01"), "TARGET_SESSION: 'SPN01_CMH_0099_01' is a timepoint"),
        ((SESSION_ID, SESSION_ID.lower()), "are the same session"),
    ],
    ids=["source without survey", "unknown target", "timepoint ID", "same session"],
)
def test_share_record_bad_input(shared_pair, args, message):
    with pytest.raises(CommandError) as error:
        run("share_redcap_record", *args)

    assert message in str(error.value)


def test_share_record_target_has_other(shared_pair):
    _, target = shared_pair
    other = SessionSurveyFactory(session=target)

    with pytest.raises(CommandError) as error:
        run("share_redcap_record", SESSION_ID, "SPN01_CMH_0099_01_01")

    assert f"already has {other.record}" in str(error.value)


def test_sync_longitudinal_other_events_not_complete(redcap, session):
    rows = [
        survey_row(redcap_event_name="baseline_arm_1"),
        survey_row(
            redcap_event_name="screening_arm_1",
            date="",
            tigrlab_scan_completed_complete="",
        ),
    ]
    redcap.fake.add_project(TOKEN, rows, events=["baseline_arm_1", "screening_arm_1"])
    redcap.config.event_ids = {"baseline_arm_1": 41}
    redcap.config.save()

    output, _ = run("sync_redcap")

    assert "1 created, 0 changed, 0 unchanged, 1 not complete" in summary_line(output)
    assert RedcapRecord.objects.get().event_id == 41


def test_sync_longitudinal_unmapped_event_reported(redcap, session):
    rows = [survey_row(redcap_event_name="followup_arm_1")]
    redcap.fake.add_project(TOKEN, rows, events=["followup_arm_1"])
    redcap.config.event_ids = {"baseline_arm_1": 41}
    redcap.config.save()

    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("sync_redcap", stdout=out, stderr=err)

    assert "Event 'followup_arm_1' has no event ID" in err.getvalue()
    assert RedcapRecord.objects.count() == 0
