from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Dashboard admins create and revoke pipeline tokens here.

    A new token is shown once, on the page that follows its creation; only its hash is kept.
    """

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username", "user__email", "prefix"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_tokens"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name"]
        return ["user", "name", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # The user of an existing token cannot change: issue a new token instead.
        return ["user", *self.readonly_fields]

    def has_delete_permission(self, request, obj=None):
        # Tokens are revoked, not deleted, so the admin list keeps who had access and when.
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            request._new_api_token = obj.set_new_key()
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        token = getattr(request, "_new_api_token", None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "api_token": obj,
            "token": token,
            "title": "API token created",
        }
        return TemplateResponse(request, "api/admin/token_created.html", context)

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)
