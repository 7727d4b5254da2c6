"""Parse and format datman identifiers: session and timepoint IDs, phantoms, scan file names,
KCNI (XNAT) IDs and BIDS file names.

Every part of qcdash that reads an ID goes through this module. Each error names the part that
is wrong, what was expected and, where one exists, the ID that would be accepted.

Conventions, as datman's `scanid` module applies them:

* datman ID: `STUDY_SITE_SUBJECT_TIMEPOINT_SESSION`; each field is a non-empty run without `_`.
  SUBJECT must not end in `PHA`; SESSION must not start with `MR` or `SE` (those are KCNI).
  A timepoint ID is the same without SESSION.
* phantom: `STUDY_SITE_PHA_<TYPE><NUM>` with TYPE three upper-case letters and NUM 4 to 6 digits.
  A phantom has no timepoint and exactly one session.
* scan file name: `<ID>_<TAG>_<SERIES>_<DESCRIPTION><EXT>`, SERIES digits, DESCRIPTION possibly
  empty.
* KCNI ID: `SSSNN_SSS_<SUBJECT>_<TP>_SE<NN>_<MOD>`, or `SSSNN_SSS_<TYPE>PHA_<NUM>_<MOD>` for a
  phantom.

Where qcdash differs from datman:

* Phantom-ness is decided by the whole phantom pattern, not by a `PHA` prefix, so
  `SPN01_CMH_PHAX_01_01` is a human session.
* A literal session `XX` is an ordinary non-numeric session, not datman's "no session" marker.
* Scan names pad the series to two digits, so `_2` and `_02` name the same scan.
* `.err` (dcm2niix conversion errors) is a known extension instead of part of the description.
"""

import re
from dataclasses import dataclass, field

# Extensions that datman writes beside a series, longest first so `.nii.gz` wins over `.gz`.
SCAN_EXTENSIONS = (
    ".nii.gz",
    ".tar.gz",
    ".nii",
    ".json",
    ".bvec",
    ".bval",
    ".tar",
    ".dcm",
    ".IMA",
    ".mnc",
    ".nrrd",
    ".err",
)

_PHANTOM_SUBJECT = re.compile(r"PHA_([A-Z]{3})([0-9]{4,6})")
_PHANTOM_FORM = "STUDY_SITE_PHA_<TYPE><NUMBER>"
_KCNI_HUMAN_FORM = "STUDY_SITE_SUBJECT_TIMEPOINT_SE<NN>_<MODALITY>"
_KCNI_PHANTOM_FORM = "STUDY_SITE_<TYPE>PHA_<NUMBER>_<MODALITY>"
# Each KCNI field: (name, pattern, the expected shape as a phrase).
_KCNI_STUDY = (
    "study",
    re.compile(r"[A-Z]{3}[0-9]{2}"),
    "3 upper-case letters and 2 digits (SPN01)",
)
_KCNI_SITE = ("site", re.compile(r"[A-Z]{3}"), "3 upper-case letters (CMH)")
_KCNI_MODALITY = ("modality", re.compile(r"[A-Z]{2,4}"), "2 to 4 upper-case letters (MR)")
_KCNI_HUMAN_FIELDS = (
    _KCNI_STUDY,
    _KCNI_SITE,
    ("subject", re.compile(r"[A-Z0-9]{4,8}"), "4 to 8 upper-case letters or digits (0001)"),
    ("timepoint", re.compile(r"[0-9]{2}"), "2 digits (01)"),
    ("session", re.compile(r"SE[0-9]{2}"), "SE and 2 digits (SE01)"),
    _KCNI_MODALITY,
)
_KCNI_PHANTOM_FIELDS = (
    _KCNI_STUDY,
    _KCNI_SITE,
    ("phantom type", re.compile(r"[A-Z]{3}PHA"), "3 upper-case letters and PHA (FBNPHA)"),
    ("phantom number", re.compile(r"[0-9]{4,6}"), "4 to 6 digits (0001)"),
    _KCNI_MODALITY,
)
_BIDS_ENTITY_ORDER = ("task", "acq", "ce", "dir", "rec", "run", "echo", "mod")
_BIDS_NAME = re.compile(r"^sub-(?P<subject>[^_]*)_ses-(?P<session>[^_]*)_(?P<rest>.+)$")
_BIDS_SUBJECT = re.compile(r"[A-Z0-9]+")
_BIDS_SESSION = re.compile(r"[A-Za-z0-9]+")
# Digit checks use [0-9] and fullmatch, because \d and str.isdigit() also accept other Unicode
# digits and `$` accepts a trailing newline.
_DIGITS = re.compile(r"[0-9]+")
_FILENAME_FORM = "<SESSION ID>_<TAG>_<SERIES>_<DESCRIPTION>"
_DESCRIPTION_JUNK = re.compile(r"[^A-Za-z0-9.+]+")


