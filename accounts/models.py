"""People, their roles in studies, account requests and the log of access changes."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    """A person (or a pipeline account) who signs in to qcdash; email is the sign-in name.

    A new person's account stays inactive until a dashboard admin approves their request.
    """

    email = models.EmailField("email address", unique=True)
    is_dashboard_admin = models.BooleanField(
        default=False,
        help_text=(
            "Manages users, account requests and the admin site, and sees every study. "
            "The admin site also requires staff status."
        ),
    )
    phone = models.CharField(max_length=64, blank=True)
    institution = models.CharField(max_length=255, blank=True)
    position = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["username"]

    def __str__(self):
        return self.username

    @property
    def display_name(self):
        """Full name when known, else the username."""
        return self.get_full_name() or self.username


class Role(models.IntegerChoices):
    """A role in a study. Each role may do everything the lower ones may, so the values are
    ordered and a membership check compares numbers."""

    VIEWER = 10, "Viewer"
    QC_REVIEWER = 20, "QC reviewer"
    RA = 30, "RA"
    STUDY_ADMIN = 40, "Study admin"


class StudyMembershipQuerySet(models.QuerySet):
    def for_list(self):
        """Memberships with their user, study and site, in study, site and role order."""
        return self.select_related("user", "study", "site").order_by(
            "study__nickname", "site__name", "-role", "user__username"
        )


class StudyMembership(models.Model):
    """A person's role in one study, at one site or (without a site) at every site of it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="memberships")
    site = models.ForeignKey(
        "studies.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        help_text="Leave empty for every site of the study.",
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.VIEWER)
    is_primary_contact = models.BooleanField(
        "primary contact (PI)", default=False, help_text="The study's principal investigator."
    )
    is_staff_contact = models.BooleanField(
        default=False, help_text="The lab staff member people contact about the study."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StudyMembershipQuerySet.as_manager()

    class Meta:
        ordering = ["study__nickname", "site__name", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "study", "site"], name="accounts_studymembership_unique_site"
            ),
            models.UniqueConstraint(
                fields=["user", "study"],
                condition=Q(site__isnull=True),
                name="accounts_studymembership_unique_study",
            ),
            models.CheckConstraint(
                condition=Q(role__in=[role.value for role in Role]),
                name="accounts_studymembership_role_valid",
            ),
        ]

    def __str__(self):
        where = f"{self.study} at {self.site}" if self.site_id else f"{self.study} (all sites)"
        return f"{self.user} {self.get_role_display()} in {where}"

    @property
    def scope(self):
        """The study and site as a person reads them.

        Queries unless study and site were preloaded.
        """
        return f"{self.study} at {self.site}" if self.site_id else f"{self.study}, all sites"


class AccountRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class AccountRequestQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=AccountRequestStatus.PENDING)

    def for_queue(self):
        """Requests with their user and decider, oldest pending first, then newest decided."""
        return self.select_related("user", "decided_by").order_by("-status", "created_at")


class AccountRequest(models.Model):
    """A new person's request for access: who they are, which studies and sites, and why.

    The user stays inactive while the request is pending and after a rejection; nothing is
    deleted, so the reason for a rejection stays on record.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="account_requests"
    )
    institution = models.CharField(max_length=255)
    position = models.CharField(max_length=255)
    studies_and_sites = models.TextField(
        help_text="The studies and sites the person asks for, in their own words."
    )
    reason = models.TextField(help_text="Why the person needs access.")
    status = models.CharField(
        max_length=16, choices=AccountRequestStatus.choices, default=AccountRequestStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="decided_account_requests",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AccountRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status="pending"),
                name="accounts_accountrequest_one_pending",
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(rejection_reason=""),
                name="accounts_accountrequest_rejection_has_reason",
            ),
        ]

    def __str__(self):
        return f"Account request of {self.user.email} ({self.get_status_display().lower()})"


class AccessEventKind(models.TextChoices):
    REQUESTED = "requested", "Account requested"
    APPROVED = "approved", "Request approved"
    REJECTED = "rejected", "Request rejected"
    GRANTED = "granted", "Role granted"
    CHANGED = "changed", "Role changed"
    REVOKED = "revoked", "Role revoked"
    DEACTIVATED = "deactivated", "Account deactivated"
    REACTIVATED = "reactivated", "Account reactivated"


class AccessEvent(models.Model):
    """One change to who may do what: who did it, to whom, when, and the role or reason.

    Rows are only ever added. Study, site and role are copied as text as well, so an event still
    reads correctly after the membership it describes was revoked.
    """

    kind = models.CharField(max_length=16, choices=AccessEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_events_made",
        help_text="Who made the change; empty for a person's own account request.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_events"
    )
    study = models.ForeignKey(
        "studies.Study",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="access_events",
    )
    detail = models.TextField(blank=True, help_text="The role and scope, or the reason.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_accessevent_user")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.user} by {self.actor or 'themselves'}"
