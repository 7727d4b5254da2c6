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

Unlike datman, phantom-ness is decided by the whole phantom pattern, not by a `PHA` prefix, so
`SPN01_CMH_PHAX_01_01` is a human session.
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

_FIELD = r"[^_\s]+"
_PHANTOM_SUBJECT = re.compile(r"^PHA_([A-Z]{3})(\d{4,6})$")
_KCNI_HUMAN = re.compile(
    r"^(?P<study>[A-Z]{3}\d{2})_(?P<site>[A-Z]{3})_(?P<subject>[A-Z0-9]{4,8})"
    r"_(?P<timepoint>\d{2})_SE(?P<session>\d{2})_(?P<modality>[A-Z]{2,4})$"
)
_KCNI_PHANTOM = re.compile(
    r"^(?P<study>[A-Z]{3}\d{2})_(?P<site>[A-Z]{3})_(?P<type>[A-Z]{3})PHA"
    r"_(?P<number>\d{4,6})_(?P<modality>[A-Z]{2,4})$"
)
_BIDS_ENTITY_ORDER = ("task", "acq", "ce", "dir", "rec", "run", "echo", "mod")
_BIDS_NAME = re.compile(r"^sub-(?P<subject>[A-Z0-9]+)_ses-(?P<session>[A-Za-z0-9]+)_(?P<rest>.+)$")
_SERIES = re.compile(r"^\d+$")
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
        return bool(_PHANTOM_SUBJECT.match(self.subject))

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
        if not self.session.isdigit():
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
        raise IdError(
            f"Invalid ID {text!r}: expected STUDY_SITE_SUBJECT_TIMEPOINT_SESSION.{hint}"
        )
    fields = text.split("_")
    if any(not part for part in fields):
        raise IdError(f"Invalid ID {text!r}: it has an empty field (two '_' in a row or at an end).")
    return text, fields


def _check_human(text, study, site, subject, timepoint, session):
    if subject.upper() == "PHA" or subject.upper().startswith("PHA_"):
        raise IdError(
            f"Invalid ID {text!r}: a phantom ID is STUDY_SITE_PHA_<TYPE><NUMBER>, for example "
            f"{study}_{site}_PHA_FBN0001, with no timepoint or session."
        )
    if subject.upper().endswith("PHA"):
        raise IdError(
            f"Invalid ID {text!r}: subject {subject!r} ends in 'PHA', which is reserved for "
            f"phantoms (STUDY_SITE_PHA_<TYPE><NUMBER>)."
        )
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

    if len(fields) == 4 and fields[2] == "PHA":
        return parse_phantom(text)
    if len(fields) == 6 or (len(fields) == 5 and fields[3].endswith("PHA")):
        return parse_kcni(text).datman
    if len(fields) == 5:
        return _check_human(text, *fields)
    if len(fields) == 4:
        # datman accepts a timepoint ID and reads its session as ''; so does qcdash.
        return _check_human(text, *fields, "")
    raise IdError(
        f"Invalid ID {text!r}: it has {len(fields)} fields; expected 5 "
        f"(STUDY_SITE_SUBJECT_TIMEPOINT_SESSION), 4 for a timepoint "
        f"(STUDY_SITE_SUBJECT_TIMEPOINT) or a phantom (STUDY_SITE_PHA_FBN0001)."
    )


def parse_phantom(text):
    text, fields = _split_fields(text)
    if len(fields) != 4 or fields[2] != "PHA":
        raise IdError(f"Invalid phantom ID {text!r}: expected STUDY_SITE_PHA_<TYPE><NUMBER>.")
    subject = f"PHA_{fields[3]}"
    if not _PHANTOM_SUBJECT.match(subject):
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
        raise IdError(
            f"Invalid scan file name {name!r}: expected <SESSION ID>_<TAG>_<SERIES>_<DESCRIPTION>, "
            f"for example STUDY_SITE_0001_01_01_T1_02_SagT1Bravo.nii.gz."
        )
    id_text = "_".join(parts[:id_fields])
    tag, series = parts[id_fields], parts[id_fields + 1]
    description = "_".join(parts[id_fields + 2 :])

    try:
        ident = parse_session_id(id_text)
    except IdError as error:
        raise IdError(f"Invalid scan file name {name!r}: {error}") from error
    if not _SERIES.match(series):
        raise IdError(
            f"Invalid scan file name {name!r}: series {series!r} is not a number; the part after "
            f"the tag {tag!r} must be the DICOM series number, for example "
            f"{ident.session_id}_{tag}_02_{description}."
        )
    return ScanName(ident, tag, series, description, extension)


