"""`manage.py share_redcap_record`: let one session's REDCap survey describe another session."""

from django.core.management.base import BaseCommand, CommandError

from redcap import services
from studies.datman_ids import IdError, parse_session_id
from studies.models import Session


class Command(BaseCommand):
    help = (
        "Link the REDCap survey record of SOURCE_SESSION to TARGET_SESSION too, for a "
        "participant scanned under two IDs. Nothing changes when TARGET_SESSION already "
        "shares it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "source", metavar="SOURCE_SESSION", help="Session ID that has the survey."
        )
        parser.add_argument(
            "target", metavar="TARGET_SESSION", help="Session ID that should share it."
        )

    def handle(self, *args, **options):
        source = self._get_session(options["source"], "SOURCE_SESSION")
        target = self._get_session(options["target"], "TARGET_SESSION")
        if source.pk == target.pk:
            raise CommandError("SOURCE_SESSION and TARGET_SESSION are the same session.")
        try:
            link = services.share_record(source, target)
        except services.RedcapError as error:
            raise CommandError(str(error)) from error
        if link is None:
            self.stdout.write(f"Session {target} already shares the survey of {source}.")
        else:
            self.stdout.write(f"{link.record} of session {source} now also describes {target}.")

    def _get_session(self, text, argument):
        try:
            ident = parse_session_id(services.normalise_session_id(text))
        except IdError as error:
            raise CommandError(f"{argument}: {error}") from error
        session = (
            Session.objects.select_related("timepoint")
            .filter(timepoint__name=ident.timepoint_id, number=ident.session_number)
            .first()
        )
        if session is None:
            raise CommandError(
                f"{argument}: session {ident.session_id} not found; import it first."
            )
        return session
