"""Create the demo accounts that `make run` signs in with.

The reviewer becomes an RA (reviews, comments and REDCap work) of every study that exists at
that point (`make run` imports the demo archive first); the admin is a dashboard admin.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, StudyMembership, User
from studies.models import Study

DEMO_PASSWORD = "qcdash-demo"  # noqa: S105 - a published demo password, refused with DEBUG off

DEMO_ACCOUNTS = [
    # (username, email, first name, last name, is dashboard admin)
    ("reviewer", "reviewer@example.org", "Riley", "Reviewer", False),
    ("admin", "admin@example.org", "Ada", "Admin", True),
]


class Command(BaseCommand):
    help = "Create the demo accounts (password 'qcdash-demo'); with DEBUG off only with --force."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Create them even with DEBUG off. Never do this on a server people can reach.",
        )

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to create demo accounts with a published password while DEBUG is off; "
                "create real accounts with `manage.py createsuperuser` instead."
            )
        for username, email, first_name, last_name, is_admin in DEMO_ACCOUNTS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "email": email,
                    "first_name": first_name,
                    "last_name": last_name,
                    "is_staff": is_admin,
                    "is_superuser": is_admin,
                    "is_dashboard_admin": is_admin,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            status = "created" if created else "already exists"
            self.stdout.write(f"{email} ({status}), password {DEMO_PASSWORD}")
            if not is_admin:
                self._grant_every_study(user)

    def _grant_every_study(self, user):
        for study in Study.objects.order_by("nickname"):
            _membership, created = StudyMembership.objects.get_or_create(
                user=user, study=study, site=None, defaults={"role": Role.RA}
            )
            if created:
                self.stdout.write(f"{user.email} is an RA of {study}")
