"""django-allauth adapters."""

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    """Local accounts; self sign-up only when ACCOUNT_ALLOW_REGISTRATION is on."""

    def is_open_for_signup(self, request):
        return settings.ACCOUNT_ALLOW_REGISTRATION
