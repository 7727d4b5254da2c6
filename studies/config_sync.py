"""Sync studies, sites, study codes, scan types and expected scans from datman's YAML config.

datman keeps its settings in a main config file (the file `DM_CONFIG` points to) and one file per
study, listed under `Projects` and found in the system's `ConfigDir`. A setting is looked up in
the site block (`Sites.<SITE>`), then the study file's top level, then the system block
(`SystemSettings.<name>`), then the main file's top level. The most specific scalar wins, dicts
are merged with the more specific keys winning, and lists are joined.

`sync_config` creates missing rows and updates changed fields, and never deletes anything.

Other apps sync settings of their own through steps registered with `register_sync_step` from
their `AppConfig.ready()`, so this module never imports them. A step has two methods:

* `read(study_config, result)` runs before the first write, once per study. It reads the
  study's settings (`study_config.sites[i].settings.lookup(key)`, `.text(key)`,
  `.flag(key, default)`, with datman's precedence), raises ConfigError for a setting that
  cannot be synced, may call `result.warn(message)`, and returns what `write` needs.
* `write(writer, study, study_sites, data)` runs inside the sync's transaction after the
  study's own rows are written. `study_sites` maps site names to StudySite rows and `data` is
  what `read` returned. Rows are written with `writer.upsert(...)` so that changes are reported.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from studies.models import (
    AltStudyCode,
    ExpectedScan,
    HeaderComparisonSettings,
    Scantype,
    Site,
    Study,
    StudySite,
    XnatConvention,
    validate_ignored_fields,
    validate_tolerances,
)

logger = logging.getLogger(__name__)

# Keys of the per-study format that datman replaced in 2018, with their current names.
LEGACY_STUDY_KEYS = {
    "STUDYNAME": "the key in the main config's Projects",
    "PROJECTDIR": "ProjectDir (a folder name inside DatmanProjectsDir)",
    "STUDY_ID": "StudyTag",
    "PREFIX": "StudyTag",
    "MRUSER": "MrUser",
    "MRFOLDER": "MrFolder",
}
LEGACY_SITE_KEYS = {
    "SITE_IDS": "SiteTags",
    "XNAT_Archive": "XnatArchive",
}


class ConfigError(Exception):
    """A datman config that cannot be synced; the message names the file and the fix."""


@dataclass(frozen=True)
class Change:
    """One created row, or one changed field of an existing row."""

    label: str
    field: str = ""
    old: object = None
    new: object = None

    def __str__(self):
        if not self.field:
            return f"created {self.label}"
        return f"changed {self.label}: {self.field} {self.old!r} → {self.new!r}"


@dataclass
class SyncResult:
    """The outcome of a sync: the changes in order, the warnings and the row counts."""

    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    dry_run: bool = False

    @property
    def summary(self):
        line = (
            f"{self.created} created, {self.changed} changed, {self.unchanged} unchanged, "
            f"{len(self.warnings)} warnings"
        )
        if self.dry_run:
            line += " (dry run: all changes rolled back, nothing was saved)"
        return line

    def warn(self, message):
        logger.warning("config sync: %s", message)
        self.warnings.append(message)


@dataclass(frozen=True)
class _Layer:
    """One level of settings and where it comes from, for error messages."""

    source: str
    values: dict


class _Settings:
    """Settings looked up through levels, most specific first (datman's precedence)."""

    def __init__(self, layers):
        self.layers = list(layers)

    def with_layer(self, layer):
        return _Settings([layer, *self.layers])

    def lookup(self, key):
        """Return the merged value of `key` and the source of its most specific level.

        Return (None, '') when the key is unset. An empty value (`Key:` with nothing after it)
        counts as unset.
        """
        found = [
            (layer.source, layer.values[key])
            for layer in self.layers
            if layer.values.get(key) is not None
        ]
        if not found:
            return None, ""
        source, first = found[0]
        kinds = {_kind(value) for _, value in found}
        if len(kinds) > 1:
            where = ", ".join(f"{source} ({_kind(value)})" for source, value in found)
            raise ConfigError(
                f"Conflicting types for {key}: {where}. Use the same type (a value, a list or "
                f"a mapping) at every level."
            )
        if isinstance(first, dict):
            merged = {}
            for _, value in reversed(found):
                merged.update(value)
            return merged, source
        if isinstance(first, list):
            joined = []
            for _, value in found:
                joined += [item for item in value if item not in joined]
            return joined, source
        return first, source

    def source_of(self, key, entry):
        """Return the source of the most specific level whose mapping `key` contains `entry`."""
        for layer in self.layers:
            values = layer.values.get(key)
            if isinstance(values, dict) and entry in values:
                return layer.source
        return ""

    def text(self, key):
        value, source = self.lookup(key)
        return _text(value, key, source)

    def flag(self, key, default):
        value, source = self.lookup(key)
        return _flag(value, key, source, default)


def _kind(value):
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "value"


# ---------------------------------------------------------------------------------------------
# Reading files


def _load_yaml(path, file_label):
    """Read a YAML file that must contain a mapping, or raise ConfigError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file_label} {path} not found; check the path.") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{file_label} {path} is a folder; give the path of the YAML file."
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{file_label} {path} is not UTF-8 text ({error.reason} at byte {error.start}); "
            f"save it as UTF-8."
        ) from None
    except OSError as error:
        raise ConfigError(f"{file_label} {path} cannot be read: {error}.") from None

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(_describe_yaml_error(path, file_label, error)) from None
    if data is None:
        raise ConfigError(f"{file_label} {path} is empty; it must contain YAML settings.")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file_label} {path} must contain a mapping of settings (Key: value), not a "
            f"{type(data).__name__}."
        )
    return data


def _describe_yaml_error(path, file_label, error):
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    details = [getattr(error, "context", None), getattr(error, "problem", None)]
    reason = ", ".join(part for part in details if part) or str(error)
    return f"{file_label} {path} is not valid YAML{position}: {reason}. Fix the YAML syntax there."


def _resolve_dir(value, key, base_folder, source):
    """Return the folder that `value` names, trying a relative one from `base_folder` upwards.

    datman's own test config gives paths relative to datman's repository root, two folders above
    the config file, so each parent folder of the main config is tried in turn.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} in {source} must be a folder path, not {value!r}.")
    path = Path(value.strip())
    if path.is_absolute():
        # NOTE: an absolute folder is taken as given, without checking that it exists, because
        # the archive may be mounted elsewhere on the host that runs the sync.
        return Path(os.path.normpath(path))

    tried = []
    for folder in (base_folder, *base_folder.parents):
        candidate = Path(os.path.normpath(folder / path))
        tried.append(str(candidate))
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        f"{key} {value!r} in {source} is relative and no such folder exists; tried "
        f"{', '.join(tried)}. Create the folder or set {key} to an absolute path."
    )


