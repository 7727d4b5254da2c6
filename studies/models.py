"""Studies, sites, scan types and the scans that datman archives for them."""

import math
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from studies.search_keys import search_key_expression, session_search_key


class Study(models.Model):
    """A datman project, named by its nickname (the key in datman's `Projects`, e.g. SPINS)."""

    nickname = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    primary_contact = models.CharField(max_length=255, blank=True)
    is_open = models.BooleanField(default=True)
    archive_path = models.CharField(
        max_length=1024,
        blank=True,
        help_text="Absolute path of the study folder (datman's DatmanProjectsDir/ProjectDir).",
    )
    survey_reminder_hours = models.PositiveIntegerField(
        default=48,
        help_text=(
            "Hours after a session's import before its site's RAs and the study's staff "
            "contacts are reminded of a missing REDCap survey."
        ),
    )
    current_readme = models.ForeignKey(
        "StudyReadme",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text="The newest README version, kept by save_study_readme so that the study page "
        "reads it with the study.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["nickname"]
        verbose_name_plural = "studies"

    def __str__(self):
        return self.nickname

    @property
    def archive_root(self):
        """The study folder as a Path; relative paths are taken from ARCHIVE_ROOT."""
        path = Path(self.archive_path or self.nickname)
        if not path.is_absolute():
            path = Path(settings.ARCHIVE_ROOT) / path
        return path


class Site(models.Model):
    """A scanning site (datman site code, e.g. CMH)."""

    name = models.CharField(max_length=32, unique=True)
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class XnatConvention(models.TextChoices):
    DATMAN = "DATMAN", "datman"
    KCNI = "KCNI", "KCNI"


class StudySite(models.Model):
    """A site taking part in a study, with the study code its IDs carry (e.g. SPN01)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="study_sites")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="study_sites")
    code = models.CharField(
        max_length=32, help_text="The study code in this site's IDs (datman's StudyTag)."
    )
    uses_redcap = models.BooleanField(default=False)
    uses_tech_notes = models.BooleanField(default=False)
    xnat_archive = models.CharField(max_length=128, blank=True)
    xnat_convention = models.CharField(
        max_length=8, choices=XnatConvention.choices, default=XnatConvention.DATMAN
    )
    xnat_url = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["study__nickname", "site__name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "site"], name="studies_studysite_unique"),
        ]

    def __str__(self):
        return f"{self.study} at {self.site} ({self.code})"


class AltStudyCode(models.Model):
    """Another study code that a study site's IDs may carry (datman's SiteTags)."""

    study_site = models.ForeignKey(StudySite, on_delete=models.CASCADE, related_name="alt_codes")
    code = models.CharField(max_length=32)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["study_site", "code"], name="studies_altstudycode_unique"
            ),
        ]

    def __str__(self):
        return f"{self.code} for {self.study_site}"


class Scantype(models.Model):
    """A datman scan tag (T1, RST, DTI60-1000, ...) from the main config's ExportSettings."""

    tag = models.CharField(max_length=64, unique=True)
    qc_type = models.CharField(max_length=32, blank=True, help_text="datman's QcType.")
    pha_type = models.CharField(max_length=32, blank=True, help_text="datman's QcPha.")
    formats = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["tag"]

    def __str__(self):
        return self.tag


class ExpectedScan(models.Model):
    """How many scans of a tag one session at a study site should have, for humans and phantoms."""

    study_site = models.ForeignKey(
        StudySite, on_delete=models.CASCADE, related_name="expected_scans"
    )
    scantype = models.ForeignKey(Scantype, on_delete=models.PROTECT, related_name="expected_scans")
    count = models.PositiveIntegerField(default=0)
    phantom_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["study_site", "scantype__tag"]
        constraints = [
            models.UniqueConstraint(
                fields=["study_site", "scantype"], name="studies_expectedscan_unique"
            ),
        ]

    def __str__(self):
        return f"{self.study_site.study} {self.study_site.site} {self.scantype}"


