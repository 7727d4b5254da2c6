from datetime import date

import pytest
from django.core import mail
from django.test import override_settings

from accounts.models import Role
from accounts.services import submit_account_request
from notifications import services
from notifications.models import (
    DigestFrequency,
    JobRun,
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
)
from studies.models import Session
from studies.signals import import_finished
from tests.notifications.conftest import FAILING_BACKEND, make_session, member
from tests.redcap.factories import SessionSurveyFactory, SurveyDismissalFactory
from tests.studies.factories import UserFactory

# On-commit callbacks (which queue the sending) run only outside a wrapping test transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def reminder_keys():
    return set(
        Notification.objects.filter(kind=NotificationKind.MISSING_SURVEY).values_list(
            "recipient__username", "key"
        )
    )


def test_send_task_twice_sends_once(study_site, people, sync_tasks):
    notification = services.notify_incidental_finding(
        "F1", study_site.study, "Cyst.", people["ra"]
    )[0]

    services.send_notification(notification.pk)

    assert len(mail.outbox) == 2
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 1
    assert notification.sent_at is not None


def test_email_has_text_html_and_absolute_link(study_site, people, sync_tasks, settings):
    settings.SITE_URL = "https://qc.example.org"

    services.notify_incidental_finding("F1", study_site.study, "Cyst <left>.", people["ra"])

    message = mail.outbox[0]
    assert "https://qc.example.org/studies/SPINS/" in message.body
    assert "Cyst <left>." in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Cyst &lt;left&gt;." in html


def test_incidental_finding_goes_to_contacts(study_site, people, sync_tasks):
    services.notify_incidental_finding("F1", study_site.study, "Cyst.", people["ra"])

    assert sorted(message.to[0] for message in mail.outbox) == [
        "primary@example.org",
        "staff@example.org",
    ]


def test_incidental_finding_reported_twice_sends_once(study_site, people, sync_tasks):
    services.notify_incidental_finding("F1", study_site.study, "Cyst.", people["ra"])
    services.notify_incidental_finding("F1", study_site.study, "Cyst.", people["ra"])

    assert len(mail.outbox) == 2
    assert Notification.objects.count() == 2


def test_failed_send_recorded_then_retried(study_site, people, sync_tasks, settings):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    services.notify_incidental_finding("F1", study_site.study, "Cyst.", people["ra"])

    failed = Notification.objects.filter(status=NotificationStatus.FAILED)
    assert failed.count() == 2
    assert "SMTPException: 421 service not available" in failed.first().last_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    run = services.retry_failed_notifications()

    assert run.sent == 2
    assert run.finished_at is not None
    assert len(mail.outbox) == 2
    statuses = set(Notification.objects.values_list("status", "attempts"))
    assert statuses == {(NotificationStatus.SENT, 2)}


def test_retry_stops_at_max_attempts(study_site, people, sync_tasks, settings):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    services.notify_incidental_finding("F1", study_site.study, "Cyst.", people["ra"])

    first = services.retry_failed_notifications()
    second = services.retry_failed_notifications()

    assert first.failed == 2
    assert second.failed == 0
    assert set(Notification.objects.values_list("status", "attempts")) == {
        (NotificationStatus.FAILED, 2)
    }


def test_overdue_survey_reminds_ra_and_staff(study_site, people, sync_tasks):
    make_session(study_site)

    run = services.send_survey_reminders()

    assert run.created == 2
    assert reminder_keys() == {
        ("ra", "missing-survey:SPN01_CMH_0001_01_01"),
        ("staff", "missing-survey:SPN01_CMH_0001_01_01"),
    }
    assert len(mail.outbox) == 2
    assert "SPN01_CMH_0001_01_01" in mail.outbox[0].subject


def test_reminder_job_twice_reminds_once(study_site, people, sync_tasks):
    make_session(study_site)

    services.send_survey_reminders()
    second = services.send_survey_reminders()

    assert second.created == 0
    assert len(mail.outbox) == 2
    assert JobRun.objects.filter(job="send_survey_reminders").count() == 2