# ---------------------------------------------------------------------------------------------
# Main config


@dataclass
class _MainConfig:
    path: Path
    settings: _Settings
    projects: dict
    config_dir: Path
    projects_dir: Path


def _read_main_config(path, system):
    path = Path(os.path.abspath(path))
    data = _load_yaml(path, "Main config")
    source = str(path)

    systems = data.get("SystemSettings")
    if "Projects" not in data:
        hint = "add Projects: {NICKNAME: study config file} at the top level."
        if isinstance(systems, dict) and "Projects" in systems:
            hint = (
                "it is indented inside SystemSettings, where it reads as a system named "
                "'Projects'; move Projects (and any paths or Paths block) to the top level, "
                "without indentation."
            )
        raise ConfigError(f"Main config {path}: Projects is missing at the top level; {hint}")
    if not isinstance(systems, dict) or not systems:
        raise ConfigError(
            f"Main config {path}: SystemSettings is missing or empty; add SystemSettings with "
            f"one entry per system, each with DatmanProjectsDir and ConfigDir."
        )

    systems = {str(name): values for name, values in systems.items()}
    system_name = _choose_system(path, systems, system)
    system_values = systems[system_name]
    system_source = f"SystemSettings.{system_name} of {path}"
    if not isinstance(system_values, dict):
        raise ConfigError(
            f"{system_source} must be a mapping with DatmanProjectsDir and ConfigDir, not "
            f"{system_values!r}."
        )
    for key in ("DatmanProjectsDir", "ConfigDir"):
        if system_values.get(key) is None:
            raise ConfigError(f"{system_source} has no {key}; add {key}: <folder>.")

    main_values = {key: value for key, value in data.items() if key != "SystemSettings"}
    settings = _Settings([_Layer(system_source, system_values), _Layer(source, main_values)])
    config_dir = _resolve_dir(system_values["ConfigDir"], "ConfigDir", path.parent, system_source)
    projects_dir = _resolve_dir(
        system_values["DatmanProjectsDir"], "DatmanProjectsDir", path.parent, system_source
    )
    return _MainConfig(
        path=path,
        settings=settings,
        projects=_read_projects(path, data["Projects"]),
        config_dir=config_dir,
        projects_dir=projects_dir,
    )


