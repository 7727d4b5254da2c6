import re

import pytest
from django.urls import reverse

from qc.models import QCState
from qc.views import TIMEPOINTS_PER_PAGE
from tests.qc.factories import ScanReviewFactory, SessionSignOffFactory
from tests.qc.scenarios import fill_session, make_study_site, study_with_timepoints
from tests.studies.factories import (
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    SiteFactory,
    StudySiteFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db


def overview_url(nickname="SPINS", **query):
    url = reverse("qc:study_detail", args=[nickname])
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return url


def session_line(html, session_name):
    """The HTML of one session's line on the overview."""
    match = re.search(
        rf'<div class="session-line" data-session="{session_name}">(.*?)</div>', html, re.S
    )
    assert match, f"no line for session {session_name}"
    return match.group(1)


def test_overview_session_badges(reviewer_client, reviewer):
    scenario = study_with_timepoints(2, reviewer)
    response = reviewer_client.get(overview_url())

    assert response.status_code == 200
    unsigned = session_line(response.text, scenario.sessions[0].name)
    assert 'data-status="needs-review"' in unsigned
    # The fill leaves the DTI60-1000 scan new.
    assert 'data-new-scans="1"' in unsigned
    signed = session_line(response.text, scenario.sessions[1].name)
    assert 'data-status="signed-off"' in signed
    assert "by reviewer" in signed


def test_overview_missing_scans_title_lists_tags(reviewer_client, reviewer):
    scenario = study_with_timepoints(1, reviewer)
    response = reviewer_client.get(overview_url())

    line = session_line(response.text, scenario.sessions[0].name)
    assert 'data-compliance="missing-scans"' in line
    assert 'title="Fewer scans than expected: DTI60-1000 (1 of 2)"' in line


def test_overview_no_missing_badge_when_complete(reviewer_client, reviewer):
    study_site = make_study_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    fill_session(session, reviewer)
    ScanFactory(session=session, scantype=ScantypeFactory(tag="DTI60-1000"), series=9)
    response = reviewer_client.get(overview_url())

    assert 'data-compliance="missing-scans"' not in session_line(response.text, session.name)


def test_overview_phantom_uses_phantom_count(reviewer_client, reviewer):
    # The phantom has one scan of each tag and phantom_count is 1, so nothing is short, but a
    # human session with the same scans is short of DTI60-1000.
    scenario = study_with_timepoints(1, reviewer)
    response = reviewer_client.get(overview_url())

    phantom = session_line(response.text, scenario.phantom.name)
    assert 'data-compliance="missing-scans"' not in phantom
    assert 'data-status="no-sign-off-needed"' in phantom
    assert 'data-status="needs-review"' not in phantom


def test_overview_agrees_with_study_list(reviewer_client, reviewer):
    study_with_timepoints(5, reviewer)
    listed = reviewer_client.get(reverse("qc:study_list")).context["page"].object_list[0]
    response = reviewer_client.get(overview_url())

    badges = response.text.count('data-status="needs-review"')
    assert badges == listed.needs_review_count
    assert response.context["needs_review_count"] == listed.needs_review_count


def test_overview_needs_review_filter(reviewer_client, reviewer):
    scenario = study_with_timepoints(4, reviewer)
    response = reviewer_client.get(overview_url(show="needs-review"))

    names = [timepoint.name for timepoint in response.context["page"].object_list]
    waiting = [scenario.sessions[0], scenario.sessions[2]]
    assert names == [session.timepoint.name for session in waiting]
    assert response.context["needs_review_only"] is True


def test_filter_keeps_partly_signed_timepoint(reviewer_client, reviewer):
    study_site = make_study_site()
    timepoint = TimepointFactory(study_site=study_site)
    SessionSignOffFactory(session=SessionFactory(timepoint=timepoint, number=1))
    SessionFactory(timepoint=timepoint, number=2)
    response = reviewer_client.get(overview_url(show="needs-review"))

    assert [tp.name for tp in response.context["page"].object_list] == [timepoint.name]
    assert len(response.context["page"].object_list[0].session_list) == 2


def test_overview_paginates_by_name(reviewer_client):
    study_site = make_study_site()
    for _ in range(TIMEPOINTS_PER_PAGE + 1):
        TimepointFactory(study_site=study_site)
    first = reviewer_client.get(overview_url())
    second = reviewer_client.get(overview_url(page=2))

    first_names = [timepoint.name for timepoint in first.context["page"].object_list]
    assert len(first_names) == TIMEPOINTS_PER_PAGE
    assert first_names == sorted(first_names)
    second_names = [timepoint.name for timepoint in second.context["page"].object_list]
    assert len(second_names) == 1
    assert second_names[0] > first_names[-1]


def test_overview_empty_study(reviewer_client):
    make_study_site()
    response = reviewer_client.get(overview_url())

    assert response.status_code == 200
    assert "has no timepoints yet" in response.text


def test_overview_links_compliance_page(reviewer_client, reviewer):
    study_with_timepoints(1, reviewer)
    response = reviewer_client.get(overview_url())

    compliance_url = reverse("qc:compliance:study_compliance", args=["SPINS"])
    assert f'href="{compliance_url}"' in response.text


def test_overview_unknown_study_404(reviewer_client):
    assert reviewer_client.get(overview_url("NOPE")).status_code == 404


@pytest.mark.parametrize("count", [1, 20])
def test_overview_query_count(reviewer_client, reviewer, django_assert_num_queries, count):
    study_with_timepoints(count, reviewer)

    # 1 session, 2 user, 3 study, 4 paginator count, 5 timepoints with site, 6 sessions with
    # status and their new, flagged, blacklisted and conversion-error counts; the compliance
    # badges add 7 expected scans, 8 scan count per session and tag, 9 missing-scan
    # dismissals, 10 header diff count per session and status; 11 sessions needing review in
    # the study, 12 the study's pipeline pages. The README comes with the study (3), and the
    # progress panel loads from its own URL.
    with django_assert_num_queries(12):
        response = reviewer_client.get(overview_url())

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == count + 1


def test_overview_shows_conversion_errors(reviewer_client, reviewer):
    scenario = study_with_timepoints(1, reviewer)
    session = scenario.sessions[0]
    ScanFactory(session=session, series=30, conversion_errors="Missing images? Expected 36")

    response = reviewer_client.get(overview_url())

    line = session_line(response.text, session.name)
    assert 'data-compliance="conversion-error"' in line
    assert "1 conversion error<" in line


def timepoint_order(html):
    return re.findall(r'<tr data-timepoint="([^"]+)">', html)


def test_overview_flagged_and_blacklisted_counts(reviewer_client, reviewer):
    scenario = study_with_timepoints(1, reviewer)
    session = scenario.sessions[0]
    blacklisted = ScanFactory(session=session, series=20)
    ScanReviewFactory(
        scan=blacklisted, state=QCState.BLACKLISTED, comment="artefact", reviewer=reviewer
    )
    response = reviewer_client.get(overview_url())

    line = session_line(response.text, session.name)
    # The fill flags its RST scan.
    assert 'data-flagged-scans="1"' in line
    assert 'data-blacklisted-scans="1"' in line


def test_overview_sort_by_timepoint_descending(reviewer_client, reviewer):
    scenario = study_with_timepoints(3, reviewer)
    response = reviewer_client.get(overview_url(sort="-timepoint"))

    order = timepoint_order(response.text)
    names = sorted(
        [session.timepoint.name for session in scenario.sessions]
        + [scenario.phantom.timepoint.name]
    )
    assert order == names[::-1]


def test_overview_sort_by_site(reviewer_client, reviewer):
    scenario = study_with_timepoints(1, reviewer)
    other_site = StudySiteFactory(study=scenario.study, site=SiteFactory(name="AAA"), code="SPN01")
    first = TimepointFactory(study_site=other_site)
    SessionFactory(timepoint=first)

    by_site = timepoint_order(reviewer_client.get(overview_url(sort="site")).text)
    by_site_descending = timepoint_order(reviewer_client.get(overview_url(sort="-site")).text)

    assert by_site[0] == first.name
    assert by_site_descending[-1] == first.name


def test_overview_unknown_sort_explained(reviewer_client, reviewer):
    study_with_timepoints(2, reviewer)
    response = reviewer_client.get(overview_url(sort="size"))

    assert response.status_code == 200
    assert "Unknown sort order &#x27;size&#x27;" in response.text
    order = timepoint_order(response.text)
    assert order == sorted(order)


@pytest.mark.parametrize("sort", ["timepoint", "-timepoint", "site", "-site"])
def test_overview_sorted_query_count(reviewer_client, reviewer, django_assert_num_queries, sort):
    study_with_timepoints(3, reviewer)

    with django_assert_num_queries(12):
        response = reviewer_client.get(overview_url(sort=sort, page=1))

    assert response.status_code == 200
