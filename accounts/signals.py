"""The accounts app's own signals, and receivers for allauth's."""

import logging

from allauth.account.models import EmailAddress
from allauth.account.signals import user_signed_up
from django.conf import settings
from django.dispatch import Signal, receiver

logger = logging.getLogger(__name__)

# Sent inside the transaction of an account-request service with `template` (a name under
# templates/accounts/email/), `context` (holding `account_request`) and `recipients`. The
# notifications app turns it into logged emails, so accounts does not import notifications.
account_email_requested = Signal()


@receiver(user_signed_up, dispatch_uid="accounts_send_verification_at_signup")
def send_verification_at_signup(request, user, **kwargs):
    """Send the email verification link to a new person.

    allauth sends it as part of signing in, which a new, inactive account never reaches, so it
    is sent here instead, unless verification is off or the OAuth provider already verified it.
    """
    if settings.ACCOUNT_EMAIL_VERIFICATION == "none":
        return
    for address in EmailAddress.objects.filter(user=user, verified=False):
        address.send_confirmation(request, signup=True)
        logger.info("email verification sent to new account %s", user.email)
