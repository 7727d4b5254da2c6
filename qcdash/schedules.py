"""Periodic jobs that belong to no app, as data for `setup_schedules`."""

from django_q.models import Schedule

SCHEDULES = [
    {
        # /readyz reports the worker as not seen when this has not run for five minutes.
        "name": "worker-heartbeat",
        "func": "qcdash.health.heartbeat",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    },
]
