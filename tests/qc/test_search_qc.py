"""The QC search page and its CSV and JSON downloads."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from qc.models import QCState, ScanReview
from qc.search import QC_ROW_COLUMNS
from qc.search_views import CappedCountPaginator
from tests.qc.factories import ScanReviewFactory
from tests.qc.scenarios import make_study_site, study_with_timepoints
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PAGE = reverse("qc:qc_search")
CSV_URL = reverse("qc:qc_search_export", args=["csv"])
JSON_URL = reverse("qc:qc_search_export", args=["json"])


def page_scans(response):
    return [row["scan"] for row in response.context["page"].rows]


def download(client, url, params):
    response = client.get(url, params)
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def world(reviewer):
    """SPINS with two timepoints (T1 approved, RST flagged 'motion', DTI new in each) and a
    phantom, plus a second reviewer's blacklisting of the first DTI scan."""
    scenario = study_with_timepoints(2, reviewer)
    dti = scenario.sessions[0].scans.get(scantype__tag="DTI60-1000")
    other = UserFactory(username="bob")
    ScanReviewFactory(scan=dti, state=QCState.BLACKLISTED, comment="Signal dropout", reviewer=other)
    scenario.dti = dti
    return scenario


# --- Filters --------------------------------------------------------------------------------


def test_qc_search_defaults_to_current_human_scans(reviewer_client, world):
    response = reviewer_client.get(PAGE)

    assert response.status_code == 200
    scans = page_scans(response)
    assert len(scans) == 6
    assert not any("PHA" in name for name in scans)


def test_qc_search_includes_phantoms_on_request(reviewer_client, world):
    response = reviewer_client.get(PAGE, {"phantoms": "on"})

    assert len(page_scans(response)) == 9


def test_qc_search_filters_new_state(reviewer_client, world):
    response = reviewer_client.get(PAGE, {"state": "new"})

    rows = response.context["page"].rows
    assert [row["qc_state"] for row in rows] == ["new"]
    assert rows[0]["scan"] == world.sessions[1].scans.get(scantype__tag="DTI60-1000").name


def test_qc_search_filters_several_states(reviewer_client, world):
    response = reviewer_client.get(PAGE, {"state": ["flagged", "blacklisted"]})

    states = sorted(row["qc_state"] for row in response.context["page"].rows)
    assert states == ["blacklisted", "flagged", "flagged"]


def test_qc_search_filters_comment_and_reviewer(reviewer_client, world):
    response = reviewer_client.get(PAGE, {"comment": "DROPOUT", "reviewer": "bo"})

    assert page_scans(response) == [world.dti.name]


def test_qc_search_filters_tag_and_site(reviewer_client, world):
    response = reviewer_client.get(PAGE, {"tag": "RST", "site": "CMH", "study": "SPINS"})

    assert {row["tag"] for row in response.context["page"].rows} == {"RST"}
    assert len(page_scans(response)) == 2


def test_qc_search_filters_review_dates(reviewer_client, world):
    old = ScanReview.objects.get(scan=world.dti)
    ScanReview.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    response = reviewer_client.get(PAGE, {"reviewed_from": since, "state": "blacklisted"})

    assert page_scans(response) == []


def test_qc_search_all_decisions_lists_history(reviewer_client, world):
    ScanReviewFactory(
        scan=world.dti, state=QCState.APPROVED, reviewer=UserFactory(username="carol")
    )

    current = reviewer_client.get(PAGE, {"comment": "dropout"})
    history = reviewer_client.get(PAGE, {"comment": "dropout", "mode": "all"})

    assert page_scans(current) == []
    assert page_scans(history) == [world.dti.name]
    assert history.context["page"].rows[0]["reviewer"] == "bob"


def test_qc_search_all_decisions_has_no_unreviewed(reviewer_client, world):
    response = reviewer_client.get(PAGE, {"mode": "all"})

    # Two approvals, two flags, the blacklisting; the new DTI scans have no decision.
    assert response.context["page"].paginator.count == 5


