"""A reviewer limited to one site finds no trace of another site's data in any page."""

from tests.studies.factories import TEST_PASSWORD


def test_site_reviewer_sees_only_own_site(
    transactional_db, live_server, page, personas, persona_study, tmp_path
):
    world = persona_study
    cmh, zhh = world.cmh, world.zhh
    reviewer = personas["site_reviewer"]

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", reviewer.email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Study list: one timepoint and one session needing review, the CMH ones.
    row = page.locator("tr[data-study=SPINS]")
    assert row.locator("td").nth(2).text_content().strip() == "1"
    assert row.locator("[data-needs-review]").get_attribute("data-needs-review") == "1"
    page.screenshot(path=tmp_path / "study-list.png", full_page=True)

    # Overview: only the CMH timepoint, and a needs-review total of one session.
    page.click("a:text-is('SPINS')")
    page.wait_for_url("**/studies/SPINS/")
    body = page.content()
    assert cmh.timepoint.name in body
    assert zhh.timepoint.name not in body
    assert "ZHH" not in body
    assert page.get_attribute("[data-needs-review-total]", "data-needs-review-total") == "1"
    page.screenshot(path=tmp_path / "overview.png", full_page=True)

    # Direct URLs to the other site's pages and QC image: 404, with nothing of it shown.
    for path in (
        f"/timepoints/{zhh.timepoint.name}/",
        f"/scans/{zhh.scan.name}/",
        f"/sessions/{zhh.session.name}/sign-off/",
        f"/files/SPINS/{zhh.image}",
        "/files/SPINS/metadata/checklist.csv",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 404, path
        assert zhh.scan.name not in page.content()

    # The own site's pages and image open.
    for path in (
        f"/timepoints/{cmh.timepoint.name}/",
        f"/scans/{cmh.scan.name}/",
        f"/files/SPINS/{cmh.image}",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
