"""Find timepoints, sessions and scans by a partial or approximate ID.

A query and every name are compared by their search key (studies/search_keys.py): upper case
with the separators `_`, `-` and whitespace removed, so `spn01 cmh-0001` finds
`SPN01_CMH_0001_01`. Names whose key contains the query match. Those whose key starts with it
come first, in key order, which puts an exact match first. The others follow. When more of them
match than are shown, the ones shown are the first in the order of the MD5 of their key (stable
but unrelated to the name), listed in key order. On PostgreSQL, when no name of a kind contains
the query, the names closest to it match instead (pg_trgm's word similarity). That finds IDs
with a digit too many or too few.

Results are bounded per kind. Every search starts from the
`accounts.permissions.visible_*` querysets, so it finds only what the user may see.
qc/search_ids.py finds the ids to show with one statement, whose cost does not grow with the
number of matches while the user may see most of them.
"""

import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import MD5, Collate, Length

from accounts import permissions
from qc import search_ids
from qc.models import QCState, ScanReview, newest_reviews, with_qc_state
from studies.datman_ids import IdError, ScanName, parse_filename
from studies.search_keys import search_key

# Longer queries are cut to this many characters; no datman ID comes close to it.
MAX_QUERY_LENGTH = 100
# A key shorter than this matches too much to be useful, so it is not searched.
MIN_KEY_LENGTH = 2
RESULTS_PER_KIND = 10
# How many of the closest keys of each kind an approximate search reads from the GiST index.
CLOSE_CANDIDATES = 100
# How far below 1 - distance the word-similarity threshold is set when rows tied with the farthest
# candidate are sorted. pg_trgm computes the distance in single precision, so 1 - distance can
# exceed the similarity of a row at that distance by a rounding error below 1e-7.
SIMILARITY_MARGIN = 1e-5

# Ranks, best first.
PREFIX, CONTAINS = range(2)


def clean_query(text):
    """Return the query as it is searched: control characters removed, at most 100 characters.

    Control, format and unassigned characters (NUL included) are dropped because PostgreSQL
    rejects NUL in text and none of them can occur in an ID.
    """
    if not isinstance(text, str):
        return ""
    text = "".join(
        character
        for character in text[: MAX_QUERY_LENGTH * 4]
        if character in "\t\n" or not unicodedata.category(character).startswith("C")
    )
    return text.strip()[:MAX_QUERY_LENGTH]


def scan_name_of(text):
    """Return the scan name (`<session ID>_<TAG>_<SERIES>`, ID in upper case) that `text` names.

    `text` is a scan name, a file stem with description or a file name. Raises IdError.
    """
    text = text.strip() if isinstance(text, str) else text
    try:
        parsed = parse_filename(text)
    except IdError as error:
        # A scan name is a file stem without the description part.
        try:
            parsed = parse_filename(f"{text}_")
        except IdError:
            raise error from None
    return ScanName(parsed.ident.upper(), parsed.tag, parsed.series, "").scan_name


class _WordSimilar(Func):
    """`query <% key`: pg_trgm's word-similarity operator, true above its threshold (0.6)."""

    arg_joiner = " <%% "
    template = "%(expressions)s"
    output_field = BooleanField()


class _ClosenessKey(Func):
    """`search_key || ''`: the stored key as the GiST index (api/migrations/0004) reads it.

    The index is on this expression and not on the column, so that PostgreSQL cannot pick it
    for the LIKE filters of qc/search_ids.py. PostgreSQL 15 estimates the GiST index cheaper
    than the GIN index for those, but reads it up to six times slower on the `large` data.
    """

    template = "(%(expressions)s || '')"
    output_field = CharField()


class _WordDistance(Func):
    """`key <->> query`: one minus pg_trgm's `word_similarity(query, key)`, written with the key
    first, the form in which the GiST index returns the closest keys first."""

    arg_joiner = " <->> "
    template = "(%(expressions)s)"
    output_field = FloatField()


