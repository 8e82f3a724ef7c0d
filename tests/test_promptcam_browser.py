"""The Prompt-CAM tab's main flow in Chromium on the fake profile (which uses the shipped trained checkpoint):
explain a shipped example, then check the class table, the ranked head gallery and both baselines are drawn."""

from __future__ import annotations

import pytest

from tests.browser import open_tab, screenshot, table_rows, wait_for_text


@pytest.mark.browser
def test_promptcam_tab_explains_a_shipped_example(app_page):
    from playwright.sync_api import expect

    page = app_page
    panel = open_tab(page, "promptcam")
    panel.locator("#promptcam-run").click()
    summary = wait_for_text(panel.locator("#promptcam-summary"), "predicted", timeout=180_000)
    assert "blue_crown_00001.png · predicted blue_crown" in summary  # the default example is one it gets right
    assert "Explaining class" in summary and "validation accuracy" in summary
    rows = table_rows(panel.locator("#promptcam-topk-table"))
    assert len(rows) == 3  # top-3 classes, the default
    expect(panel.locator("#promptcam-heads img")).to_have_count(4)  # 4 ranked heads (the top-traits default)
    for elem in ("#promptcam-gradcam-image", "#promptcam-rollout"):
        image = panel.locator(f"{elem} img").first
        image.wait_for(state="attached")
        image.scroll_into_view_if_needed()
        image.evaluate("i => i.complete && i.naturalWidth ? 0 : new Promise(r => i.addEventListener('load', r))")
        assert image.evaluate("i => i.naturalWidth") > 0
    screenshot(page, "promptcam_tab")
