"""Archive files (QC images, NIfTI volumes) served behind the permission check."""

import posixpath
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe

from accounts import permissions
from studies.file_serving import archive_file_path, content_type_for, file_response


@login_required
@require_safe
def archive_file(request, study, relative_path):
    """Send one archive file (GET or HEAD), with a 206 partial response to a Range request."""
    study = permissions.get_study(request.user, study)
    not_found = Http404(f"No file {relative_path} in the archive of {study}.")
    path = archive_file_path(study, relative_path)
    if path is None:
        raise not_found
    # The site check reads the requested path with ".." collapsed but symlinks kept, because
    # datman's BIDS layout links data/nii/<ID>/ files into folders that name no datman ID.
    if not permissions.can_view_file(request.user, study, posixpath.normpath(relative_path)):
        # A site-restricted member gets the same response for another site's file as for a file
        # that does not exist, so the archive does not reveal which IDs it holds.
        raise not_found

    content_type = content_type_for(path)
    accel_response = _accel_redirect(path, content_type)
    if accel_response is not None:
        return accel_response
    return file_response(request, path, content_type)


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
