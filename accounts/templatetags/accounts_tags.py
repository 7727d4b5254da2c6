"""Template tags of the navigation bar."""

from django import template

from accounts.models import AccountRequest
from accounts.permissions import can_manage_users

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_account_request_count(context):
    """Count pending account requests for a dashboard admin (one query); None for anyone else."""
    user = context.get("user")
    if user is None or not can_manage_users(user):
        return None
    return AccountRequest.objects.pending().count()
