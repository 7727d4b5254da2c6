"""REDCap intake: store triggers, fetch and store survey records, link them to sessions.

The trigger view only stores a RedcapTrigger and queues `fetch_trigger`; everything that talks
to REDCap runs in the background worker. A record is linked to the session its session ID
names, or kept unmatched until that session is imported or an admin links it by hand.
"""

import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from redcap import client
from redcap.models import (
    LinkKind,
    RedcapConfig,
    RedcapRecord,
    RedcapRecordVersion,
    RedcapTrigger,
    SessionSurvey,
    SurveyDismissal,
    TriggerStatus,
)
from studies.datman_ids import IdError, parse_session_id
from studies.models import Session

logger = logging.getLogger(__name__)

FETCH_TASK = "redcap.tasks.fetch_trigger"
MAX_DISMISSAL_REASON_LENGTH = 2000
# Maximum length stored from each text field of a record (the column sizes).
MAX_RECORD_ID_LENGTH = RedcapRecord._meta.get_field("record_id").max_length
MAX_SESSION_TEXT_LENGTH = RedcapRecord._meta.get_field("session_id_text").max_length
MAX_USER_LENGTH = RedcapRecord._meta.get_field("entered_by").max_length
# REDCap exports dates as YYYY-MM-DD and datetimes as YYYY-MM-DD HH:MM[:SS], whatever format the
# project displays.
_DATE_VALUE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2})?)?"
)


class RedcapError(Exception):
    """A REDCap action that cannot be done. The message gives the reason and the next step."""


@dataclass(frozen=True)
class SurveyValues:
    """The values of one survey record, read from a REDCap row through a config's field mapping."""

    record_id: str
    event_name: str
    event_id: int | None
    session_id_text: str
    completed_on: date | None
    comment: str
    entered_by: str
    status_value: str
    is_complete: bool


@dataclass(frozen=True)
class StoreOutcome:
    """The result of `store_record`: the record, whether it was created or changed, and linked."""

    record: RedcapRecord
    created: bool
    changed: bool
    linked: bool


# ---------------------------------------------------------------------------------------------
# Triggers


def receive_trigger(config, *, record_id, event_name=""):
    """Store a trigger for a tracked instrument and queue its fetch once the row is committed."""
    with transaction.atomic():
        trigger = RedcapTrigger.objects.create(
            config=config, record_id=record_id, event_name=event_name
        )
        transaction.on_commit(lambda: queue_fetch(trigger.pk))
    return trigger


def count_untracked_trigger(config, instrument):
    """Count a trigger for an instrument that `config` does not track."""
    RedcapConfig.objects.filter(pk=config.pk).update(
        untracked_trigger_count=F("untracked_trigger_count") + 1,
        last_untracked_instrument=instrument,
    )


def queue_fetch(trigger_id):
    # Outside a transaction, django-q2's ORM broker calls close_old_connections() before each
    # enqueue (django-q2 1.11), which with CONN_MAX_AGE=0 closes the request's database
    # connection and opens a new one. Inside one it reuses the open connection.
    with transaction.atomic():
        async_task(FETCH_TASK, trigger_id, group="redcap-fetch")


def fetch_trigger(trigger_id):
    """Fetch the record a trigger names, store it and link it; return a one-line summary.

    A failure that may pass (REDCap down, slow or overloaded) is retried after a delay that
    doubles each time, up to REDCAP_MAX_ATTEMPTS attempts. Any other failure, and a failed last
    attempt, marks the trigger failed, and a person can retry it from the failed list.
    """
    trigger = RedcapTrigger.objects.select_related("config").filter(pk=trigger_id).first()
    if trigger is None:
        return f"trigger {trigger_id} no longer exists"
    if trigger.status not in (TriggerStatus.QUEUED, TriggerStatus.RETRYING):
        return f"{trigger} is already {trigger.get_status_display().lower()}"

    RedcapTrigger.objects.filter(pk=trigger.pk).update(attempts=F("attempts") + 1)
    trigger.attempts += 1
    config = trigger.config
    try:
        values = fetch_values(config, trigger.record_id, trigger.event_name)
    except client.RedcapUnavailable as error:
        return _retry_later(trigger, str(error))
    except (client.RedcapApiError, RedcapError) as error:
        logger.error("REDCap fetch of %s for %s failed: %s", trigger, config, error)
        return _finish(trigger, TriggerStatus.FAILED, error=str(error))

    if not values.is_complete:
        note = (
            f"The survey is not complete ({config.status_field} is {values.status_value!r}, "
            f"complete is {' or '.join(map(repr, config.complete_values))}); nothing stored."
        )
        logger.info("REDCap fetch of %s for %s skipped: %s", trigger, config, note)
        return _finish(trigger, TriggerStatus.SKIPPED, error=note)

    outcome = store_record(config, values)
    refresh_version(config)
    _finish(trigger, TriggerStatus.DONE, record=outcome.record)
    summary = f"{trigger}: {describe_outcome(outcome)}"
    logger.info("REDCap fetch done, %s", summary)
    return summary


