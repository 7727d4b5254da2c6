"""The archive report view for pipeline pages whose reports may run scripts."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from accounts import permissions
from pipelines.models import PipelinePage
from studies.file_serving import has_dot_segments
from studies.views import serve_archive_file


@login_required
@require_safe
def report(request, pk, relative_path):
    """Serve a file of a pipeline page's report folder (GET or HEAD), with scripts allowed.

    Relative links inside the report resolve to this view too. A page whose path template
    starts with a placeholder has no fixed folder, and this view serves none of its files.
    """
    if has_dot_segments(relative_path):
        raise Http404(f"No file {relative_path} in the report folder of pipeline page {pk}.")
    page = get_object_or_404(PipelinePage, pk=pk, path_template__gt="")
    study = permissions.get_study(request.user, page.study.nickname)
    if not page.allow_scripts:
        raise Http404(f"Pipeline page {page.name} opens its reports without this view.")
    folder = page.report_folder
    if not folder:
        raise Http404(
            f"Pipeline page {page.name} has no fixed report folder, so its reports cannot run "
            f"scripts."
        )
    if not relative_path.startswith(f"{folder}/"):
        raise Http404(f"{relative_path} is not in the report folder {folder} of {page.name}.")
    return serve_archive_file(request, study, relative_path, allow_scripts=True)
