"""The REDCap intake's periodic jobs, as data for the command that installs schedules.

Each entry contains the django-q2 `Schedule` fields to set, found by `name`, and `time`, the
local time of day of the first run, from which the installing command computes `next_run`.
"""

from datetime import time

from django_q.models import Schedule

SCHEDULES = [
    {
        # Catches the records of triggers that never arrived or whose fetch failed for good.
        "name": "redcap-daily-sync",
        "func": "redcap.tasks.sync_all_configs",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
        "time": time(3, 30),
    },
]
