"""Account requests, role grants and (de)activation. Each change writes an AccessEvent and sends
its emails only after the transaction commits."""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import permissions, signals
from accounts.models import (
    AccessEvent,
    AccessEventKind,
    AccountRequest,
    AccountRequestStatus,
    Role,
    StudyMembership,
    User,
)

logger = logging.getLogger(__name__)


class AccessError(Exception):
    """A change to accounts or roles that is not allowed; the message is for the person acting."""


@dataclass(frozen=True)
class Grant:
    """A role to give someone in a study, at one site or (site None) at all of its sites."""

    study: object
    site: object = None
    role: Role = Role.VIEWER
    is_primary_contact: bool = False
    is_staff_contact: bool = False

    @property
    def scope(self):
        return (
            f"{self.study} at {self.site}" if self.site is not None else f"{self.study}, all sites"
        )


# --- Email ----------------------------------------------------------------------------------


def dashboard_admins():
    """Return every active dashboard admin."""
    return list(User.objects.filter(is_active=True, is_dashboard_admin=True).order_by("email"))


def _announce(template, context, recipients):
    """Tell the notification system to email `accounts/email/<template>.txt` to `recipients`.

    The receiver in the notifications app records one email per recipient in its delivery log,
    at most once per account request and template, and sends it after the transaction commits.
    """
    signals.account_email_requested.send(
        sender=AccountRequest, template=template, context=context, recipients=recipients
    )


def _record(kind, *, user, actor, study=None, detail=""):
    return AccessEvent.objects.create(kind=kind, user=user, actor=actor, study=study, detail=detail)


# --- Account state --------------------------------------------------------------------------


class AccountState:
    ACTIVE = "active"
    PENDING = "pending"
    REJECTED = "rejected"
    DEACTIVATED = "deactivated"


def account_state(user):
    """Return the AccountState of a user: active, or why they are inactive."""
    if user.is_active:
        return AccountState.ACTIVE
    latest = user.account_requests.order_by("-created_at", "-pk").first()
    if latest is None or latest.status == AccountRequestStatus.APPROVED:
        return AccountState.DEACTIVATED
    if latest.status == AccountRequestStatus.REJECTED:
        return AccountState.REJECTED
    return AccountState.PENDING


# --- Account requests -----------------------------------------------------------------------


@transaction.atomic
def submit_account_request(user, *, institution, position, studies_and_sites, reason, queue_url=""):
    """Record a new person's request, keep them inactive, and tell them and the dashboard admins.

    `queue_url` is the absolute URL of the account-request queue, for the admins' email.
    """
    if user.account_requests.pending().exists():
        raise AccessError(f"{user.email} already has a pending account request.")
    user.is_active = False
    user.institution = institution
    user.position = position
    user.save(update_fields=["is_active", "institution", "position"])
    account_request = AccountRequest.objects.create(
        user=user,
        institution=institution,
        position=position,
        studies_and_sites=studies_and_sites,
        reason=reason,
    )
    _record(AccessEventKind.REQUESTED, user=user, actor=None, detail=studies_and_sites)
    logger.info("account request %s submitted by %s", account_request.pk, user.email)

    context = {"account_request": account_request, "user": user, "queue_url": queue_url}
    _announce("request_received", context, [user])
    _announce("request_new_admin", context, dashboard_admins())
    return account_request


def _check_pending(account_request):
    if account_request.status != AccountRequestStatus.PENDING:
        raise AccessError(
            f"The account request of {account_request.user.email} was already "
            f"{account_request.get_status_display().lower()}."
        )


def _check_grant(grant):
    if grant.site is not None and not grant.study.study_sites.filter(site=grant.site).exists():
        raise AccessError(
            f"{grant.site} is not a site of {grant.study}; choose one of the study's sites or "
            f"all sites."
        )


@transaction.atomic
def approve_account_request(account_request, *, actor, grants, login_url=""):
    """Activate the requester with the given Grants, and tell them and the dashboard admins."""
    permissions.require_manage_users(actor)
    account_request = AccountRequest.objects.select_for_update().get(pk=account_request.pk)
    _check_pending(account_request)
    if not grants:
        raise AccessError("Choose at least one study (and site) to approve the request with.")
    user = account_request.user
    for grant in grants:
        _check_grant(grant)

    account_request.status = AccountRequestStatus.APPROVED
    account_request.decided_by = actor
    account_request.decided_at = timezone.now()
    account_request.save(update_fields=["status", "decided_by", "decided_at"])
    user.is_active = True
    user.save(update_fields=["is_active"])
    scopes = [f"{grant.role.label} in {grant.scope}" for grant in grants]
    _record(AccessEventKind.APPROVED, user=user, actor=actor, detail="; ".join(scopes))
    for grant in grants:
        _grant(user, grant, actor=actor)
    logger.info("account request %s of %s approved by %s", account_request.pk, user, actor)

    context = {
        "account_request": account_request,
        "user": user,
        "actor": actor,
        "scopes": scopes,
        "login_url": login_url,
    }
    _announce("request_approved", context, [user])
    _announce("request_decided_admin", context, dashboard_admins())
    return account_request


