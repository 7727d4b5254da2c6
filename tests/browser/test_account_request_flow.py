"""An account request from sign-up to approval to the first sign-in, in Chromium."""

from django.core import mail
from django_q.conf import Conf

from accounts.models import AccountRequest, StudyMembership
from tests.studies.factories import (
    TEST_PASSWORD,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
    UserFactory,
)

NEW_PASSWORD = "a long and unusual passphrase"


def sign_in(page, live_server, email, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("form.login-form button[type=submit]")


def test_account_request_flow(transactional_db, live_server, page, tmp_path, monkeypatch):
    # The live server runs in this process, so its queued email tasks run at once.
    monkeypatch.setattr(Conf, "SYNC", True)
    study_site = StudySiteFactory(
        study=StudyFactory(nickname="SPINS"), site=SiteFactory(name="CMH")
    )
    UserFactory(
        username="boss",
        email="boss@example.org",
        first_name="Ada",
        last_name="Admin",
        is_dashboard_admin=True,
        is_staff=True,
    )
    mail.outbox = []

    # The new person requests an account from the sign-in page.
    page.goto(f"{live_server.url}/accounts/login/")
    page.click("a:text-is('Request an account')")
    page.wait_for_url("**/accounts/signup/")
    page.fill("input[name=email]", "pat@example.org")
    page.fill("input[name=password1]", NEW_PASSWORD)
    page.fill("input[name=password2]", NEW_PASSWORD)
    page.fill("input[name=first_name]", "Pat")
    page.fill("input[name=last_name]", "Doe")
    page.fill("input[name=institution]", "CAMH")
    page.fill("input[name=position]", "Research assistant")
    page.fill("textarea[name=studies_and_sites]", "SPINS at CMH")
    page.fill("textarea[name=reason]", "QC of the CMH scans.")
    page.screenshot(path=tmp_path / "signup.png", full_page=True)
    page.click("form.signup-form button[type=submit]")
    page.wait_for_url("**/accounts/inactive/")
    assert "awaiting approval" in page.text_content("[data-testid=inactive-title]")
    page.screenshot(path=tmp_path / "awaiting-approval.png", full_page=True)

    # Signing in before approval shows the same page, not a password error.
    sign_in(page, live_server, "pat@example.org", NEW_PASSWORD)
    page.wait_for_url("**/accounts/inactive/")
    assert "awaiting approval" in page.text_content("[data-testid=inactive-title]")

    subjects = [message.subject for message in mail.outbox]
    assert "Your qcdash account request was received" in subjects
    assert "New qcdash account request from pat@example.org" in subjects

    # The dashboard admin finds the count in the navigation bar, opens the request and approves it.
    sign_in(page, live_server, "boss@example.org", TEST_PASSWORD)
    page.wait_for_url(f"{live_server.url}/")
    assert page.text_content("[data-testid=account-request-count]").strip() == "1"
    page.click("[data-testid=account-requests]")
    page.wait_for_url("**/accounts/requests/")
    page.screenshot(path=tmp_path / "request-queue.png", full_page=True)
    page.click("a:text-is('Pat Doe')")
    page.check(f"input[name=scopes][value='{study_site.study_id}:{study_site.site_id}']")
    page.select_option("select[name=role]", label="QC reviewer")
    page.screenshot(path=tmp_path / "request-detail.png", full_page=True)
    page.click("[data-testid=approve-form] button[type=submit]")
    page.wait_for_url("**/accounts/requests/")
    assert "approved" in page.text_content(".messages")
    assert page.locator("[data-testid=account-request-count]").count() == 0
    page.click("form[action='/accounts/logout/'] button")

    membership = StudyMembership.objects.get(user__email="pat@example.org")
    assert membership.site == study_site.site
    assert AccountRequest.objects.get(user__email="pat@example.org").status == "approved"
    assert "Your qcdash account is approved" in [message.subject for message in mail.outbox]

    # The first sign-in lands on the study list with the approved study.
    sign_in(page, live_server, "pat@example.org", NEW_PASSWORD)
    page.wait_for_url(f"{live_server.url}/")
    assert page.text_content("[data-testid=current-user]").strip() == "Pat Doe"
    assert page.locator("tr[data-study=SPINS]").count() == 1
    page.click("[data-testid=current-user]")
    page.wait_for_url("**/accounts/profile/")
    assert "QC reviewer" in page.text_content("[data-testid=memberships]")
    page.screenshot(path=tmp_path / "profile.png", full_page=True)
