import factory

from qc.models import QCState, ScanReview
from tests.studies.factories import ScanFactory, UserFactory


class ScanReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScanReview

    scan = factory.SubFactory(ScanFactory)
    state = QCState.APPROVED
    comment = ""
    reviewer = factory.SubFactory(UserFactory)
