"""Receivers that turn archive imports into queued new-session notices."""

from django.db import transaction
from django.dispatch import receiver
from django_q.tasks import async_task

from studies.signals import import_finished


@receiver(import_finished, dispatch_uid="notifications.queue_new_session_notices")
def queue_new_session_notices(sender, *, study, created, run_id, **kwargs):
    if not created:
        return
    session_ids = [session.pk for session in created]
    transaction.on_commit(
        lambda: async_task("notifications.tasks.notify_new_sessions", study.pk, session_ids, run_id)
    )
