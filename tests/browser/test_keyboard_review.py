"""The keyboard review loop and stale-page conflicts, in Chromium."""

import os
from pathlib import Path

import pytest

from accounts.models import Role, StudyMembership
from qc.models import QCState, ScanReview, SessionSignOff
from tests.browser.test_review_flow import write_png
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    TEST_PASSWORD,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)

CHROMIUM_VIEWPORT = {"width": 1400, "height": 900}
# A function, not an expression: the page's CSP forbids the eval Playwright uses for strings.
WAIT_FOR_CONFIRM_FOCUS = "() => document.activeElement?.dataset.action === 'confirm-sign-off'"


@pytest.fixture
def screenshots(tmp_path):
    """Folder for screenshots: QCDASH_SCREENSHOTS when set (to look at them), else tmp."""
    folder = Path(os.environ.get("QCDASH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def session_of_four_scans(tmp_path):
    """A session of four new scans with one QC image each, and a QC reviewer `alice`."""
    study_site = make_study_site()
    study = study_site.study
    study.archive_path = str(tmp_path)
    study.save()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    scans = []
    for series, tag in enumerate(("T1", "RST", "DTI60-1000", "FMAP"), start=2):
        image = f"qc/{session.timepoint.name}/{tag}.png"
        write_png(tmp_path / image)
        scans.append(
            ScanFactory(
                session=session,
                scantype=ScantypeFactory(tag=tag),
                series=series,
                qc_images=[{"file": image, "title": f"{tag} montage", "caption": None}],
            )
        )
    return session, scans


def make_reviewer(username, study):
    user = UserFactory(username=username, email=f"{username}@example.org")
    StudyMembership.objects.create(user=user, study=study, role=Role.QC_REVIEWER)
    return user


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def selected_scan(page):
    return page.evaluate("document.querySelector('.scan-row.is-selected')?.dataset.scan ?? null")


def wait_for_state(page, scan, state):
    page.wait_for_selector(f"#scan-{scan.pk} .scan-summary .qc-state[data-state={state}]")


def test_review_session_with_keyboard(
    transactional_db, live_server, page, session_of_four_scans, screenshots
):
    session, (t1, rst, dti, fmap) = session_of_four_scans
    alice = make_reviewer("alice", session.timepoint.study)
    sign_in(page, live_server, alice)

    # The navbar button leads to the only session waiting for review.
    page.click("[data-testid=next-session]")
    page.wait_for_url(f"**/timepoints/{session.timepoint.name}/#session-1")

    # A decision key with nothing selected only selects the first row.
    page.keyboard.press("a")
    assert selected_scan(page) == t1.name
    assert not ScanReview.objects.exists()

    page.keyboard.press("?")
    page.wait_for_selector("#shortcut-help.show")
    page.wait_for_timeout(300)  # the fade-in
    assert "Blacklist: type a comment" in page.text_content("#shortcut-help")
    page.screenshot(path=str(screenshots / "keyboard-help.png"))
    page.keyboard.press("?")
    page.wait_for_selector("#shortcut-help", state="hidden")

    # j and k move the selection; arrow keys do the same.
    page.keyboard.press("j")
    assert selected_scan(page) == rst.name
    page.keyboard.press("k")
    assert selected_scan(page) == t1.name
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    assert selected_scan(page) == t1.name

    # Approve T1; the selection moves on to RST.
    page.keyboard.press("a")
    wait_for_state(page, t1, "approved")
    page.wait_for_selector(f"#scan-{rst.pk}.is-selected")

    # Flag RST with a comment full of shortcut letters: typing never triggers a shortcut.
    page.keyboard.press("f")
    comment_box = page.locator(f"#scan-{rst.pk} textarea[name=comment]")
    assert comment_box.evaluate("box => box === document.activeElement")
    page.keyboard.type("bad fsa jk shim artefacts")
    page.keyboard.press("Enter")
    wait_for_state(page, rst, "flagged")
    page.wait_for_selector(f"#scan-{dti.pk}.is-selected")

    # Esc cancels a blacklist; nothing is saved and the row stays selected.
    page.keyboard.press("b")
    page.keyboard.type("not this")
    page.keyboard.press("Escape")
    assert selected_scan(page) == dti.name
    assert page.locator(f"#scan-{dti.pk} .pending-hint").count() == 0
    assert not ScanReview.objects.filter(scan=dti).exists()

    page.keyboard.press("b")
    page.keyboard.press("Control+A")
    page.keyboard.type("no diffusion weighting")
    page.keyboard.press("Enter")
    wait_for_state(page, dti, "blacklisted")
    page.wait_for_selector(f"#scan-{fmap.pk}.is-selected")

    # s opens the confirmation; it lists FMAP, the only scan still new, and Enter confirms.
    page.keyboard.press("s")
    page.wait_for_selector("#sign-off-confirm.show")
    assert page.locator('#sign-off-confirm [data-field="new-scans"] li').all_text_contents() == [
        f"FMAP ({fmap.name})"
    ]
    assert not SessionSignOff.objects.exists()
    page.wait_for_function(WAIT_FOR_CONFIRM_FOCUS)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/timepoints/{session.timepoint.name}/")
    assert "signed off; 1 new scan approved" in page.locator(".messages").text_content()

    decisions = {
        review.scan_id: (review.state, review.comment, review.reviewer_id)
        for review in ScanReview.objects.all()
    }
    assert decisions == {
        t1.pk: (QCState.APPROVED, "", alice.pk),
        rst.pk: (QCState.FLAGGED, "bad fsa jk shim artefacts", alice.pk),
        dti.pk: (QCState.BLACKLISTED, "no diffusion weighting", alice.pk),
        fmap.pk: (QCState.APPROVED, "", alice.pk),
    }
    sign_off = SessionSignOff.objects.get(session=session)
    assert sign_off.reviewer == alice
    assert list(sign_off.reviews.values_list("scan_id", flat=True)) == [fmap.pk]


def test_sign_off_confirmation_cancels(transactional_db, live_server, page, session_of_four_scans):
    session, (t1, *_rest) = session_of_four_scans
    sign_in(page, live_server, make_reviewer("alice", session.timepoint.study))
    page.goto(f"{live_server.url}/timepoints/{session.timepoint.name}/#scan-{t1.pk}")
    assert selected_scan(page) == t1.name

    page.keyboard.press("s")
    page.wait_for_selector("#sign-off-confirm.show")
    page.wait_for_function(WAIT_FOR_CONFIRM_FOCUS)
    page.keyboard.press("Escape")
    page.wait_for_selector("#sign-off-confirm", state="hidden")

    assert not SessionSignOff.objects.exists()
    assert not ScanReview.objects.exists()


def test_scan_page_keys_and_save_and_next(
    transactional_db, live_server, page, session_of_four_scans
):
    session, (t1, rst, dti, fmap) = session_of_four_scans
    sign_in(page, live_server, make_reviewer("alice", session.timepoint.study))
    page.goto(f"{live_server.url}/scans/{rst.name}/")

    page.keyboard.press("p")
    page.wait_for_url(f"**/scans/{t1.name}/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/scans/{rst.name}/")

    # a approves and, with "save and next" ticked, opens the next scan.
    page.keyboard.press("a")
    page.wait_for_url(f"**/scans/{dti.name}/")
    assert ScanReview.objects.get(scan=rst).state == QCState.APPROVED

    page.keyboard.press("f")
    page.keyboard.type("slab boundary artefact")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/scans/{fmap.name}/")
    assert ScanReview.objects.get(scan=dti).comment == "slab boundary artefact"

    # s opens the sign-off confirmation page with its button focused.
    page.keyboard.press("s")
    page.wait_for_url(f"**/sessions/{session.name}/sign-off/")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Sign off session"
    assert not SessionSignOff.objects.exists()


def test_two_reviewers_conflict_on_scan_page(
    transactional_db, live_server, browser, session_of_four_scans, screenshots
):
    session, (t1, rst, *_rest) = session_of_four_scans
    study = session.timepoint.study
    alice, bob = make_reviewer("alice", study), make_reviewer("bob", study)
    pages = []
    for user in (alice, bob):
        context = browser.new_context(viewport=CHROMIUM_VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, live_server, user)
        page.goto(f"{live_server.url}/scans/{t1.name}/")
        pages.append(page)
    alice_page, bob_page = pages

    alice_page.fill("textarea[name=comment]", "fine, slight motion")
    alice_page.click("form[data-review-form] button[value=approved]")
    alice_page.wait_for_url(f"**/scans/{rst.name}/")

    bob_page.fill("textarea[name=comment]", "ringing in the frontal lobe")
    bob_page.click("form[data-review-form] button[value=flagged]")
    bob_page.wait_for_selector("[data-status=review-conflict]")
    theirs = bob_page.locator("[data-decision=theirs]")
    assert "approved" in theirs.locator(".qc-state").text_content()
    assert theirs.locator("[data-field=reviewer]").text_content() == "alice"
    assert "fine, slight motion" in theirs.text_content()
    yours = bob_page.locator("[data-decision=yours]")
    assert "flagged" in yours.locator(".qc-state").text_content()
    assert "ringing in the frontal lobe" in yours.text_content()
    comment = bob_page.locator("form[data-review-form] textarea[name=comment]")
    assert comment.input_value() == "ringing in the frontal lobe"
    bob_page.locator("[data-status=review-conflict]").scroll_into_view_if_needed()
    bob_page.screenshot(path=str(screenshots / "review-conflict.png"))
    assert list(ScanReview.objects.values_list("state", "reviewer__username")) == [
        (QCState.APPROVED, "alice")
    ]

    # Saving again records bob's decision on top of alice's; both are kept.
    bob_page.click("[data-action=save-anyway]")
    bob_page.wait_for_url(f"**/scans/{rst.name}/")
    reviews = ScanReview.objects.filter(scan=t1).order_by("created_at", "id")
    assert [(review.state, review.reviewer.username) for review in reviews] == [
        (QCState.APPROVED, "alice"),
        (QCState.FLAGGED, "bob"),
    ]
    for page in pages:
        page.context.close()


def test_two_reviewers_conflict_on_session_row(
    transactional_db, live_server, browser, session_of_four_scans, screenshots
):
    session, (t1, *_rest) = session_of_four_scans
    study = session.timepoint.study
    alice, bob = make_reviewer("alice", study), make_reviewer("bob", study)
    pages = []
    for user in (alice, bob):
        context = browser.new_context(viewport=CHROMIUM_VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, live_server, user)
        page.goto(f"{live_server.url}/timepoints/{session.timepoint.name}/#scan-{t1.pk}")
        pages.append(page)
    alice_page, bob_page = pages

    alice_page.keyboard.press("a")
    wait_for_state(alice_page, t1, "approved")

    bob_page.keyboard.press("b")
    bob_page.keyboard.type("wrong participant")
    bob_page.keyboard.press("Enter")
    bob_page.wait_for_selector(f"#scan-{t1.pk} [data-status=review-conflict]")
    row = bob_page.locator(f"#scan-{t1.pk}")
    # The row now shows alice's decision, the conflict both, and bob keeps his text and place.
    assert row.locator(".scan-summary .qc-state").text_content() == "approved"
    assert row.locator("[data-decision=theirs] [data-field=reviewer]").text_content() == "alice"
    assert "wrong participant" in row.locator("[data-decision=yours]").text_content()
    assert row.locator("textarea[name=comment]").input_value() == "wrong participant"
    assert selected_scan(bob_page) == t1.name
    row.scroll_into_view_if_needed()
    bob_page.screenshot(path=str(screenshots / "review-conflict-row.png"))
    assert ScanReview.objects.count() == 1

    row.locator("[data-action=save-anyway]").click()
    wait_for_state(bob_page, t1, "blacklisted")
    assert ScanReview.objects.count() == 2
    for page in pages:
        page.context.close()


def test_keys_in_search_suggestions_review_nothing(
    transactional_db, live_server, page, session_of_four_scans, screenshots
):
    session, (t1, *_others) = session_of_four_scans
    alice = make_reviewer("alice", session.timepoint.study)
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/timepoints/{session.timepoint.name}/")

    page.keyboard.press("j")
    assert selected_scan(page) == t1.name

    # Type in the header search, move into its suggestions and press a there.
    page.click("[data-testid=search-input]")
    page.keyboard.type(session.timepoint.name)
    page.wait_for_selector("[data-testid=search-dropdown].show a")
    page.keyboard.press("ArrowDown")
    focused_in_dropdown = "() => document.activeElement.closest('.dropdown-menu') !== null"
    assert page.evaluate(focused_in_dropdown)
    page.screenshot(path=str(screenshots / "keyboard-search-suggestions.png"))
    page.keyboard.press("a")
    page.wait_for_timeout(500)  # time for an htmx save, if one were sent
    assert not ScanReview.objects.exists()

    # A focused link outside the scan table takes the key too.
    page.focus("[data-testid=qc-search-link]")
    page.keyboard.press("a")
    page.wait_for_timeout(500)
    assert not ScanReview.objects.exists()

    # Back on the selected row, the same key approves the scan.
    page.focus(f"#scan-{t1.pk}")
    page.keyboard.press("a")
    wait_for_state(page, t1, "approved")
    assert ScanReview.objects.get().scan == t1