# --- Hidden (soft-deleted) timepoints, sessions and scans ----------------------------------
#
# A dashboard admin may delete (hide) a timepoint, a session or a scan (studies.services).
# A hidden row keeps its QC history and its files, and only the three fields of `Hideable`
# change. A row is also hidden while any parent is hidden. That is decided by the query, not by
# writes to the children, so restoring a parent brings back its children exactly as they were.
#
# `objects` is the default manager, so reverse relations such as `timepoint.sessions` and
# prefetches use it too, and it leaves hidden rows out. `all_objects` contains them, for the
# admin site, the importer, the JSON API's writes, scan linking and the services that delete
# and restore. Lookups that start from another model and follow a relation
# (`Count("sessions__scans")`, `filter(scans__name=...)`) bypass both managers. Start such
# queries from `Scan.objects`, or add the `SHOWN_*` conditions below by hand.

# The conditions under which a row is shown or hidden, relative to the row's own model.
SHOWN_TIMEPOINT = Q(deleted_at__isnull=True)
SHOWN_SESSION = Q(deleted_at__isnull=True, timepoint__deleted_at__isnull=True)
SHOWN_SCAN = Q(
    deleted_at__isnull=True,
    session__deleted_at__isnull=True,
    session__timepoint__deleted_at__isnull=True,
)
HIDDEN_TIMEPOINT = Q(deleted_at__isnull=False)
HIDDEN_SESSION = Q(deleted_at__isnull=False) | Q(timepoint__deleted_at__isnull=False)
HIDDEN_SCAN = (
    Q(deleted_at__isnull=False)
    | Q(session__deleted_at__isnull=False)
    | Q(session__timepoint__deleted_at__isnull=False)
)


