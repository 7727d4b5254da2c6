"""Compare a scan's dcm2niix sidecar with its gold standard: the protocol-compliance check.

This module is pure: it reads no files and runs no queries, so the comparison can be tested on
plain dicts. The services in `qc.compliance_services` load the inputs and store the result.

Rules of the comparison:

* Fields present only in the scan are not deviations. Fields of the standard that the scan
  lacks are listed under `missing`.
* Ignored fields are skipped on both sides. The standard passed in is never modified.
* Numbers compare as numbers, so `2` equals `2.0`. Booleans are not numbers: `true` differs
  from `1`. Text and numbers never match each other (`"0.03"` differs from `0.03`).
* A field with a tolerance matches when every number in it (each item of a list) is within
  that absolute tolerance of the standard, bounds included.
* A tolerance on a field whose standard value is not numeric is a configuration error: the
  field is compared exactly, and the comparison carries a warning and a note.
* Lists compare item by item; lists of different lengths differ.
* Diffusion scans also compare b-values, as numbers, so spacing and line ends do not matter.

The diff is stored as JSON of this shape:

    {"fields": {name: {"expected": x, "actual": y, "tolerance": t or null}},
     "missing": [names],
     "bval": {"expected": [numbers] or null, "actual": [numbers] or null, "match": bool},
     "problems": [text]}

`bval` is present only when b-values were checked.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import models

# The name under which a b-value deviation is listed and resolved, next to sidecar fields.
# A dcm2niix sidecar never has a key starting with a dot.
BVAL_FIELD = ".bval"

NAME_NOT_AVAILABLE = "Name Not Available"
VERSION_NOT_AVAILABLE = "Version Not Available"


class HeaderDiffStatus(models.TextChoices):
    MATCH = "match", "Match"
    MISMATCH = "mismatch", "Mismatch"
    NO_GOLD_STANDARD = "no_gold_standard", "No gold standard"
    ERROR = "error", "Error"


@dataclass(frozen=True)
class ComparisonSettings:
    """The ignored fields and absolute numeric tolerances that apply to one study site."""

    ignored_fields: frozenset = frozenset()
    tolerances: Mapping = field(default_factory=dict)

    @classmethod
    def merge(cls, *levels):
        """Combine settings from the least to the most specific level, as datman does.

        Each level is a pair (ignored fields, tolerances) or None. Ignored fields are joined,
        and for tolerances the more specific level wins.
        """
        ignored = set()
        tolerances = {}
        for level in levels:
            if level is None:
                continue
            level_ignored, level_tolerances = level
            ignored.update(level_ignored or ())
            tolerances.update(level_tolerances or {})
        return cls(frozenset(ignored), tolerances)

    def as_json(self):
        """Return the settings as sorted JSON-ready values for the diff fingerprint."""
        return {
            "ignored_fields": sorted(self.ignored_fields),
            "tolerances": [[name, self.tolerances[name]] for name in sorted(self.tolerances)],
        }


@dataclass
class Comparison:
    """The result of one comparison: its status, the diff JSON and configuration warnings."""

    status: HeaderDiffStatus
    diff: dict
    warnings: list = field(default_factory=list)

    @property
    def deviating_fields(self):
        """Names of the differing and missing fields, plus BVAL_FIELD for differing b-values."""
        return deviating_fields(self.diff)


def deviating_fields(diff):
    """List the deviations of a stored diff: differing fields, missing fields, then b-values."""
    names = list((diff or {}).get("fields", {}))
    names += [name for name in (diff or {}).get("missing", []) if name not in names]
    bval = (diff or {}).get("bval")
    if bval and not bval.get("match"):
        names.append(BVAL_FIELD)
    return names


def converter_version(sidecar):
    """Return `<ConversionSoftware> - <ConversionSoftwareVersion>` of a sidecar.

    A missing or empty value is replaced by "Name Not Available" or "Version Not Available",
    the labels the old dashboard showed, so versions from both systems read the same.
    """
    sidecar = sidecar if isinstance(sidecar, Mapping) else {}
    name = sidecar.get("ConversionSoftware")
    version = sidecar.get("ConversionSoftwareVersion")
    name = str(name).strip() if name not in (None, "") else ""
    version = str(version).strip() if version not in (None, "") else ""
    return f"{name or NAME_NOT_AVAILABLE} - {version or VERSION_NOT_AVAILABLE}"


def parse_bvals(text):
    """Parse the text of a `.bval` file into a list of numbers.

    Values may be separated by any whitespace, including several lines. Whole numbers become
    ints. Raise ValueError naming the first value that is not a finite number.
    """
    values = []
    for position, token in enumerate(text.split(), start=1):
        values.append(_parse_number(token, position))
    if not values:
        raise ValueError("the file contains no b-values")
    return values


def _parse_number(token, position):
    try:
        return int(token)
    except ValueError:
        pass
    try:
        number = float(token)
    except ValueError:
        raise ValueError(f"value {position} ({token!r}) is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"value {position} ({token!r}) is not a finite number")
    return int(number) if number.is_integer() and "." not in token.lower() else number


def compare_headers(
    scan_header,
    standard_header,
    settings=None,
    *,
    check_bvals=False,
    standard_bvals=None,
    scan_bvals=None,
    scan_bval_problem="",
):
    """Compare a scan's sidecar with a gold standard's and return a Comparison.

    `scan_header` is None when the scan has no readable sidecar, which makes the status error.
    With `check_bvals`, `standard_bvals` and `scan_bvals` (lists of numbers) are compared too.
    `scan_bval_problem` explains why `scan_bvals` is None (for example a missing file), and
    it makes the status error because the b-values could not be checked.
    """
    settings = settings or ComparisonSettings()
    diff = {"fields": {}, "missing": [], "problems": []}
    warnings = []
    is_error = False

    if scan_header is None:
        diff["problems"].append(
            "The scan has no readable JSON sidecar, so its header cannot be compared."
        )
        is_error = True
    else:
        _compare_fields(scan_header, standard_header, settings, diff, warnings)

    if check_bvals:
        is_error = _compare_bvals(standard_bvals, scan_bvals, scan_bval_problem, diff) or is_error

    if is_error:
        status = HeaderDiffStatus.ERROR
    elif deviating_fields(diff):
        status = HeaderDiffStatus.MISMATCH
    else:
        status = HeaderDiffStatus.MATCH
    return Comparison(status=status, diff=diff, warnings=warnings)


def _compare_fields(scan_header, standard_header, settings, diff, warnings):
    for name, expected in standard_header.items():
        if name in settings.ignored_fields:
            continue
        tolerance = settings.tolerances.get(name)
        usable_tolerance = None
        if tolerance is not None:
            problem = _tolerance_problem(name, tolerance, expected)
            if problem:
                diff["problems"].append(problem)
                warnings.append(problem)
            else:
                usable_tolerance = tolerance

        if name not in scan_header:
            diff["missing"].append(name)
            continue
        actual = scan_header[name]
        if not values_match(expected, actual, usable_tolerance):
            diff["fields"][name] = {
                "expected": expected,
                "actual": actual,
                "tolerance": tolerance,
            }


def _tolerance_problem(name, tolerance, expected):
    """Return why a configured tolerance cannot be applied to a field, or ''."""
    if not _is_number(tolerance) or tolerance < 0:
        return (
            f"HeaderFieldTolerance sets {tolerance!r} for {name}, which is not a number of 0 or "
            f"more, so {name} was compared exactly. Set an absolute tolerance such as 0.001."
        )
    if not _is_numeric(expected):
        return (
            f"HeaderFieldTolerance sets {tolerance!r} for {name}, but the gold standard's "
            f"{name} is not a number or a list of numbers, so it was compared exactly. Remove "
            f"{name} from HeaderFieldTolerance, or add it to IgnoreHeaderFields."
        )
    return ""


def _compare_bvals(standard_bvals, scan_bvals, scan_bval_problem, diff):
    """Add the b-value check to `diff`; return True when it could not be done."""
    diff["bval"] = {"expected": standard_bvals, "actual": scan_bvals, "match": False}
    if standard_bvals is None:
        diff["problems"].append(
            "The gold standard has no b-values, so the scan's b-values cannot be checked. Put "
            "the .bval file beside the standard's JSON in metadata/standards/ and run "
            "load_gold_standards."
        )
        return True
    if scan_bvals is None:
        diff["problems"].append(scan_bval_problem or "The scan's b-values could not be read.")
        return True
    diff["bval"]["match"] = values_match(standard_bvals, scan_bvals, None)
    return False


def values_match(expected, actual, tolerance=None):
    """Return whether two sidecar values are equal under the comparison rules (see the module
    doc).

    `tolerance` is an absolute tolerance for numbers, applied to each number in lists and
    mappings, or None for exact comparison.
    """
    if _is_number(expected) and _is_number(actual):
        if tolerance is None:
            return expected == actual
        difference = abs(actual - expected)
        # The bound is inclusive. isclose absorbs float rounding, because 1.1 - 1.0 is
        # 0.10000000000000009 and would otherwise exceed a tolerance of 0.1.
        return difference <= tolerance or math.isclose(difference, tolerance, rel_tol=1e-9)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return False
        return all(
            values_match(item, other, tolerance)
            for item, other in zip(expected, actual, strict=True)
        )
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return False
        return all(values_match(expected[key], actual[key], tolerance) for key in expected)
    if type(expected) is not type(actual):
        # Covers True vs 1 and "2" vs 2, which Python's == would partly treat as equal.
        return False
    return expected == actual


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_numeric(value):
    """Return whether a value is a number or a (possibly nested) list of numbers."""
    if isinstance(value, list):
        return all(_is_numeric(item) for item in value)
    return _is_number(value)


@dataclass(frozen=True)
class DiffRow:
    """One deviation of a diff, as the diff table and the CSV export show it.

    `kind` is "differs", "missing" or "bval". `detail` describes which items of a list differ.
    """

    field: str
    kind: str
    expected: object = None
    actual: object = None
    tolerance: object = None
    detail: str = ""


def diff_rows(diff):
    """List the deviations of a stored diff as DiffRows, in the order `deviating_fields` uses."""
    rows = []
    for name, entry in (diff or {}).get("fields", {}).items():
        expected, actual = entry.get("expected"), entry.get("actual")
        tolerance = entry.get("tolerance")
        detail = _list_detail(expected, actual, tolerance)
        rows.append(DiffRow(name, "differs", expected, actual, tolerance, detail))
    for name in (diff or {}).get("missing", []):
        rows.append(DiffRow(name, "missing"))
    bval = (diff or {}).get("bval")
    if bval and not bval.get("match"):
        expected, actual = bval.get("expected"), bval.get("actual")
        detail = _list_detail(expected, actual, None)
        rows.append(DiffRow(BVAL_FIELD, "bval", expected, actual, None, detail))
    return rows


def _list_detail(expected, actual, tolerance):
    """Describe how two lists differ, for example `3 of 60 items differ, the first is item 5`."""
    if not (isinstance(expected, list) and isinstance(actual, list)):
        return ""
    if not (_is_number(tolerance) and tolerance >= 0):
        tolerance = None
    if len(expected) != len(actual):
        return f"{len(actual)} items instead of {len(expected)}"
    differing = [
        index
        for index, (item, other) in enumerate(zip(expected, actual, strict=True), start=1)
        if not values_match(item, other, tolerance)
    ]
    if not differing:
        return ""
    return f"{len(differing)} of {len(expected)} items differ, the first is item {differing[0]}"


def repaired_sidecar(sidecar, repair):
    """Return the sidecar with a SidecarRepair applied, or unchanged when the repair is None
    or no longer applies because the archive's value of the field changed since."""
    if repair is None or not isinstance(sidecar, dict):
        return sidecar
    if repair.field not in sidecar or sidecar[repair.field] != repair.original_value:
        # NOTE: the corrected copy under SIDECAR_REPAIR_ROOT is left in place when a repair
        # lapses, so pipelines that prefer it read a stale file until someone deletes it.
        return sidecar
    repaired = dict(sidecar)
    if repair.new_value is None:
        del repaired[repair.field]
    else:
        repaired[repair.field] = repair.new_value
    return repaired
