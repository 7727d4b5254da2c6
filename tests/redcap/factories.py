"""factory-boy factories of the REDCap models: each builds a valid object with no arguments."""

import factory
from django.utils import timezone

from redcap.models import (
    LinkKind,
    RedcapConfig,
    RedcapRecord,
    RedcapTrigger,
    SessionSurvey,
    SurveyDismissal,
)
from tests.studies.factories import SessionFactory, UserFactory

TOKEN = "0123456789ABCDEF0123456789ABCDEF"


class RedcapConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RedcapConfig
        # The hook below only adds many-to-many rows, so the instance needs no second save.
        skip_postgeneration_save = True

    url = "http://127.0.0.1:9/"
    project_id = factory.Sequence(lambda n: 100 + n)
    instrument = "tigrlab_scan_completed"
    token = TOKEN
    redcap_version = "14.5.2"

    @factory.post_generation
    def study_sites(self, create, extracted, **kwargs):
        if create and extracted:
            self.study_sites.add(*extracted)


class RedcapRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RedcapRecord

    config = factory.SubFactory(RedcapConfigFactory)
    record_id = factory.Sequence(lambda n: str(n + 1))
    session_id_text = "SPN01_CMH_0001_01_01"
    completed_on = factory.LazyFunction(lambda: timezone.localdate())
    comment = "Went well."
    fetched_at = factory.LazyFunction(timezone.now)


class RedcapTriggerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RedcapTrigger

    config = factory.SubFactory(RedcapConfigFactory)
    record_id = factory.Sequence(lambda n: str(n + 1))


class SessionSurveyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SessionSurvey

    session = factory.SubFactory(SessionFactory)
    record = factory.SubFactory(RedcapRecordFactory)
    kind = LinkKind.MATCHED


class SurveyDismissalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SurveyDismissal

    session = factory.SubFactory(SessionFactory)
    reason = "Scan stopped before the survey was due."
    dismissed_by = factory.SubFactory(UserFactory)
