"""QC decisions. Every decision is a new row; the current state of a scan is its newest review."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from qc.compliance import HeaderDiffStatus, converter_version, diff_rows
from studies.models import Scan, Scantype, Session, Site, Study, StudySite


class QCState(models.TextChoices):
    NEW = "new", "New"
    APPROVED = "approved", "Approved"
    FLAGGED = "flagged", "Flagged"
    BLACKLISTED = "blacklisted", "Blacklisted"


STATES_NEEDING_COMMENT = (QCState.FLAGGED, QCState.BLACKLISTED)


class ScanReviewQuerySet(models.QuerySet):
    def newest_for(self, scan_ref):
        """Reviews of the scan that `scan_ref` points to, newest first."""
        return self.filter(scan_id=scan_ref).order_by("-created_at", "-id")


class ScanReview(models.Model):
    """One QC decision on a scan: its state, why, who and when. Never edited or deleted."""

    scan = models.ForeignKey(Scan, on_delete=models.PROTECT, related_name="reviews")
    state = models.CharField(max_length=16, choices=QCState.choices)
    comment = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="scan_reviews"
    )
    sign_off = models.ForeignKey(
        "SessionSignOff",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reviews",
        help_text="Set when the scan was approved as part of signing off its session.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = ScanReviewQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["scan", "-created_at", "-id"], name="qc_scanreview_scan_newest"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state__in=STATES_NEEDING_COMMENT) | ~Q(comment=""),
                name="qc_scanreview_comment_required",
            ),
            models.CheckConstraint(
                condition=Q(state__in=QCState.values), name="qc_scanreview_state_valid"
            ),
        ]

    def __str__(self):
        return f"{self.scan} {self.state} by {self.reviewer}"

    def save(self, *args, **kwargs):
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            # A new review is the newest one of its scan: copy its state to the scan and to
            # the scans linked to it. Reviews are never edited, so later saves change nothing.
            Scan.all_objects.filter(Q(pk=self.scan_id) | Q(source_id=self.scan_id)).update(
                review_state=self.state
            )


class SessionSignOff(models.Model):
    """A reviewer's statement that every scan of a session has been QC'd. One per session."""

    session = models.OneToOneField(Session, on_delete=models.PROTECT, related_name="sign_off")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="session_sign_offs"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.session} signed off by {self.reviewer}"


class QCEventKind(models.TextChoices):
    SCAN_REVIEWED = "scan_reviewed", "Scan reviewed"
    SESSION_SIGNED_OFF = "session_signed_off", "Session signed off"
    DEVIATION_ACCEPTED = "deviation_accepted", "Header deviation accepted"
    DEVIATION_CONFIRMED = "deviation_confirmed", "Protocol violation confirmed"
    MISSING_SCANS_DISMISSED = "missing_scans_dismissed", "Missing scans dismissed"
    SIDECAR_REPAIRED = "sidecar_repaired", "Sidecar repaired"


class QCEvent(models.Model):
    """An audit-trail row for one QC action, written in the same transaction as the action."""

    kind = models.CharField(max_length=32, choices=QCEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="qc_events"
    )
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="qc_events")
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, null=True, blank=True, related_name="qc_events"
    )
    scan = models.ForeignKey(
        Scan, on_delete=models.PROTECT, null=True, blank=True, related_name="qc_events"
    )
    review = models.ForeignKey(
        ScanReview, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    sign_off = models.ForeignKey(
        SessionSignOff, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"


def _newest_review(field):
    """A subquery of one field of the newest review of the outer scan (its source when linked)."""
    reviews = ScanReview.objects.filter(
        scan_id=Coalesce(OuterRef("source_id"), OuterRef("id"))
    ).order_by("-created_at", "-id")
    return Subquery(reviews.values(field)[:1])


def refresh_review_states(scans):
    """Recompute `Scan.review_state` of `scans` from their newest reviews; return the count.

    `ScanReview.save()` keeps the column current as reviews are added. Code that deletes
    reviews of scans it keeps, or writes reviews with `bulk_create`, calls this for the scans
    it touched.
    """
    return scans.update(review_state=_newest_review("state"))


def with_qc_state(scans, *, details=True):
    """Annotate scans with `qc_state`, `qc_comment`, `qc_reviewer` (username), `qc_reviewed_at`
    and `qc_review_id` (the newest review's id, which review forms send back).

    A scan without reviews gets `qc_state` None, which means new. `qc_state` reads the
    `review_state` column, so filters on it can use an index. With `details=False` only
    `qc_state` is selected; the other names can still be filtered on but are not read, which
    spares a subquery per field and row (use `newest_reviews` for those of long listings).
    """
    scans = scans.annotate(qc_state=F("review_state"))
    subqueries = {
        "qc_review_id": _newest_review("id"),
        "qc_comment": _newest_review("comment"),
        "qc_reviewer": _newest_review("reviewer__username"),
        "qc_reviewed_at": _newest_review("created_at"),
    }
    return scans.annotate(**subqueries) if details else scans.alias(**subqueries)


def newest_reviews(scan_ids):
    """Return the newest review of each scan in `scan_ids` as {scan id: (state, comment,
    reviewer username, created_at)}, in one query. Scans without reviews are left out.

    Pass review targets (`Scan.review_target_id`): a linked scan's reviews are its source's.
    Tuples rather than model instances, because exports call this for every scan of a study.
    """
    newest = {}
    reviews = (
        ScanReview.objects.filter(scan_id__in=set(scan_ids))
        .order_by("scan_id", "-created_at", "-id")
        .values_list("scan_id", "state", "comment", "reviewer__username", "created_at")
    )
    for scan_id, *review in reviews:
        newest.setdefault(scan_id, review)
    return newest


def unreviewed_scans_exist():
    """An Exists() that is true when the outer session has a scan whose current state is new."""
    scans = with_qc_state(Scan.objects.filter(session_id=OuterRef("pk"))).filter(
        Q(qc_state__isnull=True) | Q(qc_state=QCState.NEW)
    )
    return Exists(scans)


# --- Protocol compliance: gold standards, header diffs, deviations, missing scans ----------


class GoldStandardQuerySet(models.QuerySet):
    def newest_first(self):
        """Standards ordered so that the one that applies to its study, site and tag comes first."""
        return self.order_by("-created_at", "-id")


class GoldStandard(models.Model):
    """A known-good sidecar (with b-values for diffusion) that scans of one tag at one study site
    must match. A study, site and tag may have several: the newest applies, older ones are kept
    because earlier header diffs refer to them.
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="gold_standards")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="gold_standards")
    scantype = models.ForeignKey(Scantype, on_delete=models.PROTECT, related_name="gold_standards")
    sidecar = models.JSONField(help_text="The dcm2niix JSON sidecar of the known-good series.")
    bvals = models.JSONField(
        null=True,
        blank=True,
        help_text="The b-values of a diffusion standard, as a JSON list of numbers.",
    )
    source_path = models.CharField(
        max_length=1024,
        blank=True,
        help_text="The file the standard was loaded from, relative to the study archive.",
    )
    converter_version = models.CharField(
        max_length=255,
        blank=True,
        help_text="ConversionSoftware and ConversionSoftwareVersion of the sidecar.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = GoldStandardQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["study", "site", "scantype", "-created_at", "-id"],
                name="qc_goldstandard_newest",
            ),
        ]

    def __str__(self):
        name = self.source_path.rsplit("/", 1)[-1] if self.source_path else f"#{self.pk}"
        return f"{self.study} {self.site} {self.scantype} gold standard {name}"

    def save(self, *args, **kwargs):
        if not self.converter_version:
            self.converter_version = converter_version(self.sidecar)
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if not isinstance(self.sidecar, dict):
            raise ValidationError(
                {"sidecar": "The sidecar must be a JSON object of header fields, {...}."}
            )
        if self.bvals is not None:
            problem = bvals_problem(self.bvals)
            if problem:
                raise ValidationError({"bvals": problem})
        takes_part = StudySite.objects.filter(study_id=self.study_id, site_id=self.site_id)
        if self.study_id and self.site_id and not takes_part.exists():
            raise ValidationError(
                {"site": "This site takes no part in the study; choose one of its sites."}
            )


