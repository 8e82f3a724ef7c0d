"""The Promptor tab in Debian's Chromium: a conversation survives a page reload (the resume code lives in the
browser's localStorage through gr.BrowserState; the state itself stays on the server)."""

import os
import re
import shutil

import pytest

from tests.app_process import start_app, stop
from tests.browser import ARTIFACTS, CHROMIUM_ARGS

WAIT = 240_000  # ms: the first message loads MiniLM and embeds the corpus on 2 shared cores


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


@pytest.mark.browser
@pytest.mark.real_models
def test_promptor_free_form_conversation_on_the_offline_profile(tmp_path):
    """Issue 22: a designer talks freely on the offline profile (its real MiniLM reads the messages; the agent
    speaks in its own sentences) and sees a draft, then the final template, in the chat and the side panel."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    env = {**os.environ, "WORKBENCH_PROMPTOR_SESSIONS": str(tmp_path / "sessions")}
    proc, url, _ = start_app("--profile", "offline", env=env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(240_000)
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Promptor").click()
            page.get_by_text("Resume code:").first.wait_for()
            chat = page.locator("#promptor-chat")

            def send(text: str) -> None:
                page.locator("#promptor-message textarea").fill(text)
                page.locator("#promptor-send").click()
                expect(page.locator("#promptor-message textarea")).to_have_value("", timeout=WAIT)  # cleared when the reply ends

            send("Hi! I'm building sentence completion for a notes app, for students on their phones. "
                 "Keep it under 12 words and use a casual tone.")
            expect(chat).to_contain_text("under 12 words", timeout=WAIT)
            assert page.locator("#promptor-field-users textarea").input_value() == "students on their phones"
            assert page.locator("#promptor-field-tone textarea").input_value() == "casual"
            send("What is a placeholder?")
            expect(chat).to_contain_text("A placeholder is a name in braces", timeout=WAIT)
            send("draft it now")
            expect(chat).to_contain_text("You had not answered everything, so I assumed", timeout=WAIT)
            expect(chat).to_contain_text("Evaluate the draft: draft v1", timeout=WAIT)
            draft = page.locator("#promptor-draft textarea")
            expect(draft).to_have_value(re.compile(r"\{user_text\}"), timeout=WAIT)
            assert "- Keep it under 12 words" in draft.input_value()
            send("give me the final template")
            expect(chat).to_contain_text("Final template (from draft v1)")
            expect(page.locator("#promptor-stage")).to_contain_text("Final template", timeout=WAIT)
            assert "festival" not in chat.inner_text()  # nothing but the agent's own sentences
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "promptor_free_form.png"), full_page=True)
            browser.close()
    finally:
        stop(proc)
