from django.contrib import admin

from pipelines.models import DownloadJob, DownloadRun, DownloadSettings, PipelinePage


@admin.register(DownloadSettings)
class DownloadSettingsAdmin(admin.ModelAdmin):
    list_display = ["study_site", "download_command", "post_download_command", "updated_at"]
    list_select_related = ["study_site__study", "study_site__site"]
    search_fields = ["study_site__study__nickname", "study_site__site__name"]


class DownloadRunInline(admin.TabularInline):
    model = DownloadRun
    fields = ["kind", "command", "exit_code", "timed_out", "error", "started_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DownloadJob)
class DownloadJobAdmin(admin.ModelAdmin):
    """Jobs are written by the background worker only; the admin shows them read-only."""

    list_display = ["session_name", "study_site", "status", "deadline_at", "created_at"]
    list_filter = ["status"]
    list_select_related = ["study_site__study", "study_site__site"]
    search_fields = ["session_name"]
    readonly_fields = [field.name for field in DownloadJob._meta.fields]
    inlines = [DownloadRunInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PipelinePage)
class PipelinePageAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "scope", "url_template", "path_template", "allow_scripts"]
    list_filter = ["scope", "study"]
    search_fields = ["name", "study__nickname"]
