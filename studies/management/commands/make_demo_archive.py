"""Write a small synthetic datman archive and config for trying qcdash."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from studies.demo import DemoArchiveError, build_demo_archive


class Command(BaseCommand):
    help = (
        "Write a synthetic datman archive (study DEMO, sites CMH and UTO) and the datman "
        "config files that sync_config reads, under PATH. The output is the same on every run."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, metavar="PATH", help="Folder to write into.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Write into a folder that is not empty, replacing a demo archive written before.",
        )

    def handle(self, *args, **options):
        try:
            archive = build_demo_archive(options["path"], force=options["force"])
        except DemoArchiveError as error:
            raise CommandError(str(error)) from error

        if options["verbosity"] >= 2:
            for path in archive.files:
                self.stdout.write(f"  {path.relative_to(archive.root)}")
        self.stdout.write(
            f"Wrote the demo archive of study DEMO to {archive.study_root}: "
            f"{len(archive.timepoints)} timepoints, {len(archive.sessions)} sessions, "
            f"{archive.nifti_files} NIfTI files, {archive.qc_images} QC images, "
            f"{archive.tech_notes} tech notes, {archive.task_files} task files, "
            f"{len(archive.files)} files in all."
        )
        for path in archive.malformed_files:
            self.stdout.write(f"Malformed on purpose (import_archive skips it): {path}")
        self.stdout.write(f"datman config: {archive.main_config} and {archive.study_config}")
        self.stdout.write(
            f"Next: manage.py sync_config {archive.main_config}, then "
            f"manage.py import_archive DEMO."
        )
