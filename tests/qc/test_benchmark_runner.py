"""The benchmark runner's in-process stage on the small profile, as a query-count guard.

It fails when a page or POST runs more SQL queries than its budget, never on time, so it is
safe on a busy CI machine.
"""

import pytest

from benchmarks import cases as bench_cases
from benchmarks.run import format_table
from qc import benchmark_data
from tests.studies.factories import TimepointFactory

# Queries per request of each case. A sign-off writes its reviews and events in bulk, and
# looks for their XNAT pushes in one query after commit, so its count does not depend on the
# number of new scans.
QUERY_BUDGETS = {
    "home (study list)": 4,
    "study overview": 12,
    "timepoint page": 16,
    "scan page": 9,
    "search, narrow term": 6,
    "search, broad term": 6,
    # On PostgreSQL one query per kind for the closest IDs; SQLite has no approximate search.
    "search, mistyped ID": 6,
    "QC search, no filters": 7,
    "QC search, filters": 9,
    # 4, and 1 more per 2,000 scans for their newest reviews; `small` has 2,000 scans.
    "CSV export of the study": 5,
    "review POST": 11,
    "sign-off POST": 15,
    "REDCap trigger POST": 7,
}


def budget_for(name):
    for prefix, budget in QUERY_BUDGETS.items():
        if name.startswith(prefix):
            return budget
    raise AssertionError(f"no query budget for benchmark case {name!r}; add one")


def test_benchmark_query_budgets(transactional_db):
    # A transactional test, so on-commit hooks run (the trigger queues its task) as in a server.
    # One test measures everything, because seeding the profile is its slowest step.
    benchmark_data.seed("small")
    user = bench_cases.runner_user()
    bench_cases.delete_earlier_writes(user)
    _study, cases = bench_cases.build_cases(iterations=2, write_targets=20)
    client = bench_cases.InProcessClient(user)
    measured = [
        (case.name, bench_cases.measure_in_process(case, client, warmup=1)) for case in cases
    ]

    over_budget = {
        name: measurement.query_counts
        for name, measurement in measured
        if max(measurement.query_counts) > budget_for(name)
    }
    assert not over_budget, f"query counts over budget: {over_budget}"
    overview_counts = {
        max(measurement.query_counts)
        for name, measurement in measured
        if name.startswith("study overview")
    }
    assert overview_counts == {12}, "every overview page and sort order runs 12 queries"
    table = format_table("small", [(name, measurement, None) for name, measurement in measured])
    assert len(table.splitlines()) == len(measured) + 2
    assert "| study overview, page 4, sort -site | 12 |" in table


def test_mistyped_id_swaps_site_letters(db):
    assert bench_cases.mistyped_id("BEN51_UTO_02500_01") == "BEN51_TUO_02500_01"
    assert bench_cases.mistyped_id("BEN51_ZHH_00001_01") == "BEN51_HZH_00001_01"


def test_mistyped_id_rejects_stored_id(db):
    TimepointFactory(name="BEN51_TUO_02500_01")

    with pytest.raises(LookupError, match="BEN51_TUO_02500_01"):
        bench_cases.mistyped_id("BEN51_UTO_02500_01")


def test_table_marks_failed_http_case():
    measurement = bench_cases.Measurement(
        case="timepoint page", latencies=[0.01, 0.02], query_counts=[20, 20]
    )

    table = format_table(
        "large", [("timepoint page", measurement, None)], failed={"timepoint page"}
    )

    row = table.splitlines()[-1]
    assert row.startswith("| timepoint page | 20 |")
    assert "| failed | failed | - | HTTP failed |" in row
