from django.contrib import admin, messages
from django.db import models
from django.urls import reverse

from redcap.forms import RedcapConfigAdminForm
from redcap.models import (
    RedcapConfig,
    RedcapRecord,
    RedcapRecordVersion,
    RedcapTrigger,
    SessionSurvey,
    SurveyDismissal,
    new_trigger_secret,
)


@admin.register(RedcapConfig)
class RedcapConfigAdmin(admin.ModelAdmin):
    # A server address typed without a scheme is taken as https.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    form = RedcapConfigAdminForm
    list_display = [
        "__str__",
        "token_hint",
        "untracked_trigger_count",
        "last_untracked_instrument",
        "last_synced_at",
    ]
    search_fields = ["url", "instrument"]
    filter_horizontal = ["study_sites"]
    readonly_fields = [
        "token_hint",
        "redcap_version",
        "untracked_trigger_count",
        "last_untracked_instrument",
        "last_synced_at",
        "last_sync_summary",
    ]
    fieldsets = [
        (None, {"fields": ["url", "api_url", "project_id", "instrument", "study_sites"]}),
        (
            "Field mapping",
            {
                "fields": [
                    "record_key_field",
                    "session_field",
                    "date_field",
                    "comment_field",
                    "status_field",
                    "complete_values",
                    "user_field",
                    "event_ids",
                ]
            },
        ),
        ("Access", {"fields": ["token_hint", "new_token", "regenerate_trigger_url"]}),
        (
            "Status",
            {
                "fields": [
                    "redcap_version",
                    "untracked_trigger_count",
                    "last_untracked_instrument",
                    "last_synced_at",
                    "last_sync_summary",
                ]
            },
        ),
    ]
    actions = ["regenerate_trigger_urls"]

    @admin.display(description="API token")
    def token_hint(self, config):
        return config.token_hint or "(none)"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            path = reverse("redcap:trigger", args=[obj.trigger_secret])
            context["trigger_url"] = request.build_absolute_uri(path)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Regenerate the trigger URLs of the selected configurations")
    def regenerate_trigger_urls(self, request, queryset):
        for config in queryset:
            config.trigger_secret = new_trigger_secret()
            config.save(update_fields=["trigger_secret", "updated_at"])
        self.message_user(
            request,
            f"{queryset.count()} trigger URLs regenerated; paste the new URLs into REDCap.",
            messages.SUCCESS,
        )


class RedcapRecordVersionInline(admin.TabularInline):
    model = RedcapRecordVersion
    extra = 0
    can_delete = False
    readonly_fields = [
        "session_id_text",
        "completed_on",
        "comment",
        "entered_by",
        "fetched_at",
        "replaced_at",
    ]

    def has_add_permission(self, request, obj=None):
        return False


class SessionSurveyInline(admin.TabularInline):
    model = SessionSurvey
    extra = 0
    raw_id_fields = ["session", "linked_by"]
    readonly_fields = ["created_at"]


@admin.register(RedcapRecord)
class RedcapRecordAdmin(admin.ModelAdmin):
    list_display = ["record_id", "event_name", "config", "session_id_text", "completed_on"]
    list_select_related = ["config"]
    search_fields = ["record_id", "session_id_text", "session_name"]
    readonly_fields = ["fetched_at"]
    inlines = [SessionSurveyInline, RedcapRecordVersionInline]


@admin.register(RedcapTrigger)
class RedcapTriggerAdmin(admin.ModelAdmin):
    list_display = ["received_at", "config", "record_id", "event_name", "status", "attempts"]
    list_filter = ["status"]
    list_select_related = ["config"]
    search_fields = ["record_id"]
    readonly_fields = [
        "config",
        "record_id",
        "event_name",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "redcap_record",
        "received_at",
        "finished_at",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(SurveyDismissal)
class SurveyDismissalAdmin(admin.ModelAdmin):
    list_display = ["session", "dismissed_by", "created_at", "reason"]
    list_select_related = ["session__timepoint", "dismissed_by"]
    raw_id_fields = ["session", "dismissed_by"]
    readonly_fields = ["created_at"]
