"""Sync REDCap configurations from datman's config, as a step of `manage.py sync_config`.

`RedcapConfig.ready()` registers `RedcapSyncStep` with `studies.config_sync`, so `studies` runs
it without importing this app. Each study site whose settings name a REDCap server
(`RedcapUrl`), project (`RedcapProjectId`) and instrument (`RedcapInstrument`) gets the
configuration of that instrument, shared with every other site that names the same one. Field
names that the config leaves unset take datman's defaults. The event IDs and the API URL are
only changed when the config sets them, so values entered in the admin survive a sync.

The API token is read from the file that `RedcapToken` names in the study's metadata folder
(datman's `Paths.meta`, by default `metadata/`), or else from the environment variable
REDCAP_TOKEN, as datman does. A token that cannot be found leaves the stored token alone.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from redcap.models import (
    DEFAULT_COMMENT_FIELD,
    DEFAULT_COMPLETE_VALUES,
    DEFAULT_DATE_FIELD,
    DEFAULT_RECORD_KEY_FIELD,
    DEFAULT_SESSION_FIELD,
    DEFAULT_STATUS_FIELD,
    RedcapConfig,
    is_api_token,
    normalise_server_url,
)
from studies.config_sync import ConfigError

REQUIRED_KEYS = ("RedcapUrl", "RedcapProjectId", "RedcapInstrument")
# Model field ← datman key, with datman's default for an unset key.
FIELD_KEYS = (
    ("record_key_field", "RedcapRecordKey", DEFAULT_RECORD_KEY_FIELD),
    ("session_field", "RedcapSubj", DEFAULT_SESSION_FIELD),
    ("date_field", "RedcapDate", DEFAULT_DATE_FIELD),
    ("comment_field", "RedcapComments", DEFAULT_COMMENT_FIELD),
    ("status_field", "RedcapStatus", DEFAULT_STATUS_FIELD),
)
# The name of datman's environment variable, not a secret.
TOKEN_ENVIRONMENT_VARIABLE = "REDCAP_TOKEN"  # noqa: S105


@dataclass
class ConfigSpec:
    """One REDCap configuration as a study's sites describe it."""

    url: str
    project_id: int
    instrument: str
    values: dict
    token: str
    source: str
    sites: list[str] = field(default_factory=list)

    @property
    def key(self):
        return (self.url, self.project_id, self.instrument)

    @property
    def label(self):
        return f"REDCap configuration {self.project_id} {self.instrument} at {self.url}"


class RedcapSyncStep:
    """The sync step that creates and updates RedcapConfig rows from datman's REDCap keys."""

    def read(self, study_config, result):
        """Return the ConfigSpecs of a study's sites; raise ConfigError for unusable values."""
        specs = {}
        for site in study_config.sites:
            spec = _read_site(study_config, site, result)
            if spec is None:
                continue
            existing = specs.get(spec.key)
            if existing is None:
                specs[spec.key] = spec
                continue
            _check_same(existing, spec)
            existing.sites.append(site.name)
        return list(specs.values())

    def write(self, writer, study, study_sites, specs):
        for spec in specs:
            values = dict(spec.values)
            if spec.token:
                values["token"] = spec.token
            writer.upsert(
                RedcapConfig,
                {"url": spec.url, "project_id": spec.project_id, "instrument": spec.instrument},
                values,
                spec.label,
                add_related={"study_sites": [study_sites[name] for name in spec.sites]},
                secret_fields=("token",),
            )


