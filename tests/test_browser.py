"""One real browser session: Debian's Chromium driven by Playwright opens the app and screenshots the Models tab."""

import shutil

import pytest

from tests.app_process import ROOT, start_app, stop

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.mark.browser
def test_models_tab_in_chromium():
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
            page.get_by_role("tab", name="Models").click()
            page.locator("#models-role").wait_for()
            page.locator("#models-load").click()
            page.get_by_text("Loaded chat: fake/chat").wait_for()
            assert page.get_by_text("RANDOM WEIGHTS: outputs are not meaningful").first.is_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "models_tab.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        assert shot.stat().st_size > 10_000
    finally:
        stop(proc)
