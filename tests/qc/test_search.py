"""The ID search: normalisation, ranking, scoping, hostile input, the page and the dropdown."""

import hashlib

import pytest
from django.db import connection
from django.urls import reverse

from accounts import permissions
from accounts.models import Role, StudyMembership
from qc import search, search_ids
from studies.models import Scan, StudySite, Timepoint
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    SiteFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PAGE = reverse("qc:search")
SUGGEST = reverse("qc:search_suggest")


def md5_hex(text):
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def names(results, kind):
    group = next(group for group in results.groups if group.kind == kind)
    return [getattr(item, "session_name", None) or item.name for item in group.items]


@pytest.fixture
def spins(reviewer):
    """SPINS at CMH: timepoints 0001_01 (two sessions) and 0012_01, a phantom, with scans."""
    study_site = make_study_site()
    first = TimepointFactory(study_site=study_site, name="SPN01_CMH_0001_01")
    second = TimepointFactory(study_site=study_site, name="SPN01_CMH_0012_01")
    phantom = PhantomTimepointFactory(study_site=study_site, name="SPN01_CMH_PHA_FBN0001")
    sessions = [
        SessionFactory(timepoint=first, number=1),
        SessionFactory(timepoint=first, number=2),
        SessionFactory(timepoint=second, number=1),
        SessionFactory(timepoint=phantom, number=1),
    ]
    t1 = ScantypeFactory(tag="T1")
    scans = [
        ScanFactory(session=session, scantype=t1, series=2, name=f"{session.name}_T1_02")
        for session in sessions
    ]
    return study_site, sessions, scans


# --- Query normalisation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  spn01_cmh ", "spn01_cmh"),
        ("a\x00b", "ab"),
        ("a\x07\x1bb\u200bc", "abc"),
        ("x" * 10_000, "x" * 100),
        (None, ""),
    ],
)
def test_clean_query(text, expected):
    assert search.clean_query(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spn01_cmh-0001 01", "SPN01CMH000101"),
        ("SPN01\tCMH", "SPN01CMH"),
        ("%_'\"", "%'\""),
    ],
)
def test_search_key(text, expected):
    assert search.search_key(text) == expected


# --- Matching and ranking -------------------------------------------------------------------


def test_search_ignores_case_and_separators(reviewer, spins):
    results = search.search(reviewer, "spn01 cmh-0001")

    assert names(results, "timepoints") == ["SPN01_CMH_0001_01"]
    assert names(results, "sessions") == ["SPN01_CMH_0001_01_01", "SPN01_CMH_0001_01_02"]
    assert names(results, "scans") == [
        "SPN01_CMH_0001_01_01_T1_02",
        "SPN01_CMH_0001_01_02_T1_02",
    ]


def test_search_ranks_exact_before_contains(reviewer, spins):
    results = search.search(reviewer, "SPN01_CMH_0001_01_02")

    assert names(results, "sessions")[0] == "SPN01_CMH_0001_01_02"
    assert names(results, "scans") == ["SPN01_CMH_0001_01_02_T1_02"]


def test_search_ranks_prefix_before_contains(reviewer, spins):
    results = search.search(reviewer, "0001")

    # SPN01_CMH_0001_01 contains 0001, and so does the phantom's FBN0001; names that only
    # contain the query are listed in key order.
    assert names(results, "timepoints") == ["SPN01_CMH_0001_01", "SPN01_CMH_PHA_FBN0001"]


def test_search_leaves_phantom_sessions_out(reviewer, spins):
    results = search.search(reviewer, "FBN0001")

    assert names(results, "timepoints") == ["SPN01_CMH_PHA_FBN0001"]
    assert names(results, "sessions") == []
    assert names(results, "scans") == ["SPN01_CMH_PHA_FBN0001_T1_02"]


@pytest.mark.postgresql
def test_search_finds_approximate_id(reviewer, spins):
    # One digit missing from the subject: no name contains the key, but it is close.
    results = search.search(reviewer, "SPN01_CMH_001_01")
    timepoints = results.groups[0]

    assert timepoints.approximate
    assert names(results, "timepoints")[0] == "SPN01_CMH_0001_01"


