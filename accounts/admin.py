from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.decorators import login_required

from accounts.models import AccessEvent, AccountRequest, StudyMembership, User
from accounts.permissions import is_dashboard_admin


def _admin_site_has_permission(request):
    """Only dashboard admins with staff status may use the admin site."""
    return is_dashboard_admin(request.user) and request.user.is_staff


admin.site.has_permission = _admin_site_has_permission
# Sign in to the admin site through allauth's page, so its rate limits and two-factor
# authentication apply there too.
admin.site.login = login_required(admin.site.login)


class MembershipInline(admin.TabularInline):
    model = StudyMembership
    fk_name = "user"
    extra = 0
    autocomplete_fields = ["study", "site"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "is_dashboard_admin",
        "is_staff",
        "is_active",
    ]
    list_filter = ["is_dashboard_admin", "is_staff", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("qcdash", {"fields": ["is_dashboard_admin", "phone", "institution", "position"]}),
    ]
    inlines = [MembershipInline]


@admin.register(StudyMembership)
class StudyMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "study", "site", "role", "is_primary_contact", "is_staff_contact"]
    list_filter = ["role", "study", "site"]
    search_fields = ["user__email", "user__username", "study__nickname"]
    autocomplete_fields = ["user", "study", "site"]


@admin.register(AccountRequest)
class AccountRequestAdmin(admin.ModelAdmin):
    list_display = ["user", "institution", "status", "created_at", "decided_by"]
    list_filter = ["status"]
    search_fields = ["user__email", "institution"]
    readonly_fields = ["user", "created_at", "decided_by", "decided_at"]


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    """The access log is append-only: it can be read here, never changed."""

    list_display = ["created_at", "kind", "user", "actor", "study", "detail"]
    list_filter = ["kind"]
    search_fields = ["user__email", "actor__email", "detail"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
