"""Markup typed into the app, in Chromium, in both front ends: every free-text box of every tab gets each probe,
then the tab's actions run. The probe must not run (document.title unchanged, no element built from it) and,
wherever the page shows it back (a status line, an error toast, st.error, the dashboard), it is shown literally.

Text boxes are found in the DOM per tab (every visible textarea and text input that is not a dropdown, after
opening the tab's accordions), so a new input is covered without editing this file. The actions are the tab's
primary buttons (Gradio `variant="primary"`, Streamlit `type="primary"` and form submits; the first button when
a page has neither). Boxes that appear only after another choice (e.g. a server URL once "server" is picked) are
not reached by this table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.browser import TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (probe, what would vanish from the shown text had it been rendered as markup)
PROBES = [
    ("<img src=x onerror=document.title='pwned'>", "<img src=x onerror="),
    ("<script>document.title='pwned'</script>", "<script>"),
    # (a rewriter may drop the leading "**" as a list marker: the link's brackets are what a renderer would eat)
    ("**bold** [x](javascript:document.title='pwned')", "[x](javascript:"),
]

TEXT_BOXES = """root => [...root.querySelectorAll('textarea, input[type=text], input:not([type])')]
    .filter(e => e.offsetParent !== null && !e.readOnly && !e.disabled && !e.getAttribute('role')
                 && !e.getAttribute('aria-autocomplete'))"""

# Everything the page shows that mentions the probe, and traces of markup built from it.
INSPECT = """() => {
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const host = n.parentElement;
        if (!host || host.closest('textarea, script, style')) continue;
        const block = host.closest('p, li, td, div, span, pre, code') || host;
        if (n.textContent.includes('pwned')) texts.push(block.textContent);
    }
    return {title: document.title, texts,
            injected_img: document.querySelectorAll('img[src="x"]').length,
            js_links: [...document.querySelectorAll('a[href]')].filter(a => /^\\s*javascript:/i.test(a.href)).length,
            bold: [...document.querySelectorAll('strong, b')].filter(b => b.innerText.trim() === 'bold').length};
}"""


def _check(page, marker: str, title: str, where: str) -> int:
    seen = page.evaluate(INSPECT)
    assert seen["title"] == title, f"{where}: the probe ran (document.title is {seen['title']!r})"
    assert seen["injected_img"] == 0 and seen["js_links"] == 0 and seen["bold"] == 0, (where, seen)
    for text in seen["texts"]:  # every echo shows the markup characters themselves
        assert marker in " ".join(text.split()), f"{where}: the probe was echoed but not literally: {text[:300]!r}"
    return len(seen["texts"])


# --------------------------------------------------------------------------- Gradio


def _gradio_idle(page) -> None:
    page.wait_for_timeout(300)  # let the click reach the queue before looking for its busy markers
    page.wait_for_function("""() => ![...document.querySelectorAll('.progress-text, .eta-bar, .generating')]
        .some(e => e.offsetParent !== null)""", timeout=TIMEOUT_MS)


@pytest.mark.parametrize("probe, marker", PROBES, ids=["img-onerror", "script", "markdown-js-link"])
def test_gradio_every_text_box_of_every_tab_shows_markup_literally(app_page, probe, marker):
    from pages import discover_pages
    from tests.browser import open_tab

    page = app_page
    page.wait_for_selector("[id^='tab-']", state="attached", timeout=TIMEOUT_MS)
    title = page.title()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    filled, echoed = {}, 0
    for module in discover_pages():
        name = module.__name__.rsplit(".", 1)[-1]
        panel = open_tab(page, name)
        for closed in panel.locator("button.label-wrap:not(.open)").all():  # open accordions: their boxes count
            if closed.is_visible():
                closed.click()
        boxes = panel.evaluate_handle(TEXT_BOXES)
        count = page.evaluate("boxes => boxes.length", boxes)
        for i in range(count):
            box = page.evaluate_handle("([boxes, i]) => boxes[i]", [boxes, i]).as_element()
            box.fill(probe)
        filled[name] = count
        for button in panel.locator("button.primary").all():
            if button.is_visible() and button.is_enabled():
                button.click()
                _gradio_idle(page)
                echoed += _check(page, marker, title, f"gradio {name} after '{button.inner_text()}'")
    assert dialogs == []
    # the table reached every tab that has a text box (a tab that lost all its boxes would show here)
    assert sum(filled.values()) >= 20 and all(filled[t] >= 1 for t in ("t2i", "t2v", "shift", "promptor",
                                                                        "promptcam", "studies")), filled
    assert echoed >= 1, "no tab showed the probe back: the literal-display check never ran"


# --------------------------------------------------------------------------- Streamlit


@pytest.fixture(scope="module")
def streamlit_url():
    from tests.app_process import ROOT, free_port, stop, wait_for_http

    port = free_port()
    env = {**os.environ, "WORKBENCH_PROFILE": "fake", "HF_HUB_OFFLINE": "1",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/_stcore/health", proc, timeout=180)
        yield url
    finally:
        stop(proc)


def _streamlit_idle(page) -> None:
    page.wait_for_timeout(300)  # let the rerun start before waiting for it to end
    page.wait_for_function("""() => { const app = document.querySelector('[data-testid="stApp"]');
        return app && app.getAttribute('data-test-script-state') === 'notRunning'; }""", timeout=TIMEOUT_MS)


STREAMLIT_ACTIONS = """main => { const all = [...main.querySelectorAll('button')].filter(b => b.offsetParent !== null);
    const act = all.filter(b => /primary|FormSubmit/i.test(b.getAttribute('data-testid') || b.getAttribute('kind') || ''));
    return (act.length ? act : all.slice(0, 1)).map(b => b.innerText.trim()); }"""


@pytest.mark.parametrize("probe, marker", PROBES, ids=["img-onerror", "script", "markdown-js-link"])
def test_streamlit_every_text_box_of_every_page_shows_markup_literally(chromium, streamlit_url, probe, marker):
    from pages import discover_pages

    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    filled, echoed = {}, 0
    try:
        page.goto(streamlit_url, wait_until="domcontentloaded")
        for module in discover_pages():
            name = module.__name__.rsplit(".", 1)[-1]
            page.locator("[data-testid='stSidebarNavLink']", has_text=module.TITLE).first.click()
            main = page.locator("[data-testid='stMain']")
            main.locator("h1", has_text=module.TITLE).first.wait_for()
            _streamlit_idle(page)
            title = page.title()
            for closed in main.locator("[data-testid='stExpander'] details:not([open]) summary").all():
                if closed.is_visible():
                    closed.click()
            _streamlit_idle(page)
            index, count = 0, 0
            while index < 40:  # each commit reruns the script and may redraw the page: find the boxes again
                boxes = main.evaluate_handle(TEXT_BOXES)
                if index >= page.evaluate("boxes => boxes.length", boxes):
                    break
                box = page.evaluate_handle("([boxes, i]) => boxes[i]", [boxes, index]).as_element()
                index += 1
                if not (box.is_visible() and box.is_editable()):  # e.g. a box of zero size in a collapsed part
                    continue
                box.fill(probe)
                box.press("Tab")  # Streamlit commits a text box's value when it loses focus
                _streamlit_idle(page)
                count += 1
            filled[name] = count
            for label in main.evaluate(STREAMLIT_ACTIONS):
                button = main.get_by_role("button", name=label, exact=True).first
                if button.is_visible() and button.is_enabled():
                    button.click()
                    _streamlit_idle(page)
                    echoed += _check(page, marker, title, f"streamlit {name} after '{label}'")
    finally:
        page.close()
    assert dialogs == []
    assert sum(filled.values()) >= 10 and all(filled[t] >= 1 for t in ("t2i", "t2v", "shift", "studies")), filled
    assert echoed >= 1, "no page showed the probe back: the literal-display check never ran"