def uses_trigrams():
    """Return whether approximate matching is available (PostgreSQL, where pg_trgm is installed)."""
    return connection.vendor == "postgresql"


def _ordered_key():
    """Return the stored key in code point order, the order of the key index on PostgreSQL.

    SQLite compares text by its bytes, which is the same order.
    """
    if connection.vendor == "postgresql":
        return Collate(F("search_key"), "C")
    return F("search_key")


def _containing(page_queryset, ids, key, limit):
    """Return the rows to show of `ids` from `page_queryset`: at most `limit` of them, and
    whether more match.

    Rows whose key starts with the query key come first, in key order. The others are picked in
    the order of the MD5 of their key, as qc/search_ids.py selected them, and listed in key order.
    """
    starts = Q(search_key__startswith=key)
    rows = list(
        page_queryset.filter(pk__in=ids)
        .annotate(
            search_rank=Case(
                When(starts, then=Value(PREFIX)),
                default=Value(CONTAINS),
                output_field=IntegerField(),
            ),
            prefix_order=Case(When(starts, then=_ordered_key())),
        )
        .order_by("search_rank", "prefix_order", MD5("search_key"), "pk")[: limit + 1]
    )
    page_rows = rows[:limit]
    # Python compares strings by code point, the order of the key index.
    page_rows.sort(key=lambda row: (row.search_rank, row.search_key, row.pk))
    return page_rows, len(rows) > limit


def _similar(queryset, key, limit):
    """Return at most `limit` + 1 rows whose key is close to the query key (PostgreSQL only),
    closest first, then shorter keys first, then in key order.

    The GiST index (api/migrations/0004) returns the CLOSE_CANDIDATES closest keys, which are
    then put in that order. When the last row returned ties in distance with the farthest
    candidate, rows beyond the candidates could rank before it, so every close row that is no
    farther than that candidate is sorted.
    """
    close = close_rows(queryset, key)
    # Ordered by the distance alone, PostgreSQL walks the GiST index nearest first and stops
    # after the candidates. With more sort keys it computes the distance of every close row.
    count = max(CLOSE_CANDIDATES, limit + 1)
    candidates = list(close.order_by("search_distance")[:count])
    candidates.sort(key=_closeness)
    if len(candidates) < count:
        return candidates[: limit + 1]
    first_rows = candidates[: limit + 1]
    farthest = max(row.search_distance for row in candidates)
    if first_rows[-1].search_distance < farthest:
        return first_rows
    # All `count` candidates are at most `farthest` away, so every row farther than that ranks
    # after the first limit + 1. A word-similarity threshold of 1 - `farthest` lets the index
    # skip those rows; the margin keeps rows whose distance rounds to `farthest`.
    # NOTE: when most keys are equally close (a query such as BENX), this sorts all of them:
    # about 1 s for the scans of the `stretch` benchmark data.
    with _word_similarity_threshold(1 - farthest - SIMILARITY_MARGIN):
        ordered = close.order_by("search_distance", "key_length", _ordered_key(), "pk")
        return list(ordered[: limit + 1])


