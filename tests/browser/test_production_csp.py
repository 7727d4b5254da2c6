"""The production setup: gunicorn with DEBUG off and the Content Security Policy on."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from accounts.models import Role, StudyMembership
from qc.models import QCState, ScanReview
from studies.models import Scan
from tests.browser.test_review_flow import session_of_three_scans  # noqa: F401 - fixture
from tests.browser.test_volume_viewer import (  # noqa: F401 - fixtures
    READY,
    demo_archive,
    demo_reviewer,
    read_canvas,
)
from tests.studies.factories import TEST_PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.postgresql


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url():
    settings_dict = connection.settings_dict
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def production_server(transactional_db, tmp_path):
    """gunicorn on 127.0.0.1 with production settings, serving the test database."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DEBUG="false",
        SECRET_KEY="production-like-test-key-" + "k" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url(),
        STATIC_ROOT=str(tmp_path / "static"),
        # Plain HTTP on loopback: the HTTPS-only redirect and cookies would lock the browser out.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        MFA_REQUIRED_FOR_DASHBOARD_ADMINS="false",
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "qcdash.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                message = server.stderr.read().decode()
                raise RuntimeError(f"gunicorn did not start: {message}") from None
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=10)


def usable_by_server(user):
    """Give the user a password hash the server process can check and a verified address."""
    # The server process uses Django's default hashers, not the tests' fast one.
    user.password = PBKDF2PasswordHasher().encode(TEST_PASSWORD, "fixedsaltfortest")
    user.save(update_fields=["password"])
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)


def collect_csp_violations(page):
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def test_review_under_csp(production_server, page, session_of_three_scans):  # noqa: F811
    session, (t1, rst, dti) = session_of_three_scans
    user = UserFactory(username="carol", email="carol@example.org")
    usable_by_server(user)
    StudyMembership.objects.create(user=user, study=session.timepoint.study, role=Role.QC_REVIEWER)
    violations = collect_csp_violations(page)

    response = page.goto(f"{production_server}/accounts/login/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{production_server}/")

    page.goto(f"{production_server}/timepoints/{session.timepoint.name}/")
    page.wait_for_load_state("networkidle")
    row = page.locator(f"#scan-{t1.pk}")
    page.evaluate("window.reviewMarker = 1")
    row.locator("button[value=approved]").click()
    page.wait_for_selector(f"#scan-{t1.pk} .qc-state[data-state=approved]")

    assert page.evaluate("window.reviewMarker") == 1
    assert ScanReview.objects.get(scan=t1).state == QCState.APPROVED
    images = page.locator(".qc-image img")
    assert images.count() == 3
    for image in images.all():
        # QC images load lazily: bring each into view and wait until it has loaded.
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "element => element.complete && element.naturalWidth > 0", arg=image.element_handle()
        )
    assert violations == []


def test_volume_viewer_under_csp(production_server, page, demo_reviewer):  # noqa: F811
    usable_by_server(demo_reviewer)
    scan = Scan.objects.filter(scantype__tag="RST", session__timepoint__is_phantom=False).first()
    violations = collect_csp_violations(page)

    page.goto(f"{production_server}/accounts/login/")
    page.fill("input[name=login]", demo_reviewer.email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{production_server}/")
    page.goto(f"{production_server}/scans/{scan.name}/")
    page.wait_for_selector(READY)

    colours, _ = read_canvas(page)
    assert colours > 10
    assert page.text_content("[data-viewer-output=frame]") == "volume 1 of 6"
    assert violations == []