def fetch_values(config, record_id, event_name):
    """Export one record (of one event) from REDCap and read it through the field mapping."""
    if not config.token:
        raise RedcapError(f"{config} has no API token; add one in the admin, then retry.")
    event_id_for(config, event_name)
    rows = client.export_records(
        config.endpoint,
        config.token,
        records=[record_id],
        events=[event_name] if event_name else [],
        fields=export_fields(config),
        timeout=settings.REDCAP_TIMEOUT,
    )
    rows = [row for row in rows if _row_matches(config, row, record_id, event_name)]
    event = f" event {event_name}" if event_name else ""
    if not rows:
        raise RedcapError(
            f"REDCap has no record {record_id}{event} in project {config.project_id}; it may "
            f"have been renamed or deleted."
        )
    if len(rows) > 1:
        raise RedcapError(
            f"REDCap returned {len(rows)} rows for record {record_id}{event} of project "
            f"{config.project_id}; repeating instruments are not supported."
        )
    return read_row(config, rows[0])


def _row_matches(config, row, record_id, event_name):
    if config.record_key_field not in row:
        raise RedcapError(
            f"The records REDCap returned have no field {config.record_key_field!r}; set the "
            f"record key field of {config} to the project's record ID field."
        )
    if _text(row.get(config.record_key_field)).strip() != record_id:
        return False
    return not event_name or row.get("redcap_event_name") == event_name


def export_fields(config):
    """Return the fields to export for a config's survey, record key first."""
    names = [
        config.record_key_field,
        config.session_field,
        config.date_field,
        config.comment_field,
        config.status_field,
        config.user_field,
    ]
    return list(dict.fromkeys(name for name in names if name))


def event_id_for(config, event_name):
    """Return the event ID of a unique event name, None for no event; raise if it is unmapped."""
    if not event_name:
        return None
    event_id = (config.event_ids or {}).get(event_name)
    if event_id is None:
        mapped = ", ".join(sorted(config.event_ids or {})) or "none"
        raise RedcapError(
            f"Event {event_name!r} has no event ID in {config} (mapped events: {mapped}). Add "
            f"it to the configuration's event IDs (datman's RedcapEventId), then retry."
        )
    return int(event_id)


def read_row(config, row):
    """Read a REDCap row (one dict of a flat export) through the config's field mapping."""
    record_id = _text(row.get(config.record_key_field)).strip()
    event_name = _text(row.get("redcap_event_name")).strip()
    where = f"record {record_id}" + (f" event {event_name}" if event_name else "")
    if not record_id:
        raise RedcapError(f"A REDCap row has an empty record ID field {config.record_key_field!r}.")
    _check_length(record_id, MAX_RECORD_ID_LENGTH, config.record_key_field, where)

    for name in (config.session_field, config.date_field, config.status_field):
        if name not in row:
            raise RedcapError(
                f"Field {name!r} is missing from {where} as REDCap returned it; check the field "
                f"mapping of {config}."
            )
    session_id_text = _text(row.get(config.session_field)).strip()
    entered_by = _text(row.get(config.user_field)).strip() if config.user_field else ""
    _check_length(session_id_text, MAX_SESSION_TEXT_LENGTH, config.session_field, where)
    _check_length(entered_by, MAX_USER_LENGTH, config.user_field, where)

    status_value = _text(row.get(config.status_field)).strip()
    is_complete = status_value in [str(value) for value in config.complete_values]
    # A longitudinal export has a row for every event of the record, so only the rows that
    # will be stored (complete surveys) must have a mapped event and a valid date.
    event_id = completed_on = None
    if is_complete:
        event_id = event_id_for(config, event_name)
        completed_on = _parse_date(_text(row.get(config.date_field)).strip(), config, where)
    return SurveyValues(
        record_id=record_id,
        event_name=event_name,
        event_id=event_id,
        session_id_text=session_id_text,
        completed_on=completed_on,
        comment=_text(row.get(config.comment_field)).strip(),
        entered_by=entered_by,
        status_value=status_value,
        is_complete=is_complete,
    )


