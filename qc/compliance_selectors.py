"""Read queries for protocol compliance: header diffs of scans, expected and missing scans of
sessions, and the study compliance page and its CSV export.

Every function runs a fixed number of queries, whatever the number of scans or sessions it is
given. Querysets passed in must already come from `accounts.permissions`.
"""

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, DateField, F, FilteredRelation, Q
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from qc.compliance import BVAL_FIELD, HeaderDiffStatus, diff_rows, values_match
from qc.models import DeviationResolution, HeaderDiff, MissingScanDismissal
from qc.selectors import find_missing_scans
from studies.models import ExpectedScan, Scan, Session

# Lists longer than this (SliceTiming, b-values) are folded in the diff table.
LIST_PREVIEW = 6
# The most frequent deviating fields listed per site and tag.
TOP_FIELDS = 5
# The trend charts show at most this many months, the most recent ones.
TREND_MONTHS = 24
NOT_COMPARED = "not_compared"

# Bar colours of the trend charts by share of compliant scans (Bootstrap 5.3's palette). They
# are SVG presentation attributes, so the charts need no style sheet.
GOOD_SHARE, FAIR_SHARE = 0.95, 0.8
BAR_COLOURS = {"good": "#198754", "fair": "#ffc107", "poor": "#dc3545", "none": "#adb5bd"}


