"""Purging a session or timepoint: its database rows, its QC history (kept as a snapshot in a
PurgeRecord) and, on request, its files in the archive and its corrected sidecars."""

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import ProtectedError, Q

from integrations.models import IssueRequest, TimepointIssues, XnatPush
from pipelines.models import DownloadJob, DownloadRun
from qc import compliance_repair
from qc.models import (
    DeviationResolution,
    FindingNote,
    HeaderDiff,
    IncidentalFinding,
    MissingScanDismissal,
    PurgeRecord,
    QCEvent,
    ScanReview,
    SessionSignOff,
    SidecarRepair,
    TimepointComment,
    TimepointCommentRevision,
)
from qc.services import QCError
from redcap.models import SessionSurvey, SurveyDismissal
from studies import datman_ids
from studies.models import Scan, Session, TaskFile, Timepoint

logger = logging.getLogger(__name__)

# Models whose rows the purge deletes without keeping them in the snapshot: the scans,
# sessions and timepoint are kept there by name (`_purged_objects`), and cached tracker issues
# are a copy of the tracker's data that the tracker still holds.
NOT_SNAPSHOTTED = {Scan, Session, Timepoint, TimepointIssues}


class PurgeError(QCError):
    """A purge cannot go ahead; the message explains why and what to do."""


