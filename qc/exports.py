"""QC decisions read back: datman's blacklist, checklist and subject metadata, CSV and JSON
writers, and the analysis table.

Every function takes the timepoints or scans to export from as a queryset, so a web view or
the API passes `accounts.permissions.visible_*(user)` and the `export_qc` command passes every
row. Each export runs a fixed number of queries and streams its rows (`iterator()`), so memory
and the query count do not grow with the size of a study. The metadata and table exports keep
one small entry per timepoint or subject in memory.

datman's formats (`datman.utils` reads them when no dashboard is configured):

* blacklist: a header line, then one line per blacklisted scan, `<file stem> <comment>`. datman
  splits each line on commas and whitespace, takes the first token as the file stem (the line is
  ignored unless it parses as one) and joins the rest with single spaces. So that a comment
  reads back unchanged, `datman_comment` writes it in that form: commas become semicolons and
  every run of whitespace (tabs and newlines included) becomes one space.
* checklist: one line per human timepoint, `qc_<TIMEPOINT>.html`. When every session of the
  timepoint is signed off, the usernames of the reviewers who signed them off follow. A line
  without a reviewer means "not reviewed".
* subject metadata: `{timepoint: [file stems of blacklisted scans]}` for every QC'd timepoint,
  as datman's `get_subject_metadata` returns it. A human timepoint is QC'd when it has sessions
  and all of them are signed off; a phantom always is.
"""

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Exists, OuterRef
from django.utils import timezone

from qc.models import QCState, with_qc_state
from studies.datman_ids import IdError, parse, parse_timepoint_id
from studies.models import ExpectedScan, Session

ITERATOR_CHUNK_SIZE = 2000
CSV_LINES_PER_CHUNK = 200
BLACKLIST_HEADER = "series reason"
CHECKLIST_EXTENSION = ".html"
# Cells that spreadsheet programs read as formulas start with one of these.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DATMAN_SEPARATORS = re.compile(r"[,\s]+")
_WHITESPACE = re.compile(r"\s+")
# A stem that datman's reader would split into several tokens cannot be written in its format.
_UNSAFE_STEM = re.compile(r"[,\s]")
MAX_REASONS_SHOWN = 3


class ExportError(ValueError):
    """An export request that cannot be served; the message names the value and the fix."""


# --- Writers --------------------------------------------------------------------------------


class _LineBuffer:
    """A file-like object whose write() returns the text, for csv.writer in a generator."""

    def write(self, text):
        return text


def _neutralise_formula(value):
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_chunks(columns, rows, *, neutralise_formulas=False):
    """Yield CSV text: a header of `columns`, then one line per dict in `rows`.

    With `neutralise_formulas`, text cells that a spreadsheet would run as a formula get a
    leading `'`. Use it for files people open, not for files pipelines read.
    """
    writer = csv.writer(_LineBuffer())
    yield writer.writerow(columns)
    # Lines go out in batches: one chunk per line made the response machinery cost more than
    # writing the CSV.
    lines = []
    for row in rows:
        values = [_csv_value(row[column]) for column in columns]
        if neutralise_formulas:
            values = [_neutralise_formula(value) for value in values]
        lines.append(writer.writerow(values))
        if len(lines) == CSV_LINES_PER_CHUNK:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def json_array_chunks(rows):
    """Yield a JSON array of the dicts in `rows`, one element per line."""
    yield "["
    separator = "\n"
    for row in rows:
        yield separator + json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"


def json_object_chunks(pairs):
    """Yield a JSON object of the (key, value) pairs, one member per line."""
    yield "{"
    separator = "\n"
    for key, value in pairs:
        member = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
        yield f"{separator}{json.dumps(key, ensure_ascii=False)}: {member}"
        separator = ",\n"
    yield "\n}\n"


def datman_comment(text):
    """Return a comment in the form datman's blacklist reader gives back unchanged."""
    return _WHITESPACE.sub(" ", (text or "").replace(",", ";")).strip()


