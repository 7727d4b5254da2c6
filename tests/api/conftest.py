"""API test fixtures: token clients and a study a pipeline writes to."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, StudyMembership
from api.models import ApiToken
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)


def token_client(user):
    """An APIClient that sends a new API token of `user`."""
    _row, token = ApiToken.issue(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def pipeline(db):
    """The pipeline account: study admin of SPINS (at every site)."""
    return UserFactory(username="pipeline")


@pytest.fixture
def spins(pipeline):
    """SPINS at CMH (code SPN01) with one session SPN01_CMH_0001_01_01 and its T1 scan."""
    study_site = make_study_site()
    StudyMembership.objects.create(user=pipeline, study=study_site.study, role=Role.STUDY_ADMIN)
    timepoint = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    session = SessionFactory(timepoint=timepoint)
    scan = ScanFactory(session=session, scantype=ScantypeFactory(tag="T1"), series=2)
    return study_site, session, scan


@pytest.fixture
def api(pipeline):
    return token_client(pipeline)
