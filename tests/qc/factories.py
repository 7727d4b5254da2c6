import factory

from qc.models import QCState, ScanReview, SessionSignOff
from tests.studies.factories import ScanFactory, SessionFactory, UserFactory


class ScanReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScanReview

    scan = factory.SubFactory(ScanFactory)
    state = QCState.APPROVED
    comment = ""
    reviewer = factory.SubFactory(UserFactory)


class SessionSignOffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SessionSignOff

    session = factory.SubFactory(SessionFactory)
    reviewer = factory.SubFactory(UserFactory)