def bvals_problem(values):
    """Return why `values` is not a list of b-values, or '' when it is one."""
    if not isinstance(values, list) or not values:
        return f"The b-values must be a non-empty JSON list of numbers, not {values!r}."
    for position, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"B-value {position} is {value!r}; every b-value must be a number."
    return ""


class HeaderDiffQuerySet(models.QuerySet):
    def current(self):
        """The diff that applies to each scan now (one per scan at most)."""
        return self.filter(is_current=True)


class HeaderDiff(models.Model):
    """The comparison of one scan's sidecar with one gold standard (or the note that its tag
    has no gold standard). Comparing again with the same standard updates the row; a new
    standard gets a new row and the old one is kept with `is_current` off.
    """

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="header_diffs")
    gold_standard = models.ForeignKey(
        GoldStandard,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="header_diffs",
    )
    status = models.CharField(max_length=16, choices=HeaderDiffStatus.choices)
    diff = models.JSONField(default=dict, blank=True)
    deviating_fields = models.JSONField(
        default=list,
        blank=True,
        help_text="Names of the differing and missing fields, kept for counting.",
    )
    scan_converter = models.CharField(max_length=255, blank=True)
    standard_converter = models.CharField(max_length=255, blank=True)
    fingerprint = models.CharField(
        max_length=64,
        help_text="Hash of the standard and the settings used; a change makes the diff outdated.",
    )
    is_current = models.BooleanField(default=True)
    computed_at = models.DateTimeField()

    objects = HeaderDiffQuerySet.as_manager()

    class Meta:
        ordering = ["-computed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["scan", "gold_standard"], name="qc_headerdiff_unique_standard"
            ),
            models.UniqueConstraint(
                fields=["scan"],
                condition=Q(gold_standard__isnull=True),
                name="qc_headerdiff_unique_no_standard",
            ),
            models.UniqueConstraint(
                fields=["scan"], condition=Q(is_current=True), name="qc_headerdiff_one_current"
            ),
            models.CheckConstraint(
                condition=Q(status__in=HeaderDiffStatus.values), name="qc_headerdiff_status_valid"
            ),
        ]

    def __str__(self):
        return f"{self.scan} header {self.get_status_display().lower()}"

    @property
    def rows(self):
        """The deviations as `qc.compliance.DiffRow`s."""
        return diff_rows(self.diff)

    @property
    def problems(self):
        return list((self.diff or {}).get("problems", []))


