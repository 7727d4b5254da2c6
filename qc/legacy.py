"""Import datman's legacy QC files, `metadata/checklist.csv` and `metadata/blacklist.csv`.

Both files are read the way datman reads them:

* blacklist: each line is split on commas and whitespace. The first token must be a datman file
  stem (`<session ID>_<TAG>_<SERIES>_<DESCRIPTION>`), and the rest joined by spaces is the
  reason.
  A header line (`series reason`, in either the tab or the comma form) is skipped.
* checklist: `qc_<ID>.html` or `qc_<ID>.pdf` followed by the reviewer's initials or a comment;
  a line without them was not reviewed. The ID is a timepoint ID (every session of the timepoint
  is signed off) or a session ID (that session only).

In both files the first line for a scan or session wins. Decisions go through
`qc.services.review_scan` and `qc.services.sign_off_session`, and a decision made in qcdash is
never replaced: a scan with any review, or a session already signed off, is left alone and
reported as already decided.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from django.db import transaction

from qc import services
from qc.models import QCState, ScanReview, SessionSignOff, with_qc_state
from studies.datman_ids import IdError, ScanName, parse, parse_filename
from studies.models import Scan, Session, Timepoint

logger = logging.getLogger(__name__)

_BLACKLIST_SEPARATORS = re.compile(r"[,\s]+")
_CHECKLIST_NAME = re.compile(r"qc_(?P<id>.+)\.(?:html|pdf)", re.IGNORECASE)
BLACKLIST_HEADER_TOKEN = "series"  # noqa: S105 - a column name, not a password
# The comment a blacklisted scan gets when its legacy line gave no reason (a comment is
# required to blacklist).
NO_REASON_COMMENT = "Blacklisted in datman's blacklist.csv, which gave no reason."


class Outcome(Enum):
    IMPORTED = "imported"
    ALREADY_DECIDED = "already decided"
    UNKNOWN = "unknown"
    UNPARSEABLE = "unparseable"
    NOT_REVIEWED = "not reviewed"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class RowReport:
    """The outcome of one line of a legacy file."""

    source: str
    line_number: int
    key: str
    outcome: Outcome
    message: str

    def __str__(self):
        return f"{self.source} line {self.line_number}: {self.outcome.value}: {self.message}"


@dataclass
class LegacyImportResult:
    study: str
    dry_run: bool = False
    reports: list = field(default_factory=list)

    def counts(self, source):
        return Counter(report.outcome for report in self.reports if report.source == source)

    def summary(self):
        """Return one line of counts per file, for example `blacklist: 2 imported, 1 unknown`."""
        lines = []
        for source in ("checklist", "blacklist"):
            counts = self.counts(source)
            if not counts:
                continue
            parts = [f"{counts[outcome]} {outcome.value}" for outcome in Outcome if counts[outcome]]
            lines.append(f"{source}: {', '.join(parts)}")
        verb = "Dry run of the legacy QC import of" if self.dry_run else "Imported legacy QC of"
        return f"{verb} {self.study}: " + ("; ".join(lines) or "no rows")


def import_legacy_qc(study, *, user, checklist_lines=(), blacklist_lines=(), dry_run=False):
    """Import the lines of legacy checklist and blacklist files into `study` as `user`.

    Returns a LegacyImportResult with one RowReport per non-blank, non-header line. With
    `dry_run` everything is rolled back at the end, so the reports show what an import would do.
    """
    result = LegacyImportResult(study=study.nickname, dry_run=dry_run)
    with transaction.atomic():
        _import_checklist(study, user, checklist_lines, result)
        _import_blacklist(study, user, blacklist_lines, result)
        if dry_run:
            transaction.set_rollback(True)
    logger.info("%s (as %s)", result.summary(), user)
    return result


# --- Blacklist ------------------------------------------------------------------------------


def _import_blacklist(study, user, lines, result):
    seen = set()
    for number, line in enumerate(lines, start=1):
        tokens = [token for token in _BLACKLIST_SEPARATORS.split(line.strip()) if token]
        if not tokens:
            continue
        if number == 1 and tokens[0].lower() == BLACKLIST_HEADER_TOKEN:
            continue

        def report(outcome, message, key=tokens[0], line_number=number):
            result.reports.append(RowReport("blacklist", line_number, key, outcome, message))

        try:
            parsed = parse_filename(tokens[0])
        except IdError as error:
            report(Outcome.UNPARSEABLE, f"{error} datman ignores this line too.")
            continue
        name = ScanName(parsed.ident.upper(), parsed.tag, parsed.series, parsed.description)
        scan_name = name.scan_name
        if scan_name in seen:
            report(Outcome.DUPLICATE, f"{scan_name} was listed before; the first line wins.")
            continue
        seen.add(scan_name)

        scan = (
            Scan.objects.filter(name=scan_name, session__timepoint__study=study)
            .select_related("session__timepoint__study")
            .first()
        )
        if scan is None:
            report(Outcome.UNKNOWN, f"No scan {scan_name} in study {study.nickname}.")
            continue
        newest = ScanReview.objects.newest_for(scan.review_target_id).first()
        if newest is not None:
            report(
                Outcome.ALREADY_DECIDED,
                f"{scan_name} is already {newest.state} in qcdash ({newest.reviewer}, "
                f"{newest.created_at:%Y-%m-%d}); left as it is.",
            )
            continue
        comment = " ".join(tokens[1:]) or NO_REASON_COMMENT
        services.review_scan(scan, reviewer=user, state=QCState.BLACKLISTED, comment=comment)
        report(Outcome.IMPORTED, f"{scan_name} blacklisted: {comment}")


# --- Checklist ------------------------------------------------------------------------------


def _import_checklist(study, user, lines, result):
    seen = set()
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue

        def report(outcome, message, key=tokens[0], line_number=number):
            result.reports.append(RowReport("checklist", line_number, key, outcome, message))

        match = _CHECKLIST_NAME.fullmatch(tokens[0])
        if match is None:
            report(
                Outcome.UNPARSEABLE,
                f"{tokens[0]!r} is not a checklist entry; expected qc_<ID>.html or qc_<ID>.pdf.",
            )
            continue
        try:
            ident = parse(match["id"]).upper()
        except IdError as error:
            report(Outcome.UNPARSEABLE, str(error))
            continue
        note = " ".join(tokens[1:])
        if not note:
            report(Outcome.NOT_REVIEWED, f"{match['id']} has no reviewer, so it was not reviewed.")
            continue

        key = ident.session_id if ident.session and not ident.is_phantom else ident.timepoint_id
        if key in seen:
            report(Outcome.DUPLICATE, f"{key} was listed before; the first line wins.")
            continue
        seen.add(key)
        outcome, message = _sign_off_listed(study, user, ident, note)
        report(outcome, message)


def _sign_off_listed(study, user, ident, note):
    timepoint = Timepoint.objects.filter(name=ident.timepoint_id, study=study).first()
    if timepoint is None:
        return Outcome.UNKNOWN, f"No timepoint {ident.timepoint_id} in study {study.nickname}."

    sessions = Session.objects.filter(timepoint=timepoint).select_related("timepoint__study")
    if ident.session and not ident.is_phantom:
        try:
            sessions = sessions.filter(number=ident.session_number)
        except IdError as error:
            return Outcome.UNPARSEABLE, str(error)
    sessions = list(sessions.order_by("number"))
    if not sessions:
        return Outcome.UNKNOWN, f"{ident.session_id} has no session in qcdash to sign off."

    signed, decided = [], []
    for session in sessions:
        problem = _sign_off_problem(session)
        if problem:
            decided.append(problem)
            continue
        new_scans = services.new_scans(session)
        services.sign_off_session(
            session, reviewer=user, approve_scan_ids=[scan.pk for scan in new_scans]
        )
        signed.append(f"{session.name} ({len(new_scans)} new scans approved)")

    if not signed:
        return Outcome.ALREADY_DECIDED, "; ".join(decided) + "; left as it is."
    message = f"signed off {', '.join(signed)}; legacy note: {note}"
    if decided:
        message += f"; left alone: {'; '.join(decided)}"
    return Outcome.IMPORTED, message


def _sign_off_problem(session):
    """Return why the session must be left alone, or '' when it may be signed off."""
    existing = SessionSignOff.objects.filter(session=session).select_related("reviewer").first()
    if existing is not None:
        return (
            f"{session.name} was already signed off by {existing.reviewer} on "
            f"{existing.created_at:%Y-%m-%d}"
        )
    # A scan a person put back to new keeps that decision: signing off would approve it.
    reset = (
        with_qc_state(Scan.objects.filter(session=session))
        .filter(qc_state=QCState.NEW)
        .values_list("name", flat=True)
    )
    reset = list(reset)
    if reset:
        return f"{session.name} has scans a reviewer set back to new ({', '.join(reset)})"
    return ""
