"""Page loads that find a timepoint's issue list stale at the same moment (PostgreSQL)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from integrations import services
from integrations.models import TimepointIssues
from tests.qc.test_concurrency import run_together
from tests.studies.factories import TimepointFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

LOADS = 12


@pytest.mark.parametrize("stored", ["stale", "missing"])
def test_parallel_loads_queue_one_refresh(settings, stored):
    settings.ISSUE_TRACKER_REFRESH_MINUTES = 15
    timepoint = TimepointFactory()
    if stored == "stale":
        TimepointIssues.objects.create(
            timepoint=timepoint, checked_at=timezone.now() - timedelta(hours=1)
        )
    results = []

    def load():
        results.append(services.queue_issue_refresh_if_due(timepoint, now=timezone.now()))

    errors = run_together(*[load] * LOADS)

    assert errors == []
    assert results.count(True) == 1
    assert len(results) == LOADS
    assert OrmQ.objects.count() == 1
