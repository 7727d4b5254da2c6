"""Token authentication for pipeline accounts: `Authorization: Token <token>`."""

import logging
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.models import ApiToken, hash_token

logger = logging.getLogger(__name__)

KEYWORDS = ("token", "bearer")
# last_used_at is written at most this often per token, so a busy pipeline does not turn every
# read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by an `ApiToken`; the request acts as the token's user."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _, token = header.strip().partition(" ")
        if keyword.lower() not in KEYWORDS:
            return None
        token = token.strip()
        if not token or " " in token:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: send `Authorization: Token <token>` with the "
                "token a dashboard admin created for your account."
            )

        row = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
        if row is None:
            raise exceptions.AuthenticationFailed(
                "Invalid token: no API token matches it. Ask a dashboard admin for a new one."
            )
        if row.is_revoked:
            logger.warning("revoked API token %s… of %s was used", row.prefix, row.user)
            raise exceptions.AuthenticationFailed(
                f"The API token {row.prefix}… was revoked on {row.revoked_at:%Y-%m-%d}. Ask a "
                f"dashboard admin for a new one."
            )
        if not row.user.is_active:
            raise exceptions.AuthenticationFailed(
                f"The account {row.user} of this API token is deactivated."
            )

        now = timezone.now()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        return row.user, row

    def authenticate_header(self, request):
        return "Token"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes ApiTokenAuthentication in the OpenAPI schema."""

    target_class = "api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`, with a token a dashboard admin created in the admin "
            "site.",
        }
