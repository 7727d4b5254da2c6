from django.contrib import admin

from qc.models import QCEvent, ScanReview, SessionSignOff


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