def _text(value):
    """Return a REDCap value as text without NUL characters, which PostgreSQL cannot store."""
    if value is None:
        return ""
    return str(value).replace("\x00", "")


def _check_length(value, max_length, field_name, where):
    if len(value) > max_length:
        raise RedcapError(
            f"Field {field_name!r} of {where} is {len(value)} characters long; at most "
            f"{max_length} are stored. Correct the value in REDCap."
        )


def _parse_date(value, config, where):
    if not value:
        return None
    match = _DATE_VALUE.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        return date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        raise RedcapError(
            f"Field {config.date_field!r} of {where} is {value[:40]!r}, which is not a date "
            f"(YYYY-MM-DD, optionally followed by a time). Correct it in REDCap."
        ) from None


def _retry_later(trigger, message):
    max_attempts = settings.REDCAP_MAX_ATTEMPTS
    if trigger.attempts >= max_attempts:
        logger.error(
            "REDCap fetch of %s for %s failed after %d attempts: %s",
            trigger,
            trigger.config,
            trigger.attempts,
            message,
        )
        return _finish(
            trigger,
            TriggerStatus.FAILED,
            error=f"{message} Gave up after {trigger.attempts} attempts.",
        )

    delay = settings.REDCAP_RETRY_DELAY * 2 ** (trigger.attempts - 1)
    next_attempt_at = timezone.now() + timedelta(seconds=delay)
    RedcapTrigger.objects.filter(pk=trigger.pk).update(
        status=TriggerStatus.RETRYING, last_error=message, next_attempt_at=next_attempt_at
    )
    transaction.on_commit(
        lambda: schedule(
            FETCH_TASK, trigger.pk, schedule_type=Schedule.ONCE, next_run=next_attempt_at
        )
    )
    logger.warning(
        "REDCap fetch of %s for %s failed (attempt %d of %d), next attempt at %s: %s",
        trigger,
        trigger.config,
        trigger.attempts,
        max_attempts,
        next_attempt_at.isoformat(timespec="seconds"),
        message,
    )
    return f"{trigger}: attempt {trigger.attempts} failed, retrying in {delay} s: {message}"


def _finish(trigger, status, *, error="", record=None):
    RedcapTrigger.objects.filter(pk=trigger.pk).update(
        status=status,
        last_error=error,
        redcap_record=record,
        next_attempt_at=None,
        finished_at=timezone.now(),
    )
    summary = f"{trigger}: {TriggerStatus(status).label.lower()}"
    return f"{summary}: {error}" if error else summary


def retry_trigger(trigger, *, user):
    """Queue a failed trigger's fetch again, with a fresh count of attempts."""
    with transaction.atomic():
        trigger = RedcapTrigger.objects.select_for_update().get(pk=trigger.pk)
        if trigger.status != TriggerStatus.FAILED:
            raise RedcapError(
                f"The fetch of {trigger} is {trigger.get_status_display().lower()}; only failed "
                f"fetches can be retried."
            )
        trigger.status = TriggerStatus.QUEUED
        trigger.attempts = 0
        trigger.next_attempt_at = None
        trigger.finished_at = None
        trigger.save(update_fields=["status", "attempts", "next_attempt_at", "finished_at"])
        transaction.on_commit(lambda: queue_fetch(trigger.pk))
    logger.info("REDCap fetch of %s queued again by %s", trigger, user)
    return trigger


def refresh_version(config, *, force=False):
    """Ask REDCap for its version (used in links to records) when it is unknown or `force`."""
    if config.redcap_version and not force:
        return
    try:
        version = client.export_version(
            config.endpoint, config.token, timeout=settings.REDCAP_TIMEOUT
        )
    except client.RedcapApiError as error:
        logger.warning("REDCap version of %s is unknown: %s", config, error)
        return
    if version != config.redcap_version:
        config.redcap_version = version
        RedcapConfig.objects.filter(pk=config.pk).update(redcap_version=version)


# ---------------------------------------------------------------------------------------------
# Records


def store_record(config, values):
    """Create or update the record `values` describe and link it to its session if it has none.

    Changed values replace the stored ones, and the earlier values are kept as a
    RedcapRecordVersion. Safe to call from several workers at once for the same record: the
    unique constraint on (config, record, event) lets one of them create the row, and the
    others then lock and update it.
    """
    with transaction.atomic():
        record = _lock_record(config, values)
        created = False
        if record is None:
            record = _create_record(config, values)
            created = record is not None
        if record is None:
            record = _lock_record(config, values)
        record.config = config
        changed = False if created else _update_record(record, values)
        linked = False
        if not record.session_links.filter(kind__in=[LinkKind.MATCHED, LinkKind.MANUAL]).exists():
            linked = match_record(record)
    return StoreOutcome(record=record, created=created, changed=changed, linked=linked)


