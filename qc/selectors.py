"""Read queries for the reviewer pages.

Each function takes a queryset that already went through `accounts.permissions` and adds the
joins, annotations and prefetches its page shows, so the number of queries a page runs does not
grow with the number of rows on it.
"""

import json
from dataclasses import dataclass

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce

from qc.models import QCState, ScanReview, SessionSignOff, with_qc_state
from studies.models import Scan, Session, TaskFile, Timepoint

# The one definition of a session that needs review, used by the study list counts, the
# overview badges and its filter. Phantom sessions are left out because datman counts a phantom
# timepoint as QC'd without a sign-off.
# NOT EXISTS rather than `sign_off__isnull`: PostgreSQL 15 estimated the LEFT JOIN that the
# latter becomes at one row, and so sorted every waiting timepoint instead of walking them in
# name order to the end of a page.
NEEDS_REVIEW = Q(
    ~Exists(SessionSignOff.objects.filter(session_id=OuterRef("pk"))),
    timepoint__is_phantom=False,
)

# A scan is new while it has no review or its newest review put it back to new. Applies to a
# queryset annotated by `qc.models.with_qc_state`.
IS_NEW = Q(qc_state__isnull=True) | Q(qc_state=QCState.NEW)

# Sidecar lists longer than this (SliceTiming has one value per slice) are folded on the page.
SIDECAR_LIST_PREVIEW = 6


def _count_rows(queryset):
    """Build a scalar subquery that counts the rows of a correlated queryset (0 when none)."""
    # COUNT wrapped in Func is not an aggregate to the ORM, so no GROUP BY is added and the
    # subquery returns exactly one row.
    counted = queryset.order_by().annotate(row_count=Func(F("pk"), function="COUNT"))
    return Coalesce(Subquery(counted.values("row_count"), output_field=IntegerField()), 0)


# --- Study list -----------------------------------------------------------------------------


def studies_for_list(studies, *, timepoints=None, sessions=None):
    """Annotate studies with `timepoint_count` and `needs_review_count` (sessions), by nickname.

    `timepoints` and `sessions` are the querysets counted (all by default); pass the user's
    visible ones so a site-restricted member's counts cover only their sites.
    """
    timepoints = Timepoint.objects.all() if timepoints is None else timepoints
    sessions = Session.objects.all() if sessions is None else sessions
    timepoints = timepoints.filter(study=OuterRef("pk"))
    sessions = sessions.filter(timepoint__study=OuterRef("pk")).filter(NEEDS_REVIEW)
    return studies.annotate(
        timepoint_count=_count_rows(timepoints),
        needs_review_count=_count_rows(sessions),
    ).order_by("nickname")


def needs_review_count(sessions):
    """Count the sessions of a queryset that need review (one query)."""
    return sessions.filter(NEEDS_REVIEW).count()


# --- Missing scans --------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingScan:
    """A scan tag of which a session has fewer scans than its study site expects."""

    tag: str
    expected: int
    found: int

    def __str__(self):
        return f"{self.tag} ({self.found} of {self.expected})"


def find_missing_scans(expected_scans, tag_counts, *, is_phantom):
    """List the tags a session is short of, in tag order.

    `expected_scans` are the ExpectedScan rows of the session's study site (scantype preloaded),
    `tag_counts` maps tag to the number of scans the session has. Phantoms are held to
    `phantom_count`, humans to `count`; an expected count of 0 is never short.
    """
    missing = []
    for expected_scan in sorted(expected_scans, key=lambda row: row.scantype.tag):
        expected = expected_scan.phantom_count if is_phantom else expected_scan.count
        found = tag_counts.get(expected_scan.scantype.tag, 0)
        if found < expected:
            missing.append(MissingScan(expected_scan.scantype.tag, expected, found))
    return missing


# --- Study overview -------------------------------------------------------------------------


def sessions_with_status():
    """Sessions annotated with `needs_review`, `signed_off_by` (username) and `signed_off_at`."""
    return Session.objects.annotate(
        needs_review=ExpressionWrapper(NEEDS_REVIEW, output_field=BooleanField()),
        signed_off_by=F("sign_off__reviewer__username"),
        signed_off_at=F("sign_off__created_at"),
    ).order_by("number")


# Sort orders of the overview, by the value of its `sort` parameter. Each ends in the unique
# timepoint name, so a page boundary never splits rows of equal sort keys differently.
OVERVIEW_SORTS = {
    "timepoint": ("name",),
    "-timepoint": ("-name",),
    "site": ("study_site__site__name", "name"),
    "-site": ("-study_site__site__name", "-name"),
}
DEFAULT_OVERVIEW_SORT = "timepoint"


