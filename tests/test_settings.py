"""Settings: .env.example lists every variable, and production settings are safe."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 60 + "production-test-key-not-used-anywhere",
    "ALLOWED_HOSTS": "qc.example.org",
    "DATABASE_URL": "postgres://qcdash@127.0.0.1:5432/qcdash",
}


def setting_variables():
    source = (ROOT / "qcdash" / "settings.py").read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', source))


def example_variables():
    lines = (ROOT / ".env.example").read_text().splitlines()
    # A variable is listed as "NAME=value", or commented out as "# NAME=" when it has no default.
    assignments = (re.match(r"^(?:# )?([A-Z_]+)=", line) for line in lines)
    return {match.group(1) for match in assignments if match}


def run_manage(*args, env):
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; a server never has it.
    dropped = set(PRODUCTION_ENV) | {"DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean_env = {key: value for key, value in os.environ.items() if key not in dropped}
    clean_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_env_example_matches_settings():
    assert setting_variables() == example_variables()


def test_check_deploy_clean_in_production():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_stops_start_up():
    env = dict(PRODUCTION_ENV, SECRET_KEY="")
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_missing_allowed_hosts_stops_start_up():
    env = dict(PRODUCTION_ENV, ALLOWED_HOSTS="")
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def test_missing_database_url_stops_start_up():
    env = dict(PRODUCTION_ENV, DATABASE_URL="")
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr


def test_relative_repair_root_stops_start_up():
    # A relative folder would be taken from each process's working directory, so the web
    # server and a purge run from elsewhere would not agree on where corrected sidecars are.
    result = run_manage("check", env={"SIDECAR_REPAIR_ROOT": "sidecar-repairs"})
    assert result.returncode != 0
    assert "SIDECAR_REPAIR_ROOT is 'sidecar-repairs'" in result.stderr


def test_unknown_log_format_stops_start_up():
    result = run_manage("check", env={"LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert "LOG_FORMAT is 'xml'" in result.stderr


def test_env_example_sets_no_empty_values():
    lines = (ROOT / ".env.example").read_text().splitlines()
    empty = [line for line in lines if re.match(r"^[A-Z_]+=$", line)]
    assert empty == []


def test_copied_env_example_starts(tmp_path):
    env = {"QCDASH_ENV_FILE": str(tmp_path / ".env")}
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    result = run_manage("check", env=env)
    assert result.returncode == 0, result.stderr
