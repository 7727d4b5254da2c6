"""The authentication backend: allauth's email sign-in, with the user's memberships preloaded."""

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.db.models import Aggregate, OuterRef, Subquery, TextField
from django.db.models.functions import JSONArray

from accounts.models import StudyMembership, User
from accounts.permissions import membership_study_site_id


class MembershipRows(Aggregate):
    """Aggregate rows into one JSON array, returned as text on every database."""

    function = "JSON_GROUP_ARRAY"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="JSON_AGG(%(expressions)s)::text", **extra_context
        )


def membership_rows():
    """A subquery that returns the memberships of the outer user as a JSON array of
    [study id, site id, role, StudySite id] rows, or NULL when there are none. The StudySite id
    is null for a study-wide membership."""
    row = JSONArray("study_id", "site_id", "role", membership_study_site_id())
    rows = (
        StudyMembership.objects.filter(user_id=OuterRef("pk"))
        .order_by()
        .values("user_id")
        .annotate(rows=MembershipRows(row))
        .values("rows")
    )
    return Subquery(rows, output_field=TextField())


class AuthenticationBackend(AllauthBackend):
    """Sign-in by email and password through allauth; sessions only for active users.

    `authenticate` rejects an inactive user like Django's ModelBackend, but allauth keeps the
    user whose password matched, so its login flow shows the account-inactive page (awaiting
    approval, rejected or deactivated) instead of "wrong password". `get_user` returns None for
    an inactive user, so deactivating someone ends their signed-in sessions at their next
    request. It loads the user's study memberships in the same query, so permission checks run
    no queries of their own.
    """

    def get_user(self, user_id):
        user = User.objects.annotate(membership_rows=membership_rows()).filter(pk=user_id).first()
        if user is None or not self.user_can_authenticate(user):
            return None
        return user
