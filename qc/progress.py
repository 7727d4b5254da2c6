"""The study page's progress panel: sessions acquired, reviewed and signed off per site and month.

The counts come from one GROUP BY query over the sessions a user may see (`study_progress`),
and each site's chart is an SVG drawn here in Python (`progress_svg`), so the page needs no
chart library and no script. Phantom sessions are left out, because datman counts a phantom as
QC'd without a sign-off. A session counts in the month it was acquired (`acquired_on`);
sessions without an acquisition date are counted apart.
"""

import datetime
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import TruncMonth
from django.utils.safestring import mark_safe

from qc.models import unreviewed_scans_exist
from studies.models import Scan

# The panel shows at most this many months, the most recent ones with sessions.
PROGRESS_MONTHS = 24

# Series of the chart: key, legend label and fill colour (Bootstrap 5.3's palette).
SERIES = (
    ("acquired", "Acquired", "#adb5bd"),
    ("reviewed", "Reviewed (every scan)", "#0d6efd"),
    ("signed_off", "Signed off", "#198754"),
)

# Chart geometry in SVG user units (the SVG scales to the width of its container).
BAR_WIDTH = 9
GROUP_GAP = 10
PLOT_HEIGHT = 140
MARGIN_LEFT = 34
MARGIN_TOP = 8
MARGIN_BOTTOM = 32
MARGIN_RIGHT = 6
AXIS_COLOUR = "#6c757d"
GRID_COLOUR = "#dee2e6"


@dataclass
class MonthCounts:
    """Sessions of one site acquired in one month, and how many of them are reviewed and
    signed off."""

    month: datetime.date
    acquired: int = 0
    reviewed: int = 0
    signed_off: int = 0


@dataclass
class SiteProgress:
    """One site's row of the panel: its months (oldest first, zero-filled) and chart."""

    site: str
    months: list
    svg: str = ""

    @property
    def totals(self):
        return MonthCounts(
            month=None,
            acquired=sum(month.acquired for month in self.months),
            reviewed=sum(month.reviewed for month in self.months),
            signed_off=sum(month.signed_off for month in self.months),
        )


@dataclass
class ProgressPanel:
    """Contents of the progress panel: one SiteProgress per site, and the sessions left out."""

    sites: list = field(default_factory=list)
    months: list = field(default_factory=list)
    # Sessions without an acquisition date, which no month can show.
    undated: int = 0
    # Sessions acquired before the first month shown.
    earlier: int = 0

    @property
    def series(self):
        return [{"key": key, "label": label, "colour": colour} for key, label, colour in SERIES]


def month_counts(sessions):
    """Return rows of (site name, month or None, acquired, reviewed, signed off) in one query.

    `sessions` is a Session queryset, already limited to what the user may see. The month is
    the first day of the acquisition month, truncated in the database, so the query groups by
    site and month and returns one row per group whatever the number of sessions.
    """
    has_scans = Exists(Scan.objects.filter(session_id=OuterRef("pk")))
    reviewed = has_scans & ~unreviewed_scans_exist()
    rows = (
        sessions.filter(timepoint__is_phantom=False)
        .annotate(
            site_name=F("timepoint__study_site__site__name"),
            month=TruncMonth("acquired_on"),
        )
        .order_by()
        .values("site_name", "month")
        .annotate(
            acquired=Count("pk"),
            reviewed=Count("pk", filter=reviewed),
            signed_off=Count("pk", filter=Q(sign_off__isnull=False)),
        )
        .order_by("site_name", "month")
    )
    return [
        (row["site_name"], row["month"], row["acquired"], row["reviewed"], row["signed_off"])
        for row in rows
    ]


def study_progress(sessions, *, months_shown=PROGRESS_MONTHS):
    """Build the ProgressPanel of a Session queryset (one query)."""
    return build_panel(month_counts(sessions), months_shown=months_shown)


def build_panel(rows, *, months_shown=PROGRESS_MONTHS):
    """Build the ProgressPanel from `month_counts` rows, keeping the last `months_shown`
    months that end at the newest month with a session."""
    panel = ProgressPanel()
    dated = [row for row in rows if row[1] is not None]
    panel.undated = sum(row[2] for row in rows if row[1] is None)
    if not dated:
        return panel

    newest = max(_as_date(row[1]) for row in dated)
    oldest = min(_as_date(row[1]) for row in dated)
    first = max(oldest, _add_months(newest, -(months_shown - 1)))
    panel.months = _month_range(first, newest)

    by_site = {}
    for site, month, acquired, reviewed, signed_off in dated:
        month = _as_date(month)
        if month < first:
            panel.earlier += acquired
            continue
        counts = by_site.setdefault(site, {})
        counts[month] = MonthCounts(month, acquired, reviewed, signed_off)
    for site in sorted(by_site):
        months = [by_site[site].get(month, MonthCounts(month)) for month in panel.months]
        site_progress = SiteProgress(site=site, months=months)
        site_progress.svg = progress_svg(site_progress)
        panel.sites.append(site_progress)
    return panel


