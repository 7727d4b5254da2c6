"""Shared fixtures: personas, the real-fixtures folder and the Chromium executable."""

import os
import shutil
from pathlib import Path

import pytest

from tests.studies.factories import UserFactory

# The real datman, dcm2niix and dashboard files the tests read in place. This is the one place
# that knows where they live; QCDASH_REAL_FIXTURES overrides it.
REAL_FIXTURES = Path(
    os.environ.get(
        "QCDASH_REAL_FIXTURES",
        Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "real",
    )
)


@pytest.fixture
def real_fixtures():
    """The folder of real files from the field; the test is skipped when it is absent."""
    if not REAL_FIXTURES.is_dir():
        pytest.skip(
            f"real fixtures folder {REAL_FIXTURES} not found; set QCDASH_REAL_FIXTURES to it"
        )
    return REAL_FIXTURES


def chromium_path():
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


@pytest.fixture
def reviewer(db):
    return UserFactory(username="reviewer", email="reviewer@example.org")


@pytest.fixture
def other_reviewer(db):
    return UserFactory(username="other", email="other@example.org")


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "browser" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _skip_postgresql_only(request):
    if request.node.get_closest_marker("postgresql"):
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL; set DATABASE_URL to a PostgreSQL database")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn skips into failures where CI requires the browser or the real fixtures."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("QCDASH_REQUIRE_ALL_TESTS") != "1":
        return
    report.outcome = "failed"
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.longrepr = f"skipped, but QCDASH_REQUIRE_ALL_TESTS=1 forbids skips: {reason}"
