"""The T2V tab's main flow in a real browser (Debian's Chromium driven by Playwright): evolve, chart, candidates,
final render with the inline players."""

import shutil

import pytest

from tests.app_process import ROOT, start_app, stop
from tests.browser import CHROMIUM_ARGS

ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.mark.browser
def test_t2v_tab_evolve_and_render_in_chromium():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    proc, url, _ = start_app("--profile", "fake")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="T2V prompt refinement").click()
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
            browser.close()
        assert shot.stat().st_size > 10_000
    finally:
        stop(proc)