class IdError(ValueError):
    """An identifier or file name that does not follow the naming convention."""


@dataclass(frozen=True)
class DatmanId:
    """A parsed datman ID. `session` is '' for a timepoint ID."""

    study: str
    site: str
    subject: str
    timepoint: str
    session: str = ""

    @property
    def is_phantom(self):
        return bool(_PHANTOM_SUBJECT.fullmatch(self.subject))

    @property
    def subject_id(self):
        """`STUDY_SITE_SUBJECT`."""
        return f"{self.study}_{self.site}_{self.subject}"

    @property
    def timepoint_id(self):
        """The timepoint name, `STUDY_SITE_SUBJECT_TIMEPOINT`; for a phantom its own ID."""
        if self.is_phantom:
            return self.subject_id
        return f"{self.subject_id}_{self.timepoint}"

    @property
    def session_number(self):
        """The repeat number as an int; a phantom always has session 1."""
        if self.is_phantom:
            return 1
        if not self.session:
            raise IdError(
                f"ID {self.timepoint_id!r} has no session number; a session ID ends in the "
                f"session number, for example {self.timepoint_id}_01."
            )
        if not _DIGITS.fullmatch(self.session):
            raise IdError(
                f"ID {self.session_id!r} has a non-numeric session {self.session!r}; the session "
                f"is the repeat number within the visit, for example {self.timepoint_id}_01."
            )
        return int(self.session)

    @property
    def session_id(self):
        """`STUDY_SITE_SUBJECT_TIMEPOINT_SESSION`; for a phantom its own ID."""
        if self.is_phantom:
            return self.subject_id
        if not self.session:
            return self.timepoint_id
        return f"{self.timepoint_id}_{self.session}"

    @property
    def bids_subject(self):
        """BIDS subject label `SITESUBJECT`; phantoms have none ('')."""
        return "" if self.is_phantom else f"{self.site}{self.subject}"

    @property
    def bids_session(self):
        return "" if self.is_phantom else self.timepoint

    def __str__(self):
        return self.session_id

    def upper(self):
        """The same ID in upper case (datman accepts lower-case IDs, qcdash stores upper case)."""
        return DatmanId(*(part.upper() for part in self._parts()))

    def _parts(self):
        return (self.study, self.site, self.subject, self.timepoint, self.session)


@dataclass(frozen=True)
class ScanName:
    """A parsed scan file name."""

    ident: DatmanId
    tag: str
    series: str
    description: str
    extension: str = ""

    @property
    def series_number(self):
        return int(self.series)

    @property
    def stem(self):
        """The file name without extension, series zero-padded to two digits."""
        return f"{self.ident.session_id}_{self.tag}_{self.series_number:02d}_{self.description}"

    @property
    def scan_name(self):
        """The scan's unique name: `<session ID>_<TAG>_<SERIES>`, series padded to two digits.

        Padding here keeps `_2` and `_02` from becoming two scans.
        """
        return f"{self.ident.session_id}_{self.tag}_{self.series_number:02d}"


@dataclass(frozen=True)
class KcniId:
    """A parsed KCNI (XNAT) ID and its datman form."""

    original: str
    datman: DatmanId
    modality: str

    @property
    def xnat_subject_id(self):
        """The XNAT subject label: the untranslated `STUDY_SITE_SUBJECT` of the KCNI ID.

        For a phantom it is `STUDY_SITE_<TYPE>PHA`. IdMap is not applied, because XNAT keeps the
        KCNI names.
        """
        return "_".join(self.original.split("_")[:3])