@transaction.atomic
def reject_account_request(account_request, *, actor, reason):
    """Reject a request with a reason; the user stays inactive and nothing is deleted."""
    permissions.require_manage_users(actor)
    reason = (reason or "").strip()
    if not reason:
        raise AccessError("Give a reason for the rejection; the requester receives it by email.")
    account_request = AccountRequest.objects.select_for_update().get(pk=account_request.pk)
    _check_pending(account_request)

    account_request.status = AccountRequestStatus.REJECTED
    account_request.decided_by = actor
    account_request.decided_at = timezone.now()
    account_request.rejection_reason = reason
    account_request.save(update_fields=["status", "decided_by", "decided_at", "rejection_reason"])
    user = account_request.user
    _record(AccessEventKind.REJECTED, user=user, actor=actor, detail=reason)
    logger.info("account request %s of %s rejected by %s", account_request.pk, user, actor)

    context = {"account_request": account_request, "user": user, "actor": actor}
    _announce("request_rejected", context, [user])
    _announce("request_decided_admin", context, dashboard_admins())
    return account_request


# --- Roles ----------------------------------------------------------------------------------


def _grant(user, grant, *, actor):
    membership, created = StudyMembership.objects.update_or_create(
        user=user,
        study=grant.study,
        site=grant.site,
        defaults={
            "role": grant.role,
            "is_primary_contact": grant.is_primary_contact,
            "is_staff_contact": grant.is_staff_contact,
        },
    )
    flags = [
        label
        for label, value in (
            ("primary contact", grant.is_primary_contact),
            ("staff contact", grant.is_staff_contact),
        )
        if value
    ]
    detail = f"{grant.role.label} in {grant.scope}" + (f" ({', '.join(flags)})" if flags else "")
    kind = AccessEventKind.GRANTED if created else AccessEventKind.CHANGED
    _record(kind, user=user, actor=actor, study=grant.study, detail=detail)
    permissions.forget_memberships(user)
    logger.info("%s %s: %s by %s", kind.label.lower(), user, detail, actor)
    return membership


@transaction.atomic
def grant_role(user, *, actor, grant):
    """Give the user a role in a study, at one site or at all of them.

    An existing membership of the same study and site gets the new role and flags.
    """
    permissions.require_manage_members(actor, grant.study)
    if grant.role not in permissions.grantable_roles(actor, grant.study):
        raise AccessError(f"You may not grant the role {grant.role.label} in {grant.study}.")
    _check_grant(grant)
    return _grant(user, grant, actor=actor)


@transaction.atomic
def revoke_role(membership, *, actor):
    """Remove a membership."""
    permissions.require_manage_members(actor, membership.study)
    detail = f"{membership.get_role_display()} in {membership.scope}"
    user, study = membership.user, membership.study
    membership.delete()
    _record(AccessEventKind.REVOKED, user=user, actor=actor, study=study, detail=detail)
    permissions.forget_memberships(user)
    logger.info("revoked %s: %s by %s", user, detail, actor)


# --- Activation -----------------------------------------------------------------------------


@transaction.atomic
def deactivate_user(user, *, actor, reason=""):
    """Deactivate an account. Its signed-in sessions end at their next request, because the
    authentication backend loads only active users."""
    permissions.require_manage_users(actor)
    if user.pk == actor.pk:
        raise AccessError("You may not deactivate your own account; ask another dashboard admin.")
    if not user.is_active:
        raise AccessError(f"{user.email} is already inactive.")
    user.is_active = False
    user.save(update_fields=["is_active"])
    _record(AccessEventKind.DEACTIVATED, user=user, actor=actor, detail=reason.strip())
    logger.info("user %s deactivated by %s", user, actor)


@transaction.atomic
def reactivate_user(user, *, actor):
    """Reactivate a deactivated or rejected account. A pending request is approved on its page."""
    permissions.require_manage_users(actor)
    if user.is_active:
        raise AccessError(f"{user.email} is already active.")
    if account_state(user) == AccountState.PENDING:
        raise AccessError(
            f"{user.email} has a pending account request; approve it on the account requests "
            f"page instead."
        )
    user.is_active = True
    user.save(update_fields=["is_active"])
    _record(AccessEventKind.REACTIVATED, user=user, actor=actor)
    logger.info("user %s reactivated by %s", user, actor)
