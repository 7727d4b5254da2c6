"""The notifications' periodic jobs, as data for the command that installs schedules.

Each entry contains the django-q2 `Schedule` fields to set, found by `name`, and optionally
`time`, the local time of day of the first run.
"""

from datetime import time

from django_q.models import Schedule

SCHEDULES = [
    {
        # Reminds RAs and staff contacts of sessions whose REDCap survey is overdue.
        "name": "notifications-survey-reminders",
        "func": "notifications.tasks.send_survey_reminders",
        "schedule_type": Schedule.HOURLY,
        "repeats": -1,
    },
    {
        # Sends failed notification emails again, up to NOTIFICATION_MAX_ATTEMPTS attempts.
        "name": "notifications-retry-failed",
        "func": "notifications.tasks.retry_failed_notifications",
        "schedule_type": Schedule.MINUTES,
        "minutes": 15,
        "repeats": -1,
    },
    {
        # Daily digests every day, weekly ones on Mondays.
        "name": "notifications-digests",
        "func": "notifications.tasks.send_digests",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
        "time": time(7, 0),
    },
]