def _choose_system(path, systems, system):
    names = [str(name) for name in systems]
    chosen = system or os.environ.get("DM_SYSTEM")
    if chosen:
        if chosen not in names:
            raise ConfigError(
                f"System {chosen!r} not found in SystemSettings of {path}; configured systems: "
                f"{', '.join(names)}. Choose one of them with --system or DM_SYSTEM."
            )
        return chosen
    if len(names) == 1:
        return names[0]
    raise ConfigError(
        f"Main config {path} defines several systems ({', '.join(names)}); choose one with "
        f"--system or the DM_SYSTEM environment variable."
    )


def _read_projects(path, projects):
    if not isinstance(projects, dict) or not projects:
        raise ConfigError(
            f"Main config {path}: Projects must map each study nickname to its study config "
            f"file, for example Projects: {{SPINS: SPINS_settings.yml}}; found {projects!r}."
        )
    result = {}
    for nickname, file_name in projects.items():
        key = str(nickname).upper()
        if key in result:
            raise ConfigError(
                f"Main config {path}: Projects lists study {key} twice (nicknames are "
                f"upper-cased); remove one of the entries."
            )
        if not isinstance(file_name, str) or not file_name.strip():
            raise ConfigError(
                f"Main config {path}: Projects.{nickname} must name a study config file, not "
                f"{file_name!r}."
            )
        result[key] = file_name.strip()
    return result


def _read_scantypes(main):
    export_settings, source = main.settings.lookup("ExportSettings")
    if export_settings is None:
        return {}
    if not isinstance(export_settings, dict):
        raise ConfigError(f"ExportSettings in {source} must be a mapping of tags to settings.")
    scantypes = {}
    for tag, values in export_settings.items():
        tag = str(tag)
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(
                f"ExportSettings.{tag} in {source} must be a mapping (Formats, QcType, QcPha), "
                f"not {values!r}."
            )
        formats = values.get("Formats") or []
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list):
            raise ConfigError(
                f"ExportSettings.{tag}.Formats in {source} must be a list such as "
                f"['nii', 'dcm'], not {formats!r}."
            )
        where = f"ExportSettings.{tag} in {source}"
        scantypes[tag] = {
            "qc_type": _text(values.get("QcType"), "QcType", where),
            "pha_type": _text(values.get("QcPha"), "QcPha", where),
            "formats": [str(item) for item in formats],
        }
    return scantypes


# ---------------------------------------------------------------------------------------------
# Study config


@dataclass
class _SiteConfig:
    name: str
    values: dict = field(default_factory=dict)
    alt_codes: list = field(default_factory=list)
    expected: dict = field(default_factory=dict)
    # Every tag in the site's ExportInfo, including those skipped with a warning.
    export_tags: list = field(default_factory=list)
    # The site's settings with datman's precedence, for registered sync steps.
    settings: object = None
    # The site block's own IgnoreHeaderFields and HeaderFieldTolerance, or None if it sets neither.
    header_settings: dict | None = None


