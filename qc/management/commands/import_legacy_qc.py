"""`manage.py import_legacy_qc`: bring in datman's old checklist.csv and blacklist.csv."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts import permissions
from qc.legacy import Outcome, import_legacy_qc
from qc.management.commands.set_qc import add_user_argument, pipeline_user
from studies.models import Study


class Command(BaseCommand):
    help = (
        "Import datman's legacy metadata/checklist.csv (sign-offs) and metadata/blacklist.csv "
        "(blacklisted scans) into a study. A scan with any review or a session already signed "
        "off in qcdash is left alone. Every line is reported: imported, already decided, "
        "unknown, unparseable, not reviewed or duplicate. Exits 1 when a line was unknown or "
        "unparseable."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", metavar="STUDY", help="The study nickname, e.g. SPINS.")
        parser.add_argument("--checklist", metavar="PATH", help="datman's checklist.csv.")
        parser.add_argument("--blacklist", metavar="PATH", help="datman's blacklist.csv.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be imported, then roll everything back.",
        )
        add_user_argument(parser)

    def handle(self, *args, **options):
        if not options["checklist"] and not options["blacklist"]:
            raise CommandError("Give --checklist PATH, --blacklist PATH or both.")
        study = Study.objects.filter(nickname=options["study"]).first()
        if study is None:
            known = ", ".join(Study.objects.values_list("nickname", flat=True)) or "none"
            raise CommandError(
                f"Study {options['study']!r} not found; give a study nickname ({known})."
            )
        user = pipeline_user(options["user"])
        if not permissions.can_review(user, study):
            raise CommandError(
                f"{user} may not review scans of {study}; grant them the QC reviewer role in "
                f"{study}, or pass another --user."
            )

        result = import_legacy_qc(
            study,
            user=user,
            checklist_lines=_read_lines(options["checklist"]),
            blacklist_lines=_read_lines(options["blacklist"]),
            dry_run=options["dry_run"],
        )
        for report in result.reports:
            stream = self.stderr if report.outcome in _PROBLEMS else self.stdout
            stream.write(str(report))
        self.stdout.write(result.summary())
        if any(report.outcome in _PROBLEMS for report in result.reports):
            raise SystemExit(1)


_PROBLEMS = (Outcome.UNKNOWN, Outcome.UNPARSEABLE)


def _read_lines(path):
    if not path:
        return []
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as error:
        raise CommandError(f"File {path} not found; check the path.") from error
    except UnicodeDecodeError as error:
        raise CommandError(
            f"{path} is not UTF-8 text ({error}); convert it, for example with "
            f"`iconv -f latin1 -t utf-8`."
        ) from error
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from error
