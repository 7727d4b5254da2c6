"""The API's access checks: thin wrappers around `accounts.permissions`, which owns every rule.

Objects the user may not see are 404 (`not_found`), actions their role does not allow are 403,
exactly as on the web pages.
"""

from django.http import Http404
from rest_framework import status
from rest_framework.permissions import BasePermission

from accounts import permissions
from api.errors import ApiError
from studies.datman_ids import IdError, parse_session_id, parse_timepoint_id

visible_studies = permissions.visible_studies
visible_timepoints = permissions.visible_timepoints
visible_sessions = permissions.visible_sessions
visible_scans = permissions.visible_scans


class IsActiveUser(BasePermission):
    """Signed in (by token or session) with an active account."""

    message = "Authentication with an active account is required."

    def has_permission(self, request, view):
        return permissions.is_signed_in(request.user)


def not_found(message):
    return ApiError("not_found", message, status_code=status.HTTP_404_NOT_FOUND)


def get_study(user, nickname):
    try:
        return permissions.get_study(user, nickname)
    except Http404:
        raise not_found(f"Study {nickname!r} not found.") from None


def get_timepoint(user, name, queryset=None):
    try:
        ident = parse_timepoint_id(name).upper()
    except IdError as error:
        raise ApiError("invalid_id", str(error)) from error
    try:
        return permissions.get_timepoint(user, ident.timepoint_id, queryset=queryset)
    except Http404:
        raise not_found(f"Timepoint {ident.timepoint_id} not found.") from None


def parse_session(session_id):
    """Parse a session ID (or phantom ID) in upper case; raise ApiError invalid_id."""
    try:
        ident = parse_session_id(session_id).upper()
    except IdError as error:
        raise ApiError("invalid_id", str(error)) from error
    return ident


def get_session(user, session_id):
    ident = parse_session(session_id)
    try:
        return permissions.get_session(user, ident.timepoint_id, ident.session_number)
    except Http404:
        raise not_found(f"Session {ident.session_id} not found.") from None


def get_scan(user, name, queryset=None):
    try:
        return permissions.get_scan(user, name, queryset=queryset)
    except Http404:
        raise not_found(f"Scan {name} not found.") from None


def require_review(user, study, site=None):
    permissions.require_review(user, study, site)


def require_record_sessions(user, study, site=None):
    permissions.require_record_sessions(user, study, site)


def may_see(user, study, site):
    """Whether the user has any role in the study that covers the site."""
    return permissions.role_in(user, study, site) is not None


def allowed_site_ids(user, study):
    return permissions.allowed_site_ids(user, study)