@pytest.mark.postgresql
@pytest.mark.parametrize("candidates", [11, 12, 1000])
def test_close_matches_same_for_any_candidate_count(reviewer, candidates, monkeypatch):
    study_site = make_study_site()
    for number in (1, 2, 3, 10, 11, 12, 20, 100, 101, 110, 111, 200, 1000, 1001, 1111):
        TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")
    monkeypatch.setattr(search, "CLOSE_CANDIDATES", candidates)

    results = search.search(reviewer, "SPN01_CMH_011_01")

    assert results.groups[0].approximate
    assert len(names(results, "timepoints")) == search.RESULTS_PER_KIND
    # With 11 or 12 candidates the search reads fewer rows than match, and must still pick the
    # same ten, in the same order, as when it reads them all.
    monkeypatch.setattr(search, "CLOSE_CANDIDATES", 1000)
    assert names(search.search(reviewer, "SPN01_CMH_011_01"), "timepoints") == names(
        results, "timepoints"
    )


@pytest.mark.postgresql
def test_close_matches_tied_beyond_candidates(reviewer, monkeypatch):
    study_site = make_study_site()
    for number in range(15, 0, -1):
        TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")
    # Every key shares the same trigrams with the query, so all 15 are equally close and the
    # 12 read from the index are not enough to choose among them.
    monkeypatch.setattr(search, "CLOSE_CANDIDATES", 12)

    results = search.search(reviewer, "SPN01CMHZ")
    group = results.groups[0]

    assert group.approximate
    assert group.has_more
    assert names(results, "timepoints") == [f"SPN01_CMH_{number:04d}_01" for number in range(1, 11)]


def timepoint_rows_read():
    """Return how many timepoint rows this transaction has read so far, by scans of the table
    and fetches through its indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq_tup_read + COALESCE(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = 'studies_timepoint'"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgresql
def test_close_matches_tie_reads_tied_rows(reviewer, monkeypatch):
    study_site = make_study_site()
    # The keys of 0001 to 0015 share ten of the twelve trigrams of SPN01CMH00X. Those of 1000 to
    # 3999 share eight, so they are close too, but farther.
    numbers = [*range(1, 16), *range(1000, 4000)]
    Timepoint.objects.bulk_create(
        Timepoint(study=study_site.study, study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")
        for number in numbers
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE studies_timepoint")
    # The 12 candidates all tie with the 11th row, so every row as close as they are is sorted.
    monkeypatch.setattr(search, "CLOSE_CANDIDATES", 12)
    timepoints = permissions.visible_timepoints(reviewer)
    read_before = timepoint_rows_read()

    rows = search._similar(timepoints, "SPN01CMH00X", search.RESULTS_PER_KIND)

    assert [row.name for row in rows] == [f"SPN01_CMH_{number:04d}_01" for number in range(1, 12)]
    assert timepoint_rows_read() - read_before <= 100
    with connection.cursor() as cursor:
        cursor.execute("SHOW pg_trgm.word_similarity_threshold")
        assert cursor.fetchone()[0] == "0.6"


def test_search_prefers_containing_to_close(reviewer, spins):
    results = search.search(reviewer, "spn01 cmh-0001")

    assert not results.groups[0].approximate
    assert "SPN01_CMH_0012_01" not in names(results, "timepoints")


def explain(sql, params, *switched_off):
    """Return PostgreSQL's plan of `sql` with the planner methods `switched_off`."""
    with connection.cursor() as cursor:
        # Statistics of this test's rows: earlier tests may have analysed tables of another
        # size, and the plan then depends on the order the tests ran in.
        cursor.execute("ANALYZE studies_timepoint, studies_session, studies_scan")
        for method in switched_off:
            cursor.execute(f"SET {method} = off")
        try:
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            for method in switched_off:
                cursor.execute(f"RESET {method}")


