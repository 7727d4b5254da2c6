import struct
import zlib

import pytest

from accounts.models import Role, StudyMembership
from qc.models import QCEvent, QCEventKind, QCState, ScanReview, SessionSignOff
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    TEST_PASSWORD,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
    UserFactory,
)


def write_png(path, width=64, height=16):
    """Write a small grey gradient PNG, so the page shows real images."""
    rows = b"".join(b"\x00" + bytes((x * 4) % 256 for x in range(width)) for _ in range(height))

    def chunk(kind, body):
        checksum = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def session_of_three_scans(tmp_path):
    study_site = make_study_site()
    study = study_site.study
    study.archive_path = str(tmp_path)
    study.save()
    session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    scans = []
    for series, tag in enumerate(("T1", "RST", "DTI60-1000"), start=2):
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


def test_review_flow(transactional_db, live_server, page, session_of_three_scans):
    session, (t1, rst, dti) = session_of_three_scans
    user = UserFactory(username="alice", email="alice@example.org")
    StudyMembership.objects.create(user=user, study=session.timepoint.study, role=Role.QC_REVIEWER)

    # Sign in through allauth's form; the study list is the landing page.
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=login]", "alice@example.org")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.text_content("[data-testid=current-user]").strip() == "alice"

    page.click("a:text-is('SPINS')")
    page.wait_for_url("**/studies/SPINS/")
    page.click(f"a:text-is('{session.timepoint.name}')")
    page.wait_for_url(f"**/timepoints/{session.timepoint.name}/")
    row = page.locator(f"#scan-{rst.pk}")
    assert row.locator(".qc-state").text_content() == "new"
    # QC images load lazily: bring the first into view and wait until it has loaded.
    image = row.locator("img").first
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "image => image.complete && image.naturalWidth > 0", arg=image.element_handle()
    )
    assert image.evaluate("image => image.naturalWidth") == 64

    # Flag in place: htmx swaps the row, so a marker set on the page survives.
    page.evaluate("window.reviewMarker = 1")
    row.locator("textarea[name=comment]").fill("Head motion in the last third")
    row.locator("button[value=flagged]").click()
    page.wait_for_selector(f"#scan-{rst.pk} .qc-state[data-state=flagged]")
    assert page.evaluate("window.reviewMarker") == 1
    assert (
        "Head motion in the last third"
        in page.locator(f"#scan-{rst.pk} .qc-comment").text_content()
    )
    assert page.locator(f"#scan-{t1.pk} .qc-state").text_content() == "new"

    # Sign off through the confirmation page, which lists the two scans still new.
    page.click(f"#session-{session.number} a:text('Sign off')")
    page.wait_for_url(f"**/sessions/{session.name}/sign-off/")
    listed = page.locator("table.new-scans tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.scan)"
    )
    assert listed == [t1.name, dti.name]
    page.click("form.sign-off-form button[type=submit]")
    page.wait_for_url(f"**/timepoints/{session.timepoint.name}/")
    assert "signed off; 2 new scans approved" in page.locator(".messages").text_content()
    for scan in (t1, dti):
        assert page.locator(f"#scan-{scan.pk} .qc-state").text_content() == "approved"

    flagged = ScanReview.objects.get(scan=rst)
    assert flagged.state == QCState.FLAGGED
    assert flagged.comment == "Head motion in the last third"
    assert flagged.reviewer == user
    sign_off = SessionSignOff.objects.get(session=session)
    assert sign_off.reviewer == user
    approved = ScanReview.objects.filter(sign_off=sign_off)
    assert sorted(review.scan_id for review in approved) == sorted([t1.pk, dti.pk])
    assert {review.state for review in approved} == {QCState.APPROVED}
    kinds = sorted(QCEvent.objects.filter(actor=user).values_list("kind", flat=True))
    assert kinds == sorted([QCEventKind.SCAN_REVIEWED] * 3 + [QCEventKind.SESSION_SIGNED_OFF])