def _read_site(study_config, site, result):
    settings = site.settings
    where = f"site {site.name} of study {study_config.nickname}"
    found = {key: settings.text(key) for key in REQUIRED_KEYS}
    missing = [key for key, value in found.items() if not value]
    if len(missing) == len(REQUIRED_KEYS):
        return None
    if missing:
        result.warn(
            f"{where} sets {', '.join(key for key in REQUIRED_KEYS if key not in missing)} but "
            f"not {', '.join(missing)}; no REDCap configuration was synced for it"
        )
        return None

    url = found["RedcapUrl"]
    if not url.startswith(("http://", "https://")):
        _, source = settings.lookup("RedcapUrl")
        raise ConfigError(
            f"RedcapUrl {url!r} in {source} is not an http or https URL; set it to the REDCap "
            f"home page, for example https://redcap.example.org/."
        )
    project_value, project_source = settings.lookup("RedcapProjectId")
    if isinstance(project_value, bool) or not str(project_value).strip().isdigit():
        raise ConfigError(
            f"RedcapProjectId in {project_source} must be a whole number, not {project_value!r}."
        )

    values = {
        model_field: settings.text(key) or default for model_field, key, default in FIELD_KEYS
    }
    values["complete_values"] = _complete_values(settings)
    api_url = settings.text("RedcapApiUrl") or settings.text("RedcapApi")
    if api_url:
        values["api_url"] = api_url
    event_ids = _event_ids(settings)
    if event_ids is not None:
        values["event_ids"] = event_ids
    instrument_source = settings.lookup("RedcapInstrument")[1]
    return ConfigSpec(
        url=normalise_server_url(url),
        project_id=int(str(project_value).strip()),
        instrument=found["RedcapInstrument"],
        values=values,
        token=_read_token(study_config, settings, result, where),
        source=f"{where} ({instrument_source})",
        sites=[site.name],
    )


def _check_same(first, second):
    for name in sorted(set(first.values) | set(second.values)):
        if first.values.get(name) != second.values.get(name):
            raise ConfigError(
                f"{first.source} and {second.source} describe REDCap project "
                f"{first.project_id} instrument {first.instrument} with different {name}: "
                f"{first.values.get(name)!r} and {second.values.get(name)!r}. Use the same "
                f"REDCap settings for both sites."
            )


def _complete_values(settings):
    value, source = settings.lookup("RedcapStatusValue")
    if value is None:
        return list(DEFAULT_COMPLETE_VALUES)
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(item, bool | dict | list) for item in values):
        raise ConfigError(
            f"RedcapStatusValue in {source} must be a value or a list of values such as "
            f"['2'], not {value!r}."
        )
    return [str(item).strip() for item in values]


def _event_ids(settings):
    value, source = settings.lookup("RedcapEventId")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(
            f"RedcapEventId in {source} must map unique event names to event IDs, for example "
            f"{{baseline_arm_1: 41}}, not {value!r}."
        )
    event_ids = {}
    for name, event_id in value.items():
        if isinstance(event_id, bool) or not str(event_id).strip().isdigit():
            raise ConfigError(
                f"RedcapEventId.{name} in {source} must be a whole number, not {event_id!r}."
            )
        event_ids[str(name)] = int(str(event_id).strip())
    return event_ids


def _read_token(study_config, settings, result, where):
    """Return the API token for a site, or '' to leave the stored token as it is."""
    file_name = settings.text("RedcapToken")
    if not file_name:
        token = os.environ.get(TOKEN_ENVIRONMENT_VARIABLE, "").strip()
        if token and not is_api_token(token):
            raise ConfigError(
                f"The environment variable {TOKEN_ENVIRONMENT_VARIABLE} does not contain a REDCap "
                f"API token (32 hexadecimal characters); fix it or set RedcapToken."
            )
        return token

    paths, _ = settings.lookup("Paths")
    meta = (paths or {}).get("meta") or "metadata"
    path = Path(study_config.values["archive_path"]) / str(meta) / file_name
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        result.warn(f"REDCap token file {path} of {where} not found; the stored token was kept")
        return ""
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"REDCap token file {path} of {where} cannot be read ({type(error).__name__}); "
            f"check its permissions and that it contains only the token."
        ) from None
    if not is_api_token(token):
        raise ConfigError(
            f"REDCap token file {path} of {where} does not contain a REDCap API token (32 "
            f"hexadecimal characters); put only the token in the file."
        )
    return token
