"""Download jobs for sessions that REDCap reports as scanned, and extra pipeline pages."""

import shlex
import string
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from redcap.models import RedcapRecord
from studies.models import Session, Study, StudySite


def split_command(text):
    """Return a command line as its argument list (POSIX shell quoting, no shell features)."""
    try:
        arguments = shlex.split(text)
    except ValueError as error:
        raise ValidationError(
            f"The command {text!r} cannot be split into arguments ({error}); close its quotes."
        ) from error
    return arguments


def validate_command(text):
    """Check that a command line splits into at least one argument."""
    if text and not split_command(text):
        raise ValidationError(
            f"The command {text!r} has no program name; give the path of a script, for "
            f"example /opt/datman/bin/download.sh."
        )


class DownloadSettings(models.Model):
    """The commands that fetch a session's scans for one study site, and what runs after them.

    Each command is run without a shell, with the study nickname and the datman session ID
    appended as its last two arguments.
    """

    study_site = models.OneToOneField(
        StudySite, on_delete=models.CASCADE, related_name="download_settings"
    )
    download_command = models.CharField(
        max_length=1024,
        validators=[validate_command],
        help_text=(
            "Program and its first arguments, e.g. /opt/datman/bin/download.sh --xnat. The "
            "study nickname and the session ID are appended."
        ),
    )
    post_download_command = models.CharField(
        max_length=1024,
        blank=True,
        validators=[validate_command],
        help_text="Run once after the scans arrive, with the same two arguments. Optional.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "download settings"
        verbose_name_plural = "download settings"

    def __str__(self):
        return f"download settings of {self.study_site}"


class DownloadJobStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for scans"
    ARRIVED = "arrived", "Scans arrived"
    DONE = "done", "Done"
    NO_DATA = "no_data", "No data received"


class DownloadJob(models.Model):
    """The download of one session that a REDCap survey reports as scanned.

    The download command runs until the session's scans exist or `deadline_at` passes; then the
    post-download command runs once, or the study's staff contacts are notified that no data came.
    """

    session_name = models.CharField(
        max_length=128, unique=True, help_text="The datman session ID the survey names."
    )
    study_site = models.ForeignKey(
        StudySite, on_delete=models.PROTECT, related_name="download_jobs"
    )
    record = models.ForeignKey(
        RedcapRecord,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="download_jobs",
        help_text="The survey record that started the job.",
    )
    session = models.ForeignKey(
        Session,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="download_jobs",
        help_text="Set once the archive import has created the session.",
    )
    status = models.CharField(
        max_length=16, choices=DownloadJobStatus.choices, default=DownloadJobStatus.WAITING
    )
    deadline_at = models.DateTimeField(help_text="When retrying stops and no data is reported.")
    claimed_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A worker running one of the job's commands holds the job until then.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DownloadJobStatus.values),
                name="pipelines_downloadjob_status_valid",
            ),
        ]

    def __str__(self):
        return f"download of {self.session_name}"

    @property
    def is_open(self):
        return self.status in (DownloadJobStatus.WAITING, DownloadJobStatus.ARRIVED)


class CommandKind(models.TextChoices):
    DOWNLOAD = "download", "Download"
    POST_DOWNLOAD = "post_download", "Post-download"


class DownloadRun(models.Model):
    """One run of a download or post-download command: what ran, how it ended and its output."""

    job = models.ForeignKey(DownloadJob, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=CommandKind.choices)
    command = models.JSONField(help_text="The argument list that was run.")
    exit_code = models.IntegerField(
        null=True, blank=True, help_text="Empty when the command timed out or did not start."
    )
    timed_out = models.BooleanField(default=False)
    error = models.TextField(blank=True, help_text="Why the command could not start.")
    output_tail = models.TextField(
        blank=True, help_text="The end of the command's standard output and standard error."
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=CommandKind.values), name="pipelines_downloadrun_kind_valid"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.job.session_name} at {self.started_at}"

    @property
    def succeeded(self):
        return self.exit_code == 0

    @property
    def outcome(self):
        """The run's result in a few words: exit code, timed out, or did not start."""
        if self.timed_out:
            return "timed out"
        if self.exit_code is None:
            return "did not start"
        return f"exit code {self.exit_code}"


# --- Pipeline pages --------------------------------------------------------------------------


class PageScope(models.TextChoices):
    STUDY = "study", "Study"
    TIMEPOINT = "timepoint", "Timepoint"
    SESSION = "session", "Session"
    SCAN = "scan", "Scan"


# The placeholders each scope may use in its templates.
SCOPE_PLACEHOLDERS = {
    PageScope.STUDY: {"study"},
    PageScope.TIMEPOINT: {"study", "timepoint"},
    PageScope.SESSION: {"study", "timepoint", "session"},
    PageScope.SCAN: {"study", "timepoint", "session", "scan"},
}