@dataclass
class _StudyConfig:
    nickname: str
    path: Path
    values: dict = field(default_factory=dict)
    sites: list = field(default_factory=list)
    # What each registered sync step read, in the order of `_sync_steps`.
    step_data: list = field(default_factory=list)
    # IgnoreHeaderFields and HeaderFieldTolerance merged over the main, system and study levels,
    # or None if none of them sets either.
    header_settings: dict | None = None


def _read_study(main, nickname, scantypes, result):
    path = main.config_dir / main.projects[nickname]
    if not path.exists():
        raise ConfigError(
            f"Study config {path} of study {nickname} not found; it is listed under Projects in "
            f"{main.path} and looked up in ConfigDir {main.config_dir}. Create the file or fix "
            f"the Projects entry."
        )
    data = _load_yaml(path, "Study config")
    _reject_legacy_format(path, data)

    sites = data.get("Sites")
    if not sites:
        raise ConfigError(
            f"Study config {path} has no Sites; add Sites with one block per scan site, for "
            f"example Sites: {{CMH: {{ExportInfo: {{T1: {{Count: 1}}}}}}}}."
        )
    if not isinstance(sites, dict):
        raise ConfigError(
            f"Sites in study config {path} must be a mapping of site codes to site settings, "
            f"not {sites!r}."
        )
    project_dir = _text(data.get("ProjectDir"), "ProjectDir", str(path))
    if not project_dir:
        raise ConfigError(
            f"Study config {path} has no ProjectDir; add ProjectDir: <the study's folder "
            f"inside {main.projects_dir}>."
        )

    settings = main.settings.with_layer(_Layer(str(path), data))
    study = _StudyConfig(nickname=nickname, path=path)
    study.values = _study_values(main, settings, project_dir)
    study.header_settings = _study_header_settings(settings)
    for site_name, site_values in sites.items():
        study.sites.append(
            _read_site(main, study, settings, str(site_name), site_values, scantypes, result)
        )
    return study


def _reject_legacy_format(path, data):
    found = [key for key in LEGACY_STUDY_KEYS if key in data]
    sites = data.get("Sites") if isinstance(data.get("Sites"), dict) else {}
    for site_values in sites.values():
        if isinstance(site_values, dict):
            found += [key for key in LEGACY_SITE_KEYS if key in site_values and key not in found]
    if not found:
        return
    renames = {**LEGACY_STUDY_KEYS, **LEGACY_SITE_KEYS}
    fixes = "; ".join(f"{key} → {renames[key]}" for key in found)
    raise ConfigError(
        f"Study config {path} uses the obsolete pre-2018 format (keys {', '.join(found)}); "
        f"rewrite it in the current format: {fixes}. datman's "
        f"assets/config_templates/study_config.yml shows the current layout."
    )


def _study_values(main, settings, project_dir):
    return {
        "name": settings.text("FullName"),
        "description": settings.text("Description"),
        "primary_contact": settings.text("PrimaryContact"),
        "is_open": settings.flag("IsOpen", default=True),
        "archive_path": str(Path(os.path.normpath(main.projects_dir / project_dir))),
    }


def _read_site(main, study, study_settings, site_name, site_values, scantypes, result):
    where = f"Sites.{site_name} of {study.path}"
    if site_values is None:
        site_values = {}
    if not isinstance(site_values, dict):
        raise ConfigError(f"{where} must be a mapping of site settings, not {site_values!r}.")
    settings = study_settings.with_layer(_Layer(where, site_values))

    code = settings.text("StudyTag")
    if not code:
        raise ConfigError(
            f"No StudyTag for site {site_name} of study {study.nickname}: add StudyTag (the "
            f"study code at the start of the IDs) to {study.path}, or to {where}."
        )
    site = _SiteConfig(name=site_name, alt_codes=_alt_codes(settings, code), settings=settings)
    site.header_settings = _site_header_settings(site_values, where)
    site.values = {
        "code": code,
        "uses_redcap": settings.flag("UsesRedcap", default=False),
        "uses_tech_notes": settings.flag("UsesTechNotes", default=False),
        "xnat_archive": settings.text("XnatArchive"),
        "xnat_convention": _xnat_convention(settings),
        "xnat_url": _xnat_url(settings),
    }

    export_info, source = settings.lookup("ExportInfo")
    if export_info is not None and not isinstance(export_info, dict):
        raise ConfigError(f"ExportInfo in {source} must be a mapping of tags to settings.")
    for key, values in (export_info or {}).items():
        tag = str(key)
        site.export_tags.append(tag)
        if tag not in scantypes:
            result.warn(
                f"tag {tag} in ExportInfo of study {study.nickname}, site {site_name} is not "
                f"defined in ExportSettings of {main.path}; add it there"
            )
            continue
        if isinstance(values, dict) and values.get("Count") is None:
            result.warn(
                f"tag {tag} in ExportInfo of study {study.nickname}, site {site_name} has no "
                f"Count; 0 scans are expected"
            )
        where = f"ExportInfo.{tag} in {settings.source_of('ExportInfo', key)}"
        site.expected[tag] = _expected_counts(values, where)
    return site


