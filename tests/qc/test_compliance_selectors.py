"""Compliance selectors: expected and missing scans, header diffs and session badges, each in a
fixed number of queries."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from qc import compliance_services
from qc.compliance_selectors import (
    attach_header_diffs,
    attach_session_compliance,
    scan_expectations,
    study_compliance,
)
from qc.compliance_services import compute_header_diffs
from studies.models import Scan
from tests.qc.compliance_factories import GoldStandardFactory, make_compliance_site
from tests.studies.factories import (
    ExpectedScanFactory,
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db


def add_scans(session, *tags):
    for series, tag in enumerate(tags, start=2):
        ScanFactory(session=session, scantype=ScantypeFactory(tag=tag), series=series)


def missing_tags(expectations):
    return [(item.tag, item.expected, item.found) for item in expectations.missing]


# Expected and missing scans


def test_missing_and_unexpected_tags():
    study_site = make_compliance_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    add_scans(session, "T1", "FLAIR", "FLAIR")

    expectations = scan_expectations([session])[session.pk]

    assert missing_tags(expectations) == [("DTI60-1000", 1, 0), ("RST", 1, 0)]
    assert [(item.tag, item.found) for item in expectations.unexpected] == [("FLAIR", 2)]
    assert expectations.needs_attention is True


def test_count_zero_tag_is_unexpected():
    study_site = make_compliance_site()
    ExpectedScanFactory(study_site=study_site, scantype=ScantypeFactory(tag="FMAP"), count=0)
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    add_scans(session, "T1", "RST", "DTI60-1000", "FMAP")

    expectations = scan_expectations([session])[session.pk]

    assert expectations.missing == []
    assert [item.tag for item in expectations.unexpected] == ["FMAP"]
    assert expectations.needs_attention is False


def test_session_without_scans_misses_every_tag():
    study_site = make_compliance_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))

    expectations = scan_expectations([session.pk])[session.pk]

    assert missing_tags(expectations) == [("DTI60-1000", 1, 0), ("RST", 1, 0), ("T1", 1, 0)]
    assert expectations.unexpected == []


def test_phantom_uses_phantom_count():
    study_site = make_compliance_site(tags={"T1": "anat"})
    ExpectedScanFactory(
        study_site=study_site, scantype=ScantypeFactory(tag="QA"), count=0, phantom_count=2
    )
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))
    human = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    add_scans(phantom, "T1", "QA")
    add_scans(human, "T1", "QA")

    result = scan_expectations([phantom, human])

    assert missing_tags(result[phantom.pk]) == [("QA", 2, 1)]
    assert result[phantom.pk].unexpected == []
    assert result[human.pk].missing == []
    assert [item.tag for item in result[human.pk].unexpected] == ["QA"]


def test_dismissal_covers_same_tags(reviewer):
    study_site = make_compliance_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    add_scans(session, "T1", "RST")
    compliance_services.dismiss_missing_scans(session, reviewer=reviewer, reason="stopped early")

    dismissed = scan_expectations([session])[session.pk]
    Scan.objects.filter(session=session, scantype__tag="RST").delete()
    widened = scan_expectations([session])[session.pk]

    assert dismissed.is_dismissed is True
    assert dismissed.needs_attention is False
    assert dismissed.dismissal.reason == "stopped early"
    # RST is missing now too, which the dismissal did not cover.
    assert widened.is_dismissed is False
    assert widened.needs_attention is True


def sessions_with_scans(count):
    study_site = make_compliance_site()
    GoldStandardFactory(
        study=study_site.study, site=study_site.site, scantype=ScantypeFactory(tag="T1")
    )
    sessions = []
    for _ in range(count):
        session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
        add_scans(session, "T1", "RST")
        sessions.append(session)
    compute_header_diffs(study_site.study)
    return sessions


def count_queries(function, *args):
    with CaptureQueriesContext(connection) as context:
        function(*args)
    return len(context.captured_queries)


@pytest.mark.parametrize("function", [scan_expectations, attach_session_compliance])
def test_session_selectors_constant_queries(function):
    one = count_queries(function, sessions_with_scans(1))
    twenty = count_queries(function, sessions_with_scans(20))

    assert one == twenty


def test_scan_expectations_query_count():
    sessions = sessions_with_scans(20)
    pks = [session.pk for session in sessions]

    # Sessions with their timepoints loaded need no query of their own: the expected counts,
    # the scan counts per tag and the dismissals.
    assert count_queries(scan_expectations, sessions) == 3
    # Primary keys first load the sessions' timepoint fields.
    assert count_queries(scan_expectations, pks) == 4
    assert scan_expectations(pks) == scan_expectations(sessions)


def test_scan_expectations_from_loaded_scans():
    sessions = sessions_with_scans(3)
    ScanFactory(session=sessions[0], scantype=ScantypeFactory(tag="FLAIR"), series=9)
    for session in sessions:
        session.scan_list = list(session.scans.select_related("scantype"))

    # The scan counts per tag come from `scan_list`, so only the expected counts and the
    # dismissals are queried.
    assert count_queries(scan_expectations, sessions) == 2
    result = scan_expectations(sessions)
    assert result == scan_expectations([session.pk for session in sessions])
    assert [item.tag for item in result[sessions[0].pk].unexpected] == ["FLAIR"]
    assert missing_tags(result[sessions[1].pk]) == [("DTI60-1000", 1, 0)]


def test_attach_session_compliance_counts():
    sessions = attach_session_compliance(sessions_with_scans(2))

    compliance = sessions[0].compliance
    assert compliance.diff_counts == {"match": 1, "no_gold_standard": 1}
    assert compliance.mismatch_count == 0
    assert missing_tags(compliance.expectations) == [("DTI60-1000", 1, 0)]


def test_attach_header_diffs_constant_queries():
    scans_one = list(Scan.objects.filter(session__in=sessions_with_scans(1)))
    scans_twenty = list(Scan.objects.filter(session__in=sessions_with_scans(20)))

    # The current diffs with their standards, then the resolutions with their reviewers.
    assert count_queries(attach_header_diffs, scans_one) == 2
    assert count_queries(attach_header_diffs, scans_twenty) == 2


def test_attach_header_diffs_without_diff():
    scan = ScanFactory()

    attach_header_diffs([scan])

    assert scan.header_diff is None


# Study compliance summary


def test_study_compliance_rows_and_trend():
    study_site = make_compliance_site()
    GoldStandardFactory(
        study=study_site.study, site=study_site.site, scantype=ScantypeFactory(tag="T1")
    )
    for index, echo_time in enumerate((0.003, 0.003, 0.004)):
        session = SessionFactory(
            timepoint=TimepointFactory(study_site=study_site),
            acquired_on=date(2025, 1 + index, 15),
        )
        ScanFactory(
            session=session,
            scantype=ScantypeFactory(tag="T1"),
            sidecar={
                "SeriesDescription": "Sag T1 Bravo",
                "RepetitionTime": 2.3,
                "EchoTime": echo_time,
            },
        )
    compute_header_diffs(study_site.study)

    summary = study_compliance(Scan.objects.all())

    row = summary.rows[0]
    assert (row.site, row.tag) == ("CMH", "T1")
    assert row.counts == {"match": 2, "mismatch": 1}
    assert row.share == pytest.approx(2 / 3)
    assert row.share_percent == 66
    assert row.top_fields == [("EchoTime", 1)]
    assert summary.months == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert [(bar.matching, bar.compared) for bar in row.trend.bars] == [(1, 1), (1, 1), (0, 1)]
    assert row.trend.bars[2].title == "2025-03: 0 of 1 compliant (0%)"
    assert summary.totals.compared == 3