class Hideable(models.Model):
    """The fields that record who hid a row, when and why (all empty while it is shown)."""

    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="deleted_%(class)ss",
    )
    deletion_reason = models.TextField(blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_deleted(self):
        """Whether this row itself was deleted (a row may also be hidden by a deleted parent)."""
        return self.deleted_at is not None


class ShownManager(models.Manager):
    """A manager whose querysets contain only shown rows, as `shown_condition` defines them."""

    shown_condition = Q()

    def get_queryset(self):
        return super().get_queryset().filter(self.shown_condition)


class TimepointQuerySet(models.QuerySet):
    def shown(self):
        """Timepoints that are not hidden (what the default manager returns)."""
        return self.filter(SHOWN_TIMEPOINT)

    def for_study_page(self):
        """The timepoints of a study overview, with their site and sessions preloaded."""
        return self.select_related("study_site__site").order_by("name")

    def hidden(self):
        """Timepoints that a dashboard admin deleted."""
        return self.filter(HIDDEN_TIMEPOINT)


class SessionQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Insert sessions as QuerySet.bulk_create does, with their search keys set first.

        Reads each session's timepoint, so pass sessions whose timepoint is loaded.
        """
        objs = list(objs)
        for session in objs:
            session.search_key = session_search_key(session.timepoint.name, session.number)
        return super().bulk_create(objs, *args, **kwargs)

    def shown(self):
        """Sessions that are not hidden (what the default manager returns)."""
        return self.filter(SHOWN_SESSION)

    def hidden(self):
        """Sessions that were deleted or whose timepoint was deleted."""
        return self.filter(HIDDEN_SESSION)


class ScanQuerySet(models.QuerySet):
    def shown(self):
        """Scans that are not hidden (what the default manager returns)."""
        return self.filter(SHOWN_SCAN)

    def hidden(self):
        """Scans that were deleted or whose session or timepoint was deleted."""
        return self.filter(HIDDEN_SCAN)


class ShownTimepointManager(ShownManager.from_queryset(TimepointQuerySet)):
    shown_condition = SHOWN_TIMEPOINT


class ShownSessionManager(ShownManager.from_queryset(SessionQuerySet)):
    shown_condition = SHOWN_SESSION


class ShownScanManager(ShownManager.from_queryset(ScanQuerySet)):
    shown_condition = SHOWN_SCAN


class Timepoint(Hideable):
    """One visit of a subject (`STUDY_SITE_SUBJECT_TIMEPOINT`), or one phantom scan."""

    name = models.CharField(max_length=128, unique=True)
    # The ID search's key of the name (studies/search_keys.py); qc/search.py explains its indexes.
    search_key = models.GeneratedField(
        expression=search_key_expression(F("name")),
        output_field=models.CharField(max_length=128),
        db_persist=True,
    )
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="timepoints")
    study_site = models.ForeignKey(StudySite, on_delete=models.PROTECT, related_name="timepoints")
    is_phantom = models.BooleanField(default=False)
    bids_name = models.CharField(max_length=64, blank=True)
    bids_session = models.CharField(max_length=32, blank=True)
    kcni_name = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ShownTimepointManager()
    all_objects = TimepointQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["study", "name"], name="studies_timepoint_study_name")]

    def __str__(self):
        return self.name

    @property
    def site(self):
        """The site (queries unless `study_site__site` was preloaded)."""
        return self.study_site.site


class Session(Hideable):
    """One scanning session of a timepoint; number 2 and up are repeats of the same visit."""

    timepoint = models.ForeignKey(Timepoint, on_delete=models.PROTECT, related_name="sessions")
    number = models.PositiveSmallIntegerField(default=1)
    # NOTE: QuerySet.update() and renaming the timepoint leave the key as it was; nothing in
    # qcdash does either to a session's timepoint or number.
    search_key = models.CharField(
        # A timepoint name, "_" and a number of at most five digits.
        max_length=128 + len("_32767"),
        editable=False,
        help_text="The ID search's key of the session ID, set by save() and bulk_create().",
    )
    acquired_on = models.DateField(null=True, blank=True)
    tech_notes_path = models.CharField(
        max_length=1024,
        blank=True,
        help_text="The tech notes file, relative to the study folder (data/RESOURCES/...).",
    )
    tech_notes_size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes.")
    tech_notes_modified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ShownSessionManager()
    all_objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["timepoint__name", "number"]
        # The "next session to review" page walks sessions oldest first.
        indexes = [models.Index(fields=["acquired_on", "id"], name="studies_session_acquired")]
        constraints = [
            models.UniqueConstraint(fields=["timepoint", "number"], name="studies_session_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="studies_session_number_min"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        """Save the session, and its search key too when the timepoint or number may change.

        Reads the timepoint (a query unless it is loaded) unless `update_fields` leaves out
        both the timepoint and the number.
        """
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"timepoint", "timepoint_id", "number"} & set(update_fields):
            self.search_key = session_search_key(self.timepoint.name, self.number)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "search_key"}
        super().save(*args, **kwargs)

    @property
    def tech_notes_name(self):
        """The file name of the tech notes, or '' when none were found."""
        return PurePosixPath(self.tech_notes_path).name if self.tech_notes_path else ""

    @property
    def is_hidden(self):
        """Whether the session or its timepoint is deleted (queries unless `timepoint` was
        preloaded)."""
        return self.is_deleted or self.timepoint.is_deleted

    @property
    def name(self):
        """The datman session ID (queries unless `timepoint` was preloaded)."""
        if self.timepoint.is_phantom:
            return self.timepoint.name
        return f"{self.timepoint.name}_{self.number:02d}"


class Scan(Hideable):
    """One converted series: a NIfTI file with its dcm2niix sidecar, named `<session>_<TAG>_<NN>`.

    A linked scan (`source` set) is the same acquisition shared with another study; its QC
    decisions are the source scan's.
    """

    name = models.CharField(max_length=255, unique=True)
    # The ID search's key of the name (studies/search_keys.py); qc/search.py explains its indexes.
    search_key = models.GeneratedField(
        expression=search_key_expression(F("name")),
        output_field=models.CharField(max_length=255),
        db_persist=True,
    )
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="scans")
    scantype = models.ForeignKey(Scantype, on_delete=models.PROTECT, related_name="scans")
    series = models.PositiveIntegerField()
    description = models.CharField(max_length=255, blank=True)
    file_stem = models.CharField(max_length=255, help_text="The file name without extension.")
    nifti_path = models.CharField(max_length=1024, blank=True)
    sidecar_path = models.CharField(max_length=1024, blank=True)
    sidecar = models.JSONField(null=True, blank=True)
    sidecar_error = models.TextField(blank=True, help_text="Why the sidecar could not be read.")
    sidecar_modified_at = models.DateTimeField(null=True, blank=True)
    sidecar_stat = models.CharField(
        max_length=64,
        blank=True,
        help_text="The sidecar's size, mtime (ns) and inode as size:mtime_ns:inode when the "
        "import last read it; empty when the next import must read it.",
    )
    conversion_errors = models.TextField(blank=True)
    volumes = models.PositiveIntegerField(null=True, blank=True)
    nifti_stat = models.CharField(
        max_length=64,
        blank=True,
        help_text="The NIfTI file's size, mtime (ns) and inode as size:mtime_ns:inode when the "
        "import last read its header; empty when the next import must read it.",
    )
    bids_name = models.CharField(max_length=255, blank=True)
    qc_images = models.JSONField(
        default=list,
        blank=True,
        help_text="QC images from the manifest, in order: file, title, caption.",
    )
    manifest_error = models.TextField(blank=True)
    source = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="linked_scans",
        help_text="The scan this one is linked to; its QC decisions are shared.",
    )
    # Null, not "", before the first review: "new" is also a state a reviewer can set.
    review_state = models.CharField(  # noqa: DJ001
        max_length=16,
        null=True,
        blank=True,
        editable=False,
        help_text="The state of the newest QC review of this scan (of its source when linked), "
        "null before the first review. qc writes it with every review, so pages filter and "
        "count QC states without reading the review history.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ShownScanManager()
    all_objects = ScanQuerySet.as_manager()

    class Meta:
        ordering = ["session", "series", "scantype__tag"]
        indexes = [
            # Counts by QC state read only this index (the QC search, sessions with new scans).
            models.Index(
                fields=["review_state", "session"],
                name="studies_scan_state_session",
                condition=Q(deleted_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(source=models.F("id")), name="studies_scan_not_own_source"
            ),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # A linked scan shows its source's QC decisions, so it starts with the source's state.
        if self.source_id is not None and self._state.adding:
            self.review_state = (
                Scan.all_objects.filter(pk=self.source_id)
                .values_list("review_state", flat=True)
                .first()
            )
        super().save(*args, **kwargs)

    @property
    def is_hidden(self):
        """Whether the scan, its session or its timepoint is deleted (queries unless
        `session__timepoint` was preloaded)."""
        return self.is_deleted or self.session.is_hidden

    @property
    def tag(self):
        """The scan tag (queries unless `scantype` was preloaded)."""
        return self.scantype.tag

    @property
    def review_target_id(self):
        """The id of the scan whose reviews this scan shows: the source for a linked scan."""
        return self.source_id or self.id


class TaskFile(models.Model):
    """A behavioural task file recorded for a session (datman's task folder).

    `path` is relative to the study folder (`task/<SESSION ID>/...`).
    """

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="task_files")
    path = models.CharField(max_length=1024, unique=True)
    name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes.")
    modified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["path"]

    def __str__(self):
        return self.path


class StudyReadme(models.Model):
    """One saved version of a study's README (Markdown). The newest row is the current text;
    earlier rows are kept so that no edit loses text."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="readmes")
    text = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="study_readmes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["study", "-created_at", "-id"], name="studies_readme_newest"),
        ]

    def __str__(self):
        return f"README of {self.study} saved {self.created_at:%Y-%m-%d %H:%M}"


def validate_ignored_fields(value):
    """Check that ignored header fields are a list of field names."""
    if not isinstance(value, list) or not all(
        isinstance(name, str) and name.strip() for name in value
    ):
        raise ValidationError(
            f"Ignored fields must be a list of sidecar field names, for example "
            f'["AcquisitionTime", "SeriesNumber"], not {value!r}.'
        )


def validate_tolerances(value):
    """Check that tolerances map field names to absolute tolerances of 0 or more."""
    if not isinstance(value, dict):
        raise ValidationError(
            f'Tolerances must map field names to numbers, for example {{"EchoTime": 0.005}}, '
            f"not {value!r}."
        )
    for name, tolerance in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(
                f"A tolerance has the field name {name!r}; name the sidecar field it applies to."
            )
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
            raise ValidationError(
                f"The tolerance of {name} is {tolerance!r}; it must be a number such as 0.005."
            )
        if not math.isfinite(tolerance) or tolerance < 0:
            raise ValidationError(
                f"The tolerance of {name} is {tolerance!r}; it must be a finite number of 0 or "
                f"more."
            )


class HeaderComparisonSettings(models.Model):
    """The header fields a study ignores and the numeric tolerances it allows when scans are
    compared with their gold standards (datman's IgnoreHeaderFields and HeaderFieldTolerance).

    A row without a site applies to every site of the study. A site row adds to it: the ignored
    fields of both apply, and a site tolerance replaces the study tolerance of the same field.
    """

    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="header_comparison_settings"
    )
    site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="header_comparison_settings",
        help_text="Leave empty for the settings of the whole study.",
    )
    ignored_fields = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_ignored_fields],
        help_text="Sidecar fields that are not compared, as a JSON list of names.",
    )
    tolerances = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_tolerances],
        help_text=(
            'Absolute tolerance per numeric field, as a JSON object such as {"EchoTime": 0.005}.'
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study__nickname", "site__name"]
        verbose_name = "header comparison settings"
        verbose_name_plural = "header comparison settings"
        constraints = [
            models.UniqueConstraint(
                fields=["study", "site"], name="studies_headercomparisonsettings_unique_site"
            ),
            models.UniqueConstraint(
                fields=["study"],
                condition=Q(site__isnull=True),
                name="studies_headercomparisonsettings_unique_study",
            ),
        ]

    def __str__(self):
        if self.site_id is None:
            return f"Header comparison settings of {self.study}"
        return f"Header comparison settings of {self.study} at {self.site}"


class DeletionAction(models.TextChoices):
    DELETE = "delete", "Deleted"
    RESTORE = "restore", "Restored"


class DeletedObjectType(models.TextChoices):
    TIMEPOINT = "timepoint", "Timepoint"
    SESSION = "session", "Session"
    SCAN = "scan", "Scan"


class DeletionEvent(models.Model):
    """One deletion or restore of a timepoint, session or scan: what, who, why and when.

    Rows are only ever added. The object is named by its type, id and datman name, because a
    later purge may remove the row itself.
    """

    object_type = models.CharField(max_length=16, choices=DeletedObjectType.choices)
    object_id = models.PositiveBigIntegerField()
    object_name = models.CharField(max_length=255)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="deletion_events")
    action = models.CharField(max_length=16, choices=DeletionAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deletion_events"
    )
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="studies_deletionevent_object"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""), name="studies_deletionevent_reason_required"
            ),
        ]

    def __str__(self):
        return (
            f"{self.get_object_type_display()} {self.object_name} "
            f"{self.get_action_display().lower()} by {self.actor} "
            f"at {self.created_at:%Y-%m-%d %H:%M}"
        )