def mangle_description(series_description):
    """Turn a DICOM SeriesDescription into the description part of a datman file name."""
    return _DESCRIPTION_JUNK.sub("-", series_description or "")


def make_filename(ident, tag, series, series_description, extension=""):
    return f"{ident.session_id}_{tag}_{int(series):02d}_{mangle_description(series_description)}{extension}"


def _apply_map(value, mapping):
    return (mapping or {}).get(value, value)


def _translate_subject(subject, patterns):
    # Each pattern is "regex->replacement"; the first that matches is applied.
    for pattern in patterns or ():
        source, _, replacement = pattern.partition("->")
        if re.match(source, subject):
            return re.sub(source, replacement, subject)
    return subject


def parse_kcni(text, id_map=None):
    """Parse a KCNI ID and translate it to datman form with datman's `IdMap` (optional)."""
    id_map = id_map or {}
    text = text.strip() if isinstance(text, str) else text
    if not isinstance(text, str) or not text:
        raise IdError(f"Invalid KCNI ID {_describe(text)}: the ID is empty.")
    study_map, site_map = id_map.get("Study"), id_map.get("Site")

    match = _KCNI_PHANTOM.match(text)
    if match:
        ident = DatmanId(
            _apply_map(match["study"], study_map),
            _apply_map(match["site"], site_map),
            f"PHA_{match['type']}{match['number']}",
            "",
            "",
        )
        return KcniId(text, ident, match["modality"])

    match = _KCNI_HUMAN.match(text)
    if not match:
        raise IdError(
            f"Invalid KCNI ID {text!r}: expected STUDY_SITE_SUBJECT_TIMEPOINT_SE<NN>_<MODALITY> "
            f"in upper case, with a study of 3 letters and 2 digits, a subject of 4 to 8 letters "
            f"or digits and a 2-digit timepoint, for example SPN01_CMH_0001_01_SE01_MR."
        )
    ident = DatmanId(
        _apply_map(match["study"], study_map),
        _apply_map(match["site"], site_map),
        _translate_subject(match["subject"], id_map.get("Subject")),
        match["timepoint"],
        match["session"],
    )
    return KcniId(text, ident, match["modality"])


def to_kcni(ident, id_map=None):
    """Format a datman ID in the KCNI convention (the inverse of `parse_kcni`)."""
    id_map = id_map or {}
    study_map = {value: key for key, value in (id_map.get("Study") or {}).items()}
    site_map = {value: key for key, value in (id_map.get("Site") or {}).items()}
    study = _apply_map(ident.study, study_map)
    site = _apply_map(ident.site, site_map)

    if ident.is_phantom:
        match = _PHANTOM_SUBJECT.match(ident.subject)
        return f"{study}_{site}_{match[1]}PHA_{match[2]}_MR"

    # The values of IdMap.Subject are the datman->KCNI patterns.
    subject = _translate_subject(ident.subject, list((id_map.get("Subject") or {}).values()))
    if subject.isdigit():
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
            f"Invalid BIDS file name {name!r}: expected sub-<LABEL>_ses-<LABEL>_..._<suffix> with "
            f"an upper-case or numeric subject label, for example sub-CMH0001_ses-01_T1w.nii.gz."
        )
    *pairs, suffix = match["rest"].split("_")
    if "-" in suffix or not suffix:
        raise IdError(f"Invalid BIDS file name {name!r}: it must end in a suffix such as T1w.")

    entities = {}
    last_position = -1
    for pair in pairs:
        key, _, value = pair.partition("-")
        if key not in _BIDS_ENTITY_ORDER or not value:
            raise IdError(
                f"Invalid BIDS file name {name!r}: entity {pair!r} is not one of "
                f"{', '.join(_BIDS_ENTITY_ORDER)}."
            )
        position = _BIDS_ENTITY_ORDER.index(key)
        if position <= last_position:
            raise IdError(
                f"Invalid BIDS file name {name!r}: entity {key!r} is out of order; expected the "
                f"order {', '.join(_BIDS_ENTITY_ORDER)}."
            )
        last_position = position
        entities[key] = value
    return BidsName(match["subject"], match["session"], entities, suffix)
