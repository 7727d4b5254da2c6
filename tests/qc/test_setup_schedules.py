from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from qc.management.commands.setup_schedules import declared_schedules

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("setup_schedules", *args, stdout=out)
    return out.getvalue()


def test_installs_every_declared_schedule():
    output = run()

    names = {entry["name"] for entry in declared_schedules()}
    assert "worker-heartbeat" in names
    assert set(Schedule.objects.values_list("name", flat=True)) == names
    assert f"{len(names)} created, 0 changed, 0 unchanged" in output


def test_second_run_changes_nothing():
    run()
    before = list(Schedule.objects.order_by("name").values())

    output = run()

    assert list(Schedule.objects.order_by("name").values()) == before
    assert "0 created, 0 changed" in output


def test_changed_declaration_updates_row():
    run()
    Schedule.objects.filter(name="worker-heartbeat").update(minutes=7)

    output = run()

    assert Schedule.objects.get(name="worker-heartbeat").minutes == 1
    assert "changed worker-heartbeat: minutes 7 → 1" in output


def test_dry_run_saves_nothing():
    output = run("--dry-run")
    assert not Schedule.objects.exists()
    assert "Dry run, nothing saved" in output