def describe_outcome(outcome):
    record = outcome.record
    if outcome.created:
        action = "created"
    elif outcome.changed:
        action = "changed"
    else:
        action = "unchanged"
    if outcome.linked:
        return f"{record} {action}, linked to {record.session_name}"
    if record.match_error:
        return f"{record} {action}, not linked: {record.match_error}"
    return f"{record} {action}"


def _lock_record(config, values):
    return (
        RedcapRecord.objects.select_for_update()
        .filter(config=config, record_id=values.record_id, event_name=values.event_name)
        .first()
    )


def _create_record(config, values):
    """Insert the record; return None when another transaction inserted it first."""
    try:
        with transaction.atomic():
            return RedcapRecord.objects.create(
                config=config,
                record_id=values.record_id,
                event_name=values.event_name,
                event_id=values.event_id,
                session_id_text=values.session_id_text,
                completed_on=values.completed_on,
                comment=values.comment,
                entered_by=values.entered_by,
                fetched_at=timezone.now(),
            )
    except IntegrityError:
        return None


_TRACKED_FIELDS = ("session_id_text", "completed_on", "comment", "entered_by")


def _update_record(record, values):
    """Apply changed values to a locked record, keeping the earlier ones; return whether any."""
    changed = [name for name in _TRACKED_FIELDS if getattr(record, name) != getattr(values, name)]
    update_fields = list(changed)
    if record.event_id != values.event_id:
        record.event_id = values.event_id
        update_fields.append("event_id")
    if not changed:
        if update_fields:
            record.save(update_fields=update_fields)
        return False

    RedcapRecordVersion.objects.create(
        record=record,
        session_id_text=record.session_id_text,
        completed_on=record.completed_on,
        comment=record.comment,
        entered_by=record.entered_by,
        fetched_at=record.fetched_at,
    )
    for name in changed:
        setattr(record, name, getattr(values, name))
    record.fetched_at = timezone.now()
    record.save(update_fields=[*update_fields, "fetched_at"])
    logger.info("%s changed in REDCap: %s", record, ", ".join(changed))

    if "session_id_text" in changed:
        # The automatic link followed the old session ID; links made by people stay.
        record.session_links.filter(kind=LinkKind.MATCHED).delete()
    return True


def normalise_session_id(text):
    """Return a session ID as datman reads it from a survey: stripped and upper-cased."""
    return text.strip().upper()


def match_record(record):
    """Link a record to the session its session ID names; return whether a link was made.

    When no link can be made, `match_error` contains the reason, and the record stays on the
    unmatched list. Call inside a transaction that has locked the record.
    """
    text = normalise_session_id(record.session_id_text)
    error = ""
    session = None
    try:
        ident = parse_session_id(text)
    except IdError as id_error:
        ident = None
        error = f"{id_error} Correct the session ID in REDCap or link the record by hand."
    if ident is not None:
        session, error = _find_session(record, ident)

    linked = False
    if session is not None:
        try:
            with transaction.atomic():
                SessionSurvey.objects.create(session=session, record=record, kind=LinkKind.MATCHED)
            linked = True
        except IntegrityError:
            error = f"Session {ident.session_id} was linked to another survey record just now."

    session_name = ident.session_id if ident is not None else ""
    error = error[: RedcapRecord._meta.get_field("match_error").max_length]
    if (record.session_name, record.match_error) != (session_name, error):
        record.session_name = session_name
        record.match_error = error
        record.save(update_fields=["session_name", "match_error"])
    if linked:
        logger.info("%s linked to session %s", record, record.session_name)
    return linked


def _find_session(record, ident):
    """Return (session, '') for the session `ident` names, or (None, why it cannot be linked)."""
    name = ident.session_id
    session = (
        Session.objects.select_related("timepoint__study_site")
        .filter(timepoint__name=ident.timepoint_id, number=ident.session_number)
        .first()
    )
    if session is None:
        deleted = Session.all_objects.filter(
            timepoint__name=ident.timepoint_id, number=ident.session_number
        ).exists()
        if deleted:
            return None, (
                f"Session {name} was deleted by a dashboard admin, so the record is not "
                f"linked to it. Restore the session in the admin site and link the record by "
                f"hand if it belongs there."
            )
        return None, (
            f"Session {name} does not exist yet; the record is linked when an archive import "
            f"creates it."
        )
    study_site = session.timepoint.study_site
    if not record.config.study_sites.filter(pk=study_site.pk).exists():
        return None, (
            f"Session {name} is at {study_site}, which is not a study site of {record.config}; "
            f"add the study site to the configuration or link the record by hand."
        )
    existing = SessionSurvey.objects.filter(session=session).select_related("record").first()
    if existing is not None:
        return None, (
            f"Session {name} already has {existing.record}; link this record by hand if it "
            f"replaces that one."
        )
    return session, ""


