"""Import a study's timepoints, sessions and scans from its datman archive."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from qcdash.progress import ProgressBar
from studies.importer import ArchiveImportError, IssueLevel, import_archive
from studies.models import Study


class Command(BaseCommand):
    help = (
        "Import timepoints, sessions and scans from a study's datman archive (data/nii/ and "
        "qc/). Files that cannot be imported are reported on stderr and skipped; the command "
        "then exits with an error after the summary. Running it again changes only what "
        "changed on disk."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", metavar="STUDY", help="Study nickname, for example SPINS.")
        parser.add_argument(
            "session_ids",
            nargs="*",
            metavar="SESSION_ID",
            help="Import only these sessions, for example SPN01_CMH_0001_01_01 or a phantom ID.",
        )
        parser.add_argument(
            "--archive",
            type=Path,
            metavar="PATH",
            help="Study folder to import from (the folder holding data/ and qc/). Default: the "
            "study's archive path.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Read the archive and report what would change, then roll everything back.",
        )
        parser.add_argument(
            "--recheck-files",
            action="store_true",
            help="Read every NIfTI header and sidecar again. By default a file is read only "
            "when its size, modification time or inode changed since the last import.",
        )

    def handle(self, *args, **options):
        study = self._get_study(options["study"])
        progress = None

        def show_progress(done, total):
            nonlocal progress
            if progress is None:
                progress = ProgressBar(
                    self.stdout, total, label="Timepoint folders", unit="folders"
                )
            progress.update(done)
            if done == total:
                # End the bar's line now, before the importer logs that it finished.
                progress.finish()

        def show_issue(issue):
            if progress is not None:
                progress.clear()
            if issue.level is IssueLevel.NOTE:
                self.stderr.write(str(issue))
            elif issue.level is IssueLevel.WARNING:
                self.stderr.write(str(issue), style_func=self.style.WARNING)
            else:
                self.stderr.write(str(issue), style_func=self.style.ERROR)

        try:
            result = import_archive(
                study,
                archive_root=options["archive"],
                session_ids=options["session_ids"],
                dry_run=options["dry_run"],
                recheck_files=options["recheck_files"],
                progress=show_progress,
                on_issue=show_issue,
            )
        except ArchiveImportError as error:
            raise CommandError(str(error)) from error

        self.stdout.write(result.summary())
        if options["dry_run"]:
            self.stdout.write("Dry run: every change was rolled back; nothing was saved.")
        elif not result.changed:
            self.stdout.write("No changes: every imported row already matched the archive.")

        if result.failed:
            skipped = len(result.issues_at(IssueLevel.SKIPPED))
            errors = len(result.issues_at(IssueLevel.ERROR))
            raise CommandError(
                f"The import of {study} is incomplete: {skipped} skipped and {errors} errors, "
                f"listed above with their paths. Fix them and run import_archive again."
            )

    def _get_study(self, nickname):
        study = Study.objects.filter(nickname__iexact=nickname).first()
        if study is None:
            known = ", ".join(Study.objects.values_list("nickname", flat=True)) or "none yet"
            raise CommandError(
                f"Study {nickname!r} not found (known studies: {known}). Run sync_config to "
                f"create it from datman's config, or check the nickname."
            )
        return study
