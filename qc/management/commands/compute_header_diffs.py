"""`manage.py compute_header_diffs`: compare a study's scans with their gold standards."""

from django.core.management.base import BaseCommand, CommandError

from qc.compliance_services import ComplianceError, compute_header_diffs
from qc.management.commands.load_gold_standards import get_study
from qcdash.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Compare the header of every scan of a study (or of the given sessions, repeats "
        "included) with the newest gold standard of its site and tag, using the study's "
        "ignored fields and tolerances, and store the diffs. Only outdated diffs are computed "
        "unless --force is given: a diff is outdated when the standard, the settings or the "
        "scan changed since it was computed."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", metavar="STUDY", help="Study nickname, for example SPINS.")
        parser.add_argument(
            "session_ids",
            nargs="*",
            metavar="SESSION_ID",
            help="Compare only these sessions, for example SPN01_CMH_0001_01_02.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Compute every diff again, outdated or not."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Compute and report, then roll everything back.",
        )

    def handle(self, *args, **options):
        study = get_study(options["study"])
        progress = None

        def show_progress(done, total):
            nonlocal progress
            if progress is None:
                progress = ProgressBar(self.stdout, total, label="Sessions", unit="sessions")
            progress.update(done)
            if done == total:
                progress.finish()

        try:
            result = compute_header_diffs(
                study,
                session_ids=options["session_ids"],
                force=options["force"],
                dry_run=options["dry_run"],
                progress=show_progress,
            )
        except ComplianceError as error:
            raise CommandError(str(error)) from error

        for warning in result.warnings:
            self.stderr.write(f"WARNING {warning}", style_func=self.style.WARNING)
        self.stdout.write(result.summary())
        if options["dry_run"]:
            self.stdout.write("Dry run: every change was rolled back; nothing was saved.")