def test_phantom_gets_no_reminder(study_site, people, sync_tasks):
    make_session(study_site, phantom=True)

    services.send_survey_reminders()

    assert reminder_keys() == set()


def test_dismissed_warning_gets_no_reminder(study_site, people, sync_tasks):
    session = make_session(study_site)
    SurveyDismissalFactory(session=session)

    services.send_survey_reminders()

    assert reminder_keys() == set()


def test_arrived_survey_gets_no_reminder(study_site, people, sync_tasks):
    session = make_session(study_site)
    SessionSurveyFactory(session=session)

    services.send_survey_reminders()

    assert reminder_keys() == set()


def test_recent_session_gets_no_reminder(study_site, people, sync_tasks):
    make_session(study_site, hours_ago=47)

    services.send_survey_reminders()

    assert reminder_keys() == set()


def test_study_reminder_hours_respected(study_site, people, sync_tasks):
    study_site.study.survey_reminder_hours = 1
    study_site.study.save(update_fields=["survey_reminder_hours"])
    make_session(study_site, hours_ago=2)

    services.send_survey_reminders()

    assert len(reminder_keys()) == 2


def test_site_without_redcap_gets_no_reminder(study_site, people, sync_tasks):
    study_site.uses_redcap = False
    study_site.save(update_fields=["uses_redcap"])
    make_session(study_site)

    services.send_survey_reminders()

    assert reminder_keys() == set()


def test_import_finished_notifies_reviewers_once(study_site, people, sync_tasks):
    other_site_reviewer = member("zhh", study_site, Role.QC_REVIEWER, site=None)
    sessions = [make_session(study_site, "0001"), make_session(study_site, "0002")]

    import_finished.send(sender=Session, study=study_site.study, created=sessions, run_id="r1")
    import_finished.send(sender=Session, study=study_site.study, created=sessions, run_id="r1")

    recipients = sorted(message.to[0] for message in mail.outbox)
    assert recipients == [
        "primary@example.org",
        "ra@example.org",
        "reviewer@example.org",
        other_site_reviewer.email,
    ]
    body = mail.outbox[0].body
    assert "SPN01_CMH_0001_01_01" in body
    assert "SPN01_CMH_0002_01_01" in body
    assert Notification.objects.filter(key="new-sessions:SPINS:r1").count() == 4


def test_preference_excludes_kind(study_site, people, sync_tasks):
    services.save_preferences(people["ra"], kinds=[], digest=DigestFrequency.NONE)
    make_session(study_site)

    services.send_survey_reminders()

    assert reminder_keys() == {("staff", "missing-survey:SPN01_CMH_0001_01_01")}


def test_digest_lists_sessions_needing_review(study_site, people, sync_tasks):
    make_session(study_site)
    NotificationPreference.objects.create(user=people["reviewer"], digest=DigestFrequency.WEEKLY)

    tuesday = services.send_digests(today=date(2026, 12, 1))
    monday = services.send_digests(today=date(2026, 11, 30))

    assert tuesday.created == 0
    assert monday.created == 1
    assert mail.outbox[0].to == ["reviewer@example.org"]
    assert "SPN01_CMH_0001_01_01" in mail.outbox[0].body


@override_settings(SITE_URL="https://qc.example.org")
def test_absolute_url_uses_site_url():
    assert services.absolute_url("/x/") == "https://qc.example.org/x/"


def test_account_request_emails_logged(sync_tasks):
    admin = UserFactory(username="boss", email="boss@example.org", is_dashboard_admin=True)
    requester = UserFactory(username="new", email="new@example.org")

    account_request = submit_account_request(
        requester,
        institution="CAMH",
        position="RA",
        studies_and_sites="SPINS at CMH",
        reason="Scanning participants.",
    )

    logged = set(Notification.objects.values_list("recipient__username", "kind", "key", "status"))
    key = f"account-request:{account_request.pk}"
    assert logged == {
        ("new", NotificationKind.ACCOUNT_REQUESTED, f"{key}:request_received", "sent"),
        ("boss", NotificationKind.ACCOUNT_REQUESTED, f"{key}:request_new_admin", "sent"),
    }
    assert sorted(message.to[0] for message in mail.outbox) == [admin.email, requester.email]
