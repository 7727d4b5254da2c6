"""Receivers that turn archive imports and account requests into notifications."""

from django.db import transaction
from django.dispatch import receiver
from django_q.tasks import async_task

from accounts.signals import account_email_requested
from notifications.models import NotificationKind
from notifications.services import notify
from studies.signals import import_finished

# The notification kind of each account email, for preferences and the delivery log.
ACCOUNT_EMAIL_KINDS = {
    "request_received": NotificationKind.ACCOUNT_REQUESTED,
    "request_new_admin": NotificationKind.ACCOUNT_REQUESTED,
    "request_approved": NotificationKind.ACCOUNT_DECIDED,
    "request_rejected": NotificationKind.ACCOUNT_DECIDED,
    "request_decided_admin": NotificationKind.ACCOUNT_DECIDED,
}


@receiver(import_finished, dispatch_uid="notifications.queue_new_session_notices")
def queue_new_session_notices(sender, *, study, created, run_id, **kwargs):
    if not created:
        return
    session_ids = [session.pk for session in created]
    transaction.on_commit(
        lambda: async_task("notifications.tasks.notify_new_sessions", study.pk, session_ids, run_id)
    )


@receiver(account_email_requested, dispatch_uid="notifications.log_account_email")
def log_account_email(sender, *, template, context, recipients, **kwargs):
    """Record an account-request email for each recipient, at most once per request."""
    notify(
        kind=ACCOUNT_EMAIL_KINDS[template],
        key=f"account-request:{context['account_request'].pk}:{template}",
        recipients=recipients,
        template=f"accounts/email/{template}",
        context=context,
        include_inactive=True,
    )
