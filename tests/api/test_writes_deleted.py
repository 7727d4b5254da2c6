"""API writes leave deleted timepoints, sessions and scans unchanged and return 409."""

import pytest
from django.urls import reverse

from studies import services
from studies.models import Scan, Session, Timepoint
from tests.studies.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_dashboard_admin=True)


def put(client, url, body):
    return client.put(url, body, format="json")


def test_session_put_in_deleted_timepoint_conflicts(api, spins, admin_user):
    _study_site, session, _scan = spins
    services.delete_object(session.timepoint, user=admin_user, reason="Wrong subject ID.")

    response = put(api, reverse("api:session", args=["SPN01_CMH_0001_01_02"]), {})

    assert response.status_code == 409
    assert response.json()["code"] == "deleted"
    assert "timepoint SPN01_CMH_0001_01 was deleted" in response.json()["message"]
    assert Session.all_objects.filter(timepoint=session.timepoint).count() == 1


def test_session_put_of_deleted_session_conflicts(api, spins, admin_user):
    _study_site, session, _scan = spins
    services.delete_object(session, user=admin_user, reason="Scanned twice.")

    response = put(api, reverse("api:session", args=[session.name]), {"acquired_on": "2024-01-02"})

    assert response.status_code == 409
    assert f"session {session.name} was deleted" in response.json()["message"]
    session.refresh_from_db()
    assert session.acquired_on is None
    assert session.is_deleted


def test_scan_put_of_deleted_scan_conflicts(api, spins, admin_user):
    _study_site, _session, scan = spins
    services.delete_object(scan, user=admin_user, reason="Test series.")

    response = put(api, reverse("api:scan", args=[scan.file_stem]), {"volumes": 9})

    assert response.status_code == 409
    assert f"scan {scan.name} was deleted" in response.json()["message"]
    scan = Scan.all_objects.get(pk=scan.pk)
    assert scan.volumes != 9
    assert scan.is_deleted


def test_timepoint_list_leaves_deleted_out(api, spins, admin_user):
    _study_site, session, _scan = spins
    services.delete_object(session.timepoint, user=admin_user, reason="Wrong subject ID.")

    response = api.get(reverse("api:study_timepoints", args=["SPINS"]))

    assert response.status_code == 200
    assert response.json()["results"] == []
    assert Timepoint.all_objects.count() == 1