@pytest.mark.postgresql
def test_search_reads_key_indexes(reviewer, spins):
    scans = permissions.visible_scans(reviewer)
    sql, params = search_ids._kind_sql(scans, "CMH0001", search.RESULTS_PER_KIND)

    # On these few rows reading a whole table and sorting cost less than any index, so both
    # are switched off to see which indexes the walks in key and MD5 order can use.
    walks = explain(sql, params, "enable_seqscan", "enable_sort")
    # The fallbacks of the statement filter with the same LIKE as this queryset.
    contains = Scan.all_objects.filter(search_key__contains="CMH0001").values("pk").query
    # Without sequential and plain index scans, only a bitmap scan of an index that matches the
    # LIKE itself, the trigram index, remains.
    fallback = explain(
        *contains.sql_with_params(), "enable_seqscan", "enable_indexscan", "enable_indexonlyscan"
    )

    assert "api_search_scan_order" in walks
    assert "api_search_scan_hash" in walks
    assert "api_search_scan_trigram" in fallback


@pytest.mark.postgresql
def test_close_matches_read_gist_index(reviewer, spins):
    scans = permissions.visible_scans(reviewer)
    key = search.search_key("SPN01_CMH_001_01_T1_02")
    candidates = search.close_rows(scans, key).order_by("search_distance")[:100]

    plan = explain(*candidates.query.sql_with_params(), "enable_seqscan", "enable_sort")

    assert "api_search_scan_closest" in plan


def rows_read(plan, table):
    """Return how many rows the nodes of an EXPLAIN (ANALYZE, FORMAT JSON) plan read from
    `table`, over all their loops."""
    count = 0
    if plan.get("Relation Name") == table:
        count += plan["Actual Rows"] * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        count += rows_read(child, table)
    return count


@pytest.mark.postgresql
def test_close_matches_small_site_reads(two_sites):
    # CMH gets 300 timepoints of ten scans each, which the ZHH reviewer may not see.
    cmh = StudySite.objects.get(site__name="CMH")
    t2 = ScantypeFactory(tag="T2")
    for number in range(100, 400):
        timepoint = TimepointFactory(study_site=cmh, name=f"SPN01_CMH_{number:04d}_01")
        session = SessionFactory(timepoint=timepoint, number=1)
        Scan.objects.bulk_create(
            Scan(
                session=session, scantype=t2, series=series, name=f"{session.name}_T2_{series:02d}"
            )
            for series in range(1, 11)
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE studies_studysite, studies_timepoint, studies_session, studies_scan"
        )
    scans = next(kind for kind in search._kinds(two_sites) if kind.name == "scans")
    # Every key is equally close to SPN01X, so only the visibility filter narrows the rows.
    candidates = search.close_rows(scans.page_queryset, "SPN01X").order_by("search_distance")
    sql, params = candidates[: search.CLOSE_CANDIDATES].query.sql_with_params()

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]

    assert len(candidates) == 2
    # When PostgreSQL takes ZHH for half of the study's scans, it walks the GiST index nearest
    # first through all 3,005 hidden ones.
    assert rows_read(plan[0]["Plan"], "studies_scan") <= 10 * len(candidates)


def test_search_picks_other_matches_by_hash(reviewer):
    study_site = make_study_site()
    for number in range(1, 16):
        TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")
    keys = [f"SPN01CMH{number:04d}01" for number in range(1, 16)]
    first_by_hash = sorted(keys, key=md5_hex)[:10]

    results = search.search(reviewer, "CMH")
    group = results.groups[0]

    # No key starts with CMH, so the ten shown are the first by MD5, listed in key order.
    assert [search.search_key(name) for name in names(results, "timepoints")] == sorted(
        first_by_hash
    )
    assert group.has_more


def test_search_lists_prefix_matches_in_key_order(reviewer):
    study_site = make_study_site()
    for number in (3, 1, 12, 2):
        TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")
    TimepointFactory(study_site=study_site, name="XSPN01_CMH_0001_01")

    results = search.search(reviewer, "SPN01")

    assert names(results, "timepoints") == [
        "SPN01_CMH_0001_01",
        "SPN01_CMH_0002_01",
        "SPN01_CMH_0003_01",
        "SPN01_CMH_0012_01",
        "XSPN01_CMH_0001_01",
    ]


def test_search_is_bounded(reviewer):
    study_site = make_study_site()
    for number in range(1, 13):
        TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")

    results = search.search(reviewer, "SPN01_CMH")
    group = results.groups[0]

    assert len(group.items) == search.RESULTS_PER_KIND
    assert group.has_more


