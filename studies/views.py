"""Archive files (QC images, NIfTI volumes) served behind the permission check."""

from functools import reduce
from operator import or_
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe

from accounts import permissions
from studies.datman_ids import IdError, parse, parse_filename
from studies.file_serving import (
    archive_file_path,
    content_type_for,
    file_response,
    has_dot_segments,
)
from studies.models import Scan, Session, Timepoint

# Every archive file opened as a document (an MRIQC or fMRIPrep report, an XML or SVG file) is
# sandboxed: it runs without scripts, forms or plugins, may load only files of the archive and
# inline styles, and cannot be framed. Without scripts it keeps qcdash's origin
# (allow-same-origin), so the browser sends the session cookie with the figures and styles a
# report loads from the archive. Nothing in the document can use that origin, because no
# script runs. A report allowed to run scripts gets an opaque origin instead.
# NOTE: Chromium sends the SameSite=Lax session cookie with no request from an opaque-origin
# document, so the files a scripted report loads from the archive get the login redirect.
HTML_POLICY = (
    "sandbox{allow}; default-src 'none'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; font-src 'self' data:; media-src 'self'; script-src {scripts}; "
    "connect-src 'none'; form-action 'none'; frame-ancestors 'none'"
)


# Content types that cannot run script and are sent without the sandbox policy. Every other
# type gets it, because HTML, SVG and XML with an XSLT stylesheet or XHTML elements all run
# scripts. A PDF stays out of the sandbox because Chromium's PDF viewer does not open in a
# sandboxed document (no test here checks this).
UNSANDBOXED_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/json",
        "application/gzip",
        "application/octet-stream",
    }
)

# JavaScript MIME types, as the WHATWG MIME Sniffing standard lists them. An archive script is
# sent as text/plain instead, so with `X-Content-Type-Options: nosniff` no page can run it, not
# even a qcdash page, whose policy allows scripts from 'self'.
JAVASCRIPT_TYPES = frozenset(
    {
        "application/ecmascript",
        "application/javascript",
        "application/x-ecmascript",
        "application/x-javascript",
        "text/ecmascript",
        "text/javascript",
        "text/javascript1.0",
        "text/javascript1.1",
        "text/javascript1.2",
        "text/javascript1.3",
        "text/javascript1.4",
        "text/javascript1.5",
        "text/jscript",
        "text/livescript",
        "text/x-ecmascript",
        "text/x-javascript",
    }
)


def html_policy(*, allow_scripts=False):
    """Return the Content-Security-Policy of archive HTML, with scripts allowed or not."""
    if allow_scripts:
        return HTML_POLICY.format(allow=" allow-scripts", scripts="'self' 'unsafe-inline'")
    return HTML_POLICY.format(allow=" allow-same-origin", scripts="'none'")


@login_required
@require_safe
def archive_file(request, study, relative_path):
    """Send one archive file (GET or HEAD), with a 206 partial response to a Range request."""
    study = permissions.get_study(request.user, study)
    return serve_archive_file(request, study, relative_path)


def serve_archive_file(request, study, relative_path, *, allow_scripts=False):
    """Return the response for one archive file of a visible study, after the file checks.

    Every type outside UNSANDBOXED_TYPES gets the sandbox policy of `html_policy`, and
    `allow_scripts` lets such documents run scripts. Scripts are sent as text/plain unless
    `allow_scripts` is set.
    """
    not_found = Http404(f"No file {relative_path} in the archive of {study}.")
    if has_dot_segments(relative_path):
        raise not_found
    path = archive_file_path(study, relative_path)
    if path is None:
        raise not_found
    # The site check reads the requested path with symlinks kept, because datman's BIDS layout
    # links data/nii/<ID>/ files into folders that name no datman ID.
    if not permissions.can_view_file(request.user, study, relative_path):
        # A site-restricted member gets the same response for another site's file as for a file
        # that does not exist, so the archive does not reveal which IDs it holds.
        raise not_found
    if _names_hidden_record(study, relative_path):
        raise not_found

    content_type = content_type_for(path)
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in JAVASCRIPT_TYPES and not allow_scripts:
        content_type = media_type = "text/plain"

    response = _accel_redirect(path, content_type)
    if response is None:
        response = file_response(request, path, content_type)
    if media_type not in UNSANDBOXED_TYPES:
        # django-csp leaves a Content-Security-Policy header that is already set alone.
        response["Content-Security-Policy"] = html_policy(allow_scripts=allow_scripts)
    return response


def _names_hidden_record(study, relative_path):
    """Return whether the path names a hidden timepoint, session or scan of the study.

    Folder names are read as timepoint or session IDs and file names as scan file names. This
    runs one query, or none when the path names no datman ID.
    """
    timepoints, sessions, scans = set(), set(), set()
    for part in relative_path.split("/"):
        try:
            scan_name = parse_filename(part)
        except IdError:
            pass
        else:
            scans.add(scan_name.scan_name.upper())
            continue
        try:
            ident = parse(part).upper()
        except IdError:
            continue
        timepoints.add(ident.timepoint_id)
        if ident.is_phantom:
            sessions.add((ident.timepoint_id, 1))
        elif ident.session.isdigit():
            sessions.add((ident.timepoint_id, int(ident.session)))

    queries = []
    if timepoints:
        queries.append(
            Timepoint.all_objects.hidden().filter(study=study, name__in=timepoints).values("pk")
        )
    if sessions:
        named = reduce(or_, (Q(timepoint__name=tp, number=n) for tp, n in sessions))
        queries.append(
            Session.all_objects.hidden().filter(named, timepoint__study=study).values("pk")
        )
    if scans:
        queries.append(
            Scan.all_objects.hidden()
            .filter(name__in=scans, session__timepoint__study=study)
            .values("pk")
        )
    if not queries:
        return False
    return queries[0].union(*queries[1:]).exists()


def _accel_redirect(path, content_type):
    """Hand the file to nginx with X-Accel-Redirect when ARCHIVE_ACCEL_REDIRECT_PREFIX is set.

    Only files under ARCHIVE_ROOT can be handed over, because nginx maps the prefix to that
    folder. The app serves the others. The caller has already checked the permission. nginx
    handles Range, If-Range and the conditional headers itself for the files it sends.
    """
    prefix = settings.ARCHIVE_ACCEL_REDIRECT_PREFIX
    archive_root = settings.ARCHIVE_ROOT.resolve()
    if not prefix or not path.is_relative_to(archive_root):
        return None
    response = HttpResponse(content_type=content_type)
    relative = path.relative_to(archive_root).as_posix()
    response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(relative)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private"
    return response
