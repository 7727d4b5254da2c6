"""Pages of the integrations: failed XNAT pushes, and the form that opens a tracker issue."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from integrations import selectors, services
from integrations.forms import NewIssueForm
from integrations.models import XnatPush
from studies.models import Scan, Timepoint

ROWS_PER_PAGE = 50


@login_required
@require_GET
def failed_pushes(request):
    if not permissions.can_view_xnat_pushes(request.user):
        raise PermissionDenied("Only study admins and dashboard admins see failed XNAT pushes.")
    page = Paginator(selectors.failed_pushes(request.user), ROWS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "xnat_configured": selectors.xnat_is_configured_anywhere(),
        "max_attempts": settings.XNAT_MAX_ATTEMPTS,
    }
    return render(request, "integrations/failed_pushes.html", context)


@login_required
@require_POST
def push_again(request, pk):
    push = get_object_or_404(XnatPush.objects.select_related("scan", "study"), pk=pk)
    scan = permissions.get_scan(
        request.user,
        push.scan.name,
        queryset=Scan.objects.select_related(
            "session__timepoint__study_site__site", "session__timepoint__study"
        ),
    )
    timepoint = scan.session.timepoint
    if not permissions.can_push_to_xnat(request.user, timepoint.study, timepoint.site):
        raise PermissionDenied(f"You may not push QC decisions of {timepoint.study} to XNAT.")
    try:
        services.push_again(push, user=request.user)
    except services.IntegrationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"The QC state of {scan} is queued for XNAT again.")
    return redirect("integrations:failed_pushes")


@login_required
@require_http_methods(["GET", "POST"])
def new_issue(request, name):
    timepoint = permissions.get_timepoint(
        request.user, name, queryset=Timepoint.objects.select_related("study", "study_site__site")
    )
    if not permissions.can_open_issue(request.user, timepoint.study, timepoint.site):
        raise PermissionDenied(f"You may not open issues about {timepoint}; this needs a reviewer.")
    timepoint_url = reverse("qc:timepoint_detail", args=[timepoint.name])
    tracker = services.enabled_tracker(timepoint.study_id)
    if tracker is None and request.method == "POST":
        messages.error(request, f"{timepoint.study} has no issue tracker; no issue was opened.")
        return redirect(timepoint_url)

    form = NewIssueForm(request.POST or None, initial={"title": f"{timepoint.name} - "})
    if request.method == "POST" and form.is_valid():
        try:
            issue = services.open_issue(
                timepoint,
                user=request.user,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
            )
        except services.IntegrationError as error:
            form.add_error(None, str(error))
        else:
            assigned = f", assigned to {issue.assignee_username}" if issue.assignee_username else ""
            messages.success(request, f"Issue #{issue.issue_number} opened{assigned}.")
            return redirect(f"{timepoint_url}#issues")
    context = {"timepoint": timepoint, "study": timepoint.study, "tracker": tracker, "form": form}
    return render(request, "integrations/new_issue.html", context)
