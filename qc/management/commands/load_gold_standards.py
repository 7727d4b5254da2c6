"""`manage.py load_gold_standards`: store a study's gold standard sidecars."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from qc.compliance_services import ComplianceError, load_gold_standards
from studies.models import Study


def get_study(nickname):
    """Return the study with this nickname (any case) or raise CommandError listing the known."""
    study = Study.objects.filter(nickname__iexact=nickname).first()
    if study is None:
        known = ", ".join(Study.objects.values_list("nickname", flat=True)) or "none yet"
        raise CommandError(
            f"Study {nickname!r} not found (known studies: {known}). Run sync_config to create "
            f"it from datman's config, or check the nickname."
        )
    return study


class Command(BaseCommand):
    help = (
        "Load the gold standards of a study: the datman-named JSON sidecars (with .bval files "
        "for diffusion) in <study archive>/metadata/standards/. A standard whose contents equal "
        "the newest stored one of its site and tag is left alone; changed contents become a new "
        "standard and the old one is kept. Files that cannot be used are reported on stderr "
        "and skipped, and the command then exits with an error."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", metavar="STUDY", help="Study nickname, for example SPINS.")
        parser.add_argument(
            "--path",
            type=Path,
            metavar="DIR",
            help="Folder to read instead of the study's metadata/standards/.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be stored, then roll everything back.",
        )

    def handle(self, *args, **options):
        study = get_study(options["study"])
        try:
            result = load_gold_standards(study, folder=options["path"], dry_run=options["dry_run"])
        except ComplianceError as error:
            raise CommandError(str(error)) from error

        for line in result.lines:
            self.stdout.write(line)
        for issue in result.issues:
            style = self.style.ERROR if issue.is_skipped else self.style.WARNING
            self.stderr.write(str(issue), style_func=style)
        self.stdout.write(result.summary())
        if options["dry_run"]:
            self.stdout.write("Dry run: every change was rolled back; nothing was saved.")
        elif result.counts["created"] or result.counts["replaced"]:
            self.stdout.write(
                f"Run compute_header_diffs {study.nickname} to compare the scans with the new "
                f"standards."
            )
        if result.skipped:
            raise CommandError(
                f"{len(result.skipped)} file(s) in {result.folder} were skipped, as listed "
                f"above. Fix or remove them and run load_gold_standards again."
            )