# --- Subject filter -------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectFilter:
    """A timepoint, and optionally one of its sessions, to limit an export to."""

    timepoint: str
    session_number: int | None = None

    @classmethod
    def parse(cls, text):
        """Parse a timepoint, session or phantom ID; raise ExportError for any other text."""
        try:
            ident = parse(text).upper()
        except IdError as error:
            raise ExportError(
                f"{error} The subject is a timepoint ID (STUDY_SITE_SUBJECT_TIMEPOINT), a session "
                f"ID or a phantom ID."
            ) from error
        if ident.is_phantom or not ident.session:
            return cls(ident.timepoint_id)
        try:
            number = ident.session_number
        except IdError as error:
            raise ExportError(str(error)) from error
        return cls(ident.timepoint_id, number)

    def apply(self, scans):
        scans = scans.filter(session__timepoint__name=self.timepoint)
        if self.session_number is not None:
            scans = scans.filter(session__number=self.session_number)
        return scans


# --- Blacklist ------------------------------------------------------------------------------

BLACKLIST_COLUMNS = (
    "timepoint",
    "session",
    "scan",
    "file_stem",
    "bids_name",
    "comment",
    "reviewer",
    "reviewed_at",
)


def blacklisted_scans(scans, study, *, subject=None):
    """Return an iterator over the study's scans whose current state is blacklisted, by name."""
    scans = scans.filter(session__timepoint__study=study)
    if subject is not None:
        scans = subject.apply(scans)
    scans = (
        with_qc_state(scans.select_related("session__timepoint"))
        .filter(qc_state=QCState.BLACKLISTED)
        .order_by("name")
    )
    return scans.iterator(chunk_size=ITERATOR_CHUNK_SIZE)


def blacklist_rows(scans):
    for scan in scans:
        timepoint = scan.session.timepoint
        yield {
            "timepoint": timepoint.name,
            "session": _session_name(timepoint.name, timepoint.is_phantom, scan.session.number),
            "scan": scan.name,
            "file_stem": scan.file_stem,
            "bids_name": scan.bids_name,
            "comment": scan.qc_comment or "",
            "reviewer": scan.qc_reviewer or "",
            "reviewed_at": scan.qc_reviewed_at,
        }


def blacklist_pairs(scans, *, bids=False):
    """Yield (file stem or BIDS name, comment) per blacklisted scan, as datman's
    `read_blacklist` returns them; with `bids`, scans without a BIDS name are left out."""
    for scan in scans:
        key = scan.bids_name if bids else scan.file_stem
        if key:
            yield key, scan.qc_comment or ""


def blacklist_datman_lines(scans, *, on_skip=None):
    """Yield datman's blacklist file: a header, then `<file stem> <comment>` lines.

    A scan whose file stem contains whitespace or a comma cannot be written so that datman
    reads it back. Such a scan is left out and passed to `on_skip(scan)`.
    """
    yield BLACKLIST_HEADER + "\n"
    for scan in scans:
        if not scan.file_stem or _UNSAFE_STEM.search(scan.file_stem):
            if on_skip is not None:
                on_skip(scan)
            continue
        comment = datman_comment(scan.qc_comment)
        yield f"{scan.file_stem} {comment}".rstrip() + "\n"


# --- Checklist ------------------------------------------------------------------------------

CHECKLIST_COLUMNS = ("timepoint", "bids_subject", "bids_session", "signed_off", "reviewers")


@dataclass
class ChecklistEntry:
    """The sign-off status of one human timepoint and the reviewers who signed it off."""

    timepoint: str
    bids_name: str
    bids_session: str
    signed_off: bool = True
    reviewers: list = field(default_factory=list)

    @property
    def reviewer_text(self):
        """The reviewers joined by spaces when the timepoint is QC'd, else ''."""
        return " ".join(self.reviewers) if self.signed_off else ""

    @property
    def bids_key(self):
        if not self.bids_name:
            return ""
        key = f"sub-{self.bids_name}"
        return f"{key}_ses-{self.bids_session}" if self.bids_session else key