class DeviationDecision(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    VIOLATION = "violation", "Protocol violation"


class DeviationResolution(models.Model):
    """A reviewer's decision on one deviation of a header diff: accepted with a reason, or
    confirmed as a protocol violation. Never edited; the newest row per field applies.

    `expected` and `actual` keep the values the reviewer saw, so a decision does not carry over
    to different values after the diff is recomputed.
    """

    header_diff = models.ForeignKey(
        HeaderDiff, on_delete=models.PROTECT, related_name="resolutions"
    )
    field = models.CharField(max_length=255, help_text="The sidecar field, or .bval.")
    decision = models.CharField(max_length=16, choices=DeviationDecision.choices)
    reason = models.TextField(blank=True)
    expected = models.JSONField(null=True, blank=True)
    actual = models.JSONField(null=True, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deviation_resolutions"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["header_diff", "field", "-created_at", "-id"],
                name="qc_deviationres_newest",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(decision=DeviationDecision.ACCEPTED) | ~Q(reason=""),
                name="qc_deviationresolution_reason_required",
            ),
            models.CheckConstraint(
                condition=Q(decision__in=DeviationDecision.values),
                name="qc_deviationresolution_decision_valid",
            ),
        ]

    def __str__(self):
        return f"{self.field} of {self.header_diff.scan} {self.decision} by {self.reviewer}"


class MissingScanDismissal(models.Model):
    """A reviewer's statement that a session's missing scans are known and need no action.

    `missing_tags` keeps what was missing then (tag, expected, found); the dismissal covers the
    warning while every missing tag is one of them.
    """

    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="missing_scan_dismissals"
    )
    reason = models.TextField()
    missing_tags = models.JSONField(default=list)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="missing_scan_dismissals",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""), name="qc_missingscandismissal_reason_required"
            ),
        ]

    def __str__(self):
        return f"missing scans of {self.session} dismissed by {self.reviewer}"

    @property
    def dismissed_tags(self):
        return {entry.get("tag") for entry in self.missing_tags or [] if isinstance(entry, dict)}


# --- Timepoint comments and incidental findings ---------------------------------------------


class TimepointCommentQuerySet(models.QuerySet):
    def for_page(self):
        """Comments with their author, who deleted them and every revision (oldest first) in
        `revision_list`, oldest comment first."""
        revisions = TimepointCommentRevision.objects.order_by("created_at", "id")
        return (
            self.select_related("author", "deleted_by")
            .prefetch_related(
                models.Prefetch("revisions", queryset=revisions, to_attr="revision_list")
            )
            .order_by("created_at", "id")
        )


