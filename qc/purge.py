"""Purging a session or timepoint: its database rows, its QC history (kept as a snapshot in a
PurgeRecord) and, on request, its files in the archive."""

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import ProtectedError, Q

from pipelines.models import DownloadJob
from qc.models import (
    DeviationResolution,
    HeaderDiff,
    MissingScanDismissal,
    PurgeRecord,
    QCEvent,
    ScanReview,
    SessionSignOff,
    SidecarRepair,
)
from qc.services import QCError
from redcap.models import SessionSurvey, SurveyDismissal
from studies import datman_ids
from studies.models import Scan, Session, TaskFile, Timepoint

logger = logging.getLogger(__name__)


class PurgeError(QCError):
    """A purge cannot go ahead; the message explains why and what to do."""


@dataclass
class PurgePlan:
    """The rows a purge deletes (querysets in deletion order) and the archive paths it lists."""

    target: str
    study: object
    timepoint: Timepoint
    sessions: list
    deletes_timepoint: bool
    querysets: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    shared_records: list = field(default_factory=list)

    def counts(self):
        """Rows per model label that the purge deletes, in deletion order (runs queries)."""
        counts = {}
        for queryset in self.querysets:
            label = queryset.model._meta.label
            counts[label] = counts.get(label, 0) + queryset.count()
        return counts


def plan_purge(text):
    """Return the PurgePlan for a session or timepoint ID, or raise PurgeError.

    A session ID purges that session, and its timepoint too when it has no other session. A
    timepoint ID (or a phantom ID) purges the timepoint and all its sessions.
    """
    try:
        ident = datman_ids.parse(text)
        number = None if ident.is_phantom or not ident.session else ident.session_number
    except datman_ids.IdError as error:
        raise PurgeError(
            f"{error} Pass a session ID such as SPN01_CMH_0001_01_01 or a timepoint ID such as "
            f"SPN01_CMH_0001_01."
        ) from error

    timepoint = Timepoint.objects.select_related("study").filter(name=ident.timepoint_id).first()
    if timepoint is None:
        raise PurgeError(f"Timepoint {ident.timepoint_id} not found; nothing to purge.")
    all_sessions = list(timepoint.sessions.order_by("number"))
    if number is None:
        sessions, target = all_sessions, timepoint.name
    else:
        sessions = [session for session in all_sessions if session.number == number]
        target = ident.session_id
        if not sessions:
            raise PurgeError(f"Session {ident.session_id} not found; nothing to purge.")
    plan = PurgePlan(
        target=target,
        study=timepoint.study,
        timepoint=timepoint,
        sessions=sessions,
        deletes_timepoint=len(sessions) == len(all_sessions),
    )
    _add_querysets(plan)
    return plan


def _add_querysets(plan):
    sessions = Session.objects.filter(pk__in=[session.pk for session in plan.sessions])
    scans = Scan.objects.filter(session__in=sessions)
    linked_elsewhere = Scan.objects.filter(source__in=scans).exclude(session__in=sessions)
    if linked_elsewhere.exists():
        names = ", ".join(linked_elsewhere.order_by("name").values_list("name", flat=True))
        raise PurgeError(
            f"Scans of {plan.target} are the source of linked scans in other sessions ({names}); "
            f"purge those sessions first, because their QC decisions are these scans'."
        )
    reviews = ScanReview.objects.filter(scan__in=scans)
    sign_offs = SessionSignOff.objects.filter(session__in=sessions)
    diffs = HeaderDiff.objects.filter(scan__in=scans)
    plan.querysets = [
        QCEvent.objects.filter(
            Q(session__in=sessions)
            | Q(scan__in=scans)
            | Q(review__in=reviews)
            | Q(sign_off__in=sign_offs)
        ),
        DeviationResolution.objects.filter(header_diff__in=diffs),
        SidecarRepair.objects.filter(scan__in=scans),
        reviews,
        sign_offs,
        MissingScanDismissal.objects.filter(session__in=sessions),
        diffs,
        SessionSurvey.objects.filter(session__in=sessions),
        SurveyDismissal.objects.filter(session__in=sessions),
        TaskFile.objects.filter(session__in=sessions),
        DownloadJob.objects.filter(session__in=sessions),
        # Linked scans first, because a scan cannot be deleted while another links to it.
        scans.filter(source__isnull=False),
        scans,
        sessions,
    ]
    if plan.deletes_timepoint:
        plan.querysets.append(Timepoint.objects.filter(pk=plan.timepoint.pk))

    # A survey record that also describes a session outside the purge stays; only the link goes.
    links = SessionSurvey.objects.filter(session__in=sessions).select_related("record")
    for link in links:
        others = link.record.session_links.exclude(session__in=sessions)
        plan.shared_records.extend(
            f"{link.record} is also linked to {other.session}"
            for other in others.select_related("session__timepoint")
        )
    plan.paths = _archive_paths(plan)