@dataclass
class PurgePlan:
    """The rows a purge deletes (querysets in deletion order), the archive paths it lists and
    the corrected sidecars (`repair_paths`, under SIDECAR_REPAIR_ROOT) of its scans.

    `unplanned_references` describes rows outside the plan that refer to rows it deletes; while
    it is not empty the purge is rejected.
    """

    target: str
    study: object
    timepoint: Timepoint
    sessions: list
    deletes_timepoint: bool
    querysets: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    repair_paths: list = field(default_factory=list)
    shared_records: list = field(default_factory=list)
    hidden_scans: list = field(default_factory=list)
    unplanned_references: list = field(default_factory=list)

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
    timepoint ID (or a phantom ID) purges the timepoint and all its sessions. Hidden
    (soft-deleted) timepoints, sessions and scans are found and purged like shown ones.
    """
    try:
        ident = datman_ids.parse(text)
        number = None if ident.is_phantom or not ident.session else ident.session_number
    except datman_ids.IdError as error:
        raise PurgeError(
            f"{error} Pass a session ID such as SPN01_CMH_0001_01_01 or a timepoint ID such as "
            f"SPN01_CMH_0001_01."
        ) from error

    timepoints = Timepoint.all_objects.select_related("study").filter(name=ident.timepoint_id)
    timepoint = timepoints.first()
    if timepoint is None:
        raise PurgeError(f"Timepoint {ident.timepoint_id} not found; nothing to purge.")
    all_sessions = list(Session.all_objects.filter(timepoint=timepoint).order_by("number"))
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
    sessions = Session.all_objects.filter(pk__in=[session.pk for session in plan.sessions])
    scans = Scan.all_objects.filter(session__in=sessions)
    linked_elsewhere = Scan.all_objects.filter(source__in=scans).exclude(session__in=sessions)
    if linked_elsewhere.exists():
        names = ", ".join(linked_elsewhere.order_by("name").values_list("name", flat=True))
        raise PurgeError(
            f"Scans of {plan.target} are the source of linked scans in other sessions ({names}); "
            f"purge those sessions first, because their QC decisions are these scans'."
        )
    plan.querysets = _session_querysets(sessions, scans)
    if plan.deletes_timepoint:
        plan.querysets += _timepoint_querysets(plan.timepoint)
    plan.unplanned_references = find_unplanned_references(plan.querysets)
    plan.hidden_scans = list(scans.hidden().order_by("name").values_list("name", flat=True))

    # A survey record that also describes a session outside the purge stays; only the link goes.
    links = SessionSurvey.objects.filter(session__in=sessions).select_related("record")
    for link in links:
        others = link.record.session_links.exclude(session__in=sessions)
        plan.shared_records.extend(
            f"{link.record} is also linked to {other.session}"
            for other in others.select_related("session__timepoint")
        )
    plan.paths = _archive_paths(plan)
    plan.repair_paths = _repair_paths(scans)


def _session_querysets(sessions, scans):
    """Return querysets of the sessions, their scans and every row that refers to them, each
    listed before the rows it refers to."""
    reviews = ScanReview.objects.filter(scan__in=scans)
    sign_offs = SessionSignOff.objects.filter(session__in=sessions)
    diffs = HeaderDiff.objects.filter(scan__in=scans)
    download_jobs = DownloadJob.objects.filter(session__in=sessions)
    return [
        QCEvent.objects.filter(
            Q(session__in=sessions)
            | Q(scan__in=scans)
            | Q(review__in=reviews)
            | Q(sign_off__in=sign_offs)
        ),
        DeviationResolution.objects.filter(header_diff__in=diffs),
        SidecarRepair.objects.filter(scan__in=scans),
        XnatPush.objects.filter(scan__in=scans),
        reviews,
        sign_offs,
        MissingScanDismissal.objects.filter(session__in=sessions),
        diffs,
        SessionSurvey.objects.filter(session__in=sessions),
        SurveyDismissal.objects.filter(session__in=sessions),
        TaskFile.objects.filter(session__in=sessions),
        DownloadRun.objects.filter(job__in=download_jobs),
        download_jobs,
        # Linked scans first, because a scan cannot be deleted while another links to it.
        scans.filter(source__isnull=False),
        scans.filter(source__isnull=True),
        sessions,
    ]


def _timepoint_querysets(timepoint):
    """Return querysets of the rows that refer to the timepoint itself, each listed before the
    rows it refers to, and of the timepoint last."""
    comments = TimepointComment.objects.filter(timepoint=timepoint)
    findings = IncidentalFinding.objects.filter(timepoint=timepoint)
    return [
        TimepointCommentRevision.objects.filter(comment__in=comments),
        comments,
        FindingNote.objects.filter(finding__in=findings),
        findings,
        IssueRequest.objects.filter(timepoint=timepoint),
        TimepointIssues.objects.filter(timepoint=timepoint),
        Timepoint.all_objects.filter(pk=timepoint.pk),
    ]


def find_unplanned_references(querysets):
    """Describe the rows outside `querysets` that refer to rows in them, one line per relation.

    Every relation that points at a planned model is checked, whatever its `on_delete`. A
    model the purge has no rule for would otherwise lose rows through CASCADE without a
    snapshot, lose its link through SET_NULL, or stop the purge through PROTECT.
    """
    planned = {}
    for queryset in querysets:
        planned.setdefault(queryset.model, []).append(queryset)

    problems = []
    for queryset in querysets:
        for relation in _reverse_relations(queryset.model):
            referring_model = relation.related_model
            referring = referring_model._base_manager.filter(
                **{f"{relation.field.name}__in": queryset}
            )
            for own in planned.get(referring_model, []):
                referring = referring.exclude(pk__in=own)
            count = referring.count()
            if count:
                problems.append(
                    f"{count} {referring_model._meta.label} rows refer to "
                    f"{queryset.model._meta.label} rows through {relation.field.name}"
                )
    return problems


def unplanned_references_error(target, references):
    return PurgeError(
        f"{target} cannot be purged: {'; '.join(references)}. The purge has no rule for "
        f"deleting these rows, so nothing was deleted; delete them or point them elsewhere "
        f"first, then run purge again."
    )


def _reverse_relations(model):
    """Return the relations of other models (and of `model` itself) that point at `model`.

    The automatic tables of many-to-many fields are left out, because the relation of the
    many-to-many field itself covers them."""
    return [
        relation
        for relation in model._meta.get_fields(include_hidden=True)
        if relation.auto_created
        and not relation.concrete
        and relation.is_relation
        and not relation.related_model._meta.auto_created
    ]


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
        for scan in Scan.all_objects.filter(session__in=plan.sessions):
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


def _repair_paths(scans):
    """List the corrected sidecars written for `scans` that exist inside SIDECAR_REPAIR_ROOT.

    A repair writes a file, so a folder found at a stored path is left with a warning: removing
    it would remove whatever else it holds, such as other scans' corrected sidecars.
    """
    root = compliance_repair.repair_root()
    if root is None:
        return []
    real_root = os.path.realpath(root)
    written = SidecarRepair.objects.filter(scan__in=scans).values_list("path", flat=True)
    unique = dict.fromkeys(Path(os.path.abspath(path)) for path in written)
    paths = []
    for path in unique:
        if not os.path.realpath(path).startswith(real_root + os.sep):
            continue
        if path.is_dir() and not path.is_symlink():
            logger.warning("purge: corrected sidecar %s is a folder; not removed", path)
            continue
        if os.path.lexists(path):
            paths.append(path)
    return paths


def glob_escape(text):
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)


def snapshot(plan):
    """Serialise the QC rows the purge deletes, with the names and deletion fields of the
    scans, sessions and timepoint it deletes."""
    data = {}
    for queryset in plan.querysets:
        if queryset.model in NOT_SNAPSHOTTED:
            continue
        rows = json.loads(serializers.serialize("json", queryset, cls=DjangoJSONEncoder))
        if rows:
            data.setdefault(queryset.model._meta.label, []).extend(rows)
    data.update(_purged_objects(plan))
    return data


def _purged_objects(plan):
    """Describe the scans, sessions and timepoint that the purge deletes: name, and who hid
    them, when and why (empty while shown)."""
    scans = Scan.all_objects.filter(session__in=plan.sessions).select_related("deleted_by")
    sessions = Session.all_objects.filter(
        pk__in=[session.pk for session in plan.sessions]
    ).select_related("timepoint", "deleted_by")
    objects = {
        "studies.Scan": [_hidden_row(scan, sidecar_path=scan.sidecar_path) for scan in scans],
        "studies.Session": [_hidden_row(session) for session in sessions],
    }
    if plan.deletes_timepoint:
        objects["studies.Timepoint"] = [_hidden_row(plan.timepoint)]
    # The JSON field's encoder cannot write datetimes, so they become ISO 8601 text here.
    return json.loads(json.dumps(objects, cls=DjangoJSONEncoder))


def _hidden_row(obj, **extra):
    return {
        "pk": obj.pk,
        "name": obj.name,
        **extra,
        "deleted_at": obj.deleted_at,
        "deleted_by": obj.deleted_by.get_username() if obj.deleted_by_id else None,
        "deletion_reason": obj.deletion_reason,
    }


def purge(plan, *, ran_by, remove_files=False, force_shared=False):
    """Delete what the plan lists and return the PurgeRecord (never for a dry run: the caller
    simply does not call this).

    Raise PurgeError while rows outside the plan refer to rows it deletes. Also raise it while
    a survey record is shared with another session, unless `force_shared` is set, in which
    case only this session's link to the record is deleted. Archive paths and corrected
    sidecars are removed only with `remove_files`, after the database transaction commits.
    Paths that could not be removed are set on the returned record as `failed_removals`, one
    "path: error" line each; that attribute is not saved in the database.
    """
    if plan.unplanned_references:
        raise unplanned_references_error(plan.target, plan.unplanned_references)
    if plan.shared_records and not force_shared:
        raise PurgeError(
            f"{'; '.join(plan.shared_records)}. Purging {plan.target} would leave that session "
            f"with a survey whose other half is gone; pass --force-shared to delete only this "
            f"session's link."
        )
    with transaction.atomic():
        # Checked again because rows may have been added since the plan was made.
        references = find_unplanned_references(plan.querysets)
        if references:
            raise unplanned_references_error(plan.target, references)
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
                f"{plan.target} cannot be purged: rows of {', '.join(blocking)} were added "
                f"while it ran and still refer to it. Nothing was deleted; run purge again."
            ) from error
    logger.info("purge of %s by %s: %s", plan.target, ran_by, counts)
    record.failed_removals = []
    if remove_files:
        removed, failed = remove_archive_paths(plan.study.archive_root, plan.paths)
        if plan.repair_paths:
            repair_root = compliance_repair.repair_root()
            repairs_removed, repairs_failed = remove_archive_paths(repair_root, plan.repair_paths)
            removed += repairs_removed
            failed += repairs_failed
        PurgeRecord.objects.filter(pk=record.pk).update(removed_files=removed)
        record.removed_files = removed
        record.failed_removals = failed
    return record


def remove_archive_paths(root, paths):
    """Remove files and folders inside `root`; return the paths removed (as text) and the
    paths that could not be removed, as "path: error" lines.

    A symlink is removed itself; its target is never touched. A path whose parent folder
    leads outside `root` through a symlink is skipped with a warning, and folders are walked
    without following symlinks. An OSError on one path is logged and the others are still
    removed.
    """
    real_root = os.path.realpath(root)
    removed = []
    failed = []
    for path in paths:
        path = Path(os.path.abspath(path))
        parent = os.path.realpath(path.parent)
        if parent != real_root and not parent.startswith(real_root + os.sep):
            logger.warning("purge: %s is outside the archive %s; not removed", path, root)
            continue
        try:
            if path.is_symlink() or not path.is_dir():
                path.unlink(missing_ok=True)
            else:
                _remove_tree(path)
        except OSError as error:
            logger.warning("purge: removing %s failed: %s", path, error)
            failed.append(f"{path}: {error.strerror or error}")
            continue
        removed.append(str(path))
    return removed, failed


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