def _session_scan_count(*conditions):
    """Count the outer session's scans whose current QC state meets `conditions`."""
    scans = with_qc_state(Scan.objects.filter(session_id=OuterRef("pk"))).filter(*conditions)
    return _count_rows(scans)


def overview_sessions():
    """Sessions with the `sessions_with_status` annotations and per-session scan counts.

    The counts are `new_scan_count`, `flagged_scan_count`, `blacklisted_scan_count` and
    `conversion_error_count`, each a correlated subquery of the same query.
    """
    conversion_errors = Scan.objects.filter(session_id=OuterRef("pk")).exclude(conversion_errors="")
    return sessions_with_status().annotate(
        new_scan_count=_session_scan_count(IS_NEW),
        flagged_scan_count=_session_scan_count(Q(qc_state=QCState.FLAGGED)),
        blacklisted_scan_count=_session_scan_count(Q(qc_state=QCState.BLACKLISTED)),
        conversion_error_count=_count_rows(conversion_errors),
    )


def timepoints_for_overview(timepoints, *, needs_review_only=False, sort=DEFAULT_OVERVIEW_SORT):
    """Timepoints of an overview page in the order `sort` (a key of OVERVIEW_SORTS) names,
    with `session_list` prefetched.

    Each session carries the `overview_sessions` annotations. With `needs_review_only`, only
    timepoints with a session that needs review are kept (all their sessions are still listed).
    """
    timepoints = (
        timepoints.for_study_page()
        .order_by(*OVERVIEW_SORTS[sort])
        .prefetch_related(
            Prefetch("sessions", queryset=overview_sessions(), to_attr="session_list")
        )
    )
    if needs_review_only:
        waiting = Session.objects.filter(timepoint_id=OuterRef("pk")).filter(NEEDS_REVIEW)
        timepoints = timepoints.filter(Exists(waiting))
    return timepoints


# --- Timepoint page -------------------------------------------------------------------------


def scans_for_review_table():
    """Scans as the review table shows them: QC state, tag and source preloaded, series order."""
    return with_qc_state(Scan.objects.select_related("scantype", "source")).order_by(
        "series", "name"
    )


def timepoint_for_page(timepoints):
    """Timepoints with everything the timepoint page shows preloaded.

    `session_list` contains the sessions (`sessions_with_status` annotations), each session's
    `scan_list` its scans (`scans_for_review_table`) and `task_file_list` its task files. The
    study comes with its issue tracker (or None) for the issues panel. Call `prepare_timepoint`
    on the fetched timepoint.
    """
    return timepoints.select_related("study__issue_tracker", "study_site__site").prefetch_related(
        Prefetch("sessions", queryset=sessions_with_status(), to_attr="session_list"),
        Prefetch("session_list__scans", queryset=scans_for_review_table(), to_attr="scan_list"),
        Prefetch(
            "session_list__task_files",
            queryset=TaskFile.objects.order_by("path"),
            to_attr="task_file_list",
        ),
    )


def prepare_timepoint(timepoint):
    """Set `missing_scans` on each session and `images` on each scan, from preloaded rows.

    The sessions need `compliance` (`qc.compliance_selectors.attach_session_compliance`), whose
    expectations list the missing scans.
    """
    for session in timepoint.session_list:
        session.missing_scans = session.compliance.expectations.missing
        for scan in session.scan_list:
            scan.images = qc_images(scan)


def scans_for_row():
    """Scans with what one row of the review table shows, including the study for image links."""
    return scans_for_review_table().select_related("session__timepoint__study")


# --- Scan page ------------------------------------------------------------------------------


def scan_for_page(scans):
    """Scans with their QC state, session, timepoint, study, site and source preloaded."""
    return with_qc_state(scans).select_related(
        "scantype",
        "session__timepoint__study",
        "session__timepoint__study_site__site",
        "source__session__timepoint__study",
    )


def review_history(scan):
    """Return every review of the scan (of its source when linked), newest first."""
    return ScanReview.objects.newest_for(scan.review_target_id).select_related("reviewer")