def _as_date(value):
    # TruncMonth of a DateField returns a date on PostgreSQL and SQLite; a datetime is accepted
    # in case a backend returns one.
    return value.date() if isinstance(value, datetime.datetime) else value


def _add_months(month, count):
    index = month.year * 12 + month.month - 1 + count
    return datetime.date(index // 12, index % 12 + 1, 1)


def _month_range(first, last):
    months = []
    month = first
    while month <= last:
        months.append(month)
        month = _add_months(month, 1)
    return months


# --- Chart --------------------------------------------------------------------------------


def _nice_maximum(value):
    """Round the y-axis maximum up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _number(value):
    """Format an SVG coordinate without needless decimals."""
    return f"{value:.1f}".removesuffix(".0")


def progress_svg(site_progress):
    """Draw a site's months as grouped bars (acquired, reviewed, signed off) and return the SVG
    markup, marked safe. ElementTree escapes every text and attribute value."""
    months = site_progress.months
    group_width = len(SERIES) * BAR_WIDTH + GROUP_GAP
    width = MARGIN_LEFT + len(months) * group_width + MARGIN_RIGHT
    height = MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM
    maximum = _nice_maximum(max((month.acquired for month in months), default=0))
    totals = site_progress.totals
    title = (
        f"Sessions at {site_progress.site} per month, {months[0].month:%b %Y} to "
        f"{months[-1].month:%b %Y}: {totals.acquired} acquired, {totals.reviewed} reviewed, "
        f"{totals.signed_off} signed off"
    )

    svg = ET.Element(
        "svg",
        {
            "class": "progress-chart",
            "viewBox": f"0 0 {width} {height}",
            "width": str(width),
            "height": str(height),
            "role": "img",
            "aria-label": title,
            "data-site": site_progress.site,
        },
    )
    ET.SubElement(svg, "title").text = title
    baseline = MARGIN_TOP + PLOT_HEIGHT

    # Counts are whole numbers, so the middle grid line is drawn only where it is one.
    ticks = (0, maximum // 2, maximum) if maximum % 2 == 0 else (0, maximum)
    for tick in ticks:
        y = baseline - PLOT_HEIGHT * tick / maximum
        ET.SubElement(
            svg,
            "line",
            {
                "x1": str(MARGIN_LEFT),
                "x2": str(width - MARGIN_RIGHT),
                "y1": _number(y),
                "y2": _number(y),
                "stroke": AXIS_COLOUR if tick == 0 else GRID_COLOUR,
                "stroke-width": "1",
            },
        )
        label = ET.SubElement(
            svg,
            "text",
            {
                "x": str(MARGIN_LEFT - 4),
                "y": _number(y + 3),
                "font-size": "10",
                "fill": AXIS_COLOUR,
                "text-anchor": "end",
            },
        )
        label.text = _number(tick)

    for index, month in enumerate(months):
        left = MARGIN_LEFT + index * group_width + GROUP_GAP / 2
        for position, (key, label_text, colour) in enumerate(SERIES):
            value = getattr(month, key)
            bar_height = PLOT_HEIGHT * value / maximum
            bar = ET.SubElement(
                svg,
                "rect",
                {
                    "x": _number(left + position * BAR_WIDTH),
                    "y": _number(baseline - bar_height),
                    "width": str(BAR_WIDTH - 1),
                    "height": _number(bar_height),
                    "fill": colour,
                    "data-month": f"{month.month:%Y-%m}",
                    "data-series": key,
                    "data-count": str(value),
                },
            )
            ET.SubElement(bar, "title").text = f"{month.month:%b %Y}: {value} {label_text.lower()}"
        _month_label(svg, month.month, left + group_width / 2 - GROUP_GAP / 2, baseline, index)

    return mark_safe(ET.tostring(svg, encoding="unicode", short_empty_elements=True))  # noqa: S308


def _month_label(svg, month, x, baseline, index):
    """Label every month with its short name, and January and the first month with the year."""
    label = ET.SubElement(
        svg,
        "text",
        {
            "x": _number(x),
            "y": str(baseline + 12),
            "font-size": "9",
            "fill": AXIS_COLOUR,
            "text-anchor": "middle",
        },
    )
    label.text = f"{month:%b}"
    if index == 0 or month.month == 1:
        year = ET.SubElement(
            svg,
            "text",
            {
                "x": _number(x),
                "y": str(baseline + 24),
                "font-size": "9",
                "fill": AXIS_COLOUR,
                "text-anchor": "middle",
            },
        )
        year.text = str(month.year)