@dataclass(frozen=True)
class BidsName:
    """A parsed BIDS file name (datman's subset of BIDS entities)."""

    subject: str
    session: str
    entities: dict = field(default_factory=dict)
    suffix: str = ""

    def __str__(self):
        parts = [f"sub-{self.subject}", f"ses-{self.session}"]
        entities = dict(self.entities)
        entities.setdefault("run", "1")
        parts += [f"{key}-{entities[key]}" for key in _BIDS_ENTITY_ORDER if key in entities]
        return "_".join(parts + [self.suffix])


def _describe(text):
    return repr(text) if isinstance(text, str) else f"{text!r} (not text)"


def _split_fields(text):
    if not isinstance(text, str) or not text.strip():
        raise IdError(f"Invalid ID {_describe(text)}: the ID is empty.")
    text = text.strip()
    if re.search(r"\s", text):
        raise IdError(f"Invalid ID {text!r}: IDs cannot contain spaces or other whitespace.")
    if "_" not in text:
        hint = " IDs separate fields with '_', not '-'." if "-" in text else ""
        raise IdError(f"Invalid ID {text!r}: expected STUDY_SITE_SUBJECT_TIMEPOINT_SESSION.{hint}")
    fields = text.split("_")
    if any(not part for part in fields):
        raise IdError(
            f"Invalid ID {text!r}: it has an empty field (two '_' in a row or at an end)."
        )
    return text, fields


def _phantom_subject_error(text, fields):
    """Build the error for an ID whose subject is `PHA` but which is no datman phantom ID."""
    study, site = fields[0], fields[1]
    example = f"{study}_{site}_PHA_FBN0001"
    if len(fields) > 3 and _PHANTOM_SUBJECT.fullmatch(f"PHA_{fields[3]}"):
        example = f"{study}_{site}_PHA_{fields[3]}"
    return IdError(
        f"Invalid ID {text!r}: subject 'PHA' marks a phantom, and a phantom ID is "
        f"{_PHANTOM_FORM} with no timepoint or session, for example {example}."
    )


def _subject_ends_in_pha_error(text, fields, detail=""):
    """Build the error for a subject ending in PHA, which only phantom IDs may use."""
    study, site, subject = fields[:3]
    # Build the examples from the ID's own phantom type and number where it has them.
    phantom_type = subject[:-3] if re.fullmatch(r"[A-Z]{3}", subject[:-3]) else "FBN"
    number = fields[3] if len(fields) > 3 and re.fullmatch(r"[0-9]{4,6}", fields[3]) else "0001"
    detail = f" Read as a KCNI phantom ID, it is invalid: {detail}." if detail else ""
    return IdError(
        f"Invalid ID {text!r}: subject {subject!r} ends in 'PHA', which only phantom IDs use: "
        f"{_PHANTOM_FORM} in datman form (for example {study}_{site}_PHA_{phantom_type}{number}) "
        f"or {_KCNI_PHANTOM_FORM} in KCNI form (for example "
        f"{study}_{site}_{phantom_type}PHA_{number}_MR).{detail}"
    )


def _check_human(text, study, site, subject, timepoint, session):
    if subject.upper() == "PHA":
        raise _phantom_subject_error(text, [study, site, subject, timepoint, session])
    if subject.upper().endswith("PHA"):
        raise _subject_ends_in_pha_error(text, [study, site, subject, timepoint])
    if session and session.upper().startswith(("MR", "SE")):
        raise IdError(
            f"Invalid ID {text!r}: session {session!r} starts with 'MR' or 'SE', which datman "
            f"reserves for KCNI IDs; a datman session is the repeat number, for example "
            f"{study}_{site}_{subject}_{timepoint}_01."
        )
    return DatmanId(study, site, subject, timepoint, session)


