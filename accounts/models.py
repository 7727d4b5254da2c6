"""The qcdash user."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person (or a pipeline account) who signs in to qcdash; email is the sign-in name."""

    email = models.EmailField("email address", unique=True)

    class Meta:
        ordering = ["username"]

    def __str__(self):
        return self.username

    @property
    def display_name(self):
        """Full name when known, else the username."""
        return self.get_full_name() or self.username
