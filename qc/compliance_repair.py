"""Sidecar repair: a QC reviewer corrects a scan's SliceTiming when it deviates from the gold
standard, by copying the standard's values, entering them or removing the field.

The archive's sidecar is never changed. The corrected sidecar is written to
SIDECAR_REPAIR_ROOT at the path the original has under ARCHIVE_ROOT (or under the study
nickname for a study archive outside ARCHIVE_ROOT), by an atomic rename. Every repair is a
SidecarRepair row with a QCEvent, and the scan's header diff is compared again with the
repaired values.
"""

import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from qc.compliance import repaired_sidecar
from qc.compliance_services import ComplianceError, compute_header_diffs_for_sessions
from qc.models import (
    HeaderDiff,
    QCEvent,
    QCEventKind,
    SidecarRepair,
    SidecarRepairAction,
)

logger = logging.getLogger(__name__)

SLICE_TIMING = "SliceTiming"
REPETITION_TIME = "RepetitionTime"


class RepairError(ComplianceError):
    """A sidecar repair is not possible; the message explains why and what to do."""


def repair_root():
    """Return the folder for corrected sidecars as a Path, or None when sidecar repair is off."""
    root = settings.SIDECAR_REPAIR_ROOT
    return Path(root) if root else None


def newest_repair(scan):
    """Return the repair that applies to the scan's sidecar now, or None (one query)."""
    return scan.sidecar_repairs.order_by("-created_at", "-id").first()


@dataclass
class RepairOptions:
    """The repair actions the scan page offers for one scan, and why an action is not offered."""

    enabled: bool
    current: list | None = None
    standard: list | None = None
    repetition_time: float | None = None
    standard_problem: str = ""
    problem: str = ""

    @property
    def can_use_standard(self):
        return self.enabled and not self.problem and not self.standard_problem


def repair_options(scan, header_diff):
    """Describe which SliceTiming repairs the scan page offers for its current header diff.

    Reads `scan.sidecar_repair` (set by the caller) and the values stored in the diff, so it
    runs no query. The repair itself checks the standard's sidecar again.
    """
    if repair_root() is None:
        return RepairOptions(
            enabled=False, problem="Sidecar repair is off: SIDECAR_REPAIR_ROOT is not set."
        )
    try:
        sidecar, _ = _checked_inputs(scan, header_diff, scan.sidecar_repair)
    except RepairError as error:
        return RepairOptions(enabled=True, problem=str(error))
    entry = (header_diff.diff or {}).get("fields", {}).get(SLICE_TIMING, {})
    options = RepairOptions(
        enabled=True,
        current=sidecar[SLICE_TIMING],
        standard=entry.get("expected"),
        repetition_time=sidecar.get(REPETITION_TIME),
    )
    options.standard_problem = _standard_problem(scan, sidecar, options.standard, header_diff)
    return options


