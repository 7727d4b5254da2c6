"""`manage.py export_qc`: write a study's QC decisions for datman, as CSV or JSON, or the
analysis table."""

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from qc import exports
from studies.models import Scan, Study, Timepoint

WHATS = ("blacklist", "checklist", "metadata", "table")
FORMATS = ("datman", "csv", "json")


class Command(BaseCommand):
    help = (
        "Write the QC decisions of a study in datman's formats (blacklist: 'series reason' "
        "lines, checklist: 'qc_<TIMEPOINT>.html <reviewer>' lines, metadata: "
        "{timepoint: [blacklisted file stems]} of QC'd timepoints), as CSV or JSON, or the "
        "analysis table (one row per scan with a per-subject inclusion column). The command "
        "reads every scan of the study, whoever may see it."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", metavar="STUDY", help="The study nickname, e.g. SPINS.")
        parser.add_argument(
            "--what",
            choices=WHATS,
            required=True,
            help="What to export: blacklisted scans, the sign-off checklist, the subject "
            "metadata datman's pipelines read, or the analysis table.",
        )
        parser.add_argument(
            "--subject",
            metavar="ID",
            help="Only this timepoint, session or phantom (blacklist only).",
        )
        parser.add_argument(
            "--bids",
            action="store_true",
            help="Name scans and timepoints by their BIDS names (blacklist and checklist, CSV or "
            "JSON); those without one are left out.",
        )
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="Output format; default datman for blacklist, checklist and metadata, csv for "
            "the table. datman's format of the metadata is the JSON object datman reads.",
        )
        parser.add_argument(
            "--output",
            metavar="PATH",
            help="Write to this file (replaced in one step, so a reader never sees half of it) "
            "instead of standard output.",
        )
        parser.add_argument(
            "--allow-partial",
            action="store_true",
            help="Metadata: include timepoints whose sessions are not all signed off.",
        )
        parser.add_argument(
            "--phantoms",
            action="store_true",
            help="Table: include phantom scans (each phantom is its own subject).",
        )

    def handle(self, *args, **options):
        study = Study.objects.filter(nickname=options["study"]).first()
        if study is None:
            known = ", ".join(Study.objects.values_list("nickname", flat=True)) or "none"
            raise CommandError(
                f"Study {options['study']!r} not found; give a study nickname ({known})."
            )
        what = options["what"]
        output_format = options["format"] or ("csv" if what == "table" else "datman")
        self._check_options(what, output_format, options)

        subject = None
        if options["subject"]:
            try:
                subject = exports.SubjectFilter.parse(options["subject"])
            except exports.ExportError as error:
                raise CommandError(str(error)) from error
            if not Timepoint.objects.filter(name=subject.timepoint, study=study).exists():
                raise CommandError(
                    f"Timepoint {subject.timepoint} not found in study {study.nickname}; check "
                    f"the --subject ID."
                )

        self.skipped = []
        chunks = self._chunks(study, what, output_format, subject, options)
        if options["output"]:
            self._write_file(Path(options["output"]), chunks)
        else:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
        for scan in self.skipped:
            self.stderr.write(
                f"{scan.name} left out of the datman blacklist: its file stem "
                f"{scan.file_stem!r} contains whitespace or a comma, which datman's reader "
                f"splits on. Rename the file or use --format csv."
            )

    def _check_options(self, what, output_format, options):
        if what == "table" and output_format == "datman":
            raise CommandError("datman has no format for the table; use --format csv or json.")
        if options["bids"] and what in ("metadata", "table"):
            raise CommandError(f"--bids applies to blacklist and checklist, not {what}.")
        if options["bids"] and output_format == "datman":
            raise CommandError(
                f"datman's {what} file names scans by datman ID, so --bids needs --format json "
                f"or csv."
            )
        if options["subject"] and what != "blacklist":
            raise CommandError(f"--subject applies to the blacklist, not the {what}.")
        if options["allow_partial"] and what != "metadata":
            raise CommandError("--allow-partial applies to --what metadata only.")
        if options["phantoms"] and what != "table":
            raise CommandError("--phantoms applies to --what table only.")

    def _chunks(self, study, what, output_format, subject, options):
        timepoints, scans = Timepoint.objects.all(), Scan.objects.all()
        bids = options["bids"]
        if what == "blacklist":
            blacklisted = exports.blacklisted_scans(scans, study, subject=subject)
            if output_format == "datman":
                return exports.blacklist_datman_lines(blacklisted, on_skip=self.skipped.append)
            if output_format == "json":
                return exports.json_object_chunks(exports.blacklist_pairs(blacklisted, bids=bids))
            rows = exports.blacklist_rows(blacklisted)
            if bids:
                rows = (row for row in rows if row["bids_name"])
            return exports.csv_chunks(exports.BLACKLIST_COLUMNS, rows)
        if what == "checklist":
            entries = exports.checklist_entries(timepoints, study)
            if output_format == "datman":
                return exports.checklist_datman_lines(entries)
            if output_format == "json":
                return exports.json_object_chunks(exports.checklist_pairs(entries, bids=bids))
            rows = exports.checklist_rows(entries)
            if bids:
                rows = (row for row in rows if row["bids_subject"])
            return exports.csv_chunks(exports.CHECKLIST_COLUMNS, rows)
        if what == "metadata":
            metadata = exports.subject_metadata(
                timepoints, scans, study, allow_partial=options["allow_partial"]
            )
            if output_format == "csv":
                return exports.csv_chunks(exports.METADATA_COLUMNS, exports.metadata_rows(metadata))
            return exports.json_object_chunks(exports.metadata_pairs(metadata))
        rows = exports.table_rows(timepoints, scans, study, include_phantoms=options["phantoms"])
        if output_format == "json":
            return exports.json_array_chunks(rows)
        return exports.csv_chunks(exports.TABLE_COLUMNS, rows)

    def _write_file(self, path, chunks):
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise CommandError(f"Folder {folder} of --output {path} not found; create it first.")
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as output:
                for chunk in chunks:
                    output.write(chunk)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
