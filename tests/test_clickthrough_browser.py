"""A click-through of every tab in Chromium on the `fake` profile with the defaults (issue 19): every button a tab
shows is clicked once (a click before the step it needs gives an error toast, which is part of the walk), and after
each click, once the page is idle, no button of the tab is left disabled."""

from __future__ import annotations

import pytest

from tests.browser import TIMEOUT_MS, open_tab

pytestmark = pytest.mark.browser

# off until there is something for them to do (Retry: an interrupted reply), not stuck
OFF_BY_DESIGN = {"promptor": {"Retry"}}
# a Cancel has nothing to stop; downloads leave the page; ↺ resets a slider; the upload box opens a file dialog
SKIP = ("cancel", "stop", "download", "refresh", "↺", "upload")


def _idle(page) -> None:
    page.wait_for_timeout(300)  # let the click reach the queue before looking for its busy markers
    page.wait_for_function("""() => ![...document.querySelectorAll('.progress-text, .eta-bar, .generating')]
        .some(e => e.offsetParent !== null)""", timeout=TIMEOUT_MS)


def _stuck(page, panel, tab: str) -> list[str]:
    """The tab's buttons still disabled a minute after the page went idle (those with a label: a gallery's own
    arrows are not the page's buttons); a button re-enabled late (a loaded machine) is not stuck."""
    js = """([p, allowed]) => [...p.querySelectorAll('button')]
        .filter(b => b.offsetParent !== null && b.disabled && !b.closest('[role=tablist]') && b.innerText.trim())
        .map(b => b.innerText.trim()).filter(t => !allowed.includes(t))"""
    allowed = sorted(OFF_BY_DESIGN.get(tab, ()))
    try:
        page.wait_for_function(f"(args) => ({js})(args).length === 0", arg=[panel.element_handle(), allowed],
                               timeout=60_000)
    except Exception:
        return panel.evaluate(f"p => ({js})([p, {allowed!r}])")
    return []


@pytest.mark.parametrize("tab", ["t2i", "t2v", "shift", "promptor", "promptcam", "studies", "models"])
def test_no_button_is_left_disabled_after_any_click(app_page, tab):
    page = app_page
    panel = open_tab(page, tab)
    _idle(page)
    labels = panel.evaluate("""p => [...p.querySelectorAll('button')]
        .filter(b => b.offsetParent !== null && !b.disabled && !b.closest('[role=tablist]')
                     && !b.closest('.label-wrap') && b.innerText.trim())
        .map(b => b.innerText.trim())""")
    clicked = []
    for label in dict.fromkeys(labels):
        if any(word in label.lower() for word in SKIP) or label in ("×", "✕"):
            continue
        button = panel.get_by_role("button", name=label, exact=True)
        if button.count() != 1 or not button.is_visible() or not button.is_enabled():
            continue
        button.click()
        clicked.append(label)
        _idle(page)
        stuck = _stuck(page, panel, tab)
        assert not stuck, f"{tab}: after clicking {label!r} these buttons stay disabled: {stuck}"
    assert len(clicked) >= 2, (tab, labels)