def parse(text):
    """Parse a datman session, timepoint or phantom ID, or a KCNI ID, into a `DatmanId`.

    Raise `IdError` naming the part that is wrong.
    """
    text, fields = _split_fields(text)

    if len(fields) >= 3 and fields[2].upper() == "PHA" and len(fields) != 4:
        raise _phantom_subject_error(text, fields)
    if len(fields) == 4 and fields[2] == "PHA":
        return parse_phantom(text)
    if len(fields) == 5 and fields[2].upper().endswith("PHA"):
        # A subject ending in PHA is only valid as the type of a KCNI phantom (FBNPHA).
        problem = _find_kcni_problem(fields, _KCNI_PHANTOM_FIELDS)
        if problem:
            raise _subject_ends_in_pha_error(text, fields, detail=problem)
        return _kcni_to_datman(fields, _KCNI_PHANTOM_FIELDS, {})
    if len(fields) == 6:
        problem = _find_kcni_problem(fields, _KCNI_HUMAN_FIELDS)
        if problem:
            raise IdError(
                f"Invalid ID {text!r}: an ID with 6 fields must be a KCNI ID "
                f"({_KCNI_HUMAN_FORM}, for example SPN01_CMH_0001_01_SE01_MR), but {problem}. "
                f"A datman session ID has 5 fields: STUDY_SITE_SUBJECT_TIMEPOINT_SESSION."
            )
        return _kcni_to_datman(fields, _KCNI_HUMAN_FIELDS, {})
    if len(fields) == 5:
        return _check_human(text, *fields)
    if len(fields) == 4:
        # datman accepts a timepoint ID and reads its session as ''; so does qcdash.
        return _check_human(text, *fields, "")
    raise IdError(
        f"Invalid ID {text!r}: it has {len(fields)} fields; expected 5 "
        f"(STUDY_SITE_SUBJECT_TIMEPOINT_SESSION), 4 for a timepoint "
        f"(STUDY_SITE_SUBJECT_TIMEPOINT) or a phantom ({_PHANTOM_FORM}, for example "
        f"STUDY_SITE_PHA_FBN0001), or 6 for a KCNI ID ({_KCNI_HUMAN_FORM})."
    )


def parse_phantom(text):
    text, fields = _split_fields(text)
    if len(fields) != 4 or fields[2] != "PHA":
        raise IdError(f"Invalid phantom ID {text!r}: expected {_PHANTOM_FORM}.")
    subject = f"PHA_{fields[3]}"
    if not _PHANTOM_SUBJECT.fullmatch(subject):
        raise IdError(
            f"Invalid phantom ID {text!r}: {fields[3]!r} must be three upper-case letters and "
            f"4 to 6 digits, for example FBN0001 or FBN190603."
        )
    return DatmanId(fields[0], fields[1], subject, "", "")


def parse_session_id(text):
    """Parse an ID that must name one session (a phantom names its only session).

    A timepoint ID is rejected with the session ID to use instead.
    """
    ident = parse(text)
    if not ident.is_phantom:
        if not ident.session:
            raise IdError(
                f"{text.strip()!r} is a timepoint ID, but a session ID is needed here: add the "
                f"session number, for example {ident.timepoint_id}_01."
            )
        ident.session_number  # noqa: B018 - raises IdError for a non-numeric session
    return ident


def parse_timepoint_id(text):
    """Parse a timepoint or phantom ID; a session ID is rejected with its timepoint ID."""
    ident = parse(text)
    if ident.session and not ident.is_phantom:
        raise IdError(
            f"{text.strip()!r} is a session ID, but a timepoint ID is needed here: "
            f"{ident.timepoint_id}."
        )
    return ident


def split_extension(name):
    """Split a file name into (stem, extension) for the extensions datman writes."""
    for extension in SCAN_EXTENSIONS:
        if name.endswith(extension):
            return name[: -len(extension)], extension
    return name, ""


def _short_filename_error(name, parts, id_fields, extension):
    """Build the error for a file name with too few fields, naming the part that is missing."""
    if len(parts) == id_fields + 2 and _DIGITS.fullmatch(parts[-1]):
        return IdError(
            f"Invalid scan file name {name!r}: it has no description after the series "
            f"{parts[-1]!r}; expected {_FILENAME_FORM}, where an empty description is a "
            f"trailing '_', for example {'_'.join(parts)}_{extension}."
        )
    if id_fields == 5 and len(parts) >= 7 and _DIGITS.fullmatch(parts[5]):
        # TIMEPOINT-ID_TAG_SERIES_DESCRIPTION: the ID lacks its session number.
        timepoint_id = "_".join(parts[:4])
        rest = "_".join(parts[4:])
        return IdError(
            f"Invalid scan file name {name!r}: it starts with the timepoint ID {timepoint_id!r}, "
            f"but a file name starts with a session ID; expected {_FILENAME_FORM}, for example "
            f"{timepoint_id}_01_{rest}{extension}."
        )
    return IdError(
        f"Invalid scan file name {name!r}: it has too few '_'-separated fields ({len(parts)}) "
        f"for {_FILENAME_FORM}, for example STUDY_SITE_0001_01_01_T1_02_SagT1Bravo.nii.gz."
    )