def qc_images(scan):
    """List the scan's QC images in manifest order, as dicts with `file`, `title` and `caption`.

    Entries without a file path are left out, because there is nothing to show for them.
    """
    images = []
    for entry in scan.qc_images or []:
        if not isinstance(entry, dict):
            continue
        path = entry.get("file")
        if not isinstance(path, str) or not path.strip():
            continue
        images.append(
            {
                "file": path.strip().lstrip("/"),
                "title": entry.get("title") or "",
                "caption": entry.get("caption") or "",
            }
        )
    return images


@dataclass(frozen=True)
class SidecarRow:
    """One sidecar field as the scan page shows it.

    `text` is the whole value; for a list longer than SIDECAR_LIST_PREVIEW, `preview` contains
    its first values and `item_count` its length, so the page can fold it.
    """

    key: str
    text: str
    preview: str = ""
    item_count: int = 0


def _format_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(not isinstance(item, list | dict) for item in value):
        return ", ".join(_format_value(item) for item in value)
    return json.dumps(value, ensure_ascii=False)


def sidecar_rows(sidecar):
    """Turn a dcm2niix sidecar into SidecarRows sorted by key.

    Sorting gives the same order on every database, because PostgreSQL's jsonb does not keep
    the key order of the file.
    """
    if not isinstance(sidecar, dict):
        return []
    rows = []
    for key, value in sorted(sidecar.items(), key=lambda item: str(item[0]).lower()):
        text = _format_value(value)
        if isinstance(value, list) and len(value) > SIDECAR_LIST_PREVIEW:
            preview = _format_value(value[:SIDECAR_LIST_PREVIEW])
            rows.append(SidecarRow(str(key), text, preview=preview, item_count=len(value)))
        else:
            rows.append(SidecarRow(str(key), text))
    return rows


# --- Sign-off page --------------------------------------------------------------------------


def sign_off_of(session):
    """Return the session's SessionSignOff with its reviewer, or None when it is not signed off."""
    return SessionSignOff.objects.filter(session=session).select_related("reviewer").first()


def attach_conversion_error_counts(sessions):
    """Set `conversion_error_count` on each session, in one query whatever their number."""
    counts = dict(
        Scan.objects.filter(session__in=[session.pk for session in sessions])
        .exclude(conversion_errors="")
        .values("session_id")
        .annotate(count=Count("id"))
        .values_list("session_id", "count")
    )
    for session in sessions:
        session.conversion_error_count = counts.get(session.pk, 0)


# --- Review navigation ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScanNeighbours:
    """The scans before and after one scan of a timepoint (names, None at either end)."""

    previous: str | None
    next: str | None


def scan_neighbours(scan):
    """Find the scans before and after `scan` in its timepoint, in one query.

    Scans are ordered by session number, then series and name, as the timepoint page lists
    them, so "next" moves through a session and then into the timepoint's next session.
    """
    names = list(
        Scan.objects.filter(session__timepoint_id=scan.session.timepoint_id)
        .order_by("session__number", "series", "name")
        .values_list("name", flat=True)
    )
    index = names.index(scan.name)
    previous = names[index - 1] if index > 0 else None
    following = names[index + 1] if index + 1 < len(names) else None
    return ScanNeighbours(previous=previous, next=following)


def next_session_to_review(sessions):
    """Return the oldest-acquired session of `sessions` that still needs review, or None.

    A session needs review when it is not signed off (phantoms excepted, see NEEDS_REVIEW) or
    when one of its scans is new. Sessions without an acquisition date come last, and ties go
    to the lower id. One query: two subqueries find the first session of each kind, and the
    outer query returns the older of the two.
    """
    order = (F("acquired_on").asc(nulls_last=True), "pk")
    # all_objects with its own deleted_at test: the outer session is shown already, and the
    # plain manager would join the session and timepoint again for each scan.
    new_scans = Scan.all_objects.filter(
        Q(review_state__isnull=True) | Q(review_state=QCState.NEW),
        session_id=OuterRef("pk"),
        deleted_at__isnull=True,
    )
    # Each kind is looked for on its own because either can be rare: walking sessions in
    # `acquired_on` order and testing both conditions on each took 0.7 s at 50,000 sessions
    # when only the newest one waited.
    not_signed_off = sessions.filter(NEEDS_REVIEW).order_by(*order).values("pk")[:1]
    with_new_scans = sessions.filter(Exists(new_scans)).order_by(*order).values("pk")[:1]
    candidates = sessions.filter(
        Q(pk__in=Subquery(not_signed_off)) | Q(pk__in=Subquery(with_new_scans))
    )
    return candidates.select_related("timepoint").order_by(*order).first()
