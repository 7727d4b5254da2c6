"""import_archive query counts: a session costs the same number of queries whatever its number
of scans, for a new archive (header diffs and the other import receivers included) and for an
unchanged re-run."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from qc.models import HeaderDiff
from studies import importer
from studies.models import Scan
from tests.qc.compliance_factories import GoldStandardFactory
from tests.studies.archive_builder import ArchiveBuilder
from tests.studies.factories import (
    ExpectedScanFactory,
    ScantypeFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
)

pytestmark = pytest.mark.django_db

SESSION = "STUDY_SITE_0001_01_01"
SIDECAR = {"SeriesNumber": 2, "EchoTime": 0.003, "AcquisitionDateTime": "2024-03-15T10:02:03"}


@pytest.fixture
def study(tmp_path):
    study = StudyFactory(nickname="STUDY", archive_path=str(tmp_path / "STUDY"))
    study_site = StudySiteFactory(study=study, site=SiteFactory(name="SITE"), code="STUDY")
    scantype = ScantypeFactory(tag="T1", qc_type="anat")
    ExpectedScanFactory(study_site=study_site, scantype=scantype, count=1)
    GoldStandardFactory(study=study, site=study_site.site, scantype=scantype, sidecar=SIDECAR)
    return study


def write_session(study, scans):
    archive = ArchiveBuilder(study.archive_root)
    for series in range(2, scans + 2):
        archive.add_scan(
            f"{SESSION}_T1_{series:02d}_SagT1", sidecar={**SIDECAR, "SeriesNumber": series}
        )


@pytest.mark.parametrize("scans", [2, 10])
def test_new_session_query_count(study, scans, django_capture_on_commit_callbacks):
    write_session(study, scans)

    # Set-up: 1 study sites, 2 their alternate codes, 3 task files, 4 expected scans.
    # 5 timepoints of the folder batch (none yet, so no session or scan query).
    # The session, in a savepoint because the test runs in a transaction: 6 SAVEPOINT,
    # 7 INSERT timepoint, 8 INSERT session, 9 INSERT scans, 10 RELEASE.
    # sessions_imported, once the transaction commits. Header diffs: 11 gold standards,
    # 12 comparison settings, 13 SAVEPOINT, 14 lock the sessions, 15 scans, 16 current diffs,
    # 17 sidecar repairs, 18 earlier diffs, 19 INSERT diffs, 20 RELEASE. REDCap: 21 session
    # names, 22 unmatched records. Pipelines: 23 open download jobs.
    # import_finished: 24 INSERT of the new-session notice task into django-q's queue.
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = importer.import_archive(study)

    assert result.counts["scans_created"] == scans
    assert HeaderDiff.objects.current().count() == scans
    assert len(queries) == 24, "\n".join(query["sql"][:150] for query in queries)


@pytest.mark.parametrize("scans", [2, 10])
def test_unchanged_session_query_count(study, scans, django_capture_on_commit_callbacks):
    write_session(study, scans)
    with django_capture_on_commit_callbacks(execute=True):
        importer.import_archive(study)

    # Set-up: 1 study sites, 2 their alternate codes, 3 task files, 4 expected scans.
    # The folder batch: 5 timepoints, 6 sessions, 7 scans (without sidecars).
    # 8 SAVEPOINT and 9 RELEASE of the session's transaction, empty because nothing changed
    # (outside a test's transaction PostgreSQL receives nothing for it).
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = importer.import_archive(study)

    assert result.counts["scans_unchanged"] == scans
    assert len(queries) == 9, "\n".join(query["sql"][:150] for query in queries)
    assert Scan.objects.count() == scans