def parse_filename(name):
    """Parse a scan file name `<ID>_<TAG>_<SERIES>_<DESCRIPTION><EXT>` into a `ScanName`.

    `name` is a base name or a stem; a known extension is split off first. The ID part must be a
    session ID (or a phantom ID).
    """
    if not isinstance(name, str) or not name.strip():
        raise IdError(f"Invalid scan file name {_describe(name)}: the name is empty.")
    stem, extension = split_extension(name.strip())
    parts = stem.split("_")

    id_fields = 4 if len(parts) > 3 and parts[2] == "PHA" else 5
    if len(parts) < id_fields + 3:
        raise _short_filename_error(name, parts, id_fields, extension)
    id_text = "_".join(parts[:id_fields])
    tag, series = parts[id_fields], parts[id_fields + 1]
    description = "_".join(parts[id_fields + 2 :])

    try:
        ident = parse_session_id(id_text)
    except IdError as error:
        raise IdError(f"Invalid scan file name {name!r}: {error}") from error
    if not _DIGITS.fullmatch(series):
        raise IdError(
            f"Invalid scan file name {name!r}: series {series!r} is not a number; the part after "
            f"the tag {tag!r} must be the DICOM series number (SeriesNumber in the sidecar), "
            f"as in {ident.session_id}_{tag}_<SERIES>_{description}."
        )
    return ScanName(ident, tag, series, description, extension)


def mangle_description(series_description):
    """Turn a DICOM SeriesDescription into the description part of a datman file name."""
    return _DESCRIPTION_JUNK.sub("-", series_description or "")


def make_filename(ident, tag, series, series_description, extension=""):
    """Build a datman file name, with the series zero-padded to two digits as datman writes it."""
    description = mangle_description(series_description)
    return f"{ident.session_id}_{tag}_{int(series):02d}_{description}{extension}"


def _apply_map(value, mapping):
    return (mapping or {}).get(value, value)


def _translate_subject(subject, patterns):
    # Each pattern is "regex->replacement"; the first that matches is applied.
    for pattern in patterns or ():
        source, _, replacement = pattern.partition("->")
        if re.match(source, subject):
            return re.sub(source, replacement, subject)
    return subject


def _find_kcni_problem(fields, field_specs):
    """Return what is wrong with the fields of a KCNI ID, or '' when they are valid."""
    for (name, pattern, shape), value in zip(field_specs, fields, strict=True):
        if pattern.fullmatch(value):
            continue
        hint = ", and KCNI IDs are upper case" if pattern.fullmatch(value.upper()) else ""
        return f"its {name} {value!r} is not {shape}{hint}"
    return ""


def _kcni_to_datman(fields, field_specs, id_map):
    study_map, site_map = id_map.get("Study"), id_map.get("Site")
    study = _apply_map(fields[0], study_map)
    site = _apply_map(fields[1], site_map)
    if field_specs is _KCNI_PHANTOM_FIELDS:
        phantom_type = fields[2].removesuffix("PHA")
        return DatmanId(study, site, f"PHA_{phantom_type}{fields[3]}", "", "")
    subject = _translate_subject(fields[2], id_map.get("Subject"))
    return DatmanId(study, site, subject, fields[3], fields[4].removeprefix("SE"))


def parse_kcni(text, id_map=None):
    """Parse a KCNI ID and translate it to datman form with datman's `IdMap` (optional).

    `id_map` is the `IdMap` setting: `Study` and `Site` map KCNI values to datman values, and
    the keys of `Subject` are `regex->replacement` patterns from KCNI to datman.
    """
    id_map = id_map or {}
    text = text.strip() if isinstance(text, str) else text
    if not isinstance(text, str) or not text:
        raise IdError(f"Invalid KCNI ID {_describe(text)}: the ID is empty.")
    fields = text.split("_")

    if len(fields) == 5 and fields[2].upper().endswith("PHA"):
        field_specs, form = _KCNI_PHANTOM_FIELDS, _KCNI_PHANTOM_FORM
        example = "SPN01_CMH_FBNPHA_0001_MR"
    elif len(fields) == 6:
        field_specs, form = _KCNI_HUMAN_FIELDS, _KCNI_HUMAN_FORM
        example = "SPN01_CMH_0001_01_SE01_MR"
    else:
        raise IdError(
            f"Invalid KCNI ID {text!r}: it has {len(fields)} fields; expected 6 "
            f"({_KCNI_HUMAN_FORM}, for example SPN01_CMH_0001_01_SE01_MR) or 5 for a phantom "
            f"({_KCNI_PHANTOM_FORM}, for example SPN01_CMH_FBNPHA_0001_MR)."
        )

    problem = _find_kcni_problem(fields, field_specs)
    if problem:
        raise IdError(
            f"Invalid KCNI ID {text!r}: {problem}; expected {form}, for example {example}."
        )
    return KcniId(text, _kcni_to_datman(fields, field_specs, id_map), fields[-1])


