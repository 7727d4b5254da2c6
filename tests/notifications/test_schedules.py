from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

pytestmark = pytest.mark.django_db

NAMES = {"notifications-survey-reminders", "notifications-retry-failed", "notifications-digests"}


def run():
    out = StringIO()
    call_command("setup_schedules", stdout=out)
    return out.getvalue()


def test_schedules_installed():
    run()

    installed = dict(Schedule.objects.filter(name__in=NAMES).values_list("name", "func"))
    assert installed == {
        "notifications-survey-reminders": "notifications.tasks.send_survey_reminders",
        "notifications-retry-failed": "notifications.tasks.retry_failed_notifications",
        "notifications-digests": "notifications.tasks.send_digests",
    }
    assert Schedule.objects.get(name="notifications-survey-reminders").schedule_type == "H"


def test_setup_schedules_twice_changes_nothing():
    run()
    before = list(Schedule.objects.order_by("name").values())

    output = run()

    assert list(Schedule.objects.order_by("name").values()) == before
    assert "0 created, 0 changed" in output