def _alt_codes(settings, code):
    """Return the SiteTags other than the study code itself, without repeats."""
    tags, source = settings.lookup("SiteTags")
    if isinstance(tags, str):
        tags = [tags]
    if tags is not None and not isinstance(tags, list):
        raise ConfigError(f"SiteTags in {source} must be a list of study codes, not {tags!r}.")
    alt_codes = []
    for tag in tags or []:
        tag = _text(tag, "SiteTags", source)
        if tag and tag != code and tag not in alt_codes:
            alt_codes.append(tag)
    return alt_codes


def _expected_counts(values, where):
    # Pattern (a string, a list or a {SeriesDescription: ...} mapping) only matters to datman's
    # XNAT export, so it is neither checked nor stored.
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping with Pattern and Count, not {values!r}.")
    return {
        "count": _count(values.get("Count"), "Count", where),
        "phantom_count": _count(values.get("PhaCount"), "PhaCount", where),
    }


def _xnat_convention(settings):
    value, source = settings.lookup("XnatConvention")
    if value is None:
        return XnatConvention.DATMAN.value
    text = _text(value, "XnatConvention", source).upper()
    if text not in XnatConvention.values:
        raise ConfigError(
            f"XnatConvention {value!r} in {source} is not a known convention; use one of "
            f"{', '.join(XnatConvention.values)}."
        )
    return text


def _xnat_url(settings):
    server = settings.text("XnatServer")
    if not server:
        return ""
    port = settings.text("XnatPort")
    return f"{server}:{port}" if port else server


def _text(value, key, source):
    if value is None:
        return ""
    if isinstance(value, bool | dict | list):
        raise ConfigError(
            f"{key} in {source} must be text, not {value!r}; quote the value if it is meant "
            f"as text."
        )
    return str(value).strip()


def _flag(value, key, source, default):
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{key} in {source} must be true or false, not {value!r}.")
    return value


def _count(value, key, source):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} in {source} must be a whole number of 0 or more, not {value!r}.")
    return value


# ---------------------------------------------------------------------------------------------
# Sync steps of other apps

_sync_steps = []


def register_sync_step(step):
    """Add a step that syncs more of each study's settings (see the module docstring).

    Registering the same step object twice has no effect.
    """
    if step not in _sync_steps:
        _sync_steps.append(step)


def _read_steps(study, result):
    study.step_data = [step.read(study, result) for step in _sync_steps]


# ---------------------------------------------------------------------------------------------
# Writing rows


def sync_config(main_config, *, study=None, system=None, dry_run=False):
    """Create and update the rows that datman's config describes, and return a SyncResult.

    `main_config` is the path of datman's main config file. `study` limits the sync to one
    nickname of its Projects. `system` picks the SystemSettings entry, and without it the
    DM_SYSTEM environment variable or else the only system is used. All files are read and
    checked before the first write. The sync is one transaction, so an error leaves the
    database unchanged, and it is rolled back when `dry_run` is set. Nothing is deleted: study
    sites and expected scans that the config no longer lists are kept and reported as warnings.

    Raise ConfigError, naming the file and the fix, for a config that cannot be synced.
    """
    result = SyncResult(dry_run=dry_run)
    main = _read_main_config(main_config, system)
    nicknames = _select_studies(main, study)
    scantypes = _read_scantypes(main)
    studies = [_read_study(main, nickname, scantypes, result) for nickname in nicknames]
    for study_config in studies:
        _read_steps(study_config, result)

    with transaction.atomic():
        writer = _RowWriter(result)
        scantype_rows = {
            tag: writer.upsert(Scantype, {"tag": tag}, values, f"scantype {tag}")
            for tag, values in scantypes.items()
        }
        for study_config in studies:
            _write_study(writer, study_config, scantype_rows)
        if dry_run:
            transaction.set_rollback(True)

    logger.info("config sync of %s: %s", main.path, result.summary)
    return result


