"""Sync XNAT credentials settings from datman's config, as a step of `manage.py sync_config`.

`IntegrationsConfig.ready()` registers `XnatSyncStep` with `studies.config_sync`, which itself
syncs each study site's XNAT server (XnatServer, XnatPort), project (XnatArchive) and naming
convention (XnatConvention). This step adds the credentials file: datman's XnatCredentials
names a file in the study's metadata folder (`Paths.meta`, by default `metadata/`) with the
user name on its first line and the password on its second. Only the file's path is stored;
the file is read when a push runs. A site without XnatCredentials keeps what the admin set.
"""

from dataclasses import dataclass
from pathlib import Path

from integrations.models import XnatSiteSettings
from studies.config_sync import ConfigError


@dataclass(frozen=True)
class XnatSiteSpec:
    site: str
    credentials_file: str


class XnatSyncStep:
    """The sync step that creates and updates XnatSiteSettings rows from XnatCredentials."""

    def read(self, study_config, result):
        specs = []
        for site in study_config.sites:
            file_name = site.settings.text("XnatCredentials")
            if not file_name:
                continue
            where = f"site {site.name} of study {study_config.nickname}"
            if not site.values.get("xnat_url") or not site.values.get("xnat_archive"):
                result.warn(
                    f"{where} sets XnatCredentials but not both XnatServer and XnatArchive; "
                    f"QC decisions are not pushed to XNAT until both are set"
                )
            name = Path(file_name)
            if name.is_absolute() or ".." in name.parts:
                _, source = site.settings.lookup("XnatCredentials")
                raise ConfigError(
                    f"XnatCredentials {file_name!r} in {source} must be a file name in the "
                    f"study's metadata folder, as datman reads it."
                )
            paths, _ = site.settings.lookup("Paths")
            meta = (paths or {}).get("meta") or "metadata"
            path = Path(study_config.values["archive_path"]) / str(meta) / name
            if not path.is_file():
                result.warn(
                    f"XNAT credentials file {path} of {where} not found; pushes fail until it "
                    f"exists"
                )
            specs.append(XnatSiteSpec(site=site.name, credentials_file=str(path)))
        return specs

    def write(self, writer, study, study_sites, specs):
        for spec in specs:
            writer.upsert(
                XnatSiteSettings,
                {"study_site": study_sites[spec.site]},
                {"credentials_file": spec.credentials_file},
                f"XNAT settings of {study.nickname}/{spec.site}",
            )
