"""The log of notifications sent by email, the users' preferences and the record of job runs."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q


class NotificationKind(models.TextChoices):
    NEW_SESSIONS = "new-sessions", "New sessions imported"
    MISSING_SURVEY = "missing-survey", "Missing REDCap survey"
    ACCOUNT_REQUESTED = "account-requested", "Account requested"
    ACCOUNT_DECIDED = "account-decided", "Account request decided"
    INCIDENTAL_FINDING = "incidental-finding", "Incidental finding"
    DIGEST = "digest", "Digest of sessions needing review"
    NO_DATA_RECEIVED = "no-data-received", "No scan data received"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class NotificationQuerySet(models.QuerySet):
    def for_failed_page(self):
        """Failed notifications with their recipient, newest first."""
        return (
            self.filter(status=NotificationStatus.FAILED)
            .select_related("recipient")
            .order_by("-created_at", "-pk")
        )


class Notification(models.Model):
    """One email to one person about one object; the unique key makes it at most one."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    key = models.CharField(
        max_length=255,
        help_text="The object the notification is about, e.g. missing-survey:<session id>.",
    )
    content_type = models.ForeignKey(
        ContentType, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "kind", "key"], name="notifications_notification_once"
            ),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | ~Q(status="sent"),
                name="notifications_notification_sent_at",
            ),
        ]
        indexes = [models.Index(fields=["status", "attempts"])]

    def __str__(self):
        return f"{self.kind} {self.key} to {self.recipient_id}"


class DigestFrequency(models.TextChoices):
    NONE = "none", "No digest"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly (Mondays)"


def _all_kinds():
    return [kind.value for kind in NotificationKind if kind != NotificationKind.DIGEST]


class NotificationPreference(models.Model):
    """Which kinds of notification one user receives, and how often they get a digest.

    A user without a row receives every kind and no digest. Account and incidental-finding
    notices are sent regardless, because people must act on them.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preference",
    )
    kinds = models.JSONField(default=_all_kinds, blank=True)
    digest = models.CharField(
        max_length=16, choices=DigestFrequency.choices, default=DigestFrequency.NONE
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"notification preferences of {self.user_id}"


class JobRun(models.Model):
    """One run of a periodic notification job, with what it did or the error that stopped it."""

    job = models.CharField(max_length=64)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0, help_text="Notifications created.")
    sent = models.PositiveIntegerField(default=0, help_text="Notifications sent.")
    failed = models.PositiveIntegerField(default=0, help_text="Notifications that failed.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"{self.job} at {self.started_at:%Y-%m-%d %H:%M}"
