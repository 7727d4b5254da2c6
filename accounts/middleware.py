"""Send a dashboard admin without two-factor authentication to set it up first."""

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from accounts.permissions import is_dashboard_admin

# Pages a dashboard admin without TOTP may still open besides static files and the two-factor
# pages (under mfa_index): confirming the password for the set-up, and signing out.
ALLOWED_URL_NAMES = ("account_reauthenticate", "account_logout")


class RequireAdminMFAMiddleware:
    """With MFA_REQUIRED_FOR_DASHBOARD_ADMINS on, redirect a dashboard admin who has no TOTP
    authenticator to the TOTP set-up page before any other page.

    It runs one query per request of a dashboard admin, and none for anyone else.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.MFA_REQUIRED_FOR_DASHBOARD_ADMINS
            and is_dashboard_admin(request.user)
            and not self._is_allowed(request.path)
            and not is_mfa_enabled(request.user, [Authenticator.Type.TOTP])
        ):
            messages.warning(
                request,
                "Dashboard admins must use two-factor authentication. Set up an "
                "authenticator app to continue.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)

    def _is_allowed(self, path):
        static_prefix = "/" + settings.STATIC_URL.lstrip("/")
        if path.startswith(static_prefix) or path.startswith(reverse("mfa_index")):
            return True
        return path in {reverse(name) for name in ALLOWED_URL_NAMES}
