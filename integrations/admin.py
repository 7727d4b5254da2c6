from django.contrib import admin

from integrations.models import (
    IssueRequest,
    IssueTracker,
    TimepointIssues,
    TrackerAccount,
    XnatPush,
    XnatSiteSettings,
)


@admin.register(XnatSiteSettings)
class XnatSiteSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "push_enabled",
        "xnat_url",
        "xnat_archive",
        "xnat_convention",
        "credentials_variable",
        "credentials_file",
    ]
    list_filter = ["push_enabled"]
    list_select_related = ["study_site__study", "study_site__site"]
    search_fields = ["study_site__study__nickname", "study_site__site__name"]
    autocomplete_fields = ["study_site"]

    @admin.display(description="XNAT server (study site)")
    def xnat_url(self, obj):
        return obj.study_site.xnat_url or "–"

    @admin.display(description="XNAT project (study site)")
    def xnat_archive(self, obj):
        return obj.study_site.xnat_archive or "–"

    @admin.display(description="Naming convention")
    def xnat_convention(self, obj):
        return obj.study_site.get_xnat_convention_display()


@admin.register(XnatPush)
class XnatPushAdmin(admin.ModelAdmin):
    """The push log, read-only: pushes are added by QC decisions and by "push again"."""

    list_display = ["scan", "study", "status", "state", "quality", "attempts", "created_at"]
    list_filter = ["status", "study"]
    search_fields = ["scan__name"]
    list_select_related = ["scan", "study"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IssueTracker)
class IssueTrackerAdmin(admin.ModelAdmin):
    list_display = ["study", "is_enabled", "provider", "repository", "api_url", "token_variable"]
    list_select_related = ["study"]
    readonly_fields = ["last_assignee"]


@admin.register(TrackerAccount)
class TrackerAccountAdmin(admin.ModelAdmin):
    list_display = ["user", "github_username", "gitlab_username"]
    search_fields = ["user__username", "user__email", "github_username", "gitlab_username"]
    autocomplete_fields = ["user"]


@admin.register(IssueRequest)
class IssueRequestAdmin(admin.ModelAdmin):
    """Issues opened from the timepoint pages, read-only."""

    list_display = [
        "timepoint",
        "title",
        "requested_by",
        "assignee_username",
        "status",
        "created_at",
    ]
    list_filter = ["status"]
    list_select_related = ["timepoint", "requested_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TimepointIssues)
class TimepointIssuesAdmin(admin.ModelAdmin):
    list_display = ["timepoint", "checked_at", "refresh_queued_at", "last_error"]
    list_select_related = ["timepoint"]
    readonly_fields = ["timepoint", "issues", "checked_at", "last_error", "refresh_queued_at"]