def format_value(value):
    """Show a sidecar value as text: strings as they are, other values as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(not isinstance(item, list | dict) for item in value):
        return ", ".join(format_value(item) for item in value)
    return json.dumps(value, ensure_ascii=False)


def field_label(name):
    """Return the name of a deviation as people read it (b-values have no sidecar field)."""
    return "b-values (.bval)" if name == BVAL_FIELD else name


# --- Header diffs of scans --------------------------------------------------------------------


@dataclass
class DiffTableRow:
    """One deviation in the diff table, with the newest resolution of that field.

    `resolution_applies` is false when the resolution was made for other values than the diff
    shows now (the scan or the standard changed since).
    """

    field: str
    label: str
    kind: str
    expected: str
    actual: str
    expected_preview: str = ""
    actual_preview: str = ""
    tolerance: object = None
    detail: str = ""
    resolution: DeviationResolution | None = None
    resolution_applies: bool = False


def _text_and_preview(value, kind):
    if kind == "missing":
        return "", ""
    text = format_value(value)
    if isinstance(value, list) and len(value) > LIST_PREVIEW:
        preview = f"{format_value(value[:LIST_PREVIEW])}, … ({len(value)} values)"
        return text, preview
    return text, ""


def build_table_rows(header_diff, resolutions=()):
    """Turn a HeaderDiff into DiffTableRows; `resolutions` are its resolutions, newest first."""
    newest = {}
    for resolution in resolutions:
        newest.setdefault(resolution.field, resolution)
    rows = []
    for row in diff_rows(header_diff.diff):
        expected, expected_preview = _text_and_preview(row.expected, row.kind)
        actual, actual_preview = _text_and_preview(row.actual, row.kind)
        resolution = newest.get(row.field)
        applies = resolution is not None and (
            values_match(resolution.expected, row.expected)
            and values_match(resolution.actual, row.actual)
        )
        rows.append(
            DiffTableRow(
                field=row.field,
                label=field_label(row.field),
                kind=row.kind,
                expected=expected,
                actual=actual,
                expected_preview=expected_preview,
                actual_preview=actual_preview,
                tolerance=row.tolerance,
                detail=row.detail,
                resolution=resolution,
                resolution_applies=applies,
            )
        )
    return rows


def attach_header_diffs(scans):
    """Set `header_diff` on each scan: its current HeaderDiff or None.

    Each diff gets `table_rows` (DiffTableRows with their newest resolutions) and
    `open_deviations` (the number of rows without a resolution that applies). Runs two
    queries: the diffs with their standards, and the resolutions with their reviewers.
    """
    scans = list(scans)
    for scan in scans:
        scan.header_diff = None
    if not scans:
        return scans
    diffs = {
        diff.scan_id: diff
        for diff in HeaderDiff.objects.current()
        .filter(scan_id__in=[scan.pk for scan in scans])
        .select_related("gold_standard")
        .defer("gold_standard__sidecar", "gold_standard__bvals")
    }
    resolutions = defaultdict(list)
    rows = (
        DeviationResolution.objects.filter(header_diff_id__in=[diff.pk for diff in diffs.values()])
        .select_related("reviewer")
        .order_by("-created_at", "-id")
    )
    for resolution in rows:
        resolutions[resolution.header_diff_id].append(resolution)

    for scan in scans:
        diff = diffs.get(scan.pk)
        if diff is None:
            continue
        diff.table_rows = build_table_rows(diff, resolutions[diff.pk])
        diff.open_deviations = sum(1 for row in diff.table_rows if not row.resolution_applies)
        scan.header_diff = diff
    return scans


# --- Expected and missing scans of sessions ---------------------------------------------------


@dataclass(frozen=True)
class UnexpectedTag:
    """A tag of which a session has scans that its study site does not expect."""

    tag: str
    found: int

    def __str__(self):
        return f"{self.tag} ({self.found})"


@dataclass
class ScanExpectations:
    """How a session's scans compare with what its study site expects.

    `missing` lists the tags it is short of and `unexpected` the tags it should not have.
    `dismissal` is the newest MissingScanDismissal of the session, and `is_dismissed` is true
    when it covers every missing tag.
    """

    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    dismissal: MissingScanDismissal | None = None

    @property
    def is_dismissed(self):
        if not self.missing or self.dismissal is None:
            return False
        return {item.tag for item in self.missing} <= self.dismissal.dismissed_tags

    @property
    def needs_attention(self):
        """Return whether the missing-scans warning applies: a tag is missing, not dismissed."""
        return bool(self.missing) and not self.is_dismissed


def scan_expectations(sessions):
    """Return {session pk: ScanExpectations} for the given sessions (objects or primary keys).

    A session is short of a tag when it has fewer scans of it than `ExpectedScan.count`
    (`phantom_count` for a phantom). A tag is unexpected when the study site has no
    ExpectedScan for it, or one whose count for this kind of session is 0. A session without
    scans is short of every expected tag. Runs four queries: the sessions (skipped when every
    session comes with its timepoint loaded), the expected counts, the scan counts per tag
    (skipped when every session comes with `scan_list`, all its scans with their scan types, as
    `qc.selectors.timepoint_for_page` loads them) and the dismissals.
    """
    session_pks = [getattr(session, "pk", session) for session in sessions]
    if not session_pks:
        return {}
    if all(isinstance(s, Session) and Session.timepoint.is_cached(s) for s in sessions):
        # The caller loaded the timepoints already, so the first query is not needed.
        info = {s.pk: (s.timepoint.study_site_id, s.timepoint.is_phantom) for s in sessions}
    else:
        info = {
            pk: (study_site_id, is_phantom)
            for pk, study_site_id, is_phantom in Session.objects.filter(
                pk__in=session_pks
            ).values_list("pk", "timepoint__study_site_id", "timepoint__is_phantom")
        }
    expected = defaultdict(list)
    expected_rows = ExpectedScan.objects.filter(
        study_site_id__in={study_site_id for study_site_id, _ in info.values()}
    ).select_related("scantype")
    for row in expected_rows:
        expected[row.study_site_id].append(row)

    tag_counts = defaultdict(dict)
    if all(hasattr(session, "scan_list") for session in sessions):
        for session in sessions:
            tag_counts[session.pk] = Counter(scan.scantype.tag for scan in session.scan_list)
    else:
        counted = (
            Scan.objects.filter(session_id__in=session_pks)
            .order_by()
            .values_list("session_id", "scantype__tag")
            .annotate(scan_count=Count("pk"))
        )
        for session_pk, tag, scan_count in counted:
            tag_counts[session_pk][tag] = scan_count

    dismissals = {}
    dismissal_rows = (
        MissingScanDismissal.objects.filter(session_id__in=session_pks)
        .select_related("reviewer")
        .order_by("-created_at", "-id")
    )
    for dismissal in dismissal_rows:
        dismissals.setdefault(dismissal.session_id, dismissal)

    result = {}
    for pk in session_pks:
        if pk not in info:
            continue
        study_site_id, is_phantom = info[pk]
        rows = expected[study_site_id]
        counts = tag_counts[pk]
        result[pk] = ScanExpectations(
            missing=find_missing_scans(rows, counts, is_phantom=is_phantom),
            unexpected=_unexpected_tags(rows, counts, is_phantom=is_phantom),
            dismissal=dismissals.get(pk),
        )
    return result


def _unexpected_tags(expected_rows, tag_counts, *, is_phantom):
    expected = {
        row.scantype.tag: (row.phantom_count if is_phantom else row.count) for row in expected_rows
    }
    return [
        UnexpectedTag(tag, found)
        for tag, found in sorted(tag_counts.items())
        if not expected.get(tag)
    ]


@dataclass
class SessionCompliance:
    """A session's scan expectations and the status counts of its scans' current header diffs."""

    expectations: ScanExpectations
    diff_counts: Counter = field(default_factory=Counter)

    @property
    def mismatch_count(self):
        return self.diff_counts[HeaderDiffStatus.MISMATCH]

    @property
    def error_count(self):
        return self.diff_counts[HeaderDiffStatus.ERROR]


def attach_session_compliance(sessions):
    """Set `compliance` (a SessionCompliance) on each session, with at most five queries in all.

    `scan_expectations` lists the queries that preloaded sessions skip."""
    sessions = list(sessions)
    if not sessions:
        return sessions
    expectations = scan_expectations(sessions)
    diff_counts = defaultdict(Counter)
    rows = (
        HeaderDiff.objects.current()
        .filter(scan__session_id__in=[session.pk for session in sessions])
        .order_by()
        .values_list("scan__session_id", "status")
        .annotate(diff_count=Count("pk"))
    )
    for session_pk, status, diff_count in rows:
        diff_counts[session_pk][status] = diff_count
    for session in sessions:
        session.compliance = SessionCompliance(
            expectations=expectations.get(session.pk, ScanExpectations()),
            diff_counts=diff_counts[session.pk],
        )
    return sessions


# --- Study compliance page --------------------------------------------------------------------


@dataclass
class TrendBar:
    """One month of a trend chart, with its geometry in the chart's SVG coordinates."""

    month: date
    matching: int
    compared: int
    x: float = 0
    y: float = 0
    width: float = 0
    height: float = 0
    colour: str = BAR_COLOURS["none"]

    @property
    def label(self):
        return f"{self.month:%Y-%m}"

    @property
    def share(self):
        return self.matching / self.compared if self.compared else None

    @property
    def title(self):
        if not self.compared:
            return f"{self.label}: no compared scans"
        return f"{self.label}: {self.matching} of {self.compared} compliant ({self.share:.0%})"


