"""Install every periodic job declared in code; running it twice changes nothing."""

from datetime import datetime, timedelta
from importlib import import_module

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

# Fields of a declaration that are compared with the installed Schedule row.
COMPARED_FIELDS = ("func", "schedule_type", "minutes", "repeats", "cron", "args", "kwargs")


def declared_schedules():
    """Every entry of SCHEDULES in `qcdash.schedules` and in each installed app's `schedules`."""
    modules = ["qcdash.schedules"] + [
        f"{config.name}.schedules" for config in apps.get_app_configs()
    ]
    declared = []
    for name in modules:
        try:
            module = import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        declared.extend(getattr(module, "SCHEDULES", []))
    return declared


def first_run(entry, now):
    """The next time of day given by `time`, in the server's time zone; now when absent."""
    if "time" not in entry:
        return now
    local_now = timezone.localtime(now)
    candidate = datetime.combine(local_now.date(), entry["time"], tzinfo=local_now.tzinfo)
    return candidate if candidate > local_now else candidate + timedelta(days=1)


class Command(BaseCommand):
    help = (
        "Create or update the django-q2 schedules declared in code; a second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report without saving.")

    def handle(self, *args, dry_run=False, **options):
        now = timezone.now()
        created = changed = unchanged = 0
        with transaction.atomic():
            for entry in declared_schedules():
                values = {key: value for key, value in entry.items() if key not in ("name", "time")}
                schedule = Schedule.objects.filter(name=entry["name"]).first()
                if schedule is None:
                    Schedule.objects.create(
                        name=entry["name"], next_run=first_run(entry, now), **values
                    )
                    self.stdout.write(f"created {entry['name']} ({values['func']})")
                    created += 1
                    continue
                differences = {
                    key: value
                    for key, value in values.items()
                    if key in COMPARED_FIELDS and getattr(schedule, key) != value
                }
                if not differences:
                    unchanged += 1
                    continue
                for key, value in differences.items():
                    self.stdout.write(
                        f"changed {entry['name']}: {key} {getattr(schedule, key)!r} → {value!r}"
                    )
                    setattr(schedule, key, value)
                schedule.save(update_fields=list(differences))
                changed += 1
            if dry_run:
                transaction.set_rollback(True)
        prefix = "Dry run, nothing saved: " if dry_run else ""
        self.stdout.write(f"{prefix}{created} created, {changed} changed, {unchanged} unchanged")
