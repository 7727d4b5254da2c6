from django.contrib import admin, messages

from qc.models import (
    DeviationResolution,
    FindingNote,
    GoldStandard,
    HeaderDiff,
    IncidentalFinding,
    MissingScanDismissal,
    PurgeRecord,
    QCEvent,
    ScanReview,
    SessionSignOff,
    SidecarRepair,
    TimepointComment,
    TimepointCommentRevision,
)


class AppendOnlyAdmin(admin.ModelAdmin):
    """QC history is read-only in the admin: a decision is changed by recording a new one."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(ScanReview)
class ScanReviewAdmin(AppendOnlyAdmin):
    list_display = ["scan", "state", "reviewer", "created_at", "comment"]
    list_filter = ["state", "scan__session__timepoint__study"]
    search_fields = ["scan__name", "comment", "reviewer__username"]
    raw_id_fields = ["scan", "reviewer", "sign_off"]
    list_select_related = ["scan", "reviewer"]
    date_hierarchy = "created_at"


@admin.register(SessionSignOff)
class SessionSignOffAdmin(AppendOnlyAdmin):
    list_display = ["session", "reviewer", "created_at"]
    list_filter = ["session__timepoint__study"]
    search_fields = ["session__timepoint__name", "reviewer__username"]
    raw_id_fields = ["session", "reviewer"]
    list_select_related = ["session__timepoint", "reviewer"]


@admin.register(QCEvent)
class QCEventAdmin(AppendOnlyAdmin):
    list_display = ["created_at", "kind", "actor", "study", "scan", "session"]
    list_filter = ["kind", "study"]
    search_fields = ["scan__name", "session__timepoint__name", "actor__username"]
    raw_id_fields = ["actor", "study", "session", "scan", "review", "sign_off"]
    list_select_related = ["actor", "study", "scan", "session__timepoint"]
    date_hierarchy = "created_at"


@admin.register(GoldStandard)
class GoldStandardAdmin(admin.ModelAdmin):
    """Standards can be added but not edited: a changed standard is a new row, so the header
    diffs computed against the old one stay explainable."""

    list_display = ["study", "site", "scantype", "source_path", "converter_version", "created_at"]
    list_filter = ["study", "site", "scantype"]
    search_fields = ["source_path", "scantype__tag", "study__nickname"]
    list_select_related = ["study", "site", "scantype"]
    fields = ["study", "site", "scantype", "sidecar", "bvals", "source_path"]
    readonly_fields = ["converter_version", "created_at"]
    date_hierarchy = "created_at"

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        return [*self.fields, "converter_version", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        messages.info(
            request,
            f"Run compute_header_diffs {obj.study} to compare its scans with the new standard.",
        )


@admin.register(HeaderDiff)
class HeaderDiffAdmin(AppendOnlyAdmin):
    list_display = [
        "scan",
        "series_description",
        "status",
        "gold_standard",
        "is_current",
        "computed_at",
    ]
    list_filter = ["status", "is_current", "scan__session__timepoint__study"]
    search_fields = ["scan__name", "scan__description"]
    raw_id_fields = ["scan", "gold_standard"]
    list_select_related = ["scan", "gold_standard__study", "gold_standard__site"]
    date_hierarchy = "computed_at"

    @admin.display(description="Series description")
    def series_description(self, obj):
        sidecar = obj.scan.sidecar if isinstance(obj.scan.sidecar, dict) else {}
        description = sidecar.get("SeriesDescription")
        return description if isinstance(description, str) else obj.scan.description


@admin.register(DeviationResolution)
class DeviationResolutionAdmin(AppendOnlyAdmin):
    list_display = ["header_diff", "field", "decision", "reviewer", "created_at", "reason"]
    list_filter = ["decision", "header_diff__scan__session__timepoint__study"]
    search_fields = ["header_diff__scan__name", "field", "reason", "reviewer__username"]
    raw_id_fields = ["header_diff", "reviewer"]
    list_select_related = ["header_diff__scan", "reviewer"]
    date_hierarchy = "created_at"


@admin.register(MissingScanDismissal)
class MissingScanDismissalAdmin(AppendOnlyAdmin):
    list_display = ["session", "reviewer", "created_at", "reason"]
    list_filter = ["session__timepoint__study"]
    search_fields = ["session__timepoint__name", "reason", "reviewer__username"]
    raw_id_fields = ["session", "reviewer"]
    list_select_related = ["session__timepoint", "reviewer"]
    date_hierarchy = "created_at"


class TimepointCommentRevisionInline(admin.TabularInline):
    model = TimepointCommentRevision
    fields = ["created_at", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TimepointComment)
class TimepointCommentAdmin(AppendOnlyAdmin):
    """Comments with every revision, deleted ones included: the admin site shows the text that
    the pages hide after a deletion."""

    list_display = ["timepoint", "author", "created_at", "deleted_at", "deleted_by"]
    list_filter = ["timepoint__study"]
    search_fields = ["timepoint__name", "author__username", "revisions__text"]
    raw_id_fields = ["timepoint", "author", "deleted_by"]
    list_select_related = ["timepoint", "author", "deleted_by"]
    date_hierarchy = "created_at"
    inlines = [TimepointCommentRevisionInline]


class FindingNoteInline(admin.TabularInline):
    model = FindingNote
    fields = ["created_at", "author", "marks_resolved", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IncidentalFinding)
class IncidentalFindingAdmin(AppendOnlyAdmin):
    list_display = ["timepoint", "reporter", "created_at"]
    list_filter = ["timepoint__study"]
    search_fields = ["timepoint__name", "reporter__username", "description"]
    raw_id_fields = ["timepoint", "reporter"]
    list_select_related = ["timepoint", "reporter"]
    date_hierarchy = "created_at"
    inlines = [FindingNoteInline]


@admin.register(SidecarRepair)
class SidecarRepairAdmin(AppendOnlyAdmin):
    list_display = ["scan", "field", "action", "reviewer", "created_at"]
    list_select_related = ["scan", "reviewer"]
    search_fields = ["scan__name"]


@admin.register(PurgeRecord)
class PurgeRecordAdmin(AppendOnlyAdmin):
    list_display = ["target", "study", "ran_by", "created_at"]
    search_fields = ["target", "study"]
