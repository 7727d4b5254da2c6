"""`manage.py set_qc`: record a QC decision on one scan, as a pipeline account."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import permissions
from qc import services
from qc.models import QCState, with_qc_state
from qc.search import scan_name_of
from studies.datman_ids import IdError
from studies.models import Scan


class Command(BaseCommand):
    help = (
        "Approve, flag, blacklist or clear (set back to new) one scan, through the same service "
        "as the review pages. Setting the state and comment a scan already has changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "scan",
            metavar="SCAN_NAME",
            help="The scan name (SPN01_CMH_0001_01_01_T1_02), file stem or file name.",
        )
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument("--approve", action="store_true", help="Mark the scan approved.")
        decision.add_argument("--flag", metavar="COMMENT", help="Flag the scan, saying why.")
        decision.add_argument(
            "--blacklist", metavar="COMMENT", help="Blacklist the scan, saying why."
        )
        decision.add_argument(
            "--clear", action="store_true", help="Set the scan back to new (unreviewed)."
        )
        add_user_argument(parser)

    def handle(self, *args, **options):
        user = pipeline_user(options["user"])
        try:
            name = scan_name_of(options["scan"])
        except IdError as error:
            raise CommandError(str(error)) from error
        scan = (
            with_qc_state(Scan.objects.filter(name=name))
            .select_related("session__timepoint__study", "session__timepoint__study_site__site")
            .first()
        )
        if scan is None:
            raise CommandError(f"Scan {name} not found; check the name, or import it first.")
        timepoint = scan.session.timepoint
        if not permissions.can_review(user, timepoint.study, timepoint.study_site.site):
            raise CommandError(
                f"{user} may not review scans of {timepoint.study} at {timepoint.study_site.site}; "
                f"grant them the QC reviewer role there, or pass another --user."
            )

        state, comment = _decision(options)
        current_state = scan.qc_state or QCState.NEW.value
        if current_state == state.value and (scan.qc_comment or "") == comment.strip():
            self.stdout.write(f"{scan.name} is already {state.value}; nothing changed.")
            return
        try:
            review = services.review_scan(scan, reviewer=user, state=state, comment=comment)
        except services.QCError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{review.scan.name} marked {state.value} by {user}.")


def _decision(options):
    if options["approve"]:
        return QCState.APPROVED, ""
    if options["clear"]:
        return QCState.NEW, ""
    if options["flag"] is not None:
        return QCState.FLAGGED, options["flag"]
    return QCState.BLACKLISTED, options["blacklist"]


def add_user_argument(parser):
    parser.add_argument(
        "--user",
        metavar="USERNAME",
        help="The account the decisions are recorded as; default the QCDASH_PIPELINE_USER "
        "setting. It must exist and be active.",
    )


def pipeline_user(username):
    """Return the active user named `username`, or QCDASH_PIPELINE_USER's; raise CommandError."""
    username = username or settings.QCDASH_PIPELINE_USER
    if not username:
        raise CommandError(
            "No user to record the decisions as: pass --user USERNAME, or set "
            "QCDASH_PIPELINE_USER to the pipeline account's username."
        )
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(
            f"User {username!r} not found; create the account or pass another --user."
        )
    if not user.is_active:
        raise CommandError(
            f"User {username!r} is deactivated; reactivate the account or pass another --user."
        )
    return user
