"""The NiiVue volume viewer on the scan page, against the demo archive."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Role, StudyMembership
from studies.models import Scan
from tests.browser.conftest import save_screenshot
from tests.studies.factories import TEST_PASSWORD, UserFactory

READY = ".volume-viewer[data-viewer-state=ready]"

# Reads the canvas back right after a synchronous redraw, because NiiVue's WebGL context does
# not preserve its drawing buffer once the frame is composited. Returns the number of distinct
# colours among the pixels and an FNV-1a hash of them.
READ_PIXELS = """
element => {
  const viewer = element.niivue;
  const gl = viewer.gl;
  viewer.drawScene();
  const width = gl.drawingBufferWidth;
  const height = gl.drawingBufferHeight;
  const pixels = new Uint8Array(width * height * 4);
  gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
  const colours = new Set();
  let hash = 0x811c9dc5;
  for (let index = 0; index < pixels.length; index += 4) {
    colours.add((pixels[index] << 16) | (pixels[index + 1] << 8) | pixels[index + 2]);
  }
  for (let index = 0; index < pixels.length; index += 1) {
    hash = Math.imul(hash ^ pixels[index], 0x01000193) >>> 0;
  }
  return { colours: colours.size, hash: hash };
}
"""


def read_canvas(page):
    """Return (distinct colour count, hash of the pixels) of the viewer's canvas."""
    result = page.locator(".volume-viewer").evaluate(READ_PIXELS)
    return result["colours"], result["hash"]


@pytest.fixture
def demo_archive(transactional_db, tmp_path, settings):
    """The demo archive on disk, its config synced and its sessions imported."""
    root = tmp_path / "archive"
    settings.ARCHIVE_ROOT = root
    call_command("make_demo_archive", str(root), stdout=None)
    call_command("sync_config", str(root / "config" / "main_config.yml"))
    # The demo contains one malformed file name on purpose, so the import reports it.
    with pytest.raises(CommandError, match="1 skipped and 0 errors"):
        call_command("import_archive", "DEMO")
    return root


@pytest.fixture
def demo_reviewer(demo_archive):
    from studies.models import Study

    user = UserFactory(username="viewer-reviewer", email="viewer@example.org")
    study = Study.objects.get(nickname="DEMO")
    StudyMembership.objects.create(user=user, study=study, role=Role.QC_REVIEWER)
    return user


def sign_in(page, base_url, user):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def demo_scan(tag):
    return Scan.objects.filter(scantype__tag=tag, session__timepoint__is_phantom=False).first()


def open_scan(page, base_url, scan):
    page.goto(f"{base_url}/scans/{scan.name}/")
    page.wait_for_selector(READY)


def test_viewer_draws_volume(live_server, page, demo_reviewer):
    scan = demo_scan("T1")
    sign_in(page, live_server.url, demo_reviewer)
    open_scan(page, live_server.url, scan)

    colours, _ = read_canvas(page)
    # Black background, red crosshair and the grey levels of the synthetic head.
    assert colours > 10
    assert page.locator("[data-viewer-frame]").is_hidden()
    assert page.locator(".qc-images img").count() > 0
    save_screenshot(page, "scan_page")


def test_viewer_volume_slider_4d(live_server, page, demo_reviewer):
    scan = demo_scan("RST")
    sign_in(page, live_server.url, demo_reviewer)
    open_scan(page, live_server.url, scan)
    output = page.locator("[data-viewer-output=frame]")
    assert output.text_content() == f"volume 1 of {scan.volumes}"
    _, first_frame = read_canvas(page)

    slider = page.locator("[data-viewer-control=frame]")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")

    assert output.text_content() == f"volume 3 of {scan.volumes}"
    assert page.locator(".volume-viewer").evaluate("e => e.niivue.volumes[0].frame4D") == 2
    _, third_frame = read_canvas(page)
    assert third_frame != first_frame
    save_screenshot(page, "scan_page_4d")


def test_viewer_layout_and_contrast(live_server, page, demo_reviewer):
    sign_in(page, live_server.url, demo_reviewer)
    open_scan(page, live_server.url, demo_scan("T1"))
    viewer = page.locator(".volume-viewer")
    _, multiplanar = read_canvas(page)

    page.select_option("[data-viewer-control=layout]", "axial")
    assert viewer.evaluate("e => e.niivue.opts.sliceType") == 0
    _, axial = read_canvas(page)
    assert axial != multiplanar

    page.fill("[data-viewer-control=contrast-min]", "100")
    page.fill("[data-viewer-control=contrast-max]", "300")
    page.press("[data-viewer-control=contrast-max]", "Enter")
    assert viewer.evaluate("e => [e.niivue.volumes[0].cal_min, e.niivue.volumes[0].cal_max]") == [
        100,
        300,
    ]
    _, brighter = read_canvas(page)
    assert brighter != axial

    page.fill("[data-viewer-control=contrast-min]", "400")
    page.press("[data-viewer-control=contrast-min]", "Enter")
    assert "Contrast min must be a number below contrast max" in page.text_content(
        "[data-viewer-status]"
    )
    assert page.input_value("[data-viewer-control=contrast-min]") == "100"

    page.click("[data-viewer-control=contrast-reset]")
    assert page.input_value("[data-viewer-control=contrast-min]") != "100"


def test_viewer_arrow_keys_move_crosshair(live_server, page, demo_reviewer):
    sign_in(page, live_server.url, demo_reviewer)
    open_scan(page, live_server.url, demo_scan("RST"))
    viewer = page.locator(".volume-viewer")
    start = viewer.evaluate("e => Array.from(e.niivue.scene.crosshairPos)")

    page.locator("canvas.volume-canvas").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")

    moved = viewer.evaluate("e => Array.from(e.niivue.scene.crosshairPos)")
    assert moved[0] > start[0]
    assert moved[2] > start[2]
    # The first step snaps the start (0.5) to the nearest voxel centre: 8.5 / 16 = 0.53125.
    assert abs(moved[1] - start[1]) < 1 / 16
    # NiiVue's own arrow keys would have changed the 4D volume instead.
    assert viewer.evaluate("e => e.niivue.volumes[0].frame4D") == 0
    assert page.locator("[data-viewer-output=location]").text_content() != ""
    assert page.evaluate("window.scrollY") == 0


def test_viewer_without_webgl2(live_server, page, demo_reviewer):
    page.add_init_script(
        """
        const getContext = HTMLCanvasElement.prototype.getContext;
        HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
          return kind === "webgl2" ? null : getContext.call(this, kind, ...rest);
        };
        """
    )
    sign_in(page, live_server.url, demo_reviewer)
    page.goto(f"{live_server.url}/scans/{demo_scan('T1').name}/")
    page.wait_for_selector(".volume-viewer[data-viewer-state=no-webgl2]")

    assert "WebGL2 is unavailable" in page.text_content("[data-viewer-status]")
    assert page.locator("[data-viewer-control=layout]").is_disabled()


def test_viewer_missing_file_message(live_server, page, demo_reviewer, demo_archive):
    scan = demo_scan("T1")
    (demo_archive / "DEMO" / scan.nifti_path).unlink()
    sign_in(page, live_server.url, demo_reviewer)
    page.goto(f"{live_server.url}/scans/{scan.name}/")

    message = page.locator("[data-status=volume-unavailable]")
    assert "is missing from the DEMO archive" in message.text_content()
    assert page.locator("canvas.volume-canvas").count() == 0