def _select_studies(main, study):
    if study is None:
        return list(main.projects)
    nickname = study.strip().upper()
    if nickname not in main.projects:
        raise ConfigError(
            f"Study {study!r} is not configured in Projects of {main.path}; configured studies: "
            f"{', '.join(main.projects)}."
        )
    return [nickname]


def _write_study(writer, config, scantype_rows):
    nickname = config.nickname
    study = writer.upsert(Study, {"nickname": nickname}, config.values, f"study {nickname}")
    _write_header_settings(writer, study, None, config.header_settings, config.path)

    study_sites = {}
    for site_config in config.sites:
        name = site_config.name
        site = writer.upsert(Site, {"name": name}, {}, f"site {name}")
        _write_header_settings(writer, study, site, site_config.header_settings, config.path)
        study_site = writer.upsert(
            StudySite,
            {"study": study, "site": site},
            site_config.values,
            f"study site {nickname}/{name}",
        )
        study_sites[name] = study_site
        for code in site_config.alt_codes:
            writer.upsert(
                AltStudyCode,
                {"study_site": study_site, "code": code},
                {},
                f"alternate study code {code} of {nickname}/{name}",
            )
        for tag, values in site_config.expected.items():
            writer.upsert(
                ExpectedScan,
                {"study_site": study_site, "scantype": scantype_rows[tag]},
                values,
                f"expected scan {tag} at {nickname}/{name}",
            )
        unlisted_tags = (
            ExpectedScan.objects.filter(study_site=study_site)
            .exclude(scantype__tag__in=site_config.export_tags)
            .values_list("scantype__tag", flat=True)
        )
        for tag in unlisted_tags:
            writer.result.warn(
                f"expected scan {tag} at {nickname}/{name} is not in ExportInfo of "
                f"{config.path}; it was kept"
            )

    site_names = [site_config.name for site_config in config.sites]
    unlisted_sites = (
        StudySite.objects.filter(study=study)
        .exclude(site__name__in=site_names)
        .values_list("site__name", flat=True)
    )
    for name in unlisted_sites:
        writer.result.warn(
            f"study site {nickname}/{name} is not in Sites of {config.path}; it was kept"
        )

    for step, data in zip(_sync_steps, config.step_data, strict=True):
        step.write(writer, study, study_sites, data)


def _mask(value):
    """Show a secret by its last 4 characters only, as the admin does."""
    return f"…{value[-4:]}" if value else ""


