"""The pages on which a dashboard admin deletes (hides) a timepoint, a session or a scan.

Each page requests a reason (GET) and deletes on POST. Restoring is done in the admin site.
"""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts import permissions
from studies import services
from studies.datman_ids import IdError, parse_session_id
from studies.forms import ReasonForm
from studies.models import Scan, Session, Timepoint

logger = logging.getLogger(__name__)


@login_required
@require_http_methods(["GET", "POST"])
def delete_timepoint(request, name):
    timepoint = permissions.get_timepoint(
        request.user, name, queryset=Timepoint.objects.select_related("study")
    )
    permissions.require_delete_records(request.user)
    return _confirm_and_delete(
        request,
        timepoint,
        kind="timepoint",
        study=timepoint.study,
        timepoint=timepoint,
        cancel_url=reverse("qc:timepoint_detail", args=[timepoint.name]),
        parent_url=reverse("qc:study_detail", args=[timepoint.study.nickname]),
        hidden_with={
            "session": Session.objects.filter(timepoint=timepoint).count(),
            "scan": Scan.objects.filter(session__timepoint=timepoint).count(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def delete_session(request, session_id):
    try:
        ident = parse_session_id(session_id)
    except IdError as error:
        raise Http404(str(error)) from error
    session = permissions.get_session(request.user, ident.timepoint_id, ident.session_number)
    permissions.require_delete_records(request.user)
    timepoint = session.timepoint
    timepoint_url = reverse("qc:timepoint_detail", args=[timepoint.name])
    return _confirm_and_delete(
        request,
        session,
        kind="session",
        study=timepoint.study,
        timepoint=timepoint,
        cancel_url=f"{timepoint_url}#session-{session.number}",
        parent_url=timepoint_url,
        hidden_with={"scan": Scan.objects.filter(session=session).count()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def delete_scan(request, name):
    scan = permissions.get_scan(
        request.user, name, queryset=Scan.objects.select_related("session__timepoint__study")
    )
    permissions.require_delete_records(request.user)
    timepoint = scan.session.timepoint
    return _confirm_and_delete(
        request,
        scan,
        kind="scan",
        study=timepoint.study,
        timepoint=timepoint,
        cancel_url=reverse("qc:scan_detail", args=[scan.name]),
        parent_url=reverse("qc:timepoint_detail", args=[timepoint.name]),
        hidden_with={},
    )


def _confirm_and_delete(
    request, obj, *, kind, study, timepoint, cancel_url, parent_url, hidden_with
):
    """Render the confirm page (GET, or a POST with an invalid reason), or delete and redirect.

    `hidden_with` maps a child kind to how many shown rows of it the deletion hides too.
    """
    form = ReasonForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            services.delete_object(obj, user=request.user, reason=form.cleaned_data["reason"])
        except services.DeletionError as error:
            logger.info("deletion of %s %s by %s rejected: %s", kind, obj, request.user, error)
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                f"The {kind} {obj} is deleted and hidden from every page. Its files and QC "
                f"history are kept, and a dashboard admin can restore it in the admin site.",
            )
            return redirect(parent_url)
    return render(
        request,
        "studies/confirm_delete.html",
        {
            "object": obj,
            "kind": kind,
            "study": study,
            "timepoint": timepoint,
            "form": form,
            "cancel_url": cancel_url,
            "hidden_with": [(count, child) for child, count in hidden_with.items() if count],
        },
    )