def test_qc_search_paginates_by_50(reviewer_client, reviewer):
    study_site = make_study_site()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    t1 = ScantypeFactory(tag="T1")
    for series in range(1, 56):
        ScanFactory(session=session, scantype=t1, series=series)

    first = reviewer_client.get(PAGE)
    second = reviewer_client.get(PAGE, {"page": 2})

    assert len(first.context["page"].rows) == 50
    assert len(second.context["page"].rows) == 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"reviewed_from": "31/01/2024"}, "YYYY-MM-DD"),
        ({"reviewed_from": "2024-02-01", "reviewed_to": "2024-01-01"}, "before the start date"),
        ({"study": "NOPE"}, "NOPE is not a study you may search"),
        ({"state": "great"}, "great is not a QC state"),
        ({"mode": "some"}, "some is not a mode"),
    ],
)
def test_qc_search_rejects_bad_filter(reviewer_client, world, params, message):
    response = reviewer_client.get(PAGE, params)

    assert response.status_code == 200
    assert response.context["page"] is None
    assert message in response.text


def test_qc_search_survives_control_characters(reviewer_client, world):
    response = reviewer_client.get(PAGE, {"comment": "drop\x00out\x07", "reviewer": "b\x00ob"})

    assert response.status_code == 200
    assert page_scans(response) == [world.dti.name]


# --- Permissions ----------------------------------------------------------------------------


def test_qc_search_requires_sign_in(client):
    assert client.get(PAGE).status_code == 302
    assert client.get(CSV_URL).status_code == 302


def test_qc_search_outsider_sees_nothing(client, personas, persona_study):
    client.force_login(personas["outsider"])

    response = client.get(PAGE, {"phantoms": "on"})
    text = download(client, CSV_URL, {"phantoms": "on"})

    assert page_scans(response) == []
    assert len(csv_rows(text)) == 0


def test_qc_search_outsider_cannot_name_study(client, personas, persona_study):
    client.force_login(personas["outsider"])

    response = client.get(PAGE, {"study": "SPINS"})

    assert "SPINS is not a study you may search" in response.text


def test_qc_search_site_reviewer_sees_own_site(client, personas, persona_study):
    ScanReviewFactory(scan=persona_study.zhh.scan, state=QCState.FLAGGED, comment="zhh")
    client.force_login(personas["site_reviewer"])

    response = client.get(PAGE)
    history = client.get(PAGE, {"mode": "all"})
    exported = json.loads(download(client, JSON_URL, {"mode": "all"}))

    assert page_scans(response) == [persona_study.cmh.scan.name]
    assert page_scans(history) == []
    assert exported == []


def test_qc_search_lists_other_reviewers_decisions(client, personas, persona_study):
    ScanReviewFactory(scan=persona_study.cmh.scan, state=QCState.FLAGGED, comment="by someone")
    client.force_login(personas["viewer"])

    response = client.get(PAGE, {"mode": "all"})

    assert page_scans(response) == [persona_study.cmh.scan.name]


# --- Downloads ------------------------------------------------------------------------------


def test_qc_search_csv_matches_page(reviewer_client, world):
    params = {"state": ["flagged", "blacklisted"], "mode": "current"}
    shown = page_scans(reviewer_client.get(PAGE, params))

    rows = csv_rows(download(reviewer_client, CSV_URL, params))

    assert [row["scan"] for row in rows] == shown
    assert list(rows[0]) == list(QC_ROW_COLUMNS)


def test_qc_search_json_matches_page(reviewer_client, world):
    params = {"mode": "all", "reviewer": "bob"}
    response = reviewer_client.get(JSON_URL, params)

    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="qc-search-')
    rows = json.loads(b"".join(response.streaming_content))
    assert [(row["scan"], row["qc_state"], row["comment"]) for row in rows] == [
        (world.dti.name, "blacklisted", "Signal dropout")
    ]
    assert rows[0]["phantom"] is False


def test_qc_search_csv_keeps_commas_and_newlines(reviewer_client, world):
    ScanReviewFactory(scan=world.dti, state=QCState.FLAGGED, comment='motion, "bad"\nsecond line')

    rows = csv_rows(download(reviewer_client, CSV_URL, {"state": "flagged", "tag": "DTI60-1000"}))

    assert [row["comment"] for row in rows] == ['motion, "bad"\nsecond line']


def test_qc_search_csv_neutralises_formulas(reviewer_client, world):
    ScanReviewFactory(scan=world.dti, state=QCState.FLAGGED, comment="=HYPERLINK(1)")

    rows = csv_rows(download(reviewer_client, CSV_URL, {"tag": "DTI60-1000", "state": "flagged"}))

    assert rows[0]["comment"] == "'=HYPERLINK(1)"


