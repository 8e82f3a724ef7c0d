"""Regenerate the README screenshots: the app on the fake profile in Debian's Chromium (Playwright), each tab
after one real interaction. Run from the repository root: `python docs/make_screenshots.py`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from tests.app_process import start_app, stop  # noqa: E402
from tests.test_browser import CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def scroll_through(page) -> None:
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(250)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)


def promptor_screenshot(page) -> None:
    """The Promptor tab after a starter task, its suggested answers, a draft, feedback and one test round."""
    page.get_by_role("tab", name="Promptor").click()
    page.get_by_text("Resume code:").first.wait_for()
    box = page.locator("#promptor-message textarea")
    for text, marker in [("sentence completion", "(2/7)"), ("ok", "(3/7)"), ("ok", "(4/7)"), ("ok", "(5/7)"),
                         ("ok", "(6/7)"), ("ok", "(7/7)"), ("ok", "draft v1"),
                         ("mention the place if the user names one", "draft v2"), ("run", "Test round 1 done")]:
        box.fill(text)
        page.locator("#promptor-send").click()
        page.get_by_text(marker).last.wait_for()
        page.wait_for_timeout(1500)  # let the streamed reply finish
    page.screenshot(path=str(OUT / "promptor_tab.png"), full_page=True)


def main() -> None:
    from playwright.sync_api import sync_playwright

    proc, url, _ = start_app("--profile", "fake")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)
            page.goto(url, wait_until="domcontentloaded")

            page.get_by_role("tab", name="T2I prompt refinement").click()
            page.get_by_label("Coarse prompt").fill("a cat on a sofa")
            page.get_by_role("button", name="Refine", exact=True).click()
            page.get_by_text("candidate(s) chosen by MMR").wait_for()
            page.get_by_role("button", name="Render", exact=True).click()
            page.get_by_text("Image diversity of this round").wait_for()
            scroll_through(page)  # images load lazily: bring each into view once
            page.screenshot(path=str(OUT / "t2i_tab.png"), full_page=True)

            page.get_by_role("tab", name="Behaviour shift").click()
            page.locator("#shift-run").click()
            page.wait_for_timeout(20000)
            page.screenshot(path=str(OUT / "shift_tab.png"), full_page=True)

            promptor_screenshot(page)

            page.get_by_role("tab", name="Models").click()
            page.locator("#models-load").click()
            page.get_by_text("Loaded chat").wait_for()
            page.screenshot(path=str(OUT / "models_tab.png"), full_page=True)
            browser.close()
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
