"""Comments, an incidental finding and the history on the demo timepoint page, in Chromium."""

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import StudyMembership, User
from notifications.models import Notification
from qc.models import IncidentalFinding, TimepointComment
from studies.models import Scan

DEMO_PASSWORD = "qcdash-demo"
DEMO_TIMEPOINT = "DEM01_UTO_0001_01"
SCREENSHOTS = Path(settings.BASE_DIR) / "test-results" / "screenshots"


@pytest.fixture
def demo(tmp_path):
    """The demo as `make run` builds it: archive, config, gold standards, import, accounts."""
    quiet = {"stdout": StringIO(), "stderr": StringIO()}
    root = tmp_path / "archive"
    call_command("make_demo_archive", str(root), **quiet)
    call_command("sync_config", str(root / "config" / "main_config.yml"), **quiet)
    call_command("load_gold_standards", "DEMO", **quiet)
    # The demo contains one malformed file name on purpose, so the import ends in an error.
    with pytest.raises(CommandError):
        call_command("import_archive", "DEMO", **quiet)
    call_command("create_demo_accounts", "--force", **quiet)
    # The demo reviewer is an RA, so they may comment. As primary contact they also receive the
    # finding's email.
    StudyMembership.objects.filter(user__username="reviewer").update(is_primary_contact=True)
    return User.objects.get(username="reviewer")


def test_comment_and_finding_on_demo_timepoint(transactional_db, live_server, page, demo):
    page.goto(f"{live_server.url}/")
    page.fill("input[name=login]", "reviewer@example.org")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/timepoints/{DEMO_TIMEPOINT}/")

    # Add a comment with markup and a long word; the page shows it as text.
    comments = page.locator("#comments")
    long_word = "x" * 120
    comments.locator("textarea[name=text]").fill(f"Arrived late <b>20 min</b>. {long_word}")
    comments.locator("button:text-is('Add comment')").click()
    page.wait_for_url(f"**/timepoints/{DEMO_TIMEPOINT}/#comment-*")
    comment = page.locator(".timepoint-comment").first
    assert "<b>20 min</b>" in comment.locator(".timepoint-comment-text").text_content()
    # The long word wraps inside the comment instead of widening the page.
    assert comment.evaluate("element => element.scrollWidth <= element.clientWidth + 1")

    # Edit it; the earlier text stays under "Earlier versions".
    comment.locator("summary:text-is('Edit or delete')").click()
    comment.locator("textarea[name=text]").fill("Arrived 20 minutes late.")
    comment.locator("button:text-is('Save changes')").click()
    page.wait_for_url(f"**/timepoints/{DEMO_TIMEPOINT}/#comment-*")
    comment = page.locator(".timepoint-comment").first
    assert comment.locator(".badge:text-is('edited')").is_visible()
    comment.locator("summary:text-matches('Earlier versions')").click()
    assert "Arrived late <b>20 min</b>." in comment.locator(".comment-versions").text_content()

    # Report a finding; the badge counts it.
    findings = page.locator("#findings")
    findings.locator("summary:text-is('Report an incidental finding')").click()
    findings.locator("textarea[name=description]").fill("Possible arachnoid cyst, left temporal.")
    findings.locator("button:text-is('Report finding')").click()
    page.wait_for_url(f"**/timepoints/{DEMO_TIMEPOINT}/#finding-*")
    assert page.locator("#findings [data-finding-count]").text_content() == "1"
    assert "arachnoid cyst" in page.locator(".incidental-finding").text_content()
    finding = IncidentalFinding.objects.get()
    assert Notification.objects.filter(key=f"incidental-finding:{finding.pk}").exists()

    history = page.locator("#history")
    assert history.locator("[data-history-kind=comment_edited]").count() == 1
    assert history.locator("[data-history-kind=comment_added]").count() == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "timepoint-notes.png"), full_page=True)

    # Delete the comment after confirming. The page and the history then show the deletion and
    # no longer show its text.
    comment = page.locator(".timepoint-comment").first
    comment.locator("summary:text-is('Edit or delete')").click()
    comment.locator("a:text-is('Delete comment')").click()
    page.wait_for_url("**/comments/*/delete/")
    assert "Arrived 20 minutes late." in page.locator("[data-comment-text]").text_content()
    assert TimepointComment.objects.get().deleted_at is None
    page.screenshot(path=str(SCREENSHOTS / "comment-delete-confirm.png"), full_page=True)
    page.locator("form.delete-form button:text-is('Delete comment')").click()
    page.wait_for_url(f"**/timepoints/{DEMO_TIMEPOINT}/#comments")
    assert "Comment deleted by Riley Reviewer" in page.locator("#comments").text_content()
    assert history.locator("[data-history-kind=comment_deleted]").count() == 1
    assert "Arrived 20 minutes late." not in page.content()
    assert TimepointComment.objects.get().deleted_at is not None
    assert page.locator("#comments [data-comment-count]").text_content() == "0"
    page.screenshot(path=str(SCREENSHOTS / "timepoint-notes-deleted.png"), full_page=True)

    # The scan page shows the same history, with the scan's own events.
    scan = Scan.objects.filter(session__timepoint__name=DEMO_TIMEPOINT).order_by("series").first()
    page.goto(f"{live_server.url}/scans/{scan.name}/")
    assert page.locator("#history [data-history-kind=comment_deleted]").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "scan-history.png"), full_page=True)