def link_imported_sessions(sessions):
    """Link unmatched records to sessions that were just imported; return how many were linked."""
    ids = [session.pk for session in sessions]
    names = [
        session.name for session in Session.objects.filter(pk__in=ids).select_related("timepoint")
    ]
    if not names:
        return 0
    linked = 0
    record_ids = RedcapRecord.objects.unmatched().filter(session_name__in=names)
    for record_id in record_ids.values_list("pk", flat=True):
        with transaction.atomic():
            record = (
                RedcapRecord.objects.select_for_update().select_related("config").get(pk=record_id)
            )
            if not record.session_links.exists():
                linked += match_record(record)
    return linked


# ---------------------------------------------------------------------------------------------
# Actions of people


def link_record(record, session, *, user):
    """Link a record to a session by hand; return the SessionSurvey."""
    with transaction.atomic():
        record = RedcapRecord.objects.select_for_update().select_related("config").get(pk=record.pk)
        existing = SessionSurvey.objects.filter(session=session).select_related("record").first()
        if existing is not None:
            if existing.record_id == record.pk:
                raise RedcapError(f"{record} is already linked to {session}.")
            raise RedcapError(
                f"Session {session} already has {existing.record}; a session has one survey."
            )
        link = SessionSurvey.objects.create(
            session=session, record=record, kind=LinkKind.MANUAL, linked_by=user
        )
        record.match_error = ""
        record.save(update_fields=["match_error"])
    logger.info("%s linked to session %s by %s", record, session, user)
    return link


def share_record(source, target, *, user=None):
    """Let the survey of session `source` also describe session `target`; return the link.

    Return None when `target` already shares that survey.
    """
    with transaction.atomic():
        source_link = SessionSurvey.objects.filter(session=source).select_related("record").first()
        if source_link is None:
            raise RedcapError(f"Session {source} has no REDCap survey to share.")
        record = RedcapRecord.objects.select_for_update().get(pk=source_link.record_id)
        existing = SessionSurvey.objects.filter(session=target).select_related("record").first()
        if existing is not None:
            if existing.record_id == record.pk:
                return None
            raise RedcapError(
                f"Session {target} already has {existing.record}; a session has one survey."
            )
        link = SessionSurvey.objects.create(
            session=target, record=record, kind=LinkKind.SHARED, linked_by=user
        )
    logger.info("%s of session %s shared with session %s", record, source, target)
    return link


def dismiss_missing_survey(session, *, user, reason):
    """Record that a session will have no survey, and why; return the SurveyDismissal."""
    reason = (reason or "").strip()
    if not reason:
        raise RedcapError("A reason is required: say why this session has no survey.")
    if "\x00" in reason:
        raise RedcapError("The reason contains a NUL character; remove it and save again.")
    if len(reason) > MAX_DISMISSAL_REASON_LENGTH:
        raise RedcapError(
            f"The reason is {len(reason)} characters long; shorten it to at most "
            f"{MAX_DISMISSAL_REASON_LENGTH}."
        )

    with transaction.atomic():
        session = Session.objects.select_for_update().select_related("timepoint").get(pk=session.pk)
        if session.timepoint.is_phantom:
            raise RedcapError(f"{session} is a phantom; phantoms never expect a survey.")
        if SessionSurvey.objects.filter(session=session).exists():
            raise RedcapError(f"Session {session} has a survey; there is nothing to dismiss.")
        existing = SurveyDismissal.objects.filter(session=session).select_related("dismissed_by")
        existing = existing.first()
        if existing is not None:
            raise RedcapError(
                f"The missing survey of {session} was already dismissed by "
                f"{existing.dismissed_by} on "
                f"{timezone.localtime(existing.created_at):%Y-%m-%d %H:%M %Z}."
            )
        dismissal = SurveyDismissal.objects.create(
            session=session, reason=reason, dismissed_by=user
        )
    logger.info("missing survey of session %s dismissed by %s", session, user)
    return dismissal