def repair_slice_timing(scan, *, reviewer, action, values_text=""):
    """Correct the SliceTiming of a scan and return the SidecarRepair.

    `action` is a SidecarRepairAction. STANDARD copies the gold standard's values, only when
    RepetitionTime matches the standard and both lists have the same length. EDITED takes
    `values_text`: numbers separated by commas or spaces, each from 0 to the repetition time,
    as many as the scan has slices. REMOVED deletes the field. Raise RepairError when repair is
    off, the scan has no gold standard or no SliceTiming deviation, or the input is invalid.
    """
    root = repair_root()
    if root is None:
        raise RepairError(
            "Sidecar repair is off. Set SIDECAR_REPAIR_ROOT to the folder for corrected "
            "sidecars to turn it on."
        )
    with transaction.atomic():
        header_diff = (
            HeaderDiff.objects.current()
            .select_related("gold_standard")
            .select_for_update(of=("self",))
            .filter(scan=scan)
            .first()
        )
        previous = newest_repair(scan)
        sidecar, standard = _checked_inputs(scan, header_diff, previous)
        old_value = sidecar[SLICE_TIMING]

        if action == SidecarRepairAction.STANDARD:
            expected = standard.sidecar.get(SLICE_TIMING)
            problem = _standard_problem(scan, sidecar, expected, header_diff)
            if not problem and REPETITION_TIME not in standard.sidecar:
                problem = (
                    f"The gold standard of scan {scan.name} has no {REPETITION_TIME}, so its "
                    f"slice timing may not fit; edit the values instead."
                )
            if problem:
                raise RepairError(problem)
            new_value = list(standard.sidecar[SLICE_TIMING])
        elif action == SidecarRepairAction.EDITED:
            new_value = parse_slice_timing(
                values_text, repetition_time=sidecar.get(REPETITION_TIME), count=len(old_value)
            )
        elif action == SidecarRepairAction.REMOVED:
            new_value = None
        else:
            raise RepairError(
                f"Unknown repair action {action!r}; use one of {', '.join(SidecarRepairAction)}."
            )

        repaired = dict(sidecar)
        if new_value is None:
            del repaired[SLICE_TIMING]
        else:
            repaired[SLICE_TIMING] = new_value
        target = _target_path(root, scan)
        repair = SidecarRepair.objects.create(
            scan=scan,
            field=SLICE_TIMING,
            action=action,
            original_value=scan.sidecar[SLICE_TIMING],
            old_value=old_value,
            new_value=new_value,
            gold_standard=standard if action == SidecarRepairAction.STANDARD else None,
            path=str(target),
            reviewer=reviewer,
        )
        session = scan.session
        QCEvent.objects.create(
            kind=QCEventKind.SIDECAR_REPAIRED,
            actor=reviewer,
            study=session.timepoint.study,
            session=session,
            scan=scan,
            details={
                "field": SLICE_TIMING,
                "action": action,
                "old": old_value,
                "new": new_value,
                "path": str(target),
                "repair": repair.pk,
            },
        )
        compute_header_diffs_for_sessions(session.timepoint.study, [session], force=True)
        # The file is written last: an error before it leaves no file, and the rows are rolled
        # back with the transaction.
        write_json_atomically(target, repaired)
    logger.info(
        "%s of scan %s %s by %s; corrected sidecar written to %s",
        SLICE_TIMING,
        scan.name,
        action,
        reviewer,
        target,
    )
    return repair


def _checked_inputs(scan, header_diff, previous):
    """Return (the sidecar with earlier repairs applied, the gold standard), or raise."""
    if not isinstance(scan.sidecar, dict):
        raise RepairError(
            f"Scan {scan.name} has no readable sidecar to repair. Import it again with its "
            f"JSON sidecar."
        )
    if header_diff is None or header_diff.gold_standard is None:
        raise RepairError(
            f"Scan {scan.name} has no gold standard for its tag, so there is nothing to "
            f"repair its {SLICE_TIMING} against. Load one with load_gold_standards."
        )
    if SLICE_TIMING not in header_diff.deviating_fields:
        raise RepairError(
            f"The {SLICE_TIMING} of scan {scan.name} does not deviate from its gold standard, "
            f"so it needs no repair."
        )
    if not scan.sidecar_path:
        raise RepairError(
            f"Scan {scan.name} has no sidecar file recorded, so no corrected copy can be "
            f"written beside its path. Import it again with its JSON sidecar."
        )
    sidecar = repaired_sidecar(scan.sidecar, previous)
    if not isinstance(sidecar.get(SLICE_TIMING), list):
        raise RepairError(
            f"Scan {scan.name} has no {SLICE_TIMING} list to repair (it was removed or is not "
            f"a list)."
        )
    return sidecar, header_diff.gold_standard


def _standard_problem(scan, sidecar, expected, header_diff):
    """Return why the standard's SliceTiming `expected` cannot be copied, or ''."""
    if not isinstance(expected, list):
        return f"The gold standard of scan {scan.name} has no {SLICE_TIMING} list to copy."
    if REPETITION_TIME not in sidecar:
        return (
            f"Scan {scan.name} has no {REPETITION_TIME}, so the standard's slice timing may "
            f"not fit; edit the values instead."
        )
    if REPETITION_TIME in header_diff.deviating_fields:
        return (
            f"The {REPETITION_TIME} of scan {scan.name} ({sidecar[REPETITION_TIME]}) differs "
            f"from the gold standard's, so the standard's slice timing does not fit; edit the "
            f"values instead."
        )
    if len(expected) != len(sidecar[SLICE_TIMING]):
        return (
            f"The gold standard has {len(expected)} slice times and scan {scan.name} has "
            f"{len(sidecar[SLICE_TIMING])}, so the standard's values do not fit; edit them "
            f"instead."
        )
    return ""