# --- Hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["%", "_", "%%%%", "'", '"', "' OR 1=1 --", "\\", "\x00", "a\x00\x01b", "x" * 10_000, "ü" * 50],
)
def test_search_survives_any_text(reviewer_client, spins, text):
    response = reviewer_client.get(PAGE, {"q": text})

    assert response.status_code == 200
    assert 'data-result="' not in response.text


def test_search_percent_is_literal(reviewer, spins):
    results = search.search(reviewer, "%0%")

    assert all(group.approximate or not group.items for group in results.groups)


def test_search_underscore_is_separator(reviewer, spins):
    results = search.search(reviewer, "_0012_")

    assert names(results, "timepoints") == ["SPN01_CMH_0012_01"]


def test_search_truncates_long_query(reviewer, spins):
    results = search.search(reviewer, "SPN01_CMH_0001_01" + "9" * 10_000)

    assert len(results.query) == search.MAX_QUERY_LENGTH
    # No ID contains the truncated query; PostgreSQL may still list close IDs.
    assert all(group.approximate or not group.items for group in results.groups)


def test_search_strips_nul_before_matching(reviewer, spins):
    results = search.search(reviewer, "SPN01_CMH_0012\x00_01")

    assert names(results, "timepoints") == ["SPN01_CMH_0012_01"]


@pytest.mark.parametrize("text", ["", "   ", "_-_", "\x00\x01"])
def test_search_empty_query_explains(reviewer, text):
    results = search.search(reviewer, text)

    assert results.groups == []
    assert "Type part of" in results.problem


def test_search_single_character_explains(reviewer):
    results = search.search(reviewer, "1")

    assert results.groups == []
    assert "at least 2" in results.problem


# --- Permissions ----------------------------------------------------------------------------


def test_search_outsider_finds_nothing(personas, persona_study):
    outsider = personas["outsider"]

    results = search.search(outsider, persona_study.cmh.timepoint.name[:9])

    assert results.count == 0


def test_search_site_reviewer_sees_own_site(personas, persona_study):
    results = search.search(personas["site_reviewer"], "SPN01")

    assert names(results, "timepoints") == [persona_study.cmh.timepoint.name]
    assert names(results, "scans") == [persona_study.cmh.scan.name]


def test_search_study_member_sees_every_site(personas, persona_study):
    results = search.search(personas["viewer"], "SPN01")

    assert sorted(names(results, "timepoints")) == sorted(
        [persona_study.cmh.timepoint.name, persona_study.zhh.timepoint.name]
    )


@pytest.fixture
def two_sites():
    """SPINS at CMH with five timepoints and at ZHH with two, each with a session and a scan,
    and a reviewer of ZHH only."""
    cmh = make_study_site()
    zhh = StudySiteFactory(study=cmh.study, site=SiteFactory(name="ZHH"), code="SPN01")
    t1 = ScantypeFactory(tag="T1")
    for study_site, count in ((cmh, 5), (zhh, 2)):
        for number in range(1, count + 1):
            name = f"SPN01_{study_site.site.name}_{number:04d}_01"
            session = SessionFactory(timepoint=TimepointFactory(study_site=study_site, name=name))
            ScanFactory(session=session, scantype=t1, series=2)
    zhh_reviewer = UserFactory(username="zhh_reviewer")
    StudyMembership.objects.create(
        user=zhh_reviewer, study=cmh.study, site=zhh.site, role=Role.QC_REVIEWER
    )
    return zhh_reviewer


def test_search_prefix_falls_back_past_hidden_rows(monkeypatch, two_sites):
    # The first two keys that start with SPN01 are at CMH, which the reviewer may not see.
    monkeypatch.setattr(search_ids, "EXAMINED_ROWS", 2)

    results = search.search(two_sites, "SPN01")

    assert names(results, "timepoints") == ["SPN01_ZHH_0001_01", "SPN01_ZHH_0002_01"]


def test_search_rest_falls_back_past_hidden_rows(monkeypatch, two_sites):
    # Of the keys that contain 0001 after their start, the first by MD5 must be one the
    # reviewer may not see, or this test would not reach the fallback.
    keys = ["SPN01CMH000101", "SPN01ZHH000101"]
    assert min(keys, key=md5_hex) == keys[0]
    monkeypatch.setattr(search_ids, "EXAMINED_ROWS", 1)

    results = search.search(two_sites, "0001")

    assert names(results, "timepoints") == ["SPN01_ZHH_0001_01"]


