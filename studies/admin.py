from django.contrib import admin, messages
from django.template.response import TemplateResponse

from accounts import permissions
from studies import services
from studies.forms import ReasonForm
from studies.models import (
    AltStudyCode,
    DeletionEvent,
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


class ShownFilter(admin.SimpleListFilter):
    """Filters the list by whether rows are visible or hidden (deleted, or in a deleted parent)."""

    title = "deletion"
    parameter_name = "hidden"

    def lookups(self, request, model_admin):
        return [("no", "Visible"), ("yes", "Hidden")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.shown()
        if self.value() == "yes":
            return queryset.hidden()
        return queryset


class HideableAdmin(admin.ModelAdmin):
    """The admin of a model with deleted (hidden) rows: it lists every row, hidden or not, and
    deletes and restores through studies.services, with a reason. Rows are never removed."""

    actions = ["delete_selected_records", "restore_selected_records"]

    # NOTE: Django's unique checks on the change form read the default manager, so renaming a
    # row to the name of a hidden row fails in the database (a server error), not in the form.

    def get_queryset(self, request):
        queryset = self.model.all_objects.get_queryset()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A hidden row may still point at hidden parents (or a hidden source scan).
        if db_field.related_model in (Timepoint, Session, Scan):
            kwargs["queryset"] = db_field.related_model.all_objects.all()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        # Django's delete would remove rows that carry QC history; the actions hide them.
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not permissions.can_delete_records(request.user):
            actions.pop("delete_selected_records", None)
            actions.pop("restore_selected_records", None)
        return actions

    @admin.display(description="Deleted", boolean=True)
    def deleted(self, obj):
        return obj.is_deleted

    @admin.action(description="Delete (hide) the selected %(verbose_name_plural)s")
    def delete_selected_records(self, request, queryset):
        return self._apply_with_reason(
            request, queryset, services.delete_object, verb="delete", done="deleted"
        )

    @admin.action(description="Restore the selected %(verbose_name_plural)s")
    def restore_selected_records(self, request, queryset):
        return self._apply_with_reason(
            request, queryset, services.restore_object, verb="restore", done="restored"
        )

    def _apply_with_reason(self, request, queryset, service, *, verb, done):
        """Ask for a reason on an intermediate page, then apply `service` to each row.

        Rows that cannot be changed (already deleted, not deleted, hidden by a deleted parent)
        are reported one by one; the others are still changed.
        """
        permissions.require_delete_records(request.user)
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            changed = 0
            for obj in queryset:
                try:
                    service(obj, user=request.user, reason=form.cleaned_data["reason"])
                except services.DeletionError as error:
                    self.message_user(request, str(error), messages.ERROR)
                else:
                    changed += 1
            if changed:
                noun = (
                    self.model._meta.verbose_name
                    if changed == 1
                    else (self.model._meta.verbose_name_plural)
                )
                self.message_user(request, f"{changed} {noun} {done}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb.capitalize()} {self.model._meta.verbose_name_plural}",
            "verb": verb,
            "objects": list(queryset),
            "form": form,
            "opts": self.model._meta,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/studies/reason_action.html", context)


@admin.register(Timepoint)
class TimepointAdmin(HideableAdmin):
    list_display = [
        "name",
        "study",
        "study_site",
        "is_phantom",
        "bids_name",
        "created_at",
        "deleted",
    ]
    list_filter = [ShownFilter, "study", "is_phantom"]
    search_fields = ["name", "bids_name", "kcni_name"]
    raw_id_fields = ["study", "study_site"]
    list_select_related = ["study", "study_site__study", "study_site__site"]
    readonly_fields = ["deleted_at", "deleted_by", "deletion_reason"]


@admin.register(Session)
class SessionAdmin(HideableAdmin):
    list_display = ["__str__", "timepoint", "number", "acquired_on", "created_at", "deleted"]
    list_filter = [ShownFilter, "timepoint__study"]
    search_fields = ["timepoint__name"]
    raw_id_fields = ["timepoint"]
    list_select_related = ["timepoint"]
    readonly_fields = ["deleted_at", "deleted_by", "deletion_reason"]


@admin.register(Scan)
class ScanAdmin(HideableAdmin):
    list_display = ["name", "scantype", "series", "description", "volumes", "updated_at", "deleted"]
    list_filter = [ShownFilter, "session__timepoint__study", "scantype"]
    search_fields = ["name", "file_stem", "bids_name"]
    raw_id_fields = ["session", "source"]
    list_select_related = ["scantype"]
    readonly_fields = ["created_at", "updated_at", "deleted_at", "deleted_by", "deletion_reason"]


@admin.register(DeletionEvent)
class DeletionEventAdmin(admin.ModelAdmin):
    """The deletion log is read-only: every delete and restore adds a row."""

    list_display = [
        "created_at",
        "action",
        "object_type",
        "object_name",
        "study",
        "actor",
        "reason",
    ]
    list_filter = ["action", "object_type", "study"]
    search_fields = ["object_name", "reason", "actor__username"]
    list_select_related = ["study", "actor"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
