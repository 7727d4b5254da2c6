"""A dashboard admin deletes a scan from its page and restores it in the admin site."""

from pathlib import Path

from studies.models import DeletionEvent, Scan
from tests.browser.test_review_flow import session_of_three_scans  # noqa: F401 - fixture
from tests.studies.factories import TEST_PASSWORD, UserFactory

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_delete_and_restore_scan(
    transactional_db,
    live_server,
    page,
    session_of_three_scans,  # noqa: F811 - fixture
):
    session, (_t1, rst, _dti) = session_of_three_scans
    UserFactory(
        username="boss",
        email="boss@example.org",
        is_dashboard_admin=True,
        is_staff=True,
        is_superuser=True,
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    timepoint_url = f"{live_server.url}/timepoints/{session.timepoint.name}/"

    sign_in(page, live_server, "boss@example.org")
    page.goto(timepoint_url)
    assert page.locator("[data-action=delete]").count() == 2
    page.screenshot(path=SCREENSHOTS / "timepoint-delete-buttons.png", full_page=True)
    page.goto(f"{live_server.url}/scans/{rst.name}/")
    page.click("[data-action=delete]")
    page.wait_for_url(f"**/scans/{rst.name}/delete/")

    # A reason is required: submitting without one keeps the scan.
    page.click("form.delete-form button[type=submit]")
    assert page.locator("textarea[name=reason]:invalid").count() == 1
    page.fill("textarea[name=reason]", "Test series started by mistake; not part of the protocol.")
    page.screenshot(path=SCREENSHOTS / "delete-scan-confirm.png", full_page=True)
    page.click("form.delete-form button[type=submit]")

    page.wait_for_url(timepoint_url)
    assert f"The scan {rst.name} is deleted" in page.text_content(".alert-success")
    assert page.locator(f"#scan-{rst.pk}").count() == 0
    assert page.locator(".scan-table tbody").count() == 2
    assert Scan.all_objects.get(pk=rst.pk).is_deleted

    # The admin site lists it under the Hidden filter and restores it with a reason.
    page.goto(f"{live_server.url}/admin/studies/scan/?hidden=yes")
    page.check(f"input[name=_selected_action][value='{rst.pk}']")
    page.select_option("select[name=action]", "restore_selected_records")
    page.click("button[name=index]")
    page.fill("textarea[name=reason]", "Needed for the motion analysis after all.")
    page.screenshot(path=SCREENSHOTS / "restore-scan-admin.png", full_page=True)
    page.click("input[type=submit][value=Restore]")
    page.wait_for_url("**/admin/studies/scan/**")
    assert "1 scan restored." in page.text_content("ul.messagelist")

    page.goto(timepoint_url)
    assert page.locator(f"#scan-{rst.pk}").count() == 1
    assert list(DeletionEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "delete",
        "restore",
    ]