class _RowWriter:
    """A writer of rows, found by natural key, that records each change in a SyncResult."""

    def __init__(self, result):
        self.result = result

    def upsert(self, model, lookup, values, label, *, add_related=None, secret_fields=()):
        """Create or update the row matching `lookup` so its fields equal `values`; return it.

        `add_related` maps many-to-many field names to rows that the field must include; rows
        already there and not listed are kept. A change of a field in `secret_fields` is
        reported with the last 4 characters of each value only.
        """
        self._check_lengths(model, {**lookup, **values}, label)
        add_related = add_related or {}
        row = model.objects.filter(**lookup).first()
        if row is None:
            row = model.objects.create(**lookup, **values)
            for name, related_rows in add_related.items():
                getattr(row, name).add(*related_rows)
            self.result.created += 1
            self.result.changes.append(Change(label))
            return row

        changed_fields = []
        for name, new in values.items():
            old = getattr(row, name)
            if old == new:
                continue
            shown_old, shown_new = (_mask(old), _mask(new)) if name in secret_fields else (old, new)
            self.result.changes.append(Change(label, name, shown_old, shown_new))
            setattr(row, name, new)
            changed_fields.append(name)
        related_changed = self._add_related(row, add_related, label)
        if not changed_fields:
            if related_changed:
                self.result.changed += 1
            else:
                self.result.unchanged += 1
            return row

        if any(model_field.name == "updated_at" for model_field in model._meta.fields):
            # save(update_fields=...) only refreshes an auto_now field that it lists.
            changed_fields.append("updated_at")
        row.save(update_fields=changed_fields)
        self.result.changed += 1
        return row

    def _add_related(self, row, add_related, label):
        """Add missing rows to many-to-many fields; return whether any field changed."""
        changed = False
        for name, related_rows in add_related.items():
            manager = getattr(row, name)
            present = set(manager.values_list("pk", flat=True))
            missing = [related for related in related_rows if related.pk not in present]
            if not missing:
                continue
            old = sorted(str(related) for related in manager.all())
            manager.add(*missing)
            new = sorted(str(related) for related in manager.all())
            self.result.changes.append(Change(label, name, old, new))
            changed = True
        return changed

    @staticmethod
    def _check_lengths(model, values, label):
        for name, value in values.items():
            max_length = getattr(model._meta.get_field(name), "max_length", None)
            if isinstance(value, str) and max_length and len(value) > max_length:
                raise ConfigError(
                    f"{label}: {name} {value!r} is {len(value)} characters long, more than the "
                    f"{max_length} the database allows; shorten it in the config."
                )


# ---------------------------------------------------------------------------------------------
# Header comparison settings (IgnoreHeaderFields, HeaderFieldTolerance)


def _study_header_settings(settings):
    """Read the header settings that apply to every site of a study, or None if unset."""
    ignored, ignored_source = settings.lookup("IgnoreHeaderFields")
    tolerances, tolerances_source = settings.lookup("HeaderFieldTolerance")
    if ignored is None and tolerances is None:
        return None
    return {
        "ignored_fields": _ignored_fields(ignored, ignored_source),
        "tolerances": _tolerances(tolerances, tolerances_source),
    }


def _site_header_settings(site_values, where):
    """Read a site block's own header settings, which add to the study's, or None if unset."""
    ignored = site_values.get("IgnoreHeaderFields")
    tolerances = site_values.get("HeaderFieldTolerance")
    if ignored is None and tolerances is None:
        return None
    return {
        "ignored_fields": _ignored_fields(ignored, where),
        "tolerances": _tolerances(tolerances, where),
    }


def _ignored_fields(value, source):
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    try:
        validate_ignored_fields(value)
    except ValidationError as error:
        raise ConfigError(f"IgnoreHeaderFields in {source}: {error.messages[0]}") from None
    # datman joins the lists of all levels and loses their order, so a sorted list is stored.
    return sorted({name.strip() for name in value})


def _tolerances(value, source):
    if value is None:
        return {}
    if isinstance(value, dict):
        value = {str(name).strip(): tolerance for name, tolerance in value.items()}
    try:
        validate_tolerances(value)
    except ValidationError as error:
        raise ConfigError(f"HeaderFieldTolerance in {source}: {error.messages[0]}") from None
    return value


def _write_header_settings(writer, study, site, values, config_path):
    """Create or update the header settings of a study (site None) or of one of its sites.

    A level of the config that sets neither key leaves an existing row alone, because an admin
    may have added it, and reports it.
    """
    where = f"{study.nickname}/{site.name}" if site else study.nickname
    label = f"header comparison settings of {where}"
    if values is None:
        if HeaderComparisonSettings.objects.filter(study=study, site=site).exists():
            level = f"Sites.{site.name} of {config_path}" if site else "the config"
            writer.result.warn(
                f"{label} are not set in {level} (IgnoreHeaderFields, HeaderFieldTolerance); "
                f"they were kept"
            )
        return
    writer.upsert(HeaderComparisonSettings, {"study": study, "site": site}, values, label)
