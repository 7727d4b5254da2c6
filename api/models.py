"""API tokens: the secrets that pipeline accounts send to the JSON API."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

# Marks qcdash tokens, so a leaked one is recognisable in logs and secret scanners.
TOKEN_PREFIX = "qcd_"  # noqa: S105 - a public marker, not a secret
# The first characters of a token, stored in clear so the admin list can tell tokens apart.
VISIBLE_PREFIX_LENGTH = 12


def hash_token(token):
    """Return the SHA-256 hex digest of a token.

    A fast hash is enough because tokens are 256-bit random strings: no list of guesses can
    reach them, unlike passwords.
    """
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A token that lets a pipeline call the API as one user, with that user's permissions.

    Only the hash of the token is stored; the token itself is shown once, when it is created.
    A revoked token stays on record but no longer authenticates.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What uses the token, for example “datman on the lab server”."
    )
    prefix = models.CharField(max_length=VISIBLE_PREFIX_LENGTH, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_api_tokens",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…) of {self.user}"

    @property
    def is_revoked(self):
        return self.revoked_at is not None

    def set_new_key(self):
        """Give the (unsaved) row a new random token and return the token, which is not stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.prefix = token[:VISIBLE_PREFIX_LENGTH]
        self.key_hash = hash_token(token)
        return token

    @classmethod
    def issue(cls, *, user, name, created_by=None):
        """Create a token for `user` and return (ApiToken, token)."""
        row = cls(user=user, name=name, created_by=created_by)
        token = row.set_new_key()
        row.save()
        return row, token

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