def checklist_entries(timepoints, study):
    """Yield a ChecklistEntry per human timepoint of the study that has sessions, by name.

    One query: the sessions with their sign-off reviewer, grouped by timepoint as they stream.
    """
    sessions = (
        Session.objects.filter(
            timepoint__in=timepoints.filter(study=study, is_phantom=False).values("pk")
        )
        .order_by("timepoint__name", "number")
        .values_list(
            "timepoint__name",
            "timepoint__bids_name",
            "timepoint__bids_session",
            "sign_off__reviewer__username",
        )
    )
    entry = None
    for name, bids_name, bids_session, reviewer in sessions.iterator(
        chunk_size=ITERATOR_CHUNK_SIZE
    ):
        if entry is None or entry.timepoint != name:
            if entry is not None:
                yield entry
            entry = ChecklistEntry(name, bids_name, bids_session)
        if reviewer is None:
            entry.signed_off = False
        elif reviewer not in entry.reviewers:
            entry.reviewers.append(reviewer)
    if entry is not None:
        yield entry


def checklist_rows(entries):
    for entry in entries:
        yield {
            "timepoint": entry.timepoint,
            "bids_subject": entry.bids_name,
            "bids_session": entry.bids_session,
            "signed_off": entry.signed_off,
            "reviewers": entry.reviewer_text,
        }


def checklist_pairs(entries, *, bids=False):
    """Yield (timepoint or BIDS key, reviewers or '') as datman's `read_checklist` returns."""
    for entry in entries:
        key = entry.bids_key if bids else entry.timepoint
        if key:
            yield key, entry.reviewer_text


def checklist_datman_lines(entries):
    for entry in entries:
        line = f"qc_{entry.timepoint}{CHECKLIST_EXTENSION} {entry.reviewer_text}"
        yield line.rstrip() + "\n"


# --- Subject metadata -----------------------------------------------------------------------

METADATA_COLUMNS = ("timepoint", "file_stem", "comment")


def _study_timepoints(timepoints, study, *, include_phantoms=True):
    timepoints = timepoints.filter(study=study)
    if not include_phantoms:
        timepoints = timepoints.filter(is_phantom=False)
    return timepoints


def _session_status(timepoints):
    """Return {timepoint name: (is_phantom, [(session number, signed off)])}."""
    rows = (
        Session.objects.filter(timepoint__in=timepoints.values("pk"))
        .order_by("timepoint__name", "number")
        .values_list("timepoint__name", "timepoint__is_phantom", "number", "sign_off__id")
    )
    status = {}
    for name, is_phantom, number, sign_off_id in rows.iterator(chunk_size=ITERATOR_CHUNK_SIZE):
        status.setdefault(name, (is_phantom, []))[1].append((number, sign_off_id is not None))
    return status


def qcd_timepoints(timepoints, study, *, allow_partial=False):
    """Return the names of the study's QC'd timepoints (every one with `allow_partial`)."""
    status = _session_status(timepoints.filter(study=study))
    return sorted(
        name
        for name, (is_phantom, sessions) in status.items()
        if allow_partial or is_phantom or all(signed for _number, signed in sessions)
    )


def subject_metadata(timepoints, scans, study, *, allow_partial=False):
    """Return {timepoint: [(file stem, comment) of blacklisted scans]} for the QC'd timepoints.

    Two queries: the sessions' sign-off status and the study's blacklisted scans.
    """
    names = qcd_timepoints(timepoints, study, allow_partial=allow_partial)
    metadata = {name: [] for name in names}
    blacklisted = blacklisted_scans(scans, study)
    for scan in blacklisted:
        entries = metadata.get(scan.session.timepoint.name)
        if entries is not None:
            entries.append((scan.file_stem, scan.qc_comment or ""))
    return metadata


def metadata_pairs(metadata):
    for name, entries in metadata.items():
        yield name, [stem for stem, _comment in entries]


def metadata_rows(metadata):
    for name, entries in metadata.items():
        for stem, comment in entries:
            yield {"timepoint": name, "file_stem": stem, "comment": comment}


# --- Analysis table -------------------------------------------------------------------------

TABLE_COLUMNS = (
    "study",
    "site",
    "subject",
    "timepoint",
    "session",
    "scan",
    "tag",
    "series",
    "qc_state",
    "reviewer",
    "reviewed_on",
    "comment",
    "subject_included",
    "exclusion_reason",
)


def subject_of(timepoint_name):
    """Return the subject ID (STUDY_SITE_SUBJECT) of a timepoint; a phantom is its own subject."""
    try:
        return parse_timepoint_id(timepoint_name).upper().subject_id
    except IdError:
        return timepoint_name