@dataclass
class Trend:
    """A bar chart of the monthly share of compliant scans, laid out for an inline SVG."""

    bars: list
    width: int
    height: int
    axis_labels: list = field(default_factory=list)


@dataclass
class ComplianceRow:
    """Compliance of one tag at one site: counts by status, top deviating fields and trend."""

    site: str
    tag: str
    counts: Counter = field(default_factory=Counter)
    top_fields: list = field(default_factory=list)
    trend: Trend | None = None

    @property
    def compared(self):
        return self.counts[HeaderDiffStatus.MATCH] + self.counts[HeaderDiffStatus.MISMATCH]

    @property
    def share(self):
        """Compliant scans as a fraction of compared scans (match / (match + mismatch))."""
        return self.counts[HeaderDiffStatus.MATCH] / self.compared if self.compared else None

    @property
    def share_percent(self):
        """The compliant share in whole percent, rounded down so 100 means no mismatch."""
        return None if self.share is None else math.floor(self.share * 100)

    @property
    def total(self):
        return sum(self.counts.values())


@dataclass
class StudyCompliance:
    rows: list
    totals: ComplianceRow
    months: list


def _with_current_diff(scans):
    """Annotate scans with `site_name`, `tag`, `month` and a join to their current diff."""
    month_source = Coalesce("session__acquired_on", TruncDate("created_at"))
    return scans.annotate(
        current_diff=FilteredRelation("header_diffs", condition=Q(header_diffs__is_current=True)),
        site_name=F("session__timepoint__study_site__site__name"),
        tag=F("scantype__tag"),
        month=TruncMonth(month_source, output_field=DateField()),
    )


def study_compliance(scans):
    """Summarise the compliance of a study's scans by site and tag; return StudyCompliance.

    The month of a scan is its session's acquisition date, or the day the scan was imported
    when that is unknown. Runs two queries: counts by site, tag, status and month, and the
    deviating fields of mismatching scans.
    """
    annotated = _with_current_diff(scans)
    grouped = (
        annotated.order_by()
        .values("site_name", "tag", "month", status=F("current_diff__status"))
        .annotate(scan_count=Count("pk"))
    )
    rows = {}
    totals = ComplianceRow(site="All sites", tag="All tags")
    monthly = defaultdict(Counter)
    for entry in grouped:
        key = (entry["site_name"], entry["tag"])
        row = rows.setdefault(key, ComplianceRow(site=key[0], tag=key[1]))
        status = entry["status"] or NOT_COMPARED
        row.counts[status] += entry["scan_count"]
        totals.counts[status] += entry["scan_count"]
        monthly[key][(entry["month"], status)] += entry["scan_count"]
        monthly[None][(entry["month"], status)] += entry["scan_count"]

    field_counts = defaultdict(Counter)
    mismatches = annotated.filter(current_diff__status=HeaderDiffStatus.MISMATCH).values_list(
        "site_name", "tag", "current_diff__deviating_fields"
    )
    for site_name, tag, names in mismatches:
        field_counts[(site_name, tag)].update(names or [])
        field_counts[None].update(names or [])

    months = _month_range(month for counts in monthly.values() for month, _ in counts)
    for key, row in rows.items():
        row.top_fields = _top_fields(field_counts[key])
        row.trend = _trend(monthly[key], months, width=160, height=28)
    totals.top_fields = _top_fields(field_counts[None])
    totals.trend = _trend(monthly[None], months, width=720, height=140, with_axis=True)
    ordered = [rows[key] for key in sorted(rows)]
    return StudyCompliance(rows=ordered, totals=totals, months=months)


