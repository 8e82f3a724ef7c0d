"""The Promptor tab in Debian's Chromium: a conversation survives a page reload (the resume code lives in the
browser's localStorage through gr.BrowserState; the state itself stays on the server)."""

import os
import shutil

import pytest

from tests.app_process import start_app, stop
from tests.browser import ARTIFACTS, CHROMIUM_ARGS


@pytest.mark.browser
def test_promptor_conversation_survives_a_reload(tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "WORKBENCH_PROMPTOR_SESSIONS": str(tmp_path / "sessions")}
    proc, url, _ = start_app("--profile", "fake", env=env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(120_000)
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Promptor").click()
            page.get_by_text("Resume code:").first.wait_for()
            page.locator("#promptor-message textarea").fill("sentence completion")
            page.locator("#promptor-send").click()
            page.get_by_text("people writing short messages on a phone keyboard").first.wait_for()
            page.reload(wait_until="domcontentloaded")
            page.get_by_role("tab", name="Promptor").click()
            # restored from the server by the code kept in localStorage
            page.get_by_text("people writing short messages on a phone keyboard").first.wait_for()
            assert page.locator("#promptor-field-description textarea").input_value() == "sentence completion"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "promptor_tab.png"), full_page=True)
            browser.close()
    finally:
        stop(proc)
