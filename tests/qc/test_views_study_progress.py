"""Progress panel: sessions acquired, reviewed and signed off per site and month."""

import datetime
import re

import pytest
from django.urls import reverse

from accounts.models import Role, StudyMembership
from qc import progress
from qc.models import QCState
from studies.models import Session
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    SessionFactory,
    SiteFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def progress_url(nickname="SPINS"):
    return reverse("qc:study_progress", args=[nickname])


def add_session(study_site, acquired_on, *, scans=2, reviewed=0, signed_off=False):
    session = SessionFactory(
        timepoint=TimepointFactory(study_site=study_site), acquired_on=acquired_on
    )
    for index in range(scans):
        scan = ScanFactory(session=session)
        if index < reviewed:
            ScanReviewFactory(scan=scan, state=QCState.APPROVED)
    if signed_off:
        SessionSignOffFactory(session=session)
    return session


def counts(panel):
    """{(site, 'YYYY-MM'): (acquired, reviewed, signed off)} for months with sessions."""
    return {
        (site.site, f"{month.month:%Y-%m}"): (month.acquired, month.reviewed, month.signed_off)
        for site in panel.sites
        for month in site.months
        if month.acquired
    }


@pytest.fixture
def cmh():
    return make_study_site()


@pytest.fixture
def zhh(cmh):
    return StudySiteFactory(study=cmh.study, site=SiteFactory(name="ZHH"), code="SPN01")


def test_progress_counts_per_site_and_month(cmh, zhh):
    add_session(cmh, datetime.date(2026, 1, 5), reviewed=2, signed_off=True)
    add_session(cmh, datetime.date(2026, 1, 31), reviewed=2)
    add_session(cmh, datetime.date(2026, 1, 20), reviewed=1)
    add_session(cmh, datetime.date(2026, 3, 1))
    add_session(zhh, datetime.date(2026, 2, 14), reviewed=2, signed_off=True)

    panel = progress.study_progress(Session.objects.all())

    assert counts(panel) == {
        ("CMH", "2026-01"): (3, 2, 1),
        ("CMH", "2026-03"): (1, 0, 0),
        ("ZHH", "2026-02"): (1, 1, 1),
    }
    assert [f"{month:%Y-%m}" for month in panel.months] == ["2026-01", "2026-02", "2026-03"]
    assert [site.site for site in panel.sites] == ["CMH", "ZHH"]
    assert [month.acquired for month in panel.sites[1].months] == [0, 1, 0]


def test_progress_session_without_scans_not_reviewed(cmh):
    add_session(cmh, datetime.date(2026, 1, 5), scans=0)

    panel = progress.study_progress(Session.objects.all())

    assert counts(panel) == {("CMH", "2026-01"): (1, 0, 0)}


def test_progress_review_back_to_new_counts_unreviewed(cmh):
    session = add_session(cmh, datetime.date(2026, 1, 5), scans=1, reviewed=1)
    ScanReviewFactory(scan=session.scans.get(), state=QCState.NEW)

    panel = progress.study_progress(Session.objects.all())

    assert counts(panel) == {("CMH", "2026-01"): (1, 0, 0)}


def test_progress_leaves_out_phantoms(cmh):
    SessionFactory(
        timepoint=PhantomTimepointFactory(study_site=cmh), acquired_on=datetime.date(2026, 1, 2)
    )
    add_session(cmh, datetime.date(2026, 1, 5))

    panel = progress.study_progress(Session.objects.all())

    assert counts(panel) == {("CMH", "2026-01"): (1, 0, 0)}


def test_progress_counts_undated_apart(cmh):
    add_session(cmh, None)
    add_session(cmh, None)

    panel = progress.study_progress(Session.objects.all())

    assert panel.sites == []
    assert panel.undated == 2


def test_progress_shows_recent_months_only(cmh):
    add_session(cmh, datetime.date(2020, 5, 5))
    add_session(cmh, datetime.date(2024, 2, 1))
    add_session(cmh, datetime.date(2026, 1, 5))

    panel = progress.study_progress(Session.objects.all())

    assert len(panel.months) == progress.PROGRESS_MONTHS
    assert f"{panel.months[0]:%Y-%m}" == "2024-02"
    assert f"{panel.months[-1]:%Y-%m}" == "2026-01"
    assert panel.earlier == 1
    assert sum(month.acquired for month in panel.sites[0].months) == 2


def test_progress_svg_bars_and_escaping():
    months = [
        progress.MonthCounts(datetime.date(2025, 12, 1), 4, 2, 1),
        progress.MonthCounts(datetime.date(2026, 1, 1), 0, 0, 0),
    ]
    site = progress.SiteProgress(site='<script>"x"</script>', months=months)

    svg = progress.progress_svg(site)

    assert svg.startswith('<svg class="progress-chart"')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'role="img"' in svg
    assert "<title>Sessions at" in svg
    bars = re.findall(
        r'<rect [^>]*data-month="2025-12" data-series="(\w+)" data-count="(\d+)"', svg
    )
    assert bars == [("acquired", "4"), ("reviewed", "2"), ("signed_off", "1")]
    assert "style=" not in svg
    assert ">2025<" in svg
    assert ">2026<" in svg


@pytest.mark.parametrize(
    ("value", "maximum"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (480, 500)]
)
def test_progress_axis_maximum(value, maximum):
    assert progress._nice_maximum(value) == maximum


def test_progress_view_renders_chart_and_table(reviewer_client, cmh):
    add_session(cmh, datetime.date(2026, 1, 5), reviewed=2, signed_off=True)

    response = reviewer_client.get(progress_url())

    assert response.status_code == 200
    assert response.text.count('<svg class="progress-chart"') == 1
    row = re.search(r'<tr data-site="CMH" data-month="2026-01">.*?</tr>', response.text, re.S)
    assert row
    assert [
        int(cell) for cell in re.findall(r"<td class=\"text-end\">(\d+)</td>", row.group(0))
    ] == [1, 1, 1]
    assert "<script" not in response.text


def test_progress_view_empty(reviewer_client, cmh):
    response = reviewer_client.get(progress_url())

    assert 'data-progress="empty"' in response.text


def test_progress_site_member_sees_own_site(client, cmh, zhh):
    add_session(cmh, datetime.date(2026, 1, 5))
    add_session(zhh, datetime.date(2026, 1, 6))
    member = UserFactory(username="cmh-only")
    StudyMembership.objects.create(user=member, study=cmh.study, site=cmh.site, role=Role.VIEWER)
    client.force_login(member)

    response = client.get(progress_url())

    panel = response.context["panel"]
    assert [site.site for site in panel.sites] == ["CMH"]
    assert 'data-site="ZHH"' not in response.text


@pytest.mark.parametrize("count", [1, 20])
def test_progress_query_count(reviewer_client, django_assert_num_queries, cmh, zhh, count):
    for index in range(count):
        study_site = cmh if index % 2 else zhh
        add_session(study_site, datetime.date(2025, 1 + index % 12, 1), reviewed=index % 3)

    # 1 session, 2 user, 3 study, 4 sessions counted per site and month.
    with django_assert_num_queries(4):
        response = reviewer_client.get(progress_url())

    panel = response.context["panel"]
    assert sum(site.totals.acquired for site in panel.sites) == count
