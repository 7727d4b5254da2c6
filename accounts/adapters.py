"""django-allauth adapters: new accounts wait for approval, redirects stay on qcdash."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.shortcuts import redirect

from accounts.redirects import is_safe_redirect
from accounts.services import account_state

# The session key that tells the account-inactive page why the account is inactive.
INACTIVE_STATE_SESSION_KEY = "accounts_inactive_state"


class AccountAdapter(DefaultAccountAdapter):
    """Local accounts. Anyone may request an account while ACCOUNT_ALLOW_REGISTRATION is on; the
    account stays inactive until a dashboard admin approves the request."""

    def is_open_for_signup(self, request):
        return settings.ACCOUNT_ALLOW_REGISTRATION

    def new_user(self, request):
        user = super().new_user(request)
        user.is_active = False
        return user

    def respond_user_inactive(self, request, user):
        """Show the account-inactive page with the reason: awaiting approval, rejected or
        deactivated. It is reached only after the password or the OAuth provider matched."""
        request.session[INACTIVE_STATE_SESSION_KEY] = account_state(user)
        return redirect("account_inactive")

    def is_safe_url(self, url):
        return is_safe_redirect(url, context.request)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """OAuth and OpenID Connect sign-in. A new person always sees the sign-up form, because it
    holds the account request (and asks for an email when the provider sent none)."""

    def is_open_for_signup(self, request, sociallogin):
        return settings.ACCOUNT_ALLOW_REGISTRATION

    def is_auto_signup_allowed(self, request, sociallogin):
        return False
