"""REDCap configurations, the triggers REDCap sends, survey records and their links to sessions."""

import re
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.db import models
from django.db.models import Q

from studies.models import Session, StudySite

# datman's defaults for the field names of the "scan completed" survey.
DEFAULT_RECORD_KEY_FIELD = "record_id"
DEFAULT_SESSION_FIELD = "par_id"
DEFAULT_DATE_FIELD = "date"
DEFAULT_COMMENT_FIELD = "cmts"
DEFAULT_STATUS_FIELD = "tigrlab_scan_completed_complete"
# REDCap's form status values: 0 incomplete, 1 unverified, 2 complete.
DEFAULT_COMPLETE_VALUES = ("2",)
# REDCap API tokens are 32 hexadecimal characters; super tokens are 64.
_API_TOKEN = re.compile(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64}")


def new_trigger_secret():
    """Return a fresh secret for a trigger URL: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def default_complete_values():
    return list(DEFAULT_COMPLETE_VALUES)


def is_api_token(value):
    return bool(_API_TOKEN.fullmatch(value))


def normalise_server_url(url):
    """Return a REDCap server URL with exactly one trailing slash, so one server has one key."""
    return url.strip().rstrip("/") + "/"


def mask_token(token):
    """Return the token as admins may see it: its last 4 characters only."""
    return f"…{token[-4:]}" if token else ""


class RedcapConfig(models.Model):
    """One REDCap project instrument that qcdash reads "scan completed" surveys from.

    Several study sites may share one configuration, because one REDCap project often collects
    the surveys of several studies.
    """

    url = models.URLField(
        "server URL",
        max_length=255,
        help_text="The REDCap home page, for example https://redcap.example.org/ "
        "(datman's RedcapUrl).",
    )
    api_url = models.URLField(
        "API URL",
        max_length=255,
        blank=True,
        help_text="The REDCap API endpoint (datman's RedcapApiUrl). Empty: the server URL "
        "followed by api/.",
    )
    project_id = models.PositiveIntegerField(
        help_text="REDCap project ID (datman's RedcapProjectId)."
    )
    instrument = models.CharField(
        max_length=100,
        help_text="Unique name of the survey instrument (datman's RedcapInstrument).",
    )
    record_key_field = models.CharField(
        max_length=100,
        default=DEFAULT_RECORD_KEY_FIELD,
        help_text="Field that contains the record ID (datman's RedcapRecordKey).",
    )
    session_field = models.CharField(
        "session ID field",
        max_length=100,
        default=DEFAULT_SESSION_FIELD,
        help_text="Field that contains the datman session ID (datman's RedcapSubj).",
    )
    date_field = models.CharField(
        max_length=100,
        default=DEFAULT_DATE_FIELD,
        help_text="Field that contains the scan date (datman's RedcapDate).",
    )
    comment_field = models.CharField(
        max_length=100,
        default=DEFAULT_COMMENT_FIELD,
        help_text="Field that contains the RA's comments (datman's RedcapComments).",
    )
    status_field = models.CharField(
        "completion field",
        max_length=100,
        default=DEFAULT_STATUS_FIELD,
        help_text="Field with the survey's completion status (datman's RedcapStatus).",
    )
    complete_values = models.JSONField(
        default=default_complete_values,
        help_text='Values of the completion field that mean complete, as a list, e.g. ["2"] '
        "(datman's RedcapStatusValue).",
    )
    user_field = models.CharField(
        max_length=100,
        blank=True,
        help_text="Field that names who filled in the survey. Empty: not recorded.",
    )
    event_ids = models.JSONField(
        "event IDs",
        default=dict,
        blank=True,
        help_text="Longitudinal projects: each unique event name with its event ID, e.g. "
        '{"baseline_arm_1": 41} (datman\'s RedcapEventId). Triggers for other events fail.',
    )
    token = models.CharField(
        max_length=64,
        blank=True,
        help_text="REDCap API token. Never shown in full after saving.",
    )
    trigger_secret = models.CharField(
        max_length=64, unique=True, default=new_trigger_secret, editable=False
    )
    study_sites = models.ManyToManyField(
        StudySite,
        blank=True,
        related_name="redcap_configs",
        help_text="Study sites whose sessions this project's surveys describe. A record is only "
        "linked to a session at one of these sites.",
    )
    redcap_version = models.CharField(
        max_length=32,
        blank=True,
        help_text="REDCap version reported by the API; used in links to records.",
    )
    untracked_trigger_count = models.PositiveIntegerField(
        default=0, help_text="Triggers received for other instruments of the project."
    )
    last_untracked_instrument = models.CharField(max_length=100, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_summary = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["url", "project_id", "instrument"]
        verbose_name = "REDCap configuration"
        constraints = [
            models.UniqueConstraint(
                fields=["url", "project_id", "instrument"],
                name="redcap_redcapconfig_unique_instrument",
            ),
        ]

    def __str__(self):
        return f"REDCap project {self.project_id} {self.instrument} at {self.url}"

    def __repr__(self):
        # The default repr would be the same, but spelling it out keeps the token out of it.
        return f"<RedcapConfig {self.pk}: {self}>"

    @property
    def endpoint(self):
        """The API URL to call: `api_url`, else the server URL followed by `api/`."""
        if self.api_url:
            return self.api_url
        return f"{self.url.rstrip('/')}/api/"

    @property
    def token_hint(self):
        return mask_token(self.token)

    @property
    def is_longitudinal(self):
        return bool(self.event_ids)

    def record_url(self, record_id):
        """Return the link to a record's home page in REDCap, or '' while the version is unknown.

        REDCap serves its pages under a folder named after its version, `redcap_v<version>/`.
        """
        if not self.redcap_version:
            return ""
        query = urlencode({"pid": self.project_id, "id": record_id})
        return (
            f"{self.url.rstrip('/')}/redcap_v{self.redcap_version}/DataEntry/record_home.php?"
            f"{query}"
        )


class TriggerStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RETRYING = "retrying", "Waiting to retry"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped (survey not complete)"
    FAILED = "failed", "Failed"


class RedcapTriggerQuerySet(models.QuerySet):
    def failed(self):
        return self.filter(status=TriggerStatus.FAILED)

    def for_failed_page(self):
        """Failed triggers, newest first, with their configuration preloaded."""
        return self.failed().select_related("config").order_by("-received_at", "-id")


class RedcapTrigger(models.Model):
    """One Data Entry Trigger that REDCap sent for a tracked instrument, and its fetch."""

    config = models.ForeignKey(RedcapConfig, on_delete=models.PROTECT, related_name="triggers")
    record_id = models.CharField(max_length=100)
    event_name = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=16, choices=TriggerStatus.choices, default=TriggerStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    redcap_record = models.ForeignKey(
        "RedcapRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="triggers",
        help_text="The record this trigger's fetch stored.",
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RedcapTriggerQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "-received_at"], name="redcap_trigger_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TriggerStatus.values), name="redcap_redcaptrigger_status"
            ),
        ]

    def __str__(self):
        event = f" event {self.event_name}" if self.event_name else ""
        return f"trigger {self.pk} for record {self.record_id}{event}"


class RedcapRecordQuerySet(models.QuerySet):
    def unmatched(self):
        """Records linked to no session."""
        return self.filter(session_links__isnull=True)

    def for_unmatched_page(self):
        return self.unmatched().select_related("config").order_by("-fetched_at", "-id")


class RedcapRecord(models.Model):
    """One survey record of a configured instrument: one row per configuration, record and event.

    The values are those REDCap returned last; earlier values are kept in RedcapRecordVersion.
    Sessions are linked through SessionSurvey, so one record may cover several sessions.
    """

    config = models.ForeignKey(RedcapConfig, on_delete=models.PROTECT, related_name="records")
    record_id = models.CharField(max_length=100)
    event_name = models.CharField(
        max_length=100, blank=True, help_text="Unique event name; empty in classic projects."
    )
    event_id = models.PositiveIntegerField(null=True, blank=True)
    session_id_text = models.CharField(
        "session ID as entered", max_length=255, blank=True, help_text="As REDCap returned it."
    )
    session_name = models.CharField(
        max_length=128,
        blank=True,
        db_index=True,
        help_text="The parsed datman session ID; empty when the text is not a valid session ID.",
    )
    completed_on = models.DateField(null=True, blank=True, help_text="The survey's date field.")
    comment = models.TextField(blank=True)
    entered_by = models.CharField(max_length=255, blank=True)
    match_error = models.CharField(
        max_length=500, blank=True, help_text="Why no session was linked automatically."
    )
    fetched_at = models.DateTimeField(help_text="When REDCap returned the current values.")

    objects = RedcapRecordQuerySet.as_manager()

    class Meta:
        ordering = ["config", "record_id", "event_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["config", "record_id", "event_name"], name="redcap_redcaprecord_unique"
            ),
        ]

    def __str__(self):
        event = f" ({self.event_name})" if self.event_name else ""
        return f"record {self.record_id}{event} of REDCap project {self.config.project_id}"

    @property
    def url(self):
        """Link to the record in REDCap (queries unless `config` was preloaded)."""
        return self.config.record_url(self.record_id)


class RedcapRecordVersion(models.Model):
    """Earlier values of a record, kept when REDCap returned different ones."""

    record = models.ForeignKey(RedcapRecord, on_delete=models.CASCADE, related_name="versions")
    session_id_text = models.CharField(max_length=255, blank=True)
    completed_on = models.DateField(null=True, blank=True)
    comment = models.TextField(blank=True)
    entered_by = models.CharField(max_length=255, blank=True)
    fetched_at = models.DateTimeField(help_text="When REDCap returned these values.")
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["record", "-replaced_at", "-id"]

    def __str__(self):
        return f"{self.record} as fetched at {self.fetched_at:%Y-%m-%d %H:%M}"


class LinkKind(models.TextChoices):
    MATCHED = "matched", "Matched by session ID"
    MANUAL = "manual", "Linked by hand"
    SHARED = "shared", "Shared from another session"


class SessionSurvey(models.Model):
    """The link between a session and the survey record that describes it.

    A session has at most one survey; a record may describe several sessions (shared). Deleting
    a session deletes its link only, and a record cannot be deleted while a session uses it.
    """

    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="redcap_survey")
    record = models.ForeignKey(RedcapRecord, on_delete=models.PROTECT, related_name="session_links")
    kind = models.CharField(max_length=16, choices=LinkKind.choices)
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redcap_links",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=LinkKind.values), name="redcap_sessionsurvey_kind"
            ),
        ]

    def __str__(self):
        return f"{self.session} ← {self.record}"


class SurveyDismissal(models.Model):
    """A reviewer's statement that a session will have no survey, with the reason."""

    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, related_name="survey_dismissal"
    )
    reason = models.TextField()
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="survey_dismissals"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""), name="redcap_surveydismissal_reason_required"
            ),
        ]

    def __str__(self):
        return f"survey of {self.session} dismissed by {self.dismissed_by}"
