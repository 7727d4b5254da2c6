"""The archive report view for pipeline pages whose reports may run scripts."""

import posixpath

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from accounts import permissions
from pipelines.models import PipelinePage
from studies.views import serve_archive_file


@login_required
@require_GET
def report(request, pk, relative_path):
    """Serve a file of a pipeline page's report folder, with scripts allowed when the page
    allows them. Relative links inside the report resolve to this view too."""
    page = get_object_or_404(PipelinePage, pk=pk, path_template__gt="")
    study = permissions.get_study(request.user, page.study.nickname)
    if not page.allow_scripts:
        raise Http404(f"Pipeline page {page.name} opens its reports without this view.")
    folder = page.report_folder
    if folder and not posixpath.normpath(relative_path).startswith(f"{folder}/"):
        raise Http404(f"{relative_path} is not in the report folder {folder} of {page.name}.")
    return serve_archive_file(request, study, relative_path, allow_scripts=True)
