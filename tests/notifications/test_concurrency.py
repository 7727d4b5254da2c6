"""Two workers sending the same notification at once send one email: the claim decides."""

import threading

import pytest
from django.core import mail
from django.db import connection

from notifications import services
from notifications.models import Notification, NotificationKind, NotificationStatus
from tests.studies.factories import UserFactory

WORKERS = 2


# SQLite serialises its writers, so the threads would not race there.
@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_threads_send_once():
    notification = Notification.objects.create(
        recipient=UserFactory(email="ra@example.org"),
        kind=NotificationKind.MISSING_SURVEY,
        key="missing-survey:SPN01_CMH_0001_01_01",
        subject="Missing survey",
        body_text="Body\n",
    )
    start = threading.Barrier(WORKERS)
    statuses = []

    def send():
        try:
            start.wait(timeout=10)
            statuses.append(services.send_notification(notification.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(mail.outbox) == 1
    assert NotificationStatus.SENT in statuses
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 1