def _top_fields(counts):
    return [(field_label(name), count) for name, count in counts.most_common(TOP_FIELDS)]


def _month_range(months):
    months = [month for month in months if month is not None]
    if not months:
        return []
    first, last = min(months), max(months)
    result = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        result.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result[-TREND_MONTHS:]


def _bar_colour(share):
    if share is None:
        return BAR_COLOURS["none"]
    if share >= GOOD_SHARE:
        return BAR_COLOURS["good"]
    if share >= FAIR_SHARE:
        return BAR_COLOURS["fair"]
    return BAR_COLOURS["poor"]


def _trend(counts, months, *, width, height, with_axis=False):
    """Lay out one bar per month; a month without compared scans gets a thin grey bar."""
    if not months:
        return Trend(bars=[], width=width, height=height)
    # Margins leave room for the axis labels: percentages on the left, months below, and half
    # a label's height above the 100% line.
    left = 36 if with_axis else 0
    top = 6 if with_axis else 0
    bottom = 18 if with_axis else 0
    plot_width, plot_height = width - left, height - top - bottom
    slot = plot_width / len(months)
    gap = min(2.0, slot / 4)
    bars = []
    for index, month in enumerate(months):
        matching = counts[(month, HeaderDiffStatus.MATCH.value)]
        compared = matching + counts[(month, HeaderDiffStatus.MISMATCH.value)]
        bar = TrendBar(month=month, matching=matching, compared=compared)
        share = bar.share
        bar_height = plot_height * share if share is not None else 1.5
        bar.x = round(left + index * slot + gap / 2, 2)
        bar.width = round(max(slot - gap, 1), 2)
        bar.height = round(max(bar_height, 1.5), 2)
        bar.y = round(top + plot_height - bar.height, 2)
        bar.colour = _bar_colour(share)
        bars.append(bar)

    axis_labels = []
    if with_axis:
        for percent in (0, 50, 100):
            y = top + plot_height - plot_height * percent / 100
            axis_labels.append({"x": left - 4, "y": round(y + 4, 2), "text": f"{percent}%"})
        step = max(1, len(months) // 8)
        for index in range(0, len(months), step):
            x = left + index * slot + slot / 2
            axis_labels.append(
                {
                    "x": round(x, 2),
                    "y": height - 4,
                    "text": f"{months[index]:%Y-%m}",
                    "middle": True,
                }
            )
    return Trend(bars=bars, width=width, height=height, axis_labels=axis_labels)


# --- CSV export -------------------------------------------------------------------------------

CSV_HEADER = [
    "site",
    "tag",
    "session",
    "scan",
    "series",
    "series_description",
    "month",
    "status",
    "deviating_fields",
    "missing_fields",
    "gold_standard",
    "scan_converter",
    "standard_converter",
    "computed_at",
]
CSV_CHUNK_SIZE = 2000


def compliance_csv_rows(scans):
    """Yield one list of CSV cells per scan, in site, tag and scan name order, after the header.

    `series_description` is the sidecar's SeriesDescription, else the description in the file
    name. Scans without a header diff have status `not_compared`. The scans are read in chunks
    of CSV_CHUNK_SIZE.
    """
    yield list(CSV_HEADER)
    rows = (
        _with_current_diff(scans)
        .order_by("site_name", "tag", "name")
        .values_list(
            "site_name",
            "tag",
            "session__timepoint__name",
            "session__timepoint__is_phantom",
            "session__number",
            "name",
            "series",
            "description",
            "sidecar__SeriesDescription",
            "month",
            "current_diff__status",
            "current_diff__deviating_fields",
            "current_diff__diff__missing",
            "current_diff__gold_standard__source_path",
            "current_diff__scan_converter",
            "current_diff__standard_converter",
            "current_diff__computed_at",
        )
    )
    for (
        site_name,
        tag,
        timepoint,
        is_phantom,
        number,
        name,
        series,
        description,
        series_description,
        month,
        status,
        deviating,
        missing,
        standard_path,
        scan_converter,
        standard_converter,
        computed_at,
    ) in rows.iterator(chunk_size=CSV_CHUNK_SIZE):
        missing = set(missing or [])
        if not isinstance(series_description, str):
            series_description = description
        yield [
            site_name,
            tag,
            timepoint if is_phantom else f"{timepoint}_{number:02d}",
            name,
            series,
            series_description,
            f"{month:%Y-%m}" if month else "",
            status or NOT_COMPARED,
            "; ".join(field_label(item) for item in deviating or [] if item not in missing),
            "; ".join(sorted(missing)),
            standard_path or "",
            scan_converter or "",
            standard_converter or "",
            computed_at.isoformat() if computed_at else "",
        ]
