"""`manage.py purge`: remove a session or timepoint, keeping its QC history as a snapshot."""

import getpass

from django.core.management.base import BaseCommand, CommandError

from qc.purge import PurgeError, plan_purge, purge, unplanned_references_error


class Command(BaseCommand):
    help = (
        "Delete a session or timepoint with its scans and QC history. The history is kept as a "
        "JSON snapshot in a purge record; archive files are removed only with --files."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "target",
            metavar="SESSION_OR_TIMEPOINT_ID",
            help="A session ID (SPN01_CMH_0001_01_01) or a timepoint or phantom ID.",
        )
        parser.add_argument(
            "--files",
            action="store_true",
            help=(
                "Also remove the archive files and folders listed (inside the study archive) and "
                "the corrected sidecars of the scans (inside SIDECAR_REPAIR_ROOT)."
            ),
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be deleted, delete nothing."
        )
        parser.add_argument(
            "--yes",
            "--noinput",
            "--no-input",
            dest="yes",
            action="store_true",
            help="Do not ask for confirmation.",
        )
        parser.add_argument(
            "--force-shared",
            action="store_true",
            help="Purge even when the session's REDCap survey also describes another session; "
            "only this session's link to it is deleted.",
        )

    def handle(self, *args, **options):
        try:
            plan = plan_purge(options["target"])
        except PurgeError as error:
            raise CommandError(str(error)) from error

        self._show(plan, options["files"])
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was deleted.")
            return
        if plan.unplanned_references:
            raise CommandError(
                str(unplanned_references_error(plan.target, plan.unplanned_references))
            )
        if plan.shared_records and not options["force_shared"]:
            raise CommandError(
                f"{'; '.join(plan.shared_records)}. Nothing was deleted; pass --force-shared to "
                f"delete only this session's link to the record."
            )
        if not options["yes"]:
            answer = input(f"Purge {plan.target}? Type yes to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Purge cancelled; nothing was deleted.")

        try:
            record = purge(
                plan,
                ran_by=_os_user(),
                remove_files=options["files"],
                force_shared=options["force_shared"],
            )
        except PurgeError as error:
            raise CommandError(str(error)) from error
        files = f", {len(record.removed_files)} archive paths removed" if options["files"] else ""
        self.stdout.write(
            f"Purged {plan.target}: {sum(record.counts.values())} rows deleted{files}; purge "
            f"record {record.pk} keeps the QC history."
        )
        if record.failed_removals:
            raise CommandError(
                f"The rows of {plan.target} were deleted, but these paths could not be removed: "
                f"{'; '.join(record.failed_removals)}. Remove them by hand."
            )

    def _show(self, plan, with_files):
        write = self.stdout.write
        what = "timepoint" if plan.deletes_timepoint else "session"
        write(f"Purge of {plan.target} ({what} of study {plan.study.nickname}):")
        write(
            "  sessions: " + ", ".join(_session_label(plan, session) for session in plan.sessions)
        )
        if plan.hidden_scans:
            write("  hidden scans: " + ", ".join(plan.hidden_scans))
        for label, count in plan.counts().items():
            if count:
                write(f"  {label}: {count}")
        for reference in plan.unplanned_references:
            write(f"  cannot purge: {reference}")
        for shared in plan.shared_records:
            write(f"  shared survey: {shared}")
        if with_files:
            write(f"  archive paths to remove ({len(plan.paths)}):")
            for path in plan.paths:
                write(f"    {path}")
            if plan.repair_paths:
                write(f"  corrected sidecars to remove ({len(plan.repair_paths)}):")
                for path in plan.repair_paths:
                    write(f"    {path}")
        else:
            if plan.paths:
                write(f"  {len(plan.paths)} archive paths stay (pass --files to remove them)")
            if plan.repair_paths:
                count = len(plan.repair_paths)
                noun = "corrected sidecar stays" if count == 1 else "corrected sidecars stay"
                write(f"  {count} {noun} (pass --files to remove them)")


def _session_label(plan, session):
    if session.is_deleted or plan.timepoint.is_deleted:
        return f"{session.name} (hidden)"
    return session.name


def _os_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # No login name and no passwd entry, as in some containers.
        return "unknown"