@dataclass
class SubjectInclusion:
    """The reasons a subject is excluded from analysis; none means it is included."""

    reasons: list = field(default_factory=list)

    @property
    def included(self):
        return not self.reasons

    @property
    def reason_text(self):
        shown = self.reasons[:MAX_REASONS_SHOWN]
        more = len(self.reasons) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def subject_inclusion(timepoints, scans, study, *, include_phantoms=False):
    """Return {subject ID: SubjectInclusion} for every subject of the study.

    A subject is included when every session of every one of its timepoints is signed off and
    none of its scans is blacklisted with a required tag. A tag is required when the study
    site expects 1 or more scans of it (the phantom count for phantoms). Flagged scans do not
    exclude a subject.
    Two queries.
    """
    inclusion = defaultdict(SubjectInclusion)
    timepoints = _study_timepoints(timepoints, study, include_phantoms=include_phantoms)
    status = _session_status(timepoints)
    for name, (is_phantom, sessions) in status.items():
        subject = inclusion[subject_of(name)]
        for number, signed_off in sessions:
            if not signed_off:
                session = _session_name(name, is_phantom, number)
                subject.reasons.append(f"session {session} is not signed off")

    required = ExpectedScan.objects.filter(
        study_site_id=OuterRef("session__timepoint__study_site_id"),
        scantype_id=OuterRef("scantype_id"),
    )
    blacklisted = (
        with_qc_state(scans.filter(session__timepoint__in=timepoints.values("pk")))
        .filter(qc_state=QCState.BLACKLISTED)
        .annotate(
            required_for_humans=Exists(required.filter(count__gt=0)),
            required_for_phantoms=Exists(required.filter(phantom_count__gt=0)),
        )
        .order_by("name")
        .values_list(
            "session__timepoint__name",
            "session__timepoint__is_phantom",
            "name",
            "scantype__tag",
            "required_for_humans",
            "required_for_phantoms",
        )
    )
    for name, is_phantom, scan, tag, for_humans, for_phantoms in blacklisted.iterator(
        chunk_size=ITERATOR_CHUNK_SIZE
    ):
        if for_phantoms if is_phantom else for_humans:
            inclusion[subject_of(name)].reasons.append(f"{tag} scan {scan} is blacklisted")
    return inclusion


def table_rows(timepoints, scans, study, *, include_phantoms=False):
    """Yield the analysis table of the study: one dict of TABLE_COLUMNS per scan.

    Three queries whatever the size of the study (see `subject_inclusion`).
    """
    inclusion = subject_inclusion(timepoints, scans, study, include_phantoms=include_phantoms)
    timepoints = _study_timepoints(timepoints, study, include_phantoms=include_phantoms)
    scans = scans.filter(session__timepoint__in=timepoints.values("pk"))
    scans = (
        with_qc_state(scans.select_related("scantype", "session__timepoint__study_site__site"))
        .order_by("session__timepoint__name", "session__number", "series", "name")
        .iterator(chunk_size=ITERATOR_CHUNK_SIZE)
    )
    for scan in scans:
        timepoint = scan.session.timepoint
        subject = subject_of(timepoint.name)
        status = inclusion.get(subject) or SubjectInclusion()
        yield {
            "study": study.nickname,
            "site": timepoint.study_site.site.name,
            "subject": subject,
            "timepoint": timepoint.name,
            "session": _session_name(timepoint.name, timepoint.is_phantom, scan.session.number),
            "scan": scan.name,
            "tag": scan.scantype.tag,
            "series": scan.series,
            "qc_state": scan.qc_state or QCState.NEW.value,
            "reviewer": scan.qc_reviewer or "",
            "reviewed_on": _local_date(scan.qc_reviewed_at),
            "comment": scan.qc_comment or "",
            "subject_included": status.included,
            "exclusion_reason": status.reason_text,
        }


def _local_date(moment):
    return timezone.localtime(moment).date() if moment else None


def _session_name(timepoint_name, is_phantom, number):
    return timepoint_name if is_phantom else f"{timepoint_name}_{number:02d}"
