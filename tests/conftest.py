"""Shared fixtures: personas, the real-fixtures folder and the Chromium executable.

The personas of the permission tests (`personas`) hold roles in one study with two sites
(`persona_study`); tests/accounts/personas.py builds them.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db.models.signals import post_save, pre_save

from accounts.models import Role, StudyMembership
from studies.models import Study
from tests.studies.factories import UserFactory

# The real datman, dcm2niix and dashboard files the tests read in place. This is the one setting
# that names their folder, and QCDASH_REAL_FIXTURES overrides it.
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


def _grant_every_study(user, role):
    """Give `user` a study-wide `role` in every study that exists now or is created later in the
    test. A membership the test creates itself for the same study and site replaces the
    automatic one, so a test that grants a lower role explicitly gets exactly that role."""
    automatic = set()

    def grant(study):
        membership, created = StudyMembership.objects.get_or_create(
            user=user, study=study, site=None, defaults={"role": role}
        )
        if created:
            automatic.add(membership.pk)

    def on_study_saved(sender, instance, created, **kwargs):
        if created:
            grant(instance)

    def on_membership_saving(sender, instance, **kwargs):
        if instance.pk is None and instance.user_id == user.pk:
            StudyMembership.objects.filter(
                pk__in=automatic, study_id=instance.study_id, site_id=instance.site_id
            ).delete()

    for study in Study.objects.all():
        grant(study)
    uid = f"tests-grant-every-study-{user.pk}"
    post_save.connect(on_study_saved, sender=Study, weak=False, dispatch_uid=uid)
    pre_save.connect(on_membership_saving, sender=StudyMembership, weak=False, dispatch_uid=uid)
    return uid


@pytest.fixture
def reviewer(db):
    """The reviewer of the QC page tests: an RA (so also a QC reviewer) of every study, at all
    sites, including studies the test creates after this fixture."""
    user = UserFactory(username="reviewer", email="reviewer@example.org")
    uid = _grant_every_study(user, Role.RA)
    yield user
    post_save.disconnect(sender=Study, dispatch_uid=uid)
    pre_save.disconnect(sender=StudyMembership, dispatch_uid=uid)


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


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Hash test passwords with a fast hasher: the default PBKDF2 takes a large share of a
    second per user, and the permission matrix creates thousands of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start every test with an empty cache, so allauth's rate limits do not carry over."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def persona_study(db, tmp_path):
    """The study SPINS with sites CMH and ZHH, one timepoint, session and scan at each, and a QC
    image of each on disk."""
    from tests.accounts.personas import make_persona_study

    return make_persona_study(tmp_path)


@pytest.fixture
def personas(persona_study):
    """Every persona of the permission matrix, by name (anonymous is None)."""
    from tests.accounts.personas import make_personas

    return make_personas(persona_study)
