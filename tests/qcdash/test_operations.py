"""Operations: migrating an empty database from zero, and backing up and restoring PostgreSQL."""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from qc.models import QCEvent, QCState, ScanReview
from qc.services import review_scan, sign_off_session
from studies.models import Scan, Study
from tests.studies.factories import ScanFactory, SessionFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent.parent


def run_manage(*args, database_url):
    env = dict(os.environ, DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def postgres_url(settings_dict, name):
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{name}"


@pytest.fixture
def empty_database_url(tmp_path, django_db_blocker):
    """A new, empty database of the same engine as the test database."""
    settings_dict = connection.settings_dict
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"qcdash_fresh_{uuid.uuid4().hex[:8]}"
    admin_url = postgres_url(settings_dict, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(settings_dict, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_migrations_apply_from_zero(empty_database_url):
    migrate = run_manage("migrate", "--noinput", database_url=empty_database_url)
    assert migrate.returncode == 0, migrate.stderr

    check = run_manage("makemigrations", "--check", "--dry-run", database_url=empty_database_url)
    assert check.returncode == 0, check.stdout + check.stderr

    plan = run_manage("migrate", "--plan", database_url=empty_database_url)
    assert "No planned migration operations." in plan.stdout


def snapshot(cursor):
    """What a restore must bring back: studies, scans, reviews and audit events."""
    tables = {
        "studies": "SELECT nickname, name FROM studies_study ORDER BY nickname",
        "scans": "SELECT name, sidecar::text FROM studies_scan ORDER BY name",
        "reviews": "SELECT scan_id, state, comment, reviewer_id, created_at "
        "FROM qc_scanreview ORDER BY id",
        "events": "SELECT kind, actor_id, scan_id, session_id, details::text, created_at "
        "FROM qc_qcevent ORDER BY id",
    }
    result = {}
    for key, sql in tables.items():
        cursor.execute(sql)
        result[key] = cursor.fetchall()
    return result


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_keep_qc_history(tmp_path):
    if not shutil.which("pg_dump") or not shutil.which("pg_restore"):
        pytest.skip("pg_dump and pg_restore are not installed (Debian package postgresql-client)")
    reviewer = UserFactory()
    session = SessionFactory()
    scans = [ScanFactory(session=session) for _ in range(3)]
    review_scan(scans[0], reviewer=reviewer, state=QCState.FLAGGED, comment="Motion – «é» 1/2")
    review_scan(scans[1], reviewer=reviewer, state=QCState.BLACKLISTED, comment="artefact")
    sign_off_session(session, reviewer=reviewer, approve_scan_ids=[scans[2].pk])
    assert (Study.objects.count(), Scan.objects.count()) == (1, 3)
    assert (ScanReview.objects.count(), QCEvent.objects.count()) == (3, 4)

    settings_dict = connection.settings_dict
    source_url = postgres_url(settings_dict, settings_dict["NAME"])
    dump = tmp_path / "qcdash.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", f"--dbname={source_url}"],
        check=True,
        timeout=120,
    )

    restored = f"qcdash_restore_{uuid.uuid4().hex[:8]}"
    admin_url = postgres_url(settings_dict, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{restored}"')
    try:
        restored_url = postgres_url(settings_dict, restored)
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={restored_url}", str(dump)],
            check=True,
            timeout=120,
        )
        with connection.cursor() as cursor:
            original = snapshot(cursor)
        with psycopg.connect(restored_url) as copy, copy.cursor() as cursor:
            copied = snapshot(cursor)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')

    assert copied["studies"] == original["studies"]
    assert copied["scans"] == original["scans"]
    assert copied["reviews"] == original["reviews"]
    assert copied["events"] == original["events"]
    assert len(copied["reviews"]) == 3
    assert any(row[2] == "Motion – «é» 1/2" for row in copied["reviews"])
