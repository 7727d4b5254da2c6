"""import_archive leaves deleted timepoints, sessions and scans hidden and unchanged."""

import pytest

from studies import services
from studies.models import Scan, Session, Timepoint
from tests.studies.factories import UserFactory
from tests.studies.test_import_archive import (
    SIMPLE_SIDECAR,
    T1_STEM,
    archive,  # noqa: F401 - fixture
    run_import,
    study,  # noqa: F401 - fixture
    summary_line,
)

pytestmark = pytest.mark.django_db

REST_STEM = "STUDY_SITE_0001_01_01_RST_03_Resting"
REPEAT_T1_STEM = "STUDY_SITE_0001_01_02_T1_02_SagT1Bravo"
OTHER_T1_STEM = "STUDY_SITE_0002_01_01_T1_02_SagT1Bravo"


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_dashboard_admin=True)


@pytest.fixture
def imported(archive):  # noqa: F811 - fixture
    for stem in (T1_STEM, REST_STEM, REPEAT_T1_STEM, OTHER_T1_STEM):
        archive.add_scan(stem, sidecar=SIMPLE_SIDECAR)
    output = run_import("STUDY")
    assert output.error is None, output.stderr
    return archive


def test_deleted_scan_left_hidden(imported, admin_user):
    scan = Scan.objects.get(name="STUDY_SITE_0001_01_01_RST_03")
    services.delete_object(scan, user=admin_user, reason="Test series.")
    imported.add_scan(REST_STEM, sidecar={**SIMPLE_SIDECAR, "EchoTime": 0.004})

    output = run_import("STUDY")

    assert output.error is None, output.stderr
    assert summary_line(output) == (
        "Imported STUDY: 0 timepoints, 0 sessions, 0 scans created, 0 updated, 3 unchanged, "
        "0 skipped, 1 deleted scan left hidden"
    )
    scan = Scan.all_objects.get(pk=scan.pk)
    assert scan.is_deleted
    assert scan.sidecar == SIMPLE_SIDECAR
    assert Scan.all_objects.count() == 4


def test_deleted_session_and_timepoint_left_hidden(imported, admin_user):
    session = Session.objects.get(timepoint__name="STUDY_SITE_0001_01", number=2)
    timepoint = Timepoint.objects.get(name="STUDY_SITE_0002_01")
    services.delete_object(session, user=admin_user, reason="Scanned twice.")
    services.delete_object(timepoint, user=admin_user, reason="Wrong subject ID.")
    imported.add_scan("STUDY_SITE_0001_01_02_RST_03_Resting", sidecar=SIMPLE_SIDECAR)
    imported.add_scan("STUDY_SITE_0002_01_01_RST_03_Resting", sidecar=SIMPLE_SIDECAR)

    output = run_import("STUDY")

    assert output.error is None, output.stderr
    assert summary_line(output) == (
        "Imported STUDY: 0 timepoints, 0 sessions, 0 scans created, 0 updated, 2 unchanged, "
        "0 skipped, 1 deleted timepoint left hidden, 1 deleted session left hidden"
    )
    assert Scan.all_objects.count() == 4
    assert Session.all_objects.count() == 3
    assert Session.all_objects.get(pk=session.pk).is_deleted
    assert Timepoint.all_objects.get(pk=timepoint.pk).is_deleted


def test_requested_session_of_deleted_timepoint_not_missing(imported, admin_user):
    timepoint = Timepoint.objects.get(name="STUDY_SITE_0002_01")
    services.delete_object(timepoint, user=admin_user, reason="Wrong subject ID.")

    output = run_import("STUDY", "STUDY_SITE_0002_01_01")

    assert output.error is None, output.stderr
    assert "not found in the archive" not in output.stderr
    assert "1 deleted timepoint left hidden" in summary_line(output)
