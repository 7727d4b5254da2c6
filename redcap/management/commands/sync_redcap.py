"""`manage.py sync_redcap`: pull every complete survey record from REDCap and reconcile."""

from django.core.management.base import BaseCommand, CommandError

from redcap import sync
from studies.models import Study


class Command(BaseCommand):
    help = (
        "Pull every record of each configured REDCap instrument, store the complete ones and "
        "link them to their sessions, catching triggers that never arrived. Running it twice "
        "changes nothing the second time. Prints one line per configuration and a summary; "
        "exits with an error when a configuration could not be read."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "study",
            nargs="?",
            metavar="STUDY",
            help="Sync only the configurations of this study's sites (its nickname).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would change, then roll the transaction back so nothing is saved.",
        )

    def handle(self, *args, **options):
        study = None
        if options["study"]:
            study = self._get_study(options["study"])
        configs = list(sync.configs_for(study))
        if not configs:
            where = f" for the sites of {study}" if study else ""
            self.stdout.write(
                f"No REDCap configuration{where}; add one in the admin or with sync_config."
            )
            return

        result = sync.sync_configs(configs, dry_run=options["dry_run"])
        for config, counts in result.configs:
            self.stdout.write(f"{config}: {counts.summary}")
            for error in counts.errors:
                self.stderr.write(f"  error: {error}")
        self.stdout.write(result.summary)

        failed = [config for config, counts in result.configs if counts.errors]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(result.configs)} configurations had errors; see the "
                f"messages above."
            )

    def _get_study(self, nickname):
        study = Study.objects.filter(nickname=nickname.strip().upper()).first()
        if study is None:
            known = ", ".join(Study.objects.values_list("nickname", flat=True)) or "none"
            raise CommandError(f"Study {nickname!r} not found; known studies: {known}.")
        return study