def template_placeholders(template):
    """Return the names of the `{name}` placeholders of a template.

    Raise ValidationError for unbalanced braces, positional `{}` fields, attribute or index
    access, format specifications and conversions, so only plain names can be substituted.
    """
    names = set()
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValidationError(
            f"The template {template!r} has unbalanced braces ({error}); write a literal brace "
            f"as {{{{ or }}}}."
        ) from error
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValidationError(
                f"The placeholder {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} in {template!r} is invalid; use plain names "
                f"such as {{timepoint}}, {{session}} or {{scan}}."
            )
        names.add(name)
    return names


class PipelinePage(models.Model):
    """An extra page a study links to: an external URL or a report in the study's archive.

    The templates may name `{study}`, `{timepoint}`, `{session}` and `{scan}` as far as the
    scope provides them, and the page is linked from each study, timepoint, session or scan
    page of the study.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="pipeline_pages")
    name = models.CharField(max_length=100, help_text="Link text, e.g. MRIQC report.")
    scope = models.CharField(max_length=16, choices=PageScope.choices)
    url_template = models.CharField(
        "URL template",
        max_length=1024,
        blank=True,
        help_text="An http or https URL, e.g. https://reports.example.org/{timepoint}.",
    )
    path_template = models.CharField(
        max_length=1024,
        blank=True,
        help_text=(
            "A report file or folder relative to the study archive, e.g. "
            "pipelines/mriqc/sub-{timepoint}.html. A folder opens its index.html."
        ),
    )
    allow_scripts = models.BooleanField(
        default=False,
        help_text=(
            "Let an archive report run its JavaScript. Reports are always sandboxed; this adds "
            "allow-scripts to the sandbox. Turn it on only for reports your pipeline wrote."
        ),
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Links are sorted by this.")

    class Meta:
        ordering = ["study", "scope", "position", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "scope", "name"], name="pipelines_pipelinepage_unique_name"
            ),
            models.CheckConstraint(
                condition=(Q(url_template="") & ~Q(path_template=""))
                | (~Q(url_template="") & Q(path_template="")),
                name="pipelines_pipelinepage_one_target",
            ),
            models.CheckConstraint(
                condition=Q(scope__in=PageScope.values), name="pipelines_pipelinepage_scope_valid"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_scope_display().lower()} page of {self.study})"

    @property
    def report_folder(self):
        """The folder of the path template before its first placeholder, e.g. pipelines/mriqc
        for pipelines/mriqc/sub-{timepoint}.html; empty when the template starts with one."""
        fixed = self.path_template.split("{", 1)[0]
        return fixed.rsplit("/", 1)[0] if "/" in fixed else ""

    def clean(self):
        super().clean()
        if bool(self.url_template) == bool(self.path_template):
            raise ValidationError(
                "Give either a URL template or an archive path template, not both and not none."
            )
        field = "url_template" if self.url_template else "path_template"
        template = self.url_template or self.path_template
        try:
            names = template_placeholders(template)
        except ValidationError as error:
            raise ValidationError({field: error.messages}) from error
        allowed = SCOPE_PLACEHOLDERS.get(self.scope, set())
        unknown = sorted(names - allowed)
        if unknown:
            used = ", ".join(f"{{{name}}}" for name in unknown)
            offered = ", ".join(f"{{{name}}}" for name in sorted(allowed))
            raise ValidationError(
                {field: f"A {self.scope} page cannot use {used}; it may use {offered}."}
            )
        if self.url_template:
            problem = url_template_problem(self.url_template)
        else:
            problem = path_template_problem(self.path_template)
        if problem:
            raise ValidationError({field: problem})
        if self.allow_scripts and self.path_template and not self.report_folder:
            # The report view serves only files under the folder, so without one a page
            # that allows scripts would open every file of the archive with scripts.
            raise ValidationError(
                {
                    "allow_scripts": (
                        f"A page that allows scripts needs a fixed report folder, but the path "
                        f"{self.path_template!r} starts with a placeholder; begin it with a "
                        f"folder, for example pipelines/mriqc/{self.path_template}, or turn "
                        f"off Allow scripts."
                    )
                }
            )


def url_template_problem(template):
    """Return why a URL template is not an http or https URL, or '' when it is one."""
    parts = urlsplit(template.replace("{", "").replace("}", ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return (
            f"The URL {template!r} must start with http:// or https:// and name a host, for "
            f"example https://reports.example.org/{{timepoint}}."
        )
    return ""


def path_template_problem(template):
    """Return why a path template cannot name a file inside the archive, or '' when it can."""
    if template.startswith(("/", "\\")) or "\\" in template:
        return (
            f"The path {template!r} must be relative to the study archive and use forward "
            f"slashes, for example pipelines/mriqc/{{timepoint}}.html."
        )
    if any(part in ("..", ".") for part in template.split("/")):
        return f"The path {template!r} must not contain . or .. folders."
    return ""