@contextmanager
def _word_similarity_threshold(threshold):
    """Raise pg_trgm's word-similarity threshold, which `<%` and its indexes compare with, to
    `threshold` inside the block (never lower it), and restore it after.

    The setting is local to a transaction, which the block opens or nests in. An error in the
    block rolls the setting back with the transaction or savepoint.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('pg_trgm.word_similarity_threshold'), "
                "set_config('pg_trgm.word_similarity_threshold', GREATEST(%s, "
                "current_setting('pg_trgm.word_similarity_threshold')::float8)::text, true)",
                [threshold],
            )
            previous = cursor.fetchone()[0]
        yield
        # Restored by hand, because in a nested block the transaction outlives it.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [previous]
            )


def close_rows(queryset, key):
    """Filter `queryset` to the rows whose key is close to `key`, annotated with
    `search_distance` (0 to 1, closest 0) and `key_length`."""
    indexed_key = _ClosenessKey(F("search_key"))
    return queryset.filter(_WordSimilar(Value(key), indexed_key)).annotate(
        search_distance=_WordDistance(indexed_key, Value(key)),
        key_length=Length("search_key"),
    )


def _closeness(row):
    # Python compares strings by code point, the order of the key index.
    return (row.search_distance, row.key_length, row.search_key, row.pk)


@dataclass
class KindResults:
    """The results of one kind (timepoints, sessions or scans), best first.

    `approximate` is set when no ID contains the query and the items are only close to it.
    """

    kind: str
    label: str
    items: list = field(default_factory=list)
    has_more: bool = False
    approximate: bool = False


@dataclass
class SearchResults:
    query: str
    key: str
    groups: list = field(default_factory=list)
    problem: str = ""

    @property
    def count(self):
        return sum(len(group.items) for group in self.groups)


def _find(kind, ids, key, limit):
    """Return the KindResults of one kind: the rows of `ids`, which contain the key, or else
    (on PostgreSQL) IDs close to it. Close matches are only a fallback, because datman IDs of
    one study share most of their trigrams, so every ID of the study is close to every other."""
    if ids:
        rows, has_more = _containing(kind.page_queryset, ids, key, limit)
        return KindResults(kind.name, kind.label, rows, has_more)
    if not uses_trigrams():
        return KindResults(kind.name, kind.label)
    rows = list(_similar(kind.page_queryset, key, limit))
    return KindResults(kind.name, kind.label, rows[:limit], len(rows) > limit, bool(rows))


@dataclass(frozen=True)
class _Kind:
    """One kind of result: the rows the user may see (`visible`), and the same rows with what
    the page shows loaded (`page_queryset`)."""

    name: str
    label: str
    visible: QuerySet
    page_queryset: QuerySet


def _kinds(user):
    timepoints = permissions.visible_timepoints(user)
    # A phantom's only session has the phantom's ID, so the timepoint result already covers it.
    sessions = permissions.visible_sessions(user).filter(timepoint__is_phantom=False)
    scans = permissions.visible_scans(user)
    return (
        _Kind(
            "timepoints",
            "Timepoints",
            timepoints,
            timepoints.select_related("study", "study_site__site"),
        ),
        _Kind(
            "sessions",
            "Sessions",
            sessions,
            sessions.select_related("timepoint__study", "timepoint__study_site__site"),
        ),
        _Kind(
            "scans",
            "Scans",
            scans,
            # The results show only the QC state, and not the sidecar, the widest column.
            with_qc_state(
                scans.select_related(
                    "scantype",
                    "session__timepoint__study",
                    "session__timepoint__study_site__site",
                ).defer("sidecar"),
                details=False,
            ),
        ),
    )


def search(user, text, *, limit=RESULTS_PER_KIND):
    """Search timepoints, sessions and scans the user may see; return `SearchResults`.

    Runs one query that finds the ids of every kind, whatever the number of matches. Then it
    runs one query per kind for its rows, or on PostgreSQL, when no ID of the kind contains the
    query, for the IDs closest to it. On SQLite a kind without a match needs no second query.
    """
    query = clean_query(text)
    key = search_key(query)
    results = SearchResults(query=query, key=key)
    if not key:
        results.problem = "Type part of a timepoint, session or scan ID."
        return results
    if len(key) < MIN_KEY_LENGTH:
        results.problem = (
            f"Type at least {MIN_KEY_LENGTH} letters or digits of an ID; {query!r} matches "
            f"too much."
        )
        return results
    kinds = _kinds(user)
    ids = search_ids.match_ids([(kind.name, kind.visible) for kind in kinds], key, limit)
    for kind in kinds:
        results.groups.append(_find(kind, ids[kind.name], key, limit))
    return results


# --- QC search: reviews and current states by filter ----------------------------------------


class QCSearchMode:
    CURRENT = "current"
    ALL = "all"


@dataclass(frozen=True)
class QCFilters:
    """The filters of the QC search page; None or empty means "any"."""

    mode: str = QCSearchMode.CURRENT
    study: object = None
    site: object = None
    tag: object = None
    states: tuple = ()
    comment: str = ""
    reviewer: str = ""
    reviewed_from: object = None
    reviewed_to: object = None
    include_phantoms: bool = False


_SCAN_RELATED = (
    "scantype",
    "session__timepoint__study",
    "session__timepoint__study_site__site",
)


def _current_states(user, filters, *, details=True):
    scans = with_qc_state(
        permissions.visible_scans(user).select_related(*_SCAN_RELATED).defer("sidecar"),
        details=details,
    )
    if filters.study is not None:
        scans = scans.filter(session__timepoint__study=filters.study)
    if filters.site is not None:
        scans = scans.filter(session__timepoint__study_site__site=filters.site)
    if filters.tag is not None:
        scans = scans.filter(scantype=filters.tag)
    if not filters.include_phantoms:
        scans = scans.filter(session__timepoint__is_phantom=False)
    if filters.states:
        states = Q(qc_state__in=filters.states)
        if QCState.NEW in filters.states:
            states |= Q(qc_state__isnull=True)
        scans = scans.filter(states)
    if filters.comment:
        scans = scans.filter(qc_comment__icontains=filters.comment)
    if filters.reviewer:
        scans = scans.filter(qc_reviewer__icontains=filters.reviewer)
    if filters.reviewed_from:
        scans = scans.filter(qc_reviewed_at__date__gte=filters.reviewed_from)
    if filters.reviewed_to:
        scans = scans.filter(qc_reviewed_at__date__lte=filters.reviewed_to)
    # A scan name starts with its session ID, so this order groups a session's scans together.
    # Timepoints come first because the database can walk the timepoints of a study or site in
    # name order (an index) and stop at the page's last scan. Scan-name order alone walked
    # every scan of the sites that sort earlier when the page was filtered by site.
    return scans.order_by("session__timepoint__name", "name")


def _all_decisions(user, filters):
    # NOTE: a linked scan's decisions are stored on its source scan, so they are listed under
    # the source scan, and only for users who may see the source scan.
    visible = permissions.visible_scans(user).filter(pk=OuterRef("scan_id"))
    reviews = ScanReview.objects.filter(Exists(visible)).select_related(
        "reviewer", *(f"scan__{path}" for path in _SCAN_RELATED)
    )
    if filters.study is not None:
        reviews = reviews.filter(scan__session__timepoint__study=filters.study)
    if filters.site is not None:
        reviews = reviews.filter(scan__session__timepoint__study_site__site=filters.site)
    if filters.tag is not None:
        reviews = reviews.filter(scan__scantype=filters.tag)
    if not filters.include_phantoms:
        reviews = reviews.filter(scan__session__timepoint__is_phantom=False)
    if filters.states:
        reviews = reviews.filter(state__in=filters.states)
    if filters.comment:
        reviews = reviews.filter(comment__icontains=filters.comment)
    if filters.reviewer:
        reviews = reviews.filter(reviewer__username__icontains=filters.reviewer)
    if filters.reviewed_from:
        reviews = reviews.filter(created_at__date__gte=filters.reviewed_from)
    if filters.reviewed_to:
        reviews = reviews.filter(created_at__date__lte=filters.reviewed_to)
    return reviews.order_by("-created_at", "-id")


def qc_search(user, filters):
    """Return the queryset the QC search shows for `filters`, limited to what the user may see.

    In CURRENT mode it yields scans annotated by `with_qc_state`, where a scan never reviewed
    has state None (new). In ALL mode it yields every ScanReview, newest first. `qc_row` turns
    an item of either mode into a row.
    """
    if filters.mode == QCSearchMode.ALL:
        return _all_decisions(user, filters)
    return _current_states(user, filters)


# The columns of a QC search row, in download order.
QC_ROW_COLUMNS = (
    "study",
    "site",
    "timepoint",
    "session",
    "scan",
    "tag",
    "series",
    "description",
    "phantom",
    "qc_state",
    "comment",
    "reviewer",
    "reviewed_at",
)


# The columns an export reads per scan, in the order `_export_row` takes them.
_EXPORT_SCAN_VALUES = (
    "session__timepoint__study__nickname",
    "session__timepoint__study_site__site__name",
    "session__timepoint__name",
    "session__timepoint__is_phantom",
    "session__number",
    "name",
    "scantype__tag",
    "series",
    "description",
)


def qc_export_rows(user, filters, *, chunk_size=2000):
    """Yield the rows of `qc_search(user, filters)` as dicts of QC_ROW_COLUMNS, for downloads.

    Reads column values rather than model instances. In CURRENT mode it reads the newest reviews
    of each chunk of `chunk_size` scans in one query, so the query count grows only with the
    number of chunks.
    """
    if filters.mode == QCSearchMode.ALL:
        values = [f"scan__{name}" for name in _EXPORT_SCAN_VALUES]
        reviews = _all_decisions(user, filters).values_list(
            *values, "state", "comment", "reviewer__username", "created_at"
        )
        for row in reviews.iterator(chunk_size=chunk_size):
            yield _qc_row(*row)
        return

    scans = _current_states(user, filters, details=False).values_list(
        *_EXPORT_SCAN_VALUES, "id", "source_id"
    )
    chunk = []
    for row in scans.iterator(chunk_size=chunk_size):
        chunk.append(row)
        if len(chunk) == chunk_size:
            yield from _current_export_rows(chunk)
            chunk = []
    yield from _current_export_rows(chunk)


def _current_export_rows(chunk):
    # The state comes from the same review as the comment, so a review saved while the export
    # runs cannot pair one review's state with another's comment.
    reviews = newest_reviews(source_id or scan_id for *_, scan_id, source_id in chunk)
    for *scan_values, scan_id, source_id in chunk:
        review = reviews.get(source_id or scan_id, (QCState.NEW.value, "", "", None))
        yield _qc_row(*scan_values, *review)


def _qc_row(
    study,
    site,
    timepoint,
    is_phantom,
    session_number,
    scan,
    tag,
    series,
    description,
    state,
    comment,
    reviewer,
    reviewed_at,
):
    return {
        "study": study,
        "site": site,
        "timepoint": timepoint,
        "session": timepoint if is_phantom else f"{timepoint}_{session_number:02d}",
        "scan": scan,
        "tag": tag,
        "series": series,
        "description": description,
        "phantom": is_phantom,
        "qc_state": str(state),
        "comment": comment,
        "reviewer": reviewer,
        "reviewed_at": reviewed_at,
    }


def qc_row(item):
    """Turn a scan from CURRENT mode or a ScanReview from ALL mode into a dict of QC_ROW_COLUMNS.

    Uses only what `qc_search` preloaded.
    """
    if isinstance(item, ScanReview):
        scan = item.scan
        state, comment = item.state, item.comment
        reviewer, reviewed_at = item.reviewer.username, item.created_at
    else:
        scan = item
        state, comment = item.qc_state or QCState.NEW.value, item.qc_comment or ""
        reviewer, reviewed_at = item.qc_reviewer or "", item.qc_reviewed_at
    session = scan.session
    timepoint = session.timepoint
    return _qc_row(
        timepoint.study.nickname,
        timepoint.study_site.site.name,
        timepoint.name,
        timepoint.is_phantom,
        session.number,
        scan.name,
        scan.scantype.tag,
        scan.series,
        scan.description,
        state,
        comment,
        reviewer,
        reviewed_at,
    )
