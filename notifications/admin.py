from django.contrib import admin

from notifications.models import JobRun, Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "key", "status", "attempts", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("key", "recipient__email", "recipient__username")
    list_select_related = ("recipient",)
    readonly_fields = ("created_at", "sent_at", "attempts", "last_error")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "digest", "updated_at")
    list_select_related = ("user",)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job", "started_at", "finished_at", "created", "sent", "failed", "error")
    list_filter = ("job",)
    readonly_fields = ("started_at",)
