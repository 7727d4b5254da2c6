from django.contrib import admin

from studies.models import (
    AltStudyCode,
    ExpectedScan,
    HeaderComparisonSettings,
    Scan,
    Scantype,
    Session,
    Site,
    Study,
    StudyReadme,
    StudySite,
    TaskFile,
    Timepoint,
)


class StudySiteInline(admin.TabularInline):
    model = StudySite
    extra = 0
    fields = ["site", "code", "uses_redcap", "uses_tech_notes", "xnat_archive", "xnat_convention"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["nickname", "name", "is_open", "archive_path", "updated_at"]
    list_filter = ["is_open"]
    search_fields = ["nickname", "name", "description"]
    inlines = [StudySiteInline]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "description"]
    search_fields = ["name", "description"]


class AltStudyCodeInline(admin.TabularInline):
    model = AltStudyCode
    extra = 0


class ExpectedScanInline(admin.TabularInline):
    model = ExpectedScan
    extra = 0
    autocomplete_fields = ["scantype"]


@admin.register(StudySite)
class StudySiteAdmin(admin.ModelAdmin):
    list_display = ["study", "site", "code", "uses_redcap", "uses_tech_notes", "xnat_archive"]
    list_filter = ["study", "site", "uses_redcap", "uses_tech_notes", "xnat_convention"]
    search_fields = ["code", "study__nickname", "site__name"]
    list_select_related = ["study", "site"]
    inlines = [AltStudyCodeInline, ExpectedScanInline]


@admin.register(AltStudyCode)
class AltStudyCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "study_site"]
    search_fields = ["code", "study_site__study__nickname"]
    list_select_related = ["study_site__study", "study_site__site"]


@admin.register(Scantype)
class ScantypeAdmin(admin.ModelAdmin):
    list_display = ["tag", "qc_type", "pha_type"]
    list_filter = ["qc_type"]
    search_fields = ["tag"]


@admin.register(ExpectedScan)
class ExpectedScanAdmin(admin.ModelAdmin):
    list_display = ["study_site", "scantype", "count", "phantom_count"]
    list_filter = ["study_site__study", "study_site__site"]
    search_fields = ["scantype__tag", "study_site__study__nickname"]
    list_select_related = ["study_site__study", "study_site__site", "scantype"]


@admin.register(Timepoint)
class TimepointAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "study_site", "is_phantom", "bids_name", "created_at"]
    list_filter = ["study", "is_phantom"]
    search_fields = ["name", "bids_name", "kcni_name"]
    raw_id_fields = ["study", "study_site"]
    list_select_related = ["study", "study_site__study", "study_site__site"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "timepoint", "number", "acquired_on", "created_at"]
    list_filter = ["timepoint__study"]
    search_fields = ["timepoint__name"]
    raw_id_fields = ["timepoint"]
    list_select_related = ["timepoint"]


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["name", "scantype", "series", "description", "volumes", "updated_at"]
    list_filter = ["session__timepoint__study", "scantype"]
    search_fields = ["name", "file_stem", "bids_name"]
    raw_id_fields = ["session", "source"]
    list_select_related = ["scantype"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(TaskFile)
class TaskFileAdmin(admin.ModelAdmin):
    list_display = ["path", "name", "size", "modified_at", "session"]
    search_fields = ["path", "name"]
    raw_id_fields = ["session"]


@admin.register(StudyReadme)
class StudyReadmeAdmin(admin.ModelAdmin):
    """Saved README versions, read-only: every version is kept, and the study page edits them."""

    list_display = ["study", "author", "created_at"]
    list_filter = ["study"]
    list_select_related = ["study", "author"]
    search_fields = ["study__nickname", "text"]
    readonly_fields = ["study", "author", "text", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(HeaderComparisonSettings)
class HeaderComparisonSettingsAdmin(admin.ModelAdmin):
    """sync_config overwrites a row from datman's IgnoreHeaderFields and HeaderFieldTolerance
    when the config sets them at that level; rows the config does not set are kept."""

    list_display = ["study", "site", "ignored_fields", "tolerances", "updated_at"]
    list_filter = ["study"]
    search_fields = ["study__nickname", "site__name"]
    list_select_related = ["study", "site"]
