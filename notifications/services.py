"""Notifications by email: who receives what, the at-most-once delivery log and the sending.

Every notification is a `Notification` row, unique per (recipient, kind, key), created before
anything is sent. A worker sends a row only after it moved it from pending to sending with one
UPDATE, so two workers (or a task that runs twice) send each email once.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from accounts import permissions
from accounts.models import Role, StudyMembership, User
from notifications.models import (
    DigestFrequency,
    JobRun,
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
)
from studies.models import Session, Study

logger = logging.getLogger(__name__)

# Kinds sent regardless of the recipient's preferences, because someone must act on them.
REQUIRED_KINDS = {
    NotificationKind.ACCOUNT_REQUESTED,
    NotificationKind.ACCOUNT_DECIDED,
    NotificationKind.INCIDENTAL_FINDING,
}


def absolute_url(path):
    """Return `path` (as from `reverse`) prefixed with SITE_URL."""
    return f"{settings.SITE_URL}{path}"


def wants(user, kind):
    """Whether the user receives notifications of `kind` (queries unless the preference was
    preloaded as `notification_preference`)."""
    if kind in REQUIRED_KINDS:
        return True
    try:
        preference = user.notification_preference
    except NotificationPreference.DoesNotExist:
        return kind != NotificationKind.DIGEST
    if kind == NotificationKind.DIGEST:
        return preference.digest != DigestFrequency.NONE
    return kind in preference.kinds


# --- Creating and sending -------------------------------------------------------------------


def notify(*, kind, key, recipients, template, context, include_inactive=False):
    """Create one pending notification per recipient that has none for (kind, key) yet, and
    queue each new one for sending once the transaction commits.

    `template` names `<template>.txt` (first line the subject, the rest the body) and the
    optional `<template>.html`; both get `context` plus `recipient` and `site_url`. Recipients
    without an email address, those whose preferences exclude `kind` and, unless
    `include_inactive` (for people whose account request is pending), inactive ones are
    skipped. Returns the notifications created.
    """
    created = []
    seen = set()
    for recipient in recipients:
        if recipient.pk in seen or not recipient.email:
            continue
        if not (recipient.is_active or include_inactive):
            continue
        seen.add(recipient.pk)
        if not wants(recipient, kind):
            continue
        if Notification.objects.filter(recipient=recipient, kind=kind, key=key).exists():
            continue
        values = {**context, "recipient": recipient, "site_url": settings.SITE_URL}
        text = render_to_string(f"{template}.txt", values).strip()
        subject, _, body = text.partition("\n")
        try:
            html = render_to_string(f"{template}.html", values)
        except TemplateDoesNotExist:
            html = ""
        try:
            # The savepoint keeps the outer transaction usable when another worker created the
            # same row first; the unique constraint then rejects this one.
            with transaction.atomic():
                notification = Notification.objects.create(
                    recipient=recipient,
                    kind=kind,
                    key=key,
                    subject=subject.strip()[:255],
                    body_text=body.strip() + "\n",
                    body_html=html,
                )
        except IntegrityError:
            continue
        created.append(notification)
        transaction.on_commit(
            lambda pk=notification.pk: async_task("notifications.tasks.send_notification", pk)
        )
    if created:
        logger.info("%d %s notifications created for %s", len(created), kind, key)
    return created


def send_notification(notification_id):
    """Send one pending notification, unless another worker claimed it first.

    Returns the notification's status after the attempt: sent, failed, or the status another
    worker left it in. An SMTP or connection error marks it failed with the error;
    `retry_failed_notifications` tries again later.
    """
    claimed = Notification.objects.filter(
        pk=notification_id, status=NotificationStatus.PENDING
    ).update(status=NotificationStatus.SENDING, attempts=F("attempts") + 1)
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    if not claimed:
        return notification.status
    # NOTE: a worker that dies between the claim and the update below leaves the row in
    # "sending". Nothing retries such a row, and only the admin lists it.
    message = EmailMultiAlternatives(
        notification.subject,
        notification.body_text,
        None,
        [notification.recipient.email],
    )
    if notification.body_html:
        message.attach_alternative(notification.body_html, "text/html")
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as error:
        Notification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.FAILED, last_error=f"{type(error).__name__}: {error}"
        )
        logger.warning(
            "notification %s (%s %s) to %s failed on attempt %s: %s",
            notification.pk,
            notification.kind,
            notification.key,
            notification.recipient.email,
            notification.attempts,
            error,
        )
        return NotificationStatus.FAILED
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    logger.info(
        "notification %s (%s %s) sent to %s",
        notification.pk,
        notification.kind,
        notification.key,
        notification.recipient.email,
    )
    return NotificationStatus.SENT


# --- Job runs -------------------------------------------------------------------------------


def _run_job(name, work):
    """Run `work(run)` and record it as a JobRun; an exception is recorded and raised again."""
    run = JobRun.objects.create(job=name)
    try:
        work(run)
    except Exception as error:
        run.error = f"{type(error).__name__}: {error}"
        run.finished_at = timezone.now()
        run.save(update_fields=["error", "finished_at", "created", "sent", "failed"])
        logger.exception("job %s failed", name)
        raise
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at", "created", "sent", "failed"])
    logger.info(
        "job %s finished: %d created, %d sent, %d failed", name, run.created, run.sent, run.failed
    )
    return run


def _send_now(notifications, run):
    """Send the notifications in this process, counting the outcomes on `run`."""
    for notification in notifications:
        status = send_notification(notification.pk)
        if status == NotificationStatus.SENT:
            run.sent += 1
        elif status == NotificationStatus.FAILED:
            run.failed += 1


def retry_failed_notifications():
    """Send again every failed notification with attempts left (NOTIFICATION_MAX_ATTEMPTS)."""

    def work(run):
        retryable = Notification.objects.filter(
            status=NotificationStatus.FAILED, attempts__lt=settings.NOTIFICATION_MAX_ATTEMPTS
        ).values_list("pk", flat=True)
        for pk in list(retryable):
            # Only one worker moves the row back to pending; the claim in send_notification
            # then decides who sends it.
            reset = Notification.objects.filter(pk=pk, status=NotificationStatus.FAILED).update(
                status=NotificationStatus.PENDING
            )
            if reset:
                _send_now([Notification(pk=pk)], run)

    return _run_job("retry_failed_notifications", work)


# --- Kinds ----------------------------------------------------------------------------------


def _members(study, *, q):
    """Active users with a membership in the study that matches `q`, with preferences."""
    members = StudyMembership.objects.filter(q, study=study).values("user_id")
    return (
        User.objects.filter(is_active=True, pk__in=members)
        .select_related("notification_preference")
        .order_by("username")
    )


def notify_new_sessions(*, study, sessions, run_id):
    """Tell the study's QC reviewers (and higher roles) about the sessions one import created.

    Each person gets one message per import run, listing the sessions at the sites they cover.
    """
    sessions = list(sessions)
    if not sessions:
        return []
    site_ids = {session.timepoint.study_site.site_id for session in sessions}
    memberships = (
        StudyMembership.objects.filter(study=study, role__gte=Role.QC_REVIEWER)
        .filter(Q(site__isnull=True) | Q(site_id__in=site_ids))
        .select_related("user__notification_preference")
    )
    covered = {}
    for membership in memberships:
        sites = covered.setdefault(membership.user, set())
        sites.update(site_ids if membership.site_id is None else {membership.site_id})
    created = []
    for user, sites in covered.items():
        listed = [s for s in sessions if s.timepoint.study_site.site_id in sites]
        created += notify(
            kind=NotificationKind.NEW_SESSIONS,
            key=f"new-sessions:{study.nickname}:{run_id}",
            recipients=[user],
            template="notifications/email/new_sessions",
            context={
                "study": study,
                "sessions": sorted(listed, key=lambda session: session.name),
                "study_url": absolute_url(reverse("qc:study_detail", args=[study.nickname])),
            },
        )
    return created


def survey_reminder_recipients(session):
    """The RAs of the session's site (or of every site) and the study's staff contacts."""
    study_site = session.timepoint.study_site
    q = (Q(role=Role.RA) & (Q(site__isnull=True) | Q(site=study_site.site_id))) | Q(
        is_staff_contact=True
    )
    return list(_members(study_site.study_id, q=q))


def overdue_survey_sessions(now=None):
    """Sessions at REDCap sites, not phantoms, imported more than their study's
    `survey_reminder_hours` ago, without a linked survey and without a dismissal."""
    now = now or timezone.now()
    overdue = Q()
    for study in Study.objects.filter(study_sites__uses_redcap=True).distinct():
        cutoff = now - timedelta(hours=study.survey_reminder_hours)
        overdue |= Q(timepoint__study=study, created_at__lte=cutoff)
    if not overdue:
        return Session.objects.none()
    return (
        Session.objects.filter(overdue)
        .filter(
            timepoint__study_site__uses_redcap=True,
            timepoint__is_phantom=False,
            redcap_survey__isnull=True,
            survey_dismissal__isnull=True,
        )
        .select_related("timepoint__study_site__study", "timepoint__study_site__site")
    )


def send_survey_reminders():
    """Remind people once per session of each overdue REDCap survey (the hourly job)."""

    def work(run):
        already = set(
            Notification.objects.filter(kind=NotificationKind.MISSING_SURVEY).values_list(
                "key", flat=True
            )
        )
        for session in overdue_survey_sessions():
            key = f"missing-survey:{session.name}"
            if key in already:
                continue
            study_site = session.timepoint.study_site
            created = notify(
                kind=NotificationKind.MISSING_SURVEY,
                key=key,
                recipients=survey_reminder_recipients(session),
                template="notifications/email/missing_survey",
                context={
                    "session": session,
                    "study": study_site.study,
                    "site": study_site.site,
                    "hours": study_site.study.survey_reminder_hours,
                    "timepoint_url": absolute_url(
                        reverse("qc:timepoint_detail", args=[session.timepoint.name])
                    ),
                },
            )
            run.created += len(created)

    return _run_job("send_survey_reminders", work)


def incidental_finding_contacts(study, *, site=None):
    """Return the active primary and staff contacts of the study who cover `site` (all when
    None)."""
    contacts = Q(is_primary_contact=True) | Q(is_staff_contact=True)
    if site is not None:
        contacts &= Q(site__isnull=True) | Q(site=site)
    return _members(study, q=contacts)


def notify_incidental_finding(finding_key, study, text, reporter, *, site=None):
    """Alert the study's primary and staff contacts of an incidental finding, at once.

    `finding_key` identifies the finding, so reporting it again sends nothing new. With `site`
    (the finding's site), only contacts whose membership covers that site are alerted, so a
    contact limited to another site never receives the text.
    """
    recipients = incidental_finding_contacts(study, site=site)
    return notify(
        kind=NotificationKind.INCIDENTAL_FINDING,
        key=f"incidental-finding:{finding_key}",
        recipients=recipients,
        template="notifications/email/incidental_finding",
        context={
            "study": study,
            "text": text,
            "reporter": reporter,
            "study_url": absolute_url(reverse("qc:study_detail", args=[study.nickname])),
        },
    )


def notify_no_data_received(*, study_site, session_name, since):
    """Tell the study's staff contacts that a session's scans never arrived, once per session.

    `since` is when the REDCap survey reported the session as scanned.
    """
    study = study_site.study
    return notify(
        kind=NotificationKind.NO_DATA_RECEIVED,
        key=f"no-data-received:{session_name}",
        recipients=_members(study, q=Q(is_staff_contact=True)),
        template="notifications/email/no_data_received",
        context={
            "session_name": session_name,
            "study": study,
            "site": study_site.site,
            "since": since,
            "study_url": absolute_url(reverse("qc:study_detail", args=[study.nickname])),
        },
    )


def sessions_needing_review(user):
    """Sessions in the user's studies where they review, not yet signed off."""
    return (
        permissions.visible_sessions(user)
        .filter(sign_off__isnull=True)
        .filter(timepoint__study__in=permissions.studies_with_role(user, Role.QC_REVIEWER))
        .select_related("timepoint__study")
        .order_by("timepoint__study__nickname", "timepoint__name", "number")
    )


def send_digests(today=None):
    """Send each opted-in user their digest: daily ones every day, weekly ones on Mondays."""
    today = today or timezone.localdate()

    def work(run):
        frequencies = [DigestFrequency.DAILY]
        if today.weekday() == 0:
            frequencies.append(DigestFrequency.WEEKLY)
        preferences = NotificationPreference.objects.filter(
            digest__in=frequencies, user__is_active=True
        ).select_related("user")
        for preference in preferences:
            user = preference.user
            sessions = list(sessions_needing_review(user)[:200])
            if not sessions:
                continue
            created = notify(
                kind=NotificationKind.DIGEST,
                key=f"digest:{today.isoformat()}",
                recipients=[user],
                template="notifications/email/digest",
                context={"sessions": sessions, "site_url": settings.SITE_URL},
            )
            run.created += len(created)

    return _run_job("send_digests", work)


# --- Preferences ----------------------------------------------------------------------------


@transaction.atomic
def save_preferences(user, *, kinds, digest):
    """Store which optional kinds the user receives and their digest frequency."""
    preference, _ = NotificationPreference.objects.update_or_create(
        user=user, defaults={"kinds": sorted(kinds), "digest": digest}
    )
    logger.info("notification preferences of %s saved: %s, digest %s", user, kinds, digest)
    return preference


def kinds_received(membership):
    """The labels of the kinds the member receives for their study, given role, flags and
    preferences (queries unless `user__notification_preference` was preloaded)."""
    user = membership.user
    received = []
    if membership.role >= Role.QC_REVIEWER and wants(user, NotificationKind.NEW_SESSIONS):
        received.append(NotificationKind.NEW_SESSIONS.label)
    reminded = membership.role == Role.RA or membership.is_staff_contact
    if reminded and wants(user, NotificationKind.MISSING_SURVEY):
        received.append(NotificationKind.MISSING_SURVEY.label)
    if membership.is_primary_contact or membership.is_staff_contact:
        received.append(NotificationKind.INCIDENTAL_FINDING.label)
    if membership.is_staff_contact and wants(user, NotificationKind.NO_DATA_RECEIVED):
        received.append(NotificationKind.NO_DATA_RECEIVED.label)
    if membership.role >= Role.QC_REVIEWER and wants(user, NotificationKind.DIGEST):
        received.append(NotificationKind.DIGEST.label)
    return received