def to_kcni(ident, id_map=None):
    """Format a datman ID in the KCNI convention (the inverse of `parse_kcni`)."""
    id_map = id_map or {}
    study_map = {value: key for key, value in (id_map.get("Study") or {}).items()}
    site_map = {value: key for key, value in (id_map.get("Site") or {}).items()}
    study = _apply_map(ident.study, study_map)
    site = _apply_map(ident.site, site_map)

    if ident.is_phantom:
        match = _PHANTOM_SUBJECT.fullmatch(ident.subject)
        return f"{study}_{site}_{match[1]}PHA_{match[2]}_MR"

    # The values of IdMap.Subject are the datman->KCNI patterns.
    subject = _translate_subject(ident.subject, list((id_map.get("Subject") or {}).values()))
    if _DIGITS.fullmatch(subject):
        subject = subject.zfill(4)
    return f"{study}_{site}_{subject}_{ident.timepoint}_SE{ident.session_number:02d}_MR"


def parse_bids_filename(name):
    """Parse a BIDS file name `sub-X_ses-Y[_entity-value...]_suffix[.ext]`.

    Accepts datman's entities (task, acq, ce, dir, rec, run, echo, mod) in that order.
    """
    if not isinstance(name, str) or not name.strip():
        raise IdError(f"Invalid BIDS file name {_describe(name)}: the name is empty.")
    base = name.strip().rsplit("/", 1)[-1]
    stem, _ = split_extension(base)
    match = _BIDS_NAME.match(stem)
    if not match:
        raise IdError(
            f"Invalid BIDS file name {name!r}: expected sub-<LABEL>_ses-<LABEL>_..._<suffix>, "
            f"for example sub-CMH0001_ses-01_T1w.nii.gz."
        )
    subject, session = match["subject"], match["session"]
    if not _BIDS_SUBJECT.fullmatch(subject):
        raise IdError(
            f"Invalid BIDS file name {name!r}: subject label {subject!r} must be upper-case "
            f"letters and digits (datman's SITE + SUBJECT), for example sub-CMH0001."
        )
    if not _BIDS_SESSION.fullmatch(session):
        raise IdError(
            f"Invalid BIDS file name {name!r}: session label {session!r} must be letters and "
            f"digits (datman's timepoint), for example ses-01."
        )
    *pairs, suffix = match["rest"].split("_")
    if "-" in suffix or not suffix:
        raise IdError(
            f"Invalid BIDS file name {name!r}: it ends in {suffix!r} instead of a suffix without "
            f"'-' such as T1w or bold; entities go before the suffix."
        )

    entities = {}
    previous_key = None
    for pair in pairs:
        key, _, value = pair.partition("-")
        if key not in _BIDS_ENTITY_ORDER:
            raise IdError(
                f"Invalid BIDS file name {name!r}: entity {pair!r} is not one of "
                f"{', '.join(_BIDS_ENTITY_ORDER)}."
            )
        if not value:
            raise IdError(
                f"Invalid BIDS file name {name!r}: entity {key!r} has no value; expected "
                f"{key}-<LABEL>, for example {key}-1."
            )
        if previous_key and _BIDS_ENTITY_ORDER.index(key) <= _BIDS_ENTITY_ORDER.index(previous_key):
            raise IdError(
                f"Invalid BIDS file name {name!r}: entity {key!r} comes after {previous_key!r}; "
                f"expected the order {', '.join(_BIDS_ENTITY_ORDER)}."
            )
        previous_key = key
        entities[key] = value
    return BidsName(subject, session, entities, suffix)
