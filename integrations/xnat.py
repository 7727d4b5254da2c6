"""XNAT: the credentials, names and REST call that set a scan's quality field.

XNAT (1.7 and 1.8) updates a scan's fields with a PUT on the scan's REST path and the field as
a query parameter, `xnat:imageScanData/quality=usable`, with HTTP basic authentication. A PUT on
a scan that does not exist creates it, so each push first reads the scan and stops at 404.
"""

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from integrations.http import ServiceError, request
from studies.datman_ids import IdError, parse_session_id
from studies.models import XnatConvention

QUALITY_FIELD = "xnat:imageScanData/quality"


class XnatConfigError(Exception):
    """Invalid or missing push settings. The message names the setting and the fix."""


@dataclass(frozen=True)
class XnatTarget:
    """The location of a scan in XNAT: project, subject and experiment labels, scan ID."""

    project: str
    subject: str
    experiment: str
    scan_id: str

    @property
    def path(self):
        """The scan's REST path, each label percent-encoded."""
        labels = (self.project, self.subject, self.experiment, self.scan_id)
        project, subject, experiment, scan_id = (quote(label, safe="") for label in labels)
        return (
            f"/data/projects/{project}/subjects/{subject}/experiments/{experiment}/scans/{scan_id}"
        )


def read_credentials(xnat_settings):
    """Return (user, password) from the environment variable or file the settings name.

    Raise XnatConfigError, naming the variable or file but never its content, when they are
    missing or malformed.
    """
    if xnat_settings.credentials_variable:
        name = xnat_settings.credentials_variable
        value = os.environ.get(name, "")
        user, separator, password = value.partition(":")
        if not value:
            raise XnatConfigError(
                f"The environment variable {name} with the XNAT credentials is not set; set it "
                f"to user:password for the worker and restart it."
            )
        if not separator or not user or not password:
            raise XnatConfigError(
                f"The environment variable {name} does not contain user:password; set it to the "
                f"XNAT user name and password separated by a colon."
            )
        return user, password

    path = Path(xnat_settings.credentials_file)
    if not path.is_absolute():
        raise XnatConfigError(
            f"The XNAT credentials file {path} is not an absolute path; fix it in the admin."
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise XnatConfigError(
            f"The XNAT credentials file {path} does not exist; create it or fix the path."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise XnatConfigError(
            f"The XNAT credentials file {path} cannot be read ({type(error).__name__}); check "
            f"that the worker's user may read it."
        ) from None
    lines = [line.strip() for line in lines]
    if len(lines) < 2 or not lines[0] or not lines[1]:
        raise XnatConfigError(
            f"The XNAT credentials file {path} must have the user name on its first line and "
            f"the password on its second."
        )
    return lines[0], lines[1]


def kcni_names(session_name):
    """Return the XNAT (subject, experiment) labels of a datman session in KCNI form.

    datman session SPN01_CMH_0001_01_02 is experiment SPN01_CMH_0001_01_SE02_MR of subject
    SPN01_CMH_0001; phantom OPT01_UTO_PHA_FBN190603 is OPT01_UTO_FBNPHA_190603_MR of
    OPT01_UTO_FBNPHA. Numeric subjects are zero-padded to 4 digits, as datman does.
    NOTE: datman's IdMap (study, site and subject renames) is not applied, so sites that
    rename IDs between XNAT and datman get the datman names.
    """
    try:
        ident = parse_session_id(session_name)
    except IdError as error:
        raise XnatConfigError(f"Session {session_name} has no KCNI name: {error}") from None
    if ident.is_phantom:
        kind, number = ident.subject[4:7], ident.subject[7:]
        subject = f"{ident.study}_{ident.site}_{kind}PHA"
        return subject, f"{subject}_{number}_MR"
    subject_part = ident.subject.zfill(4) if ident.subject.isdigit() else ident.subject
    subject = f"{ident.study}_{ident.site}_{subject_part}"
    experiment = f"{subject}_{ident.timepoint}_SE{ident.session_number:02d}_MR"
    return subject, experiment


def target_for(scan, study_site):
    """Return the XnatTarget of a scan at a study site, by the site's naming convention.

    The scan needs `session__timepoint` preloaded. In datman's convention the subject and the
    experiment are both labelled with the session ID; the scan ID is the series number.
    """
    session = scan.session
    if study_site.xnat_convention == XnatConvention.KCNI:
        subject, experiment = kcni_names(session.name)
        if session.timepoint.kcni_name:
            subject = session.timepoint.kcni_name
    else:
        subject = experiment = session.name
    return XnatTarget(
        project=study_site.xnat_archive,
        subject=subject,
        experiment=experiment,
        scan_id=str(scan.series),
    )


def set_scan_quality(server_url, credentials, target, quality, *, timeout):
    """Set the quality field of one XNAT scan; an empty `quality` clears it.

    Raise ServiceUnavailable for failures worth retrying and ServiceError for the others, a
    scan missing from XNAT included.
    """
    base = _base_url(server_url)
    service = f"XNAT at {base}"
    user, password = credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
    url = base + target.path
    try:
        request(service, "GET", f"{url}?format=json", headers=headers, timeout=timeout)
    except ServiceError as error:
        if error.status == 404:
            raise ServiceError(
                f"{service} has no scan {target.scan_id} in experiment {target.experiment} of "
                f"subject {target.subject}, project {target.project}; check the site's XNAT "
                f"project and naming convention.",
                404,
            ) from None
        raise
    query = urlencode({QUALITY_FIELD: quality})
    request(service, "PUT", f"{url}?{query}", headers=headers, timeout=timeout)


def _base_url(server_url):
    """Return the server URL with a scheme (https when the config has only host:port)."""
    url = server_url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    return url