def test_search_page_requires_sign_in(client):
    response = client.get(PAGE, {"q": "SPN01"})

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_suggest_requires_sign_in(client):
    response = client.get(SUGGEST, {"q": "SPN01"})

    assert response.status_code == 302


# --- Pages ----------------------------------------------------------------------------------


def test_search_page_links_each_kind(reviewer_client, spins):
    _, sessions, scans = spins

    response = reviewer_client.get(PAGE, {"q": "0012"})

    timepoint_url = reverse("qc:timepoint_detail", args=["SPN01_CMH_0012_01"])
    assert f'href="{timepoint_url}"' in response.text
    assert f'href="{timepoint_url}#session-1"' in response.text
    assert f'href="{reverse("qc:scan_detail", args=[scans[2].name])}"' in response.text


def test_suggest_returns_fragment(reviewer_client, spins):
    response = reviewer_client.get(SUGGEST, {"q": "cmh 0012"})

    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'data-result="SPN01_CMH_0012_01_01"' in response.text
    assert "All results for" in response.text


def test_suggest_names_no_match(reviewer_client, spins):
    response = reviewer_client.get(SUGGEST, {"q": "ZZZ999"})

    assert 'data-testid="search-empty"' in response.text


def test_navbar_has_search_bar(reviewer_client):
    response = reviewer_client.get(reverse("qc:study_list"))

    assert 'data-testid="search-input"' in response.text
    assert f'data-suggest-url="{SUGGEST}"' in response.text


def test_search_page_keeps_query_in_navbar(reviewer_client, spins):
    response = reviewer_client.get(PAGE, {"q": "cmh 0012"})

    assert 'value="cmh 0012"' in response.text


def test_search_escapes_query(reviewer_client, spins):
    response = reviewer_client.get(PAGE, {"q": "<script>alert(1)</script>"})

    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


# --- Query counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 20])
def test_search_query_count(reviewer_client, reviewer, django_assert_num_queries, count):
    study_site = make_study_site()
    t1 = ScantypeFactory(tag="T1")
    for number in range(1, count + 1):
        session = SessionFactory(
            timepoint=TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")
        )
        ScanFactory(session=session, scantype=t1, series=2)

    # 1 session, 2 user, 3 the ids of every kind, 4 timepoints, 5 sessions, 6 scans with their
    # QC state.
    with django_assert_num_queries(6):
        response = reviewer_client.get(SUGGEST, {"q": "SPN01_CMH"})

    assert response.status_code == 200
    assert response.text.count('data-result="') == 3 * min(count, search.RESULTS_PER_KIND)


@pytest.mark.parametrize("count", [1, 20])
def test_search_query_count_without_prefix(
    reviewer_client, reviewer, django_assert_num_queries, count
):
    study_site = make_study_site()
    t1 = ScantypeFactory(tag="T1")
    for number in range(1, count + 1):
        session = SessionFactory(
            timepoint=TimepointFactory(study_site=study_site, name=f"SPN01_CMH_{number:04d}_01")
        )
        ScanFactory(session=session, scantype=t1, series=2)

    # The same six queries when every match only contains the query.
    with django_assert_num_queries(6):
        response = reviewer_client.get(SUGGEST, {"q": "CMH_00"})

    assert response.text.count('data-result="') == 3 * min(count, search.RESULTS_PER_KIND)


def test_search_query_count_with_fallback(
    client, monkeypatch, django_assert_num_queries, two_sites
):
    monkeypatch.setattr(search_ids, "EXAMINED_ROWS", 1)
    client.force_login(two_sites)

    # The same six queries when the first rows read are hidden and the fallbacks run.
    with django_assert_num_queries(6):
        response = client.get(SUGGEST, {"q": "SPN01"})

    assert response.text.count('data-result="') == 3 * 2


def test_search_unknown_user_kind_is_unaffected():
    user = UserFactory(username="nobody")

    assert search.search(user, "SPN01").count == 0