_SEPARATORS = re.compile(r"[\s,]+")
# A plain decimal number in ASCII digits, with an optional exponent. float() also accepts
# underscores, non-ASCII digits, "inf" and "nan", none of which belongs in a sidecar. The minus
# sign is matched only so that a negative time gets the range error, not "not a number".
_SLICE_TIME = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_slice_timing(text, *, repetition_time, count):
    """Return the slice times in `text` as floats, or raise RepairError naming the bad value.

    The text is plain decimal numbers in ASCII digits (such as 0.5 or 2.5e-1), separated by
    commas or white space, optionally in [ ]. There must be `count` of them, each from 0 to
    `repetition_time` seconds inclusive. A time written as -0 is stored as 0.
    """
    if isinstance(repetition_time, bool) or not isinstance(repetition_time, int | float):
        raise RepairError(
            f"The scan's {REPETITION_TIME} is {repetition_time!r}, not a number, so slice "
            f"times cannot be checked against it."
        )
    stripped = text.strip().removeprefix("[").removesuffix("]").strip()
    tokens = [token for token in _SEPARATORS.split(stripped) if token]
    if not tokens:
        raise RepairError(
            f"Enter {count} slice times in seconds, separated by commas, e.g. 0, 0.5, 1.0."
        )
    values = []
    for position, token in enumerate(tokens, start=1):
        if not _SLICE_TIME.fullmatch(token):
            raise RepairError(
                f"Slice time {position} is {token!r}, not a number; enter numbers in seconds "
                f"such as 0.5, with the digits 0-9 and a dot."
            )
        value = float(token)
        if value == 0:
            value = 0.0  # -0 and 0 are the same time; keep "-0.0" out of the sidecar.
        if not math.isfinite(value) or not 0 <= value <= repetition_time:
            raise RepairError(
                f"Slice time {position} is {token}; each must be from 0 to the repetition "
                f"time, {repetition_time} seconds."
            )
        values.append(value)
    if len(values) != count:
        raise RepairError(
            f"You entered {len(values)} slice times; the scan has {count} slices, so enter {count}."
        )
    return values


def _target_path(root, scan):
    """Return the corrected sidecar's path under `root`, mirroring the original's archive path."""
    study_root = scan.session.timepoint.study.archive_root
    archive_root = Path(settings.ARCHIVE_ROOT)
    if study_root.is_relative_to(archive_root):
        study_folder = study_root.relative_to(archive_root)
    else:
        study_folder = Path(scan.session.timepoint.study.nickname)
    target = root / study_folder / scan.sidecar_path
    if not os.path.abspath(target).startswith(os.path.abspath(root) + os.sep):
        raise RepairError(
            f"The sidecar path {scan.sidecar_path!r} of scan {scan.name} leads outside "
            f"SIDECAR_REPAIR_ROOT; import the scan again."
        )
    # With SIDECAR_REPAIR_ROOT equal to ARCHIVE_ROOT the target is the archive's own sidecar,
    # and a root inside a study archive puts files among the archive's (symlinks resolved).
    real_study_root = os.path.realpath(study_root)
    if os.path.realpath(target).startswith(real_study_root + os.sep):
        raise RepairError(
            f"SIDECAR_REPAIR_ROOT ({root}) puts the corrected sidecar of scan {scan.name} "
            f"inside the archive of study {scan.session.timepoint.study} ({study_root}), whose "
            f"files are never changed. Set SIDECAR_REPAIR_ROOT to a folder outside every study "
            f"archive."
        )
    return target


def write_json_atomically(path, data):
    """Write JSON to a temporary file beside `path`, flush it to disk and rename it over
    `path`, so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", text=True)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=4)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def attach_sidecar_repairs(scan):
    """Set `sidecar_repairs_list` (newest first, with reviewers) and `sidecar_repair` (the
    newest, or None) on the scan (one query)."""
    scan.sidecar_repairs_list = list(
        scan.sidecar_repairs.select_related("reviewer").order_by("-created_at", "-id")
    )
    scan.sidecar_repair = scan.sidecar_repairs_list[0] if scan.sidecar_repairs_list else None
    return scan.sidecar_repairs_list