class TimepointComment(models.Model):
    """A member's comment on a timepoint. Its text lives in `TimepointCommentRevision` rows, so an
    edit adds a revision and keeps the earlier text. Deleting sets `deleted_at` and `deleted_by`;
    the row and its revisions stay.
    """

    timepoint = models.ForeignKey(
        "studies.Timepoint", on_delete=models.PROTECT, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="timepoint_comments"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deleted_timepoint_comments",
    )

    objects = TimepointCommentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(deleted_at__isnull=True, deleted_by__isnull=True)
                | Q(deleted_at__isnull=False, deleted_by__isnull=False),
                name="qc_timepointcomment_deleted_with_who",
            ),
        ]

    def __str__(self):
        return f"comment {self.pk} on {self.timepoint} by {self.author}"

    @property
    def is_deleted(self):
        return self.deleted_at is not None

    @property
    def current(self):
        """The newest revision (needs `revision_list` from `for_page`)."""
        return self.revision_list[-1] if self.revision_list else None

    @property
    def earlier_revisions(self):
        """Revisions before the newest, newest first (needs `revision_list` from `for_page`)."""
        return list(reversed(self.revision_list[:-1]))

    @property
    def is_edited(self):
        return len(self.revision_list) > 1


class TimepointCommentRevision(models.Model):
    """One version of a timepoint comment's text. The first is the comment as written, each
    later one an edit by its author. Never edited or deleted."""

    comment = models.ForeignKey(
        TimepointComment, on_delete=models.PROTECT, related_name="revisions"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="qc_timepointcommentrevision_text"),
        ]

    def __str__(self):
        return f"revision {self.pk} of comment {self.comment_id}"


class IncidentalFinding(models.Model):
    """A QC reviewer's report of something clinically relevant seen in a timepoint's scans.

    Only dashboard admins, study admins and the study's primary and staff contacts covering its
    site, and the reporter, see it (`accounts.permissions.visible_findings`). Never edited or
    deleted: a follow-up is a `FindingNote`.
    """

    timepoint = models.ForeignKey(
        "studies.Timepoint", on_delete=models.PROTECT, related_name="incidental_findings"
    )
    description = models.TextField()
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="incidental_findings"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(description=""), name="qc_incidentalfinding_description"
            ),
        ]

    def __str__(self):
        return f"incidental finding {self.pk} on {self.timepoint}"


class FindingNote(models.Model):
    """A follow-up on an incidental finding by a study admin or contact: a note, or the mark that
    it was resolved (with an optional note). Never edited or deleted."""

    finding = models.ForeignKey(IncidentalFinding, on_delete=models.PROTECT, related_name="notes")
    text = models.TextField(blank=True)
    marks_resolved = models.BooleanField(default=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="finding_notes"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(marks_resolved=True) | ~Q(text=""),
                name="qc_findingnote_text_or_resolved",
            ),
        ]

    def __str__(self):
        return f"note {self.pk} on incidental finding {self.finding_id}"


# --- Sidecar repairs and purges --------------------------------------------------------------


class SidecarRepairAction(models.TextChoices):
    STANDARD = "standard", "Replaced with the gold standard's values"
    EDITED = "edited", "Edited"
    REMOVED = "removed", "Removed"


class SidecarRepair(models.Model):
    """A reviewer's correction of one field of a scan's sidecar, written as a corrected copy
    outside the archive (SIDECAR_REPAIR_ROOT). Never edited; the newest row per scan applies.

    `original_value` is the field's value in the archive's sidecar when the repair was made; the
    repair stops applying when a new conversion changes it. `old_value` is the value the
    reviewer replaced (the previous repair's, if any) and `new_value` is null for a removal.
    """

    scan = models.ForeignKey(Scan, on_delete=models.PROTECT, related_name="sidecar_repairs")
    field = models.CharField(max_length=255)
    action = models.CharField(max_length=16, choices=SidecarRepairAction.choices)
    original_value = models.JSONField(null=True, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    gold_standard = models.ForeignKey(
        GoldStandard,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sidecar_repairs",
        help_text="The standard whose values were copied, for a replacement.",
    )
    path = models.CharField(max_length=1024, help_text="The corrected sidecar that was written.")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sidecar_repairs"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=SidecarRepairAction.values),
                name="qc_sidecarrepair_action_valid",
            ),
        ]

    def __str__(self):
        return f"{self.field} of {self.scan} {self.action} by {self.reviewer}"


class PurgeRecord(models.Model):
    """The audit trail of one `purge` run: who removed which session or timepoint, when, and a
    JSON snapshot of every QC row that was deleted with it."""

    target = models.CharField(max_length=128, help_text="The session or timepoint ID purged.")
    study = models.CharField(max_length=64, help_text="The study's nickname.")
    ran_by = models.CharField(
        max_length=150, help_text="The operating system account that ran the command."
    )
    counts = models.JSONField(default=dict, help_text="Rows deleted, by model.")
    snapshot = models.JSONField(
        default=dict, help_text="The deleted QC rows, by model, as Django serialises them."
    )
    removed_files = models.JSONField(
        default=list, blank=True, help_text="Archive paths removed with --files."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"purge of {self.target} by {self.ran_by} at {self.created_at:%Y-%m-%d %H:%M}"
