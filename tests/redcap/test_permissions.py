"""Who may do what on every redcap URL: (URL name, method, persona) -> status.

The trigger URL is public (REDCap cannot sign in) and is covered in test_views_trigger.py.
The personas are anonymous, an outsider with no role, a viewer of SPINS, an RA of SPINS at UTO
only, an RA of SPINS at CMH only, and a dashboard admin. The objects are at CMH.
"""

import pytest
from django.urls import URLPattern, get_resolver, reverse

from accounts.models import Role
from redcap.models import SessionSurvey, SurveyDismissal, TriggerStatus
from tests.redcap.conftest import member
from tests.redcap.factories import RedcapRecordFactory, RedcapTriggerFactory
from tests.studies.factories import SiteFactory, StudySiteFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "login"
OK, FOUND, FORBIDDEN, NOT_FOUND, NOT_ALLOWED = 200, 302, 403, 404, 405
PERSONAS = ("anonymous", "outsider", "viewer", "other_site_ra", "ra", "admin")

# (URL name, method): statuses for the personas above, in order.
MATRIX = {
    ("redcap:unmatched_records", "GET"): (LOGIN, FORBIDDEN, FORBIDDEN, OK, OK, OK),
    ("redcap:unmatched_records", "POST"): (
        LOGIN,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
    ),
    ("redcap:failed_triggers", "GET"): (LOGIN, FORBIDDEN, FORBIDDEN, OK, OK, OK),
    ("redcap:failed_triggers", "POST"): (
        LOGIN,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
    ),
    # The record belongs to a configuration of SPINS/CMH only.
    ("redcap:link_record", "POST"): (LOGIN, FORBIDDEN, FORBIDDEN, NOT_FOUND, FOUND, FOUND),
    ("redcap:link_record", "GET"): (
        LOGIN,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
    ),
    ("redcap:retry_trigger", "POST"): (LOGIN, FORBIDDEN, FORBIDDEN, NOT_FOUND, FOUND, FOUND),
    ("redcap:retry_trigger", "GET"): (
        LOGIN,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
    ),
    # The session is at CMH; the UTO-only RA cannot see it.
    ("redcap:dismiss_survey", "POST"): (LOGIN, NOT_FOUND, FORBIDDEN, NOT_FOUND, FOUND, FOUND),
    ("redcap:dismiss_survey", "GET"): (
        LOGIN,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
        NOT_ALLOWED,
    ),
}
CASES = [
    (name, method, persona, statuses[index])
    for (name, method), statuses in MATRIX.items()
    for index, persona in enumerate(PERSONAS)
]


@pytest.fixture
def objects(session, study_site, config):
    StudySiteFactory(study=study_site.study, site=SiteFactory(name="UTO"), code="SPN01")
    record = RedcapRecordFactory(config=config)
    trigger = RedcapTriggerFactory(config=config, status=TriggerStatus.FAILED)
    return {"session": session, "record": record, "trigger": trigger}


def login(client, persona, study_site):
    if persona == "anonymous":
        return client
    if persona == "outsider":
        user = UserFactory(username="outsider")
    elif persona == "viewer":
        user = member("viewer", study_site, Role.VIEWER)
    elif persona == "other_site_ra":
        uto = study_site.study.study_sites.get(site__name="UTO")
        user = member("uto-ra", uto, Role.RA, site_only=True)
    elif persona == "ra":
        user = member("cmh-ra", study_site, Role.RA, site_only=True)
    else:
        user = UserFactory(username="admin", is_dashboard_admin=True)
    client.force_login(user)
    return client


def url_for(name, objects):
    args = {
        "redcap:unmatched_records": [],
        "redcap:failed_triggers": [],
        "redcap:link_record": [objects["record"].pk],
        "redcap:retry_trigger": [objects["trigger"].pk],
        "redcap:dismiss_survey": [objects["session"].name],
    }[name]
    return reverse(name, args=args)


POST_DATA = {
    "redcap:link_record": {"session_id": "SPN01_CMH_0001_01_01"},
    "redcap:dismiss_survey": {"reason": "Scan aborted."},
}


def writes():
    return SessionSurvey.objects.count(), SurveyDismissal.objects.count()


@pytest.mark.parametrize(("name", "method", "persona", "expected"), CASES)
def test_permission_matrix(client, objects, study_site, name, method, persona, expected):
    client = login(client, persona, study_site)
    url = url_for(name, objects)
    data = POST_DATA.get(name, {})
    response = client.get(url) if method == "GET" else client.post(url, data)

    if expected == LOGIN:
        assert response.status_code == 302
        assert response.url.startswith(f"{reverse('account_login')}?next=")
    else:
        assert response.status_code == expected
    if expected != FOUND:
        assert writes() == (0, 0)
        objects["trigger"].refresh_from_db()
        assert objects["trigger"].status == TriggerStatus.FAILED


def test_matrix_covers_every_url():
    resolver = get_resolver()
    redcap_patterns = resolver.namespace_dict["redcap"][1].url_patterns
    names = {
        f"redcap:{pattern.name}"
        for pattern in redcap_patterns
        if isinstance(pattern, URLPattern) and pattern.name != "trigger"
    }

    assert names == {name for name, _ in MATRIX}
