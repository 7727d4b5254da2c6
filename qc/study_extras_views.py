"""Study page extras: the README editor and the progress panel that the study page loads."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from accounts import permissions
from qc import progress
from qc.study_extras_forms import PREVIEW, StudyReadmeForm
from studies import services as study_services
from studies.models import StudyReadme
from studies.readme import render_readme

logger = logging.getLogger(__name__)

# The README editor lists this many versions, newest first; the admin site lists all of them.
README_VERSIONS_SHOWN = 20


@login_required
@require_http_methods(["GET", "POST"])
def study_readme_edit(request, nickname):
    study = permissions.get_study(request.user, nickname)
    permissions.require_manage_study_settings(request.user, study)
    current = study_services.newest_readme(study)
    preview_html = None

    if request.method == "POST":
        form = StudyReadmeForm(request.POST)
        if form.is_valid() and request.POST.get("action") == PREVIEW:
            preview_html = mark_safe(render_readme(form.cleaned_data["text"]))  # noqa: S308
        elif form.is_valid():
            try:
                readme = study_services.save_study_readme(
                    study=study,
                    author=request.user,
                    text=form.cleaned_data["text"],
                    based_on_id=form.cleaned_data["based_on"],
                )
            except study_services.StudyReadmeError as error:
                logger.info(
                    "README of study %s not saved for %s: %s", study.nickname, request.user, error
                )
                form.add_error(None, str(error))
            else:
                if readme is None:
                    messages.info(request, f"The README of {study} is unchanged; nothing saved.")
                else:
                    messages.success(request, f"README of {study} saved.")
                return redirect("qc:study_detail", nickname=study.nickname)
    else:
        form = StudyReadmeForm(
            initial={
                "text": current.text if current else "",
                "based_on": current.pk if current else None,
            }
        )

    versions = StudyReadme.objects.filter(study=study).select_related("author")
    return render(
        request,
        "qc/study_readme_edit.html",
        {
            "study": study,
            "form": form,
            "current": current,
            "preview_html": preview_html,
            "versions": versions[:README_VERSIONS_SHOWN],
            "versions_shown": README_VERSIONS_SHOWN,
        },
    )


@login_required
@require_GET
def study_progress(request, nickname):
    study = permissions.get_study(request.user, nickname)
    sessions = permissions.visible_sessions(request.user).filter(timepoint__study=study)
    panel = progress.study_progress(sessions)
    return render(request, "qc/_progress.html", {"study": study, "panel": panel})