def test_qc_search_export_rejects_bad_filter(reviewer_client, world):
    response = reviewer_client.get(CSV_URL, {"reviewed_to": "yesterday"})

    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.text


def test_qc_search_export_unknown_format_404(reviewer_client):
    assert reviewer_client.get("/qc-search/export.xml").status_code == 404


# --- Query counts ---------------------------------------------------------------------------


def _many_reviews(reviewer, count):
    study_site = make_study_site()
    t1 = ScantypeFactory(tag="T1")
    for _ in range(count):
        session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
        scan = ScanFactory(session=session, scantype=t1, series=2)
        ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment="motion", reviewer=reviewer)
    PhantomTimepointFactory(study_site=study_site)


@pytest.mark.parametrize("count", [1, 20])
@pytest.mark.parametrize("mode", ["current", "all"])
def test_qc_search_query_count(reviewer_client, reviewer, django_assert_num_queries, count, mode):
    _many_reviews(reviewer, count)

    # 1 session, 2 user, 3 count, 4 page of rows, 5-7 the study, site and tag choices.
    with django_assert_num_queries(7):
        response = reviewer_client.get(PAGE, {"mode": mode})

    assert len(response.context["page"].rows) == count


@pytest.mark.parametrize("count", [1, 20])
@pytest.mark.parametrize("url", [CSV_URL, JSON_URL])
def test_qc_search_export_query_count(
    reviewer_client, reviewer, django_assert_num_queries, count, url
):
    _many_reviews(reviewer, count)

    # 1 session, 2 user, 3 the rows, streamed.
    with django_assert_num_queries(3):
        text = download(reviewer_client, url, {"mode": "all"})

    assert text.count("motion") == count


def test_qc_search_count_capped(reviewer_client, reviewer, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_limit", 3)
    _many_reviews(reviewer, 5)

    response = reviewer_client.get(PAGE, {"mode": "current"})

    assert response.context["page"].paginator.count == 3
    assert 'data-testid="qc-search-count">3+ scans' in response.text


def test_qc_search_count_exact_below_cap(reviewer_client, reviewer, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_limit", 5)
    _many_reviews(reviewer, 5)

    response = reviewer_client.get(PAGE, {"mode": "current"})

    assert 'data-testid="qc-search-count">5 scans' in response.text


@pytest.mark.parametrize("count", [1, 20])
@pytest.mark.parametrize("url", [CSV_URL, JSON_URL])
def test_qc_search_current_export_query_count(
    reviewer_client, reviewer, django_assert_num_queries, count, url
):
    _many_reviews(reviewer, count)

    # 1 session, 2 user, 3 the scans, streamed, 4 the newest reviews of their chunk.
    with django_assert_num_queries(4):
        text = download(reviewer_client, url, {"mode": "current"})

    assert text.count("motion") == count


def test_qc_search_export_in_chunks_matches_page(reviewer_client, world, monkeypatch):
    monkeypatch.setattr("qc.exports.ITERATOR_CHUNK_SIZE", 2)
    params = {"mode": "current", "phantoms": "on"}
    page_rows = reviewer_client.get(PAGE, params).context["page"].rows

    exported = json.loads(download(reviewer_client, JSON_URL, params))

    assert len(exported) == len(page_rows) == 9
    for row, shown in zip(exported, page_rows, strict=True):
        for column in QC_ROW_COLUMNS:
            if column == "reviewed_at":
                assert (row[column] is None) == (shown[column] is None), shown["scan"]
            else:
                assert row[column] == shown[column], (shown["scan"], column)


def test_qc_search_export_shows_linked_scan_review(reviewer_client, reviewer, world):
    source = world.dti
    link_session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    link = ScanFactory(session=link_session, scantype=source.scantype, series=9, source=source)

    rows = csv_rows(download(reviewer_client, CSV_URL, {"mode": "current"}))

    by_scan = {row["scan"]: row for row in rows}
    assert by_scan[link.name]["qc_state"] == "blacklisted"
    assert by_scan[link.name]["comment"] == "Signal dropout"
    assert by_scan[link.name]["reviewer"] == "bob"
