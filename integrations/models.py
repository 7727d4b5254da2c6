"""XNAT QC write-back and the issue tracker link: their settings, push log and issue cache."""

from django.conf import settings
from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q

from qc.models import QCState
from studies.models import Scan, Study, StudySite, Timepoint

ENVIRONMENT_VARIABLE_NAME = RegexValidator(
    r"^[A-Z_][A-Z0-9_]*$",
    "Use the name of an environment variable: upper-case letters, digits and underscores, "
    "for example XNAT_CREDENTIALS_CMH.",
)

# XNAT's scan quality value for each QC state. A scan that is new again gets an empty value.
XNAT_QUALITY = {
    QCState.APPROVED: "usable",
    QCState.FLAGGED: "questionable",
    QCState.BLACKLISTED: "unusable",
    QCState.NEW: "",
}


class XnatSiteSettings(models.Model):
    """The credentials setting of one study site's XNAT server, and whether pushes are on.

    The server URL, project and naming convention are the study site's own fields (datman's
    XnatServer, XnatArchive and XnatConvention). Credentials are never stored in the database:
    this row names an environment variable or a file that contains them.
    """

    study_site = models.OneToOneField(
        StudySite, on_delete=models.CASCADE, related_name="xnat_settings"
    )
    push_enabled = models.BooleanField(
        default=True, help_text="Push every QC decision at this site to XNAT's scan quality."
    )
    credentials_variable = models.CharField(
        max_length=128,
        blank=True,
        validators=[ENVIRONMENT_VARIABLE_NAME],
        help_text=(
            "Name of the environment variable that contains user:password, for example "
            "XNAT_CREDENTIALS_CMH. It wins over the credentials file."
        ),
    )
    credentials_file = models.CharField(
        max_length=1024,
        blank=True,
        help_text=(
            "Absolute path of a file with the user name on its first line and the password on "
            "its second (datman's XnatCredentials file in the study's metadata folder)."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "XNAT site settings"
        verbose_name_plural = "XNAT site settings"

    def __str__(self):
        return f"XNAT settings of {self.study_site.study}/{self.study_site.site}"

    @property
    def has_credentials_source(self):
        return bool(self.credentials_variable or self.credentials_file)


def xnat_configured_filter(prefix=""):
    """Build a Q that matches study sites (through `prefix`) that push QC decisions to XNAT."""
    return Q(
        **{
            f"{prefix}xnat_settings__push_enabled": True,
            f"{prefix}xnat_url__gt": "",
            f"{prefix}xnat_archive__gt": "",
        }
    ) & (
        Q(**{f"{prefix}xnat_settings__credentials_variable__gt": ""})
        | Q(**{f"{prefix}xnat_settings__credentials_file__gt": ""})
    )


class PushStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RETRYING = "retrying", "Retrying"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class XnatPushQuerySet(models.QuerySet):
    def unresolved_failures(self):
        """Failed pushes with no later push of the same scan, newest first.

        A later push (a new decision, or "push again") replaces a failure, so the list holds
        only what still needs a person.
        """
        later = XnatPush.objects.filter(scan_id=OuterRef("scan_id"), pk__gt=OuterRef("pk"))
        return (
            self.filter(status=PushStatus.FAILED)
            .filter(~Exists(later))
            .select_related("scan", "study", "scan__session__timepoint__study_site__site")
            .order_by("-finished_at", "-pk")
        )


class XnatPush(models.Model):
    """One push of a scan's QC state to the quality field of the same scan in XNAT.

    Each attempt pushes the scan's state at that moment, so retries that run out of order
    still leave XNAT with the newest decision. Rows are only added: "push again" adds a row.
    """

    scan = models.ForeignKey(Scan, on_delete=models.PROTECT, related_name="xnat_pushes")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="xnat_pushes")
    status = models.CharField(max_length=16, choices=PushStatus.choices, default=PushStatus.QUEUED)
    state = models.CharField(
        max_length=16, blank=True, help_text="The QC state pushed by the last attempt."
    )
    quality = models.CharField(
        max_length=32, blank=True, help_text="The XNAT quality value the last attempt sent."
    )
    xnat_path = models.CharField(
        max_length=1024, blank=True, help_text="The scan's REST path on the XNAT server."
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="xnat_pushes_requested",
        help_text="Who asked to push again; empty for a push that a QC decision queued.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = XnatPushQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "-finished_at"], name="integrations_push_status"),
            models.Index(fields=["scan", "-id"], name="integrations_push_scan"),
        ]

    def __str__(self):
        return f"XNAT push {self.pk} of {self.scan}"


class TrackerProvider(models.TextChoices):
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"


class IssueTracker(models.Model):
    """The GitHub or GitLab repository where a study's data problems are reported.

    The API token is read from the environment variable this row names; it never enters the
    database or a browser.
    """

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="issue_tracker")
    is_enabled = models.BooleanField(default=True)
    provider = models.CharField(
        max_length=16, choices=TrackerProvider.choices, default=TrackerProvider.GITHUB
    )
    api_url = models.CharField(
        "API base URL",
        max_length=255,
        default="https://api.github.com",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=(
            "https://api.github.com for github.com, https://HOST/api/v3 for GitHub Enterprise, "
            "https://HOST/api/v4 for GitLab."
        ),
    )
    repository = models.CharField(
        max_length=255,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$",
                "Use the repository's path, for example tigrlab/data-issues.",
            )
        ],
        help_text="owner/name on GitHub, or the project path (group/project) on GitLab.",
    )
    token_variable = models.CharField(
        max_length=128,
        validators=[ENVIRONMENT_VARIABLE_NAME],
        help_text="Name of the environment variable that contains the API token.",
    )
    last_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff contact the last new issue was assigned to (for round robin).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.get_provider_display()} {self.repository} of {self.study}"


class TrackerAccount(models.Model):
    """A person's user names on the issue trackers, for assigning issues to staff contacts."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tracker_account"
    )
    github_username = models.CharField(max_length=64, blank=True)
    gitlab_username = models.CharField(max_length=255, blank=True)

    def __str__(self):
        return f"Tracker user names of {self.user}"

    def username_for(self, provider):
        if provider == TrackerProvider.GITLAB:
            return self.gitlab_username
        return self.github_username


class TimepointIssues(models.Model):
    """The issues of the study's tracker that mention one timepoint, as last fetched."""

    timepoint = models.OneToOneField(
        Timepoint, on_delete=models.CASCADE, related_name="tracker_issues"
    )
    issues = models.JSONField(
        default=list,
        blank=True,
        help_text="number, title, state, url, created_at, updated_at, comments of each issue.",
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    refresh_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "timepoint issues"

    def __str__(self):
        return f"Tracker issues of {self.timepoint}"


class IssueRequestStatus(models.TextChoices):
    CREATED = "created", "Created"
    FAILED = "failed", "Failed"


class IssueRequest(models.Model):
    """A new issue a reviewer asked for from the timepoint page, and what the tracker did."""

    timepoint = models.ForeignKey(
        Timepoint, on_delete=models.PROTECT, related_name="issue_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="issue_requests"
    )
    title = models.CharField(max_length=256)
    body = models.TextField(blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_issue_requests",
    )
    assignee_username = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=IssueRequestStatus.choices)
    issue_number = models.PositiveIntegerField(null=True, blank=True)
    issue_url = models.CharField(max_length=1024, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"Issue {self.title!r} for {self.timepoint} ({self.get_status_display().lower()})"
