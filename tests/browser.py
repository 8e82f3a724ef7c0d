"""Shared pieces for the Chromium tests (Debian's chromium driven by Playwright; never `playwright install`).

Every tab gets one browser test of its main flow on the `fake` profile. A new tab's test takes the `app_page`
fixture (tests/conftest.py): one `python app.py --profile fake` process and one Chromium serve every browser test
of the run, and each test gets a fresh page. Then:

    panel = open_tab(page, "my_tab")            # pages/my_tab.py: clicks its tab, returns its panel (#tab-my_tab)
    panel.locator("#my-run").click()
    wait_for_text(panel.locator("#my-result"), "expected words")
    assert table_rows(panel.locator("#my-table"))["row key"]["column"] == "value"

Scope every check to the component it is about (an elem_id inside the tab's panel), never to page-wide text:
the profile banner and other tabs hold many of the same words.
"""

from __future__ import annotations

import shutil
from typing import Any

from tests.app_process import ROOT

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "tests" / "artifacts"
TIMEOUT_MS = 120_000


def chromium_path() -> str:
    """Debian's chromium, or a skip (a failure in CI: tests/ci_skips.py)."""
    from tests.ci_skips import missing_tool

    path = shutil.which("chromium")
    if path is None:
        missing_tool("Debian's chromium is not installed (apt-get install -y chromium)")
    return path


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def open_tab(page: Any, name: str) -> Any:
    """Click the tab of pages/<name>.py (found by its TITLE) and return its panel (app.py gives it #tab-<name>)."""
    import importlib

    title = importlib.import_module(f"pages.{name}").TITLE
    page.get_by_role("tab", name=title, exact=True).click()
    panel = page.locator(f"#tab-{name}")
    panel.wait_for(state="visible")
    return panel


def wait_for_text(locator: Any, text: str, timeout: float = TIMEOUT_MS) -> str:
    """Wait until `locator`'s inner text contains `text`; returns the whole text."""
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text, timeout=timeout)
    return locator.inner_text()


def table_rows(locator: Any) -> dict[str, dict[str, str]]:
    """A Gradio Dataframe's cells as {first cell: {header: cell}}, read from its ARIA grid (column headers and the
    grid cells of each row) as the browser rendered it."""
    header, rows = locator.evaluate(
        """t => [[...t.querySelectorAll('[role=columnheader]')].map(c => c.innerText.trim()),
                 [...t.querySelectorAll('[role=row]')]
                   .map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))
                   .filter(r => r.length)]""")
    return {row[0]: dict(zip(header, row)) for row in rows}


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def block(panel: Any, label: str) -> Any:
    """The Gradio component inside `panel` whose label reads `label` exactly (its block label, as a person reads it),
    found without the component's elem_id."""
    import re

    exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return panel.locator("div.block").filter(
        has=panel.page.locator("[data-testid=block-label], [data-testid=block-info], label").filter(
            has_text=exact)).last


# An <img>'s pixels as Chromium decoded and drew them: [width, height, RGB bytes row by row].
CANVAS_PIXELS = """async i => {
    if (!(i.complete && i.naturalWidth)) await new Promise(r => i.addEventListener('load', r, {once: true}));
    const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(i, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
    const rgb = []; for (let p = 0; p < d.length; p += 4) rgb.push(d[p], d[p + 1], d[p + 2]);
    return [c.width, c.height, rgb]; }"""


def shown_pixels(image: Any) -> Any:
    """The pixels of an <img> locator as Chromium drew them, an (H, W, 3) float array."""
    import numpy as np

    image.scroll_into_view_if_needed()  # Gradio's images load lazily
    width, height, rgb = image.evaluate(CANVAS_PIXELS)
    return np.asarray(rgb, dtype=float).reshape(height, width, 3)
