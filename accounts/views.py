"""Account pages: profile, account requests, user management and a study's members."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions, services
from accounts.forms import (
    ApproveForm,
    DeactivateForm,
    GrantForm,
    MemberGrantForm,
    ProfileForm,
    RejectForm,
)
from accounts.models import AccessEvent, AccountRequest, StudyMembership, User
from accounts.redirects import safe_redirect_url
from accounts.services import AccessError, Grant

logger = logging.getLogger(__name__)

ROWS_PER_PAGE = 50
# Events shown on a user's page, newest first.
EVENTS_SHOWN = 50


def _grant_from(form):
    return Grant(
        study=form.cleaned_data["study"],
        site=form.cleaned_data["site"],
        role=form.cleaned_data["role"],
        is_primary_contact=form.cleaned_data["is_primary_contact"],
        is_staff_contact=form.cleaned_data["is_staff_contact"],
    )


def _return_to(request, fallback):
    """Return the page to go back to: the posted `next` when it is one of ours, else `fallback`."""
    return safe_redirect_url(request, request.POST.get("next", ""), fallback=fallback)


# --- Profile --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your profile was saved.")
        return redirect("accounts:profile")
    memberships = StudyMembership.objects.filter(user=request.user).for_list()
    return render(request, "accounts/profile.html", {"form": form, "memberships": memberships})


# --- Account requests -----------------------------------------------------------------------


@login_required
@require_GET
def request_list(request):
    permissions.require_manage_users(request.user)
    show = request.GET.get("show", "pending")
    requests = AccountRequest.objects.for_queue()
    if show != "all":
        show = "pending"
        requests = requests.pending()
    page = Paginator(requests, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "accounts/request_list.html", {"page": page, "show": show})


def _render_request(request, account_request, approve_form=None, reject_form=None, status=200):
    context = {
        "account_request": account_request,
        "email_verified": account_request.user.emailaddress_set.filter(verified=True).exists(),
        "approve_form": approve_form or ApproveForm(),
        "reject_form": reject_form or RejectForm(),
    }
    return render(request, "accounts/request_detail.html", context, status=status)


def _get_request(user, pk):
    permissions.require_manage_users(user)
    return get_object_or_404(AccountRequest.objects.select_related("user", "decided_by"), pk=pk)


@login_required
@require_GET
def request_detail(request, pk):
    return _render_request(request, _get_request(request.user, pk))


@login_required
@require_POST
def request_approve(request, pk):
    account_request = _get_request(request.user, pk)
    form = ApproveForm(request.POST)
    if form.is_valid():
        try:
            services.approve_account_request(
                account_request,
                actor=request.user,
                grants=form.grants(),
                login_url=request.build_absolute_uri(reverse("account_login")),
            )
        except AccessError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Account of {account_request.user.email} approved.")
            return redirect("accounts:request_list")
    return _render_request(request, account_request, approve_form=form, status=400)


@login_required
@require_POST
def request_reject(request, pk):
    account_request = _get_request(request.user, pk)
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            services.reject_account_request(
                account_request, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except AccessError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Request of {account_request.user.email} rejected.")
            return redirect("accounts:request_list")
    return _render_request(request, account_request, reject_form=form, status=400)


# --- User management (dashboard admins) -----------------------------------------------------


@login_required
@require_GET
def user_list(request):
    permissions.require_manage_users(request.user)
    query = request.GET.get("q", "").strip()
    users = User.objects.annotate(membership_count=Count("memberships")).order_by("username")
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    page = Paginator(users, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "accounts/user_list.html", {"page": page, "query": query})


def _get_user(actor, pk):
    permissions.require_manage_users(actor)
    return get_object_or_404(User, pk=pk)


def _render_user(request, managed_user, grant_form=None, status=200):
    context = {
        "managed_user": managed_user,
        "state": services.account_state(managed_user),
        "memberships": StudyMembership.objects.filter(user=managed_user).for_list(),
        "events": AccessEvent.objects.filter(user=managed_user).select_related("actor", "study")[
            :EVENTS_SHOWN
        ],
        "grant_form": grant_form or GrantForm(),
        "deactivate_form": DeactivateForm(),
    }
    return render(request, "accounts/user_detail.html", context, status=status)


@login_required
@require_GET
def user_detail(request, pk):
    return _render_user(request, _get_user(request.user, pk))


@login_required
@require_POST
def user_grant(request, pk):
    managed_user = _get_user(request.user, pk)
    form = GrantForm(request.POST)
    if form.is_valid():
        try:
            services.grant_role(managed_user, actor=request.user, grant=_grant_from(form))
        except AccessError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Role saved for {managed_user.email}.")
            return redirect("accounts:user_detail", pk=managed_user.pk)
    return _render_user(request, managed_user, grant_form=form, status=400)


@login_required
@require_POST
def user_revoke(request, pk, membership_pk):
    managed_user = _get_user(request.user, pk)
    membership = get_object_or_404(
        StudyMembership.objects.select_related("user", "study", "site"),
        pk=membership_pk,
        user=managed_user,
    )
    services.revoke_role(membership, actor=request.user)
    messages.success(
        request, f"Role revoked: {membership.get_role_display()} in {membership.scope}."
    )
    return redirect("accounts:user_detail", pk=managed_user.pk)


@login_required
@require_POST
def user_deactivate(request, pk):
    managed_user = _get_user(request.user, pk)
    form = DeactivateForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.deactivate_user(managed_user, actor=request.user, reason=reason)
    except AccessError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{managed_user.email} deactivated and signed out.")
    return redirect("accounts:user_detail", pk=managed_user.pk)


@login_required
@require_POST
def user_reactivate(request, pk):
    managed_user = _get_user(request.user, pk)
    try:
        services.reactivate_user(managed_user, actor=request.user)
    except AccessError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{managed_user.email} reactivated.")
    return redirect("accounts:user_detail", pk=managed_user.pk)


# --- A study's members (study admins) -------------------------------------------------------


def _members_context(request, study, grant_form=None):
    return {
        "study": study,
        "memberships": StudyMembership.objects.filter(study=study).for_list(),
        "grant_form": grant_form
        or MemberGrantForm(study=study, roles=permissions.grantable_roles(request.user, study)),
    }


@login_required
@require_GET
def study_members(request, nickname):
    study = permissions.get_study(request.user, nickname)
    permissions.require_manage_members(request.user, study)
    return render(request, "accounts/study_members.html", _members_context(request, study))


@login_required
@require_POST
def study_member_grant(request, nickname):
    study = permissions.get_study(request.user, nickname)
    permissions.require_manage_members(request.user, study)
    form = MemberGrantForm(
        request.POST, study=study, roles=permissions.grantable_roles(request.user, study)
    )
    if form.is_valid():
        member = form.cleaned_data["email"]
        try:
            services.grant_role(member, actor=request.user, grant=_grant_from(form))
        except AccessError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Role saved for {member.email} in {study}.")
            return redirect("accounts:study_members", nickname=study.nickname)
    context = _members_context(request, study, grant_form=form)
    return render(request, "accounts/study_members.html", context, status=400)


@login_required
@require_POST
def study_member_revoke(request, nickname, membership_pk):
    study = permissions.get_study(request.user, nickname)
    permissions.require_manage_members(request.user, study)
    membership = get_object_or_404(
        StudyMembership.objects.select_related("user", "study", "site"),
        pk=membership_pk,
        study=study,
    )
    services.revoke_role(membership, actor=request.user)
    messages.success(
        request,
        f"Role revoked: {membership.user.email}, {membership.get_role_display()} in "
        f"{membership.scope}.",
    )
    return redirect(_return_to(request, reverse("accounts:study_members", args=[study.nickname])))
