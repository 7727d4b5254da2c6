"""Protocol-compliance actions: load gold standards, compute and store header diffs, resolve
deviations, dismiss missing-scan warnings and link scans shared between studies.

Each function that writes runs in a transaction. Decisions by reviewers (deviation resolutions,
dismissals) are new rows with an audit `QCEvent` in the same transaction.
"""

import hashlib
import json
import logging
from collections import Counter, defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from qc import compliance_selectors
from qc.compliance import (
    BVAL_FIELD,
    Comparison,
    ComparisonSettings,
    HeaderDiffStatus,
    compare_headers,
    converter_version,
    parse_bvals,
    repaired_sidecar,
)
from qc.models import (
    DeviationDecision,
    DeviationResolution,
    GoldStandard,
    HeaderDiff,
    MissingScanDismissal,
    QCEvent,
    QCEventKind,
    SidecarRepair,
)
from qc.services import QCError, clean_comment
from studies import datman_ids
from studies.importer import read_sidecar
from studies.models import (
    ExpectedScan,
    HeaderComparisonSettings,
    Scan,
    Scantype,
    Session,
    StudySite,
    Timepoint,
)

logger = logging.getLogger(__name__)

# NOTE: datman lets a study rename this folder in its `Paths` config (key std). qcdash does not
# store that setting yet, so standards in a renamed folder must be loaded with --path.
STANDARDS_FOLDER = Path("metadata", "standards")

# Part of every diff fingerprint. Raise it when the comparison rules change, so every stored
# diff becomes outdated and is computed again.
COMPARISON_VERSION = 1

DIFFUSION_QC_TYPE = "dti"
# Sessions compared in one transaction. Their rows stay locked until it commits, so a batch is
# kept small enough not to hold up a reviewer's sign-off for long.
SESSIONS_PER_BATCH = 50
# Rows per UPDATE when stored diffs are rewritten. bulk_update writes one CASE branch per row
# into every column, so PostgreSQL's work per statement grows with the square of the rows.
DIFFS_PER_UPDATE = 500
# The HeaderDiff fields that a comparison sets.
DIFF_VALUE_FIELDS = (
    "status",
    "diff",
    "deviating_fields",
    "scan_converter",
    "standard_converter",
    "fingerprint",
    "computed_at",
    "is_current",
)


class ComplianceError(QCError):
    """A compliance action that cannot be done; the message names the value and the fix."""


# --- Gold standards ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StandardIssue:
    """A file in the standards folder that was skipped (`is_skipped`) or loaded with a warning."""

    path: str
    message: str
    is_skipped: bool = True

    def __str__(self):
        level = "SKIPPED" if self.is_skipped else "WARNING"
        return f"{level} {self.path}: {self.message}"


@dataclass
class StandardsLoadResult:
    """Outcome of loading a study's gold standards: one line per standard file, and the issues."""

    study: str
    folder: Path
    dry_run: bool = False
    lines: list = field(default_factory=list)
    issues: list = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def skipped(self):
        return [issue for issue in self.issues if issue.is_skipped]

    def summary(self):
        """Return one line of counts, for example `Gold standards of DEMO: 2 created, ...`."""
        counts = self.counts
        verb = "Dry run of the gold standards of" if self.dry_run else "Gold standards of"
        return (
            f"{verb} {self.study}: {counts['created']} created, {counts['replaced']} replaced "
            f"by a new version, {counts['unchanged']} unchanged, {len(self.skipped)} skipped"
        )


@dataclass
class _StandardFile:
    path: Path
    relative: str
    name: datman_ids.ScanName
    study_site: StudySite
    scantype: Scantype
    sidecar: dict
    bvals: list | None


def load_gold_standards(study, *, folder=None, dry_run=False):
    """Load the gold standards in the study's `metadata/standards/` folder (or `folder`).

    Every `.json` file with a datman name is a standard for the site in its ID and its tag,
    and a `.bval` file with the same stem gives its b-values. Files in sub-folders are read too.
    A standard whose contents equal the newest stored standard of its site and tag is left
    unchanged. Different contents make a new standard, and the old one is kept. A file that
    cannot be used is reported in `issues` and skipped. Return a StandardsLoadResult.
    Raise ComplianceError when the folder does not exist.
    """
    root = study.archive_root.absolute()
    folder = Path(folder).absolute() if folder else root / STANDARDS_FOLDER
    if not folder.is_dir():
        raise ComplianceError(
            f"Gold standard folder {folder} of study {study.nickname} not found. Copy the "
            f"sidecar of a known-good series there under its datman name, or pass the folder "
            f"with --path."
        )
    result = StandardsLoadResult(study=study.nickname, folder=folder, dry_run=dry_run)
    reader = _StandardsReader(study, root, result)
    chosen = reader.read(folder)

    with transaction.atomic():
        for standard_file in chosen:
            _store_standard(study, standard_file, result)
        if dry_run:
            transaction.set_rollback(True)
    logger.info("gold standards of study %s loaded from %s: %s", study, folder, result.summary())
    return result


