"""Pages of the notifications: own preferences, failed emails, who receives what in a study."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts import permissions
from accounts.models import StudyMembership
from notifications import services
from notifications.forms import OPTIONAL_KINDS, PreferenceForm
from notifications.models import Notification, NotificationPreference

ROWS_PER_PAGE = 50


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    preference = NotificationPreference.objects.filter(user=request.user).first()
    initial = {
        "kinds": preference.kinds if preference else [value for value, _ in OPTIONAL_KINDS],
        "digest": preference.digest if preference else "none",
    }
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            services.save_preferences(
                request.user, kinds=form.cleaned_data["kinds"], digest=form.cleaned_data["digest"]
            )
            messages.success(request, "Your notification preferences were saved.")
            return redirect("notifications:preferences")
    else:
        form = PreferenceForm(initial=initial)
    return render(request, "notifications/preferences.html", {"form": form})


@login_required
@require_GET
def failed_notifications(request):
    permissions.require_view_notification_log(request.user)
    page = Paginator(Notification.objects.for_failed_page(), ROWS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"page": page, "max_attempts": settings.NOTIFICATION_MAX_ATTEMPTS}
    return render(request, "notifications/failed.html", context)


@login_required
@require_GET
def study_recipients(request, nickname):
    study = permissions.get_study(request.user, nickname)
    permissions.require_manage_members(request.user, study)
    memberships = (
        StudyMembership.objects.filter(study=study)
        .for_list()
        .select_related("user__notification_preference")
    )
    rows = [
        {"membership": membership, "kinds": services.kinds_received(membership)}
        for membership in memberships
    ]
    return render(request, "notifications/study_recipients.html", {"study": study, "rows": rows})
