"""The T2V tab's main flow in a real browser (Debian's Chromium driven by Playwright): evolve, chart, candidates,
final render with the inline players."""

import pytest

from tests.browser import ARTIFACTS, open_tab


@pytest.mark.browser
def test_t2v_tab_evolve_and_render_in_chromium(app_page):
    page = app_page
    page.set_default_timeout(120_000)
    open_tab(page, "t2v")
    page.locator("#t2v-prompt textarea").fill("a dog running on a beach")
    page.locator("#t2v-evolve").click()
    page.locator("#t2v-status").get_by_text("Best:").wait_for()
    page.locator(".js-plotly-plot").first.wait_for(state="attached", timeout=30_000)  # the chart drew
    assert page.get_by_text("round 1 (from candidate").first.is_visible()
    page.locator("#t2v-final").click()
    page.locator("#t2v-final-status").get_by_text("Rendered with seed").wait_for()
    assert page.locator("video").count() >= 2
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "t2v_tab.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