class _StandardsReader:
    """Reads and checks the files of a standards folder, reporting every problem."""

    def __init__(self, study, root, result):
        self.study = study
        self.root = root
        self.result = result
        self.study_sites = _study_sites_by_code(study)
        self.scantypes = {scantype.tag: scantype for scantype in Scantype.objects.all()}
        self.expected = set(
            ExpectedScan.objects.filter(study_site__study=study).values_list(
                "study_site_id", "scantype_id"
            )
        )

    def read(self, folder):
        """Return the standard files to store, one per site and tag."""
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        files = [path for path in files if not path.name.startswith(".")]
        json_stems = {path.with_suffix("") for path in files if path.suffix == ".json"}
        by_key = defaultdict(list)
        for path in files:
            if path.suffix == ".bval" and path.with_suffix("") not in json_stems:
                self.report(
                    path,
                    "a .bval file without a .json sidecar of the same name beside it; a gold "
                    "standard is the sidecar, with its .bval for diffusion. Add the sidecar or "
                    "remove the file.",
                )
            if path.suffix != ".json":
                continue
            standard_file = self._read_file(path)
            if standard_file is not None:
                key = (standard_file.study_site.site_id, standard_file.scantype.pk)
                by_key[key].append(standard_file)
        chosen = [self._choose(files) for files in by_key.values()]
        return sorted(chosen, key=lambda standard_file: standard_file.relative)

    def relative(self, path):
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def report(self, path, message, *, is_skipped=True):
        self.result.issues.append(StandardIssue(self.relative(path), message, is_skipped))

    def _read_file(self, path):
        try:
            name = datman_ids.parse_filename(path.name)
        except datman_ids.IdError as error:
            self.report(path, f"{error} Rename it to the datman name of the series it copies.")
            return None
        ident = name.ident.upper()
        study_site = self.study_sites.get((ident.study, ident.site))
        if study_site is None:
            known = ", ".join(f"{code} at {site}" for code, site in sorted(self.study_sites))
            self.report(
                path,
                f"study code {ident.study} and site {ident.site} match no site of study "
                f"{self.study.nickname} (its codes and sites: {known or 'none'}). Rename the "
                f"file, or move it to the standards of its own study.",
            )
            return None
        scantype = self.scantypes.get(name.tag)
        if scantype is None:
            self.report(
                path,
                f"tag {name.tag} is not a known scan tag. Define it in ExportSettings of "
                f"datman's main config and run sync_config, or fix the file name.",
            )
            return None

        sidecar, error = read_sidecar(path, self.relative(path))
        if error:
            self.report(path, f"{error} Fix the file or copy the sidecar again.")
            return None
        bvals = self._read_bvals(path)
        if bvals is False:
            return None

        if (study_site.pk, scantype.pk) not in self.expected:
            self.report(
                path,
                f"tag {name.tag} is not expected at site {ident.site}, so no scan will be "
                f"compared with this standard until it is added to ExportInfo.",
                is_skipped=False,
            )
        if bvals is None and scantype.qc_type == DIFFUSION_QC_TYPE:
            self.report(
                path,
                f"{name.tag} is a diffusion tag, but the standard has no .bval file beside it, "
                f"so the b-values of its scans cannot be checked. Add the .bval file.",
                is_skipped=False,
            )
        return _StandardFile(path, self.relative(path), name, study_site, scantype, sidecar, bvals)

    def _read_bvals(self, path):
        """Return the b-values beside `path`, None when there is no .bval, False when invalid."""
        bval_path = path.with_suffix(".bval")
        if not bval_path.is_file():
            return None
        try:
            return parse_bvals(bval_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            self.report(
                bval_path,
                f"the b-values cannot be read ({error}), so the standard was skipped. Copy the "
                f".bval file of the series again.",
            )
            return False

    def _choose(self, files):
        """Pick the newest file (by modification time) when a site and tag have several."""
        if len(files) == 1:
            return files[0]
        files = sorted(files, key=lambda item: (item.path.stat().st_mtime, item.relative))
        newest = files[-1]
        others = ", ".join(item.relative for item in files[:-1])
        self.report(
            newest.path,
            f"several standards for {newest.name.tag} at site {newest.name.ident.site.upper()}; "
            f"this newest file was used and {others} ignored. Remove the files that no "
            f"longer apply.",
            is_skipped=False,
        )
        return newest


def _study_sites_by_code(study):
    """Map (study code, site name), upper case, to the study's StudySite, alternate codes too."""
    study_sites = {}
    rows = (
        StudySite.objects.filter(study=study).select_related("site").prefetch_related("alt_codes")
    )
    for study_site in rows:
        for code in [study_site.code, *(alt.code for alt in study_site.alt_codes.all())]:
            study_sites[(code.upper(), study_site.site.name.upper())] = study_site
    return study_sites


def _store_standard(study, standard_file, result):
    site_id = standard_file.study_site.site_id
    newest = (
        GoldStandard.objects.filter(study=study, site_id=site_id, scantype=standard_file.scantype)
        .newest_first()
        .first()
    )
    label = (
        f"{standard_file.relative} ({standard_file.study_site.site.name} "
        f"{standard_file.scantype.tag})"
    )
    if (
        newest is not None
        and newest.sidecar == standard_file.sidecar
        and newest.bvals == standard_file.bvals
    ):
        result.counts["unchanged"] += 1
        result.lines.append(f"unchanged {label}")
        return
    GoldStandard.objects.create(
        study=study,
        site_id=site_id,
        scantype=standard_file.scantype,
        sidecar=standard_file.sidecar,
        bvals=standard_file.bvals,
        source_path=standard_file.relative,
    )
    outcome = "created" if newest is None else "replaced"
    result.counts[outcome] += 1
    result.lines.append(
        f"created {label}" if newest is None else f"new version {label}; the previous one is kept"
    )


# --- Header diffs -----------------------------------------------------------------------------


@dataclass
class DiffRunResult:
    """Outcome of a header diff run: counts by status, diffs left as they were, and warnings."""

    study: str
    dry_run: bool = False
    sessions: int = 0
    counts: Counter = field(default_factory=Counter)
    warnings: list = field(default_factory=list)

    def warn(self, message):
        """Record a configuration warning once per run."""
        if message not in self.warnings:
            self.warnings.append(message)
            logger.warning("header diffs of study %s: %s", self.study, message)

    @property
    def computed(self):
        return sum(self.counts[status] for status in HeaderDiffStatus.values)

    def summary(self):
        """Return one line, for example `Header diffs of DEMO: 3 computed (2 match, ...`."""
        by_status = ", ".join(
            f"{self.counts[status.value]} {status.label.lower()}" for status in HeaderDiffStatus
        )
        verb = "Dry run of the header diffs of" if self.dry_run else "Header diffs of"
        return (
            f"{verb} {self.study}: {self.sessions} sessions, {self.computed} computed "
            f"({by_status}), {self.counts['up_to_date']} up to date, "
            f"{len(self.warnings)} warnings"
        )


def fingerprint(standard, settings, check_bvals):
    """Hash the inputs of a comparison other than the scan: standard, settings, rule version."""
    payload = {
        "version": COMPARISON_VERSION,
        "standard": standard.pk if standard else None,
        "settings": settings.as_json(),
        "bvals": check_bvals,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class _ComparisonContext:
    """The newest gold standards and the comparison settings of one study, by site."""

    def __init__(self, study):
        self.study = study
        self.standards = {}
        for standard in GoldStandard.objects.filter(study=study).newest_first():
            self.standards.setdefault((standard.site_id, standard.scantype_id), standard)
        rows = HeaderComparisonSettings.objects.filter(study=study)
        levels = {row.site_id: (row.ignored_fields, row.tolerances) for row in rows}
        self.study_level = levels.pop(None, None)
        self.site_levels = levels
        self.settings_by_site = {}
        self.fingerprints = {}

    def fingerprint_for(self, standard, site_id, check_bvals):
        """Return `fingerprint` for a standard, a site's settings and the b-value switch,
        computed once per combination."""
        key = (standard.pk if standard else None, site_id, check_bvals)
        if key not in self.fingerprints:
            self.fingerprints[key] = fingerprint(standard, self.settings_for(site_id), check_bvals)
        return self.fingerprints[key]

    def settings_for(self, site_id):
        if site_id not in self.settings_by_site:
            self.settings_by_site[site_id] = ComparisonSettings.merge(
                self.study_level, self.site_levels.get(site_id)
            )
        return self.settings_by_site[site_id]


def compute_header_diffs(study, *, session_ids=(), force=False, dry_run=False, progress=None):
    """Compare the scans of a study's sessions with their gold standards and store the diffs.

    `session_ids` limits the run to those sessions (datman session IDs); by default every
    session of the study is compared, repeats included. Only outdated diffs are computed unless
    `force` is set: a diff is outdated when the scan has none, when the newest standard or the
    effective settings changed (see `fingerprint`), or when the scan row changed after the diff.
    `progress(done, total)` is called after each batch of sessions. With `dry_run` everything is
    rolled back. Return a DiffRunResult. Raise ComplianceError for an unknown session ID.
    """
    session_pks = _select_sessions(study, session_ids)
    result = DiffRunResult(study=study.nickname, dry_run=dry_run, sessions=len(session_pks))
    context = _ComparisonContext(study)
    if progress is not None:
        progress(0, len(session_pks))

    with transaction.atomic() if dry_run else nullcontext():
        for start in range(0, len(session_pks), SESSIONS_PER_BATCH):
            batch = session_pks[start : start + SESSIONS_PER_BATCH]
            _compute_sessions(context, batch, force, result)
            if progress is not None:
                progress(start + len(batch), len(session_pks))
        if dry_run:
            transaction.set_rollback(True)
    logger.info("header diffs of study %s: %s", study, result.summary())
    return result


def compute_header_diffs_for_sessions(study, sessions, *, force=False):
    """Compute the outdated header diffs of some sessions of a study; return a DiffRunResult.

    The sessions are compared in batches of SESSIONS_PER_BATCH, each in one transaction, so the
    number of queries depends on the number of batches, not on the number of scans.
    """
    result = DiffRunResult(study=study.nickname, sessions=len(sessions))
    context = _ComparisonContext(study)
    session_pks = [session.pk for session in sessions]
    for start in range(0, len(session_pks), SESSIONS_PER_BATCH):
        _compute_sessions(context, session_pks[start : start + SESSIONS_PER_BATCH], force, result)
    return result


def handle_sessions_imported(sender, *, study, created=(), updated=(), **kwargs):
    """Compute header diffs for the sessions an archive import created or changed.

    Connected to `studies.signals.sessions_imported`. The import has already committed, so a
    failure here is logged and left for `compute_header_diffs` to repeat, not raised.
    """
    sessions = [*created, *updated]
    if not sessions:
        return
    try:
        result = compute_header_diffs_for_sessions(study, sessions)
    except Exception:
        logger.exception(
            "header diffs of study %s after an import of %d sessions failed; run "
            "compute_header_diffs %s",
            study,
            len(sessions),
            study,
        )
        return
    logger.info("header diffs after the import of study %s: %s", study, result.summary())


def _select_sessions(study, session_ids):
    sessions = Session.objects.filter(timepoint__study=study)
    if not session_ids:
        return list(sessions.order_by("timepoint__name", "number").values_list("pk", flat=True))

    keys = {}
    for text in session_ids:
        try:
            ident = datman_ids.parse_session_id(text).upper()
        except datman_ids.IdError as error:
            raise ComplianceError(str(error)) from error
        keys[(ident.timepoint_id, ident.session_number)] = ident.session_id
    rows = sessions.filter(timepoint__name__in={timepoint for timepoint, _ in keys})
    found = {
        (timepoint, number): pk
        for pk, timepoint, number in rows.values_list("pk", "timepoint__name", "number")
    }
    unknown = [session_id for key, session_id in keys.items() if key not in found]
    if unknown:
        raise ComplianceError(
            f"Session {', '.join(unknown)} not found in study {study.nickname}. Check the ID, or "
            f"run import_archive {study.nickname} first."
        )
    return [found[key] for key in keys]


def _compute_sessions(context, session_pks, force, result):
    """Compute and store the outdated diffs of the scans of some sessions, in one transaction."""
    with transaction.atomic():
        # Locking the sessions orders two runs over the same scans (an import's signal and the
        # command), so at most one diff per scan is current. Both lock in id order, so two
        # runs with overlapping batches wait for each other instead of deadlocking.
        locked = list(
            Session.objects.select_for_update()
            .filter(pk__in=session_pks)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not locked:
            return
        scans = list(
            Scan.objects.filter(session_id__in=locked).select_related(
                "scantype",
                "session__timepoint__study_site",
                "source__session__timepoint__study",
            )
        )
        current = {
            diff.scan_id: diff
            for diff in HeaderDiff.objects.current().filter(scan__session_id__in=locked)
        }
        repairs = {}
        newest_first = SidecarRepair.objects.filter(scan__session_id__in=locked)
        for repair in newest_first.order_by("-created_at", "-id"):
            repairs.setdefault(repair.scan_id, repair)

        computed = []
        for scan in scans:
            scan.sidecar_repair = repairs.get(scan.pk)
            diff = _compute_scan(context, scan, current.get(scan.pk), force, result)
            if diff is not None:
                computed.append(diff)
        _store_diffs(computed, timezone.now())


@dataclass
class _ComputedDiff:
    """A comparison result waiting to be stored, with the scan's current diff (or None)."""

    scan: Scan
    current: HeaderDiff | None
    standard_pk: int | None
    values: dict


def _compute_scan(context, scan, existing, force, result):
    """Compare one scan; return a _ComputedDiff, or None when its current diff is up to date."""
    site_id = scan.session.timepoint.study_site.site_id
    standard = context.standards.get((site_id, scan.scantype_id))
    settings = context.settings_for(site_id)
    check_bvals = standard is not None and (
        scan.scantype.qc_type == DIFFUSION_QC_TYPE or standard.bvals is not None
    )
    scan_fingerprint = context.fingerprint_for(standard, site_id, check_bvals)
    # NOTE: the scan's .bval file is not part of the fingerprint, so editing it on disk leaves
    # the diff up to date. Run compute_header_diffs with --force after editing .bval files.
    if (
        not force
        and existing is not None
        and existing.fingerprint == scan_fingerprint
        and existing.computed_at >= scan.updated_at
    ):
        result.counts["up_to_date"] += 1
        return None

    comparison = _compare_scan(context, scan, standard, settings, check_bvals)
    for warning in comparison.warnings:
        result.warn(warning)
    result.counts[comparison.status.value] += 1
    values = {
        "status": comparison.status.value,
        "diff": comparison.diff,
        "deviating_fields": comparison.deviating_fields,
        "scan_converter": converter_version(scan.sidecar),
        "standard_converter": standard.converter_version if standard else "",
        "fingerprint": scan_fingerprint,
        "is_current": True,
    }
    return _ComputedDiff(scan, existing, standard.pk if standard else None, values)


def _compare_scan(context, scan, standard, settings, check_bvals):
    if standard is None:
        return Comparison(
            status=HeaderDiffStatus.NO_GOLD_STANDARD,
            diff={"fields": {}, "missing": [], "problems": []},
        )
    scan_bvals, bval_problem = None, ""
    if check_bvals:
        scan_bvals, bval_problem = _read_scan_bvals(context, scan)
    # A reviewer's repair of the sidecar (qc/compliance_repair.py) counts, not the archive file.
    sidecar = repaired_sidecar(scan.sidecar, getattr(scan, "sidecar_repair", None))
    comparison = compare_headers(
        sidecar if isinstance(sidecar, dict) else None,
        standard.sidecar,
        settings,
        check_bvals=check_bvals,
        standard_bvals=standard.bvals,
        scan_bvals=scan_bvals,
        scan_bval_problem=bval_problem,
    )
    if not isinstance(scan.sidecar, dict) and scan.sidecar_error:
        comparison.diff["problems"].append(scan.sidecar_error)
    return comparison


def _read_scan_bvals(context, scan):
    """Return (b-values, '') from the `.bval` beside the scan's NIfTI, or (None, problem)."""
    owner, root = scan, context.study.archive_root
    if not scan.nifti_path and scan.source is not None:
        # A linked scan has no files of its own in this study; the source's are the same data.
        owner, root = scan.source, scan.source.session.timepoint.study.archive_root
    if not owner.nifti_path:
        return None, (
            f"Scan {scan.name} has no NIfTI file recorded, so its .bval file cannot be found. "
            f"Import the scan again with its NIfTI file."
        )
    stem, _ = datman_ids.split_extension(owner.nifti_path)
    relative = f"{stem}.bval"
    try:
        text = (root / relative).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, (
            f"The b-values cannot be checked because {relative} does not exist. Convert the "
            f"series again with dcm2niix, or put its .bval file beside the NIfTI file."
        )
    except (OSError, UnicodeDecodeError) as error:
        return None, f"The b-values cannot be checked because {relative} cannot be read: {error}."
    try:
        return parse_bvals(text), ""
    except ValueError as error:
        return None, f"The b-values cannot be checked because {relative} is invalid: {error}."


def _store_diffs(computed, now):
    """Store computed diffs with a fixed number of queries, whatever their number.

    A scan keeps one row per gold standard. The row for the standard just used is updated, so
    an earlier row becomes current again, or inserted when there is none. Before that, the
    scan's current row stops being current when it is for another standard.
    """
    if not computed:
        return
    replaced = [item for item in computed if _is_other_standard(item)]
    earlier = {}
    if replaced:
        rows = HeaderDiff.objects.filter(scan_id__in=[item.scan.pk for item in replaced])
        # Only the keys are read, because every value field is overwritten below.
        for row in rows.only("id", "scan_id", "gold_standard_id"):
            earlier[(row.scan_id, row.gold_standard_id)] = row
        stale = [item.current.pk for item in replaced if item.current is not None]
        if stale:
            HeaderDiff.objects.filter(pk__in=stale).update(is_current=False)

    updates, inserts = [], []
    for item in computed:
        row = item.current
        if _is_other_standard(item):
            row = earlier.get((item.scan.pk, item.standard_pk))
        if row is None:
            inserts.append(
                HeaderDiff(
                    scan=item.scan,
                    gold_standard_id=item.standard_pk,
                    computed_at=now,
                    **item.values,
                )
            )
            continue
        for name, value in item.values.items():
            setattr(row, name, value)
        row.computed_at = now
        updates.append(row)
    if updates:
        HeaderDiff.objects.bulk_update(updates, DIFF_VALUE_FIELDS, batch_size=DIFFS_PER_UPDATE)
    if inserts:
        HeaderDiff.objects.bulk_create(inserts)


def _is_other_standard(item):
    """Return whether the scan has no current diff, or one against another standard."""
    return item.current is None or item.current.gold_standard_id != item.standard_pk


# --- Deviations and missing scans -------------------------------------------------------------


def resolve_deviation(scan, *, reviewer, header_diff_id, field_name, decision, reason=""):
    """Record a reviewer's decision on one deviation of the scan's current header diff.

    `header_diff_id` is the diff the reviewer saw: if the scan's diff was recomputed against
    another standard since, the decision is rejected. Accepting needs a reason; confirming a
    protocol violation may have one. Return the new DeviationResolution.
    """
    try:
        decision = DeviationDecision(decision)
    except ValueError:
        choices = ", ".join(DeviationDecision.values)
        raise ComplianceError(f"{decision!r} is not a decision; use one of {choices}.") from None
    reason = clean_comment(reason)
    if decision == DeviationDecision.ACCEPTED and not reason:
        raise ComplianceError(
            f"A reason is required to accept the deviation of {field_name} in {scan}: say why "
            f"it is acceptable."
        )

    with transaction.atomic():
        diff = HeaderDiff.objects.select_for_update().current().filter(scan=scan).first()
        if diff is None:
            raise ComplianceError(
                f"{scan} has no header diff yet; run compute_header_diffs for its study first."
            )
        if str(diff.pk) != str(header_diff_id):
            raise ComplianceError(
                f"The header diff of {scan} was computed again after the page was loaded. "
                f"Reload the page and decide on the current deviations."
            )
        row = next((row for row in diff.rows if row.field == field_name), None)
        if row is None:
            listed = ", ".join(row.field for row in diff.rows) or "none"
            raise ComplianceError(
                f"{field_name!r} is not a deviation of {scan} (its deviations: {listed})."
            )
        resolution = DeviationResolution.objects.create(
            header_diff=diff,
            field=field_name,
            decision=decision,
            reason=reason,
            expected=row.expected,
            actual=row.actual,
            reviewer=reviewer,
        )
        kind = (
            QCEventKind.DEVIATION_ACCEPTED
            if decision == DeviationDecision.ACCEPTED
            else QCEventKind.DEVIATION_CONFIRMED
        )
        QCEvent.objects.create(
            kind=kind,
            actor=reviewer,
            study_id=scan.session.timepoint.study_id,
            session_id=scan.session_id,
            scan=scan,
            details={
                "field": field_name,
                "decision": decision.value,
                "reason": reason,
                "header_diff": diff.pk,
                "resolution": resolution.pk,
                "gold_standard": diff.gold_standard_id,
            },
        )
    logger.info("deviation %s of scan %s %s by %s", field_name, scan, decision.value, reviewer)
    return resolution


def dismiss_missing_scans(session, *, reviewer, reason):
    """Record that a session's missing scans are known, with the reason; return the dismissal.

    The dismissal keeps the tags missing now and covers the warning while no other tag is
    missing. Raise ComplianceError when the reason is empty or nothing is missing.
    """
    reason = clean_comment(reason)
    if not reason:
        raise ComplianceError(
            f"A reason is required to dismiss the missing scans of {session}: say why they are "
            f"missing, for example that the participant stopped the session."
        )
    with transaction.atomic():
        session = (
            Session.objects.select_for_update()
            .select_related("timepoint__study")
            .get(pk=session.pk)
        )
        expectations = compliance_selectors.scan_expectations([session])[session.pk]
        if not expectations.missing:
            raise ComplianceError(f"Session {session} has no missing scans to dismiss.")
        missing = [
            {"tag": item.tag, "expected": item.expected, "found": item.found}
            for item in expectations.missing
        ]
        dismissal = MissingScanDismissal.objects.create(
            session=session, reason=reason, missing_tags=missing, reviewer=reviewer
        )
        QCEvent.objects.create(
            kind=QCEventKind.MISSING_SCANS_DISMISSED,
            actor=reviewer,
            study=session.timepoint.study,
            session=session,
            details={"reason": reason, "missing": missing, "dismissal": dismissal.pk},
        )
    logger.info(
        "missing scans of session %s (%s) dismissed by %s",
        session,
        ", ".join(str(item) for item in expectations.missing),
        reviewer,
    )
    return dismissal


# --- Linked scans -----------------------------------------------------------------------------


LINK_CREATED = "linked"
LINK_EXISTS = "already linked"


def find_scan(text):
    """Find a scan by its name (`<session ID>_<TAG>_<NN>`) or its file name; raise if absent."""
    text = (text or "").strip()
    try:
        name = datman_ids.parse_filename(text)
    except datman_ids.IdError:
        try:
            # A scan name is a file name without the description.
            name = datman_ids.parse_filename(f"{text}_")
        except datman_ids.IdError as error:
            raise ComplianceError(
                f"{text!r} is neither a scan name (<SESSION ID>_<TAG>_<SERIES>) nor a scan file "
                f"name: {error}"
            ) from None
    scan_name = datman_ids.ScanName(name.ident.upper(), name.tag, name.series, "").scan_name
    scan = (
        Scan.objects.filter(name=scan_name)
        .select_related("scantype", "session__timepoint", "source")
        .first()
    )
    if scan is None:
        raise ComplianceError(
            f"Scan {scan_name} not found. Check the name, or import its study's archive first."
        )
    return scan


def link_scan(source_scan, target_session_id, *, dry_run=False):
    """Create a scan in the target session that is linked to `source_scan`; return (outcome,
    target scan name) with outcome LINK_CREATED or LINK_EXISTS.

    The target session (and timepoint) is created when missing. The linked scan gets the
    source's tag, series, description and sidecar and a name built from the target session ID.
    A link to a linked scan points at its source, so QC decisions stay in one place. Running
    it again is a no-op. Raise ComplianceError when the target ID is invalid, its study site or
    tag is not configured, or a scan of that name exists that is not a link to the source.
    """
    source = _root_source(source_scan)
    try:
        ident = datman_ids.parse_session_id(target_session_id).upper()
    except datman_ids.IdError as error:
        raise ComplianceError(f"Target session: {error}") from None
    tag = source.scantype.tag
    target_name = f"{ident.session_id}_{tag}_{source.series:02d}"
    if ident.session_id == source.session.name:
        raise ComplianceError(
            f"Scan {source} is already in session {ident.session_id}; link it to a session of "
            f"another study or subject."
        )

    existing = (
        Scan.all_objects.filter(name=target_name)
        .select_related("source", "session__timepoint")
        .first()
    )
    if existing is not None and existing.is_hidden:
        raise ComplianceError(
            f"Scan {target_name} exists but it or its session was deleted by a dashboard "
            f"admin, so it is left hidden. Restore it in the admin site first, or choose "
            f"another target session."
        )
    if existing is not None:
        if existing.source_id == source.pk:
            return LINK_EXISTS, target_name
        current_source = f"is linked to {existing.source}" if existing.source else "has no source"
        raise ComplianceError(
            f"Scan {target_name} already exists and {current_source}, so it cannot become a "
            f"link to {source}. Choose another target session, or remove that scan first."
        )

    study_site = _find_study_site(ident)
    if not ExpectedScan.objects.filter(study_site=study_site, scantype=source.scantype).exists():
        raise ComplianceError(
            f"Tag {tag} is not expected at {study_site}, so {source} cannot be linked there. "
            f"Add {tag} to ExportInfo of site {study_site.site} in the datman config of "
            f"{study_site.study} and run sync_config."
        )

    with transaction.atomic():
        session = _get_or_create_session(ident, study_site)
        scan = Scan.objects.create(
            name=target_name,
            session=session,
            scantype=source.scantype,
            series=source.series,
            description=source.description,
            file_stem=f"{target_name}_{source.description}",
            sidecar=source.sidecar,
            sidecar_error=source.sidecar_error,
            volumes=source.volumes,
            source=source,
        )
        if dry_run:
            transaction.set_rollback(True)
    if not dry_run:
        compute_header_diffs_for_sessions(study_site.study, [session])
        logger.info("scan %s linked to %s", scan, source)
    return LINK_CREATED, target_name


def link_session_scans(source_session_id, target_session_id, tags=(), *, dry_run=False):
    """Link the scans of a source session into a target session, as datman's link file lists.

    With `tags`, only scans of those tags are linked; without, every scan whose tag the target
    study site expects. Return a list of (outcome, source scan name, target scan name or
    the error message), where outcome is LINK_CREATED, LINK_EXISTS or "error".
    """
    try:
        source_ident = datman_ids.parse_session_id(source_session_id).upper()
        target_ident = datman_ids.parse_session_id(target_session_id).upper()
    except datman_ids.IdError as error:
        raise ComplianceError(str(error)) from None
    source_session = (
        Session.objects.filter(
            timepoint__name=source_ident.timepoint_id, number=source_ident.session_number
        )
        .select_related("timepoint")
        .first()
    )
    if source_session is None:
        raise ComplianceError(
            f"Source session {source_ident.session_id} not found. Check the ID, or import its "
            f"study's archive first."
        )
    scans = list(
        Scan.objects.filter(session=source_session)
        .select_related("scantype", "session__timepoint", "source")
        .order_by("series", "name")
    )
    requested_tags = {tag.upper() for tag in tags}
    if requested_tags:
        unknown = sorted(requested_tags - {scan.scantype.tag.upper() for scan in scans})
        if unknown:
            raise ComplianceError(
                f"Source session {source_ident.session_id} has no scan tagged "
                f"{', '.join(unknown)}; its tags are "
                f"{', '.join(sorted({scan.scantype.tag for scan in scans})) or 'none'}."
            )
        scans = [scan for scan in scans if scan.scantype.tag.upper() in requested_tags]
    else:
        study_site = _find_study_site(target_ident)
        expected = set(
            ExpectedScan.objects.filter(study_site=study_site).values_list("scantype_id", flat=True)
        )
        scans = [scan for scan in scans if scan.scantype_id in expected]

    outcomes = []
    for scan in scans:
        try:
            outcome, target = link_scan(scan, target_ident.session_id, dry_run=dry_run)
        except ComplianceError as error:
            outcomes.append(("error", scan.name, str(error)))
        else:
            outcomes.append((outcome, scan.name, target))
    return outcomes


@dataclass(frozen=True)
class LinkFileLine:
    """One usable line of datman's external-links.csv."""

    number: int
    source: str
    target: str
    tags: tuple


def read_link_file(path):
    """Read datman's `external-links.csv`: `subject target_subject [tags]` per line.

    Fields are separated by whitespace; tags are comma-separated. The header line, blank lines
    and lines starting with # are skipped. Return (lines, problems): LinkFileLines and
    (line number, message) pairs for lines that cannot be used. Raise ComplianceError when the
    file cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ComplianceError(f"Link file {path} not found; check the path.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ComplianceError(f"Link file {path} cannot be read: {error}.") from None

    lines, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[:2] == ["subject", "target_subject"]:
            continue
        if len(fields) not in (2, 3):
            problems.append(
                (
                    number,
                    f"expected 'SOURCE_SESSION TARGET_SESSION [TAG,TAG...]', found "
                    f"{len(fields)} fields: {line.strip()!r}",
                )
            )
            continue
        invalid = ""
        for text_id in fields[:2]:
            try:
                datman_ids.parse_session_id(text_id)
            except datman_ids.IdError as error:
                invalid = str(error)
                break
        if invalid:
            problems.append((number, invalid))
            continue
        tags = tuple(tag for tag in (fields[2].split(",") if len(fields) == 3 else []) if tag)
        lines.append(LinkFileLine(number, fields[0], fields[1], tags))
    return lines, problems


def _root_source(scan):
    seen = set()
    while scan.source_id is not None and scan.pk not in seen:
        seen.add(scan.pk)
        scan = Scan.objects.select_related("scantype", "session__timepoint", "source").get(
            pk=scan.source_id
        )
    return scan


def _find_study_site(ident):
    """Return the StudySite whose code (or alternate code) and site match a datman ID."""
    rows = StudySite.objects.filter(site__name__iexact=ident.site).select_related("study", "site")
    matches = [
        study_site
        for study_site in rows.prefetch_related("alt_codes")
        if ident.study.upper()
        in {study_site.code.upper(), *(alt.code.upper() for alt in study_site.alt_codes.all())}
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ComplianceError(
            f"Study code {ident.study} at site {ident.site} matches no study site. Add the site "
            f"and study code to the study's datman config (Sites, StudyTag or SiteTags) and run "
            f"sync_config."
        )
    studies = ", ".join(str(study_site.study) for study_site in matches)
    raise ComplianceError(
        f"Study code {ident.study} at site {ident.site} belongs to several studies ({studies}); "
        f"give each study its own code in the datman config."
    )


def _get_or_create_session(ident, study_site):
    # all_objects, so a deleted timepoint or session is neither created again nor shown again.
    timepoint = Timepoint.all_objects.filter(name=ident.timepoint_id).first()
    if timepoint is None:
        timepoint = Timepoint.all_objects.create(
            name=ident.timepoint_id,
            study=study_site.study,
            study_site=study_site,
            is_phantom=ident.is_phantom,
            bids_name=ident.bids_subject,
            bids_session=ident.bids_session,
        )
    elif timepoint.study_site_id != study_site.pk:
        raise ComplianceError(
            f"Timepoint {timepoint} belongs to another study site than {study_site}; check the "
            f"target session ID."
        )
    session, _ = Session.all_objects.get_or_create(timepoint=timepoint, number=ident.session_number)
    for obj in (timepoint, session):
        if obj.is_deleted:
            raise ComplianceError(
                f"{type(obj).__name__} {obj} was deleted by a dashboard admin, so nothing is "
                f"linked into it. Restore it in the admin site first, or choose another target "
                f"session."
            )
    return session


__all__ = ["BVAL_FIELD"]