def _archive_paths(plan):
    """List the archive paths the purge removes with --files: whole folders for a timepoint,
    the files of the session's scans otherwise. Only paths that exist are listed."""
    root = plan.study.archive_root
    candidates = []
    data = root / "data"
    if plan.deletes_timepoint:
        folders = sorted(data.iterdir()) if data.is_dir() else []
        names = [plan.timepoint.name] + [session.name for session in plan.sessions]
        candidates += [folder / name for folder in folders for name in names]
        candidates.append(root / "qc" / plan.timepoint.name)
    else:
        for scan in Scan.objects.filter(session__in=plan.sessions):
            for relative in (scan.nifti_path, scan.sidecar_path):
                if relative:
                    folder = (root / relative).parent
                    candidates += sorted(folder.glob(f"{glob_escape(scan.file_stem)}.*"))
            for image in scan.qc_images or []:
                if isinstance(image, dict) and image.get("file"):
                    candidates.append(root / "qc" / plan.timepoint.name / image["file"])
        resources = data / "RESOURCES"
        candidates += [resources / session.name for session in plan.sessions]
    unique = dict.fromkeys(Path(os.path.abspath(path)) for path in candidates)
    return [path for path in unique if os.path.lexists(path)]


def glob_escape(text):
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)


def snapshot(plan):
    """Serialise the QC rows the purge deletes (not the scans, sessions and timepoint)."""
    kept = {Scan, Session, Timepoint}
    data = {}
    for queryset in plan.querysets:
        if queryset.model in kept:
            continue
        rows = json.loads(serializers.serialize("json", queryset, cls=DjangoJSONEncoder))
        if rows:
            data[queryset.model._meta.label] = rows
    data["studies.Scan"] = list(
        Scan.objects.filter(session__in=plan.sessions).values("pk", "name", "sidecar_path")
    )
    return data


def purge(plan, *, ran_by, remove_files=False, force_shared=False):
    """Delete what the plan lists and return the PurgeRecord (never for a dry run: the caller
    simply does not call this).

    Raise PurgeError while a survey record is shared with another session, unless
    `force_shared`; then only this session's link to it is deleted. Archive paths are removed
    only with `remove_files`, after the database transaction commits.
    """
    if plan.shared_records and not force_shared:
        raise PurgeError(
            f"{'; '.join(plan.shared_records)}. Purging {plan.target} would leave that session "
            f"with a survey whose other half is gone; pass --force-shared to delete only this "
            f"session's link."
        )
    with transaction.atomic():
        counts = plan.counts()
        record = PurgeRecord.objects.create(
            target=plan.target,
            study=plan.study.nickname,
            ran_by=ran_by,
            counts=counts,
            snapshot=snapshot(plan),
        )
        try:
            for queryset in plan.querysets:
                queryset.delete()
        except ProtectedError as error:
            blocking = sorted({row._meta.label for row in error.protected_objects})
            raise PurgeError(
                f"{plan.target} cannot be purged: rows of {', '.join(blocking)} still refer to "
                f"it, and qcdash does not delete them. Nothing was deleted."
            ) from error
    logger.info("purge of %s by %s: %s", plan.target, ran_by, counts)
    if remove_files:
        removed = remove_archive_paths(plan.study.archive_root, plan.paths)
        PurgeRecord.objects.filter(pk=record.pk).update(removed_files=removed)
        record.removed_files = removed
    return record


def remove_archive_paths(root, paths):
    """Remove files and folders inside `root` and return the paths removed (as text).

    A symlink is removed itself; its target is never touched. A path whose parent folder
    leads outside `root` through a symlink is skipped with a warning, and folders are walked
    without following symlinks.
    """
    real_root = os.path.realpath(root)
    removed = []
    for path in paths:
        path = Path(os.path.abspath(path))
        parent = os.path.realpath(path.parent)
        if parent != real_root and not parent.startswith(real_root + os.sep):
            logger.warning("purge: %s is outside the archive %s; not removed", path, root)
            continue
        if path.is_symlink() or not path.is_dir():
            path.unlink(missing_ok=True)
        else:
            _remove_tree(path)
        removed.append(str(path))
    return removed


def _remove_tree(folder):
    for current, folders, files in os.walk(folder, topdown=False, followlinks=False):
        for name in files:
            os.unlink(os.path.join(current, name))
        for name in folders:
            inner = os.path.join(current, name)
            if os.path.islink(inner):
                os.unlink(inner)
            else:
                os.rmdir(inner)
    os.rmdir(folder)
