"""`manage.py sync_config`: load studies, sites and expected scans from datman's config."""

from django.core.management.base import BaseCommand, CommandError

from studies.config_sync import ConfigError, sync_config


class Command(BaseCommand):
    help = (
        "Create or update studies, sites, study codes, scan types and expected scan counts "
        "from datman's main config and the study config files it lists. Nothing is deleted. "
        "Prints one line per created row and per changed field, then the warnings and a summary "
        "of row counts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "main_config",
            metavar="MAIN_CONFIG",
            help="Path of datman's main config file (the file DM_CONFIG names).",
        )
        parser.add_argument(
            "--study",
            help="Sync only this study, given by its nickname in the main config's Projects.",
        )
        parser.add_argument(
            "--system",
            help=(
                "The SystemSettings entry to use. Default: the DM_SYSTEM environment variable, "
                "else the only system in the file."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would change, then roll the transaction back so nothing is saved.",
        )

    def handle(self, *args, **options):
        try:
            result = sync_config(
                options["main_config"],
                study=options["study"],
                system=options["system"],
                dry_run=options["dry_run"],
            )
        except ConfigError as error:
            raise CommandError(str(error)) from error

        for change in result.changes:
            self.stdout.write(str(change))
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        self.stdout.write(result.summary)
