"""`manage.py link_scans`: share scans with another study's session as linked scans."""

from django.core.management.base import BaseCommand, CommandError

from qc.compliance_services import (
    LINK_CREATED,
    ComplianceError,
    find_scan,
    link_scan,
    link_session_scans,
    read_link_file,
)


class Command(BaseCommand):
    help = (
        "Create a scan in a target session that is linked to a source scan: same tag, series, "
        "description and sidecar, named for the target session, sharing the source's QC "
        "decisions. Running it again changes nothing. With --from-file, link whole sessions "
        "as datman's external-links.csv lists them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "source_scan",
            nargs="?",
            metavar="SOURCE_SCAN",
            help="The scan to link, by name (SPN01_CMH_0001_01_01_T1_02) or file name.",
        )
        parser.add_argument(
            "target_session",
            nargs="?",
            metavar="TARGET_SESSION",
            help="The session ID to link it into; created when missing.",
        )
        parser.add_argument(
            "--from-file",
            metavar="PATH",
            help="datman's external-links.csv: 'SOURCE_SESSION TARGET_SESSION [TAG,TAG...]' per "
            "line. Without tags, every scan whose tag the target site expects is linked.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be linked, then roll everything back.",
        )

    def handle(self, *args, **options):
        from_file = options["from_file"]
        positional = [options["source_scan"], options["target_session"]]
        if from_file and any(positional):
            raise CommandError("Give either SOURCE_SCAN TARGET_SESSION or --from-file, not both.")
        if not from_file and not all(positional):
            raise CommandError(
                "Give SOURCE_SCAN and TARGET_SESSION, for example link_scans "
                "SPN01_CMH_0001_01_01_T1_02 TAY01_CMH_0001_01_01, or --from-file PATH."
            )
        self.counts = {LINK_CREATED: 0, "already linked": 0, "error": 0}
        dry_run = options["dry_run"]

        try:
            if from_file:
                self._link_from_file(from_file, dry_run)
            else:
                source = find_scan(options["source_scan"])
                outcome, target = link_scan(source, options["target_session"], dry_run=dry_run)
                self._report(outcome, source.name, target)
        except ComplianceError as error:
            raise CommandError(str(error)) from error

        verb = "Dry run: would have made" if dry_run else "Linked scans:"
        self.stdout.write(
            f"{verb} {self.counts[LINK_CREATED]} created, {self.counts['already linked']} "
            f"already linked, {self.counts['error']} failed"
        )
        if dry_run:
            self.stdout.write("Dry run: every change was rolled back; nothing was saved.")
        if self.counts["error"]:
            raise CommandError(
                f"{self.counts['error']} link(s) failed, as listed above. Fix them and run "
                f"link_scans again; links already made are kept."
            )

    def _link_from_file(self, path, dry_run):
        lines, problems = read_link_file(path)
        for number, message in problems:
            self.counts["error"] += 1
            self.stderr.write(
                f"SKIPPED {path}, line {number}: {message}", style_func=self.style.ERROR
            )
        for line in lines:
            try:
                outcomes = link_session_scans(line.source, line.target, line.tags, dry_run=dry_run)
            except ComplianceError as error:
                self.counts["error"] += 1
                self.stderr.write(
                    f"SKIPPED {path}, line {line.number}: {error}", style_func=self.style.ERROR
                )
                continue
            for outcome, source, target in outcomes:
                self._report(outcome, source, target)

    def _report(self, outcome, source, target_or_error):
        self.counts[outcome] += 1
        if outcome == "error":
            self.stderr.write(f"FAILED {source}: {target_or_error}", style_func=self.style.ERROR)
        else:
            self.stdout.write(f"{outcome} {source} → {target_or_error}")
