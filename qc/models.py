"""QC decisions. Every decision is a new row; the current state of a scan is its newest review."""

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from studies.models import Scan, Session, Study


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


def with_qc_state(scans):
    """Annotate scans with `qc_state`, `qc_comment`, `qc_reviewer` (username), `qc_reviewed_at`.

    A scan without reviews gets `qc_state` None, which means new.
    """
    return scans.annotate(
        qc_state=_newest_review("state"),
        qc_comment=_newest_review("comment"),
        qc_reviewer=_newest_review("reviewer__username"),
        qc_reviewed_at=_newest_review("created_at"),
    )


def unreviewed_scans_exist():
    """An Exists() that is true when the outer session has a scan whose current state is new."""
    scans = with_qc_state(Scan.objects.filter(session_id=OuterRef("pk"))).filter(
        Q(qc_state__isnull=True) | Q(qc_state=QCState.NEW)
    )
    return Exists(scans)
