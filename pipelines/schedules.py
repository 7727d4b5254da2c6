"""The download jobs' periodic work, as data for `setup_schedules`."""

from django_q.models import Schedule

SCHEDULES = [
    {
        # Retries downloads, runs post-download commands and reports sessions with no data.
        "name": "pipelines-downloads",
        "func": "pipelines.tasks.queue_due_downloads",
        "schedule_type": Schedule.HOURLY,
        "repeats": -1,
    },
]
