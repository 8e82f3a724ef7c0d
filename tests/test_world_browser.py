"""Issue 20: the `world` profile in Debian's Chromium. The T2I tab renders a world prompt with the trained world
text-to-image model (assets/world/t2i) and the image a person sees is read back by the world's attribute classifier
(assets/world/classifier): the object the prompt names is in the place it names, in the colour it names. The tab
says where the images come from and names the words the world does not know."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.app_process import start_app, stop
from pages.t2i import TITLE
from tests.browser import ARTIFACTS, CHROMIUM_ARGS, shown_pixels

WAIT = 240_000  # ms: the first Refine loads SmolLM2 and its adapter on 2 shared cores
# Written for this test (not a training caption): one object per prompt, so the classifier's reading of its cell is
# the whole check. The world's renders of these prompts are in no training set (seeds 0-6,999 are).
PROMPT = "a large red circle in the top left, on a plain blue background"
NAMED = {"shape": "circle", "colour": "red", "cell": (0, 0)}


@pytest.mark.browser
@pytest.mark.real_models
def test_world_profile_renders_a_world_prompt_that_the_classifier_reads_back(tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    from workbench.world.classifier import AttributeClassifier

    proc, url, _ = start_app("--profile", "world")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(WAIT)
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("tab", name=TITLE, exact=True).click()
            panel = page.locator("#tab-t2i")
            panel.locator("#t2i-prompt textarea").fill(PROMPT)
            panel.locator("#t2i-refine").click()
            status = panel.locator("#t2i-status")
            expect(status).to_contain_text("candidate(s)", timeout=WAIT)
            expect(status).to_contain_text("Images come from the miniature world", timeout=WAIT)
            panel.locator("#t2i-render").click()
            summary = panel.locator("#t2i-render-status")
            expect(summary).to_contain_text("Rendered", timeout=WAIT)
            assert "Images come from the miniature world" in summary.inner_text()
            # the original first, then each candidate that passed the world gate (it drops a rewrite that changes
            # the prompt's objects, place or background, so fewer than the 4 asked may be shown)
            shown = int(summary.inner_text().split("Rendered ")[1].split(" image")[0])
            images = panel.locator("#t2i-grid img")
            expect(images).to_have_count(shown)
            assert 2 <= shown <= 5
            original = shown_pixels(images.nth(0))  # the prompt's own image, first in the grid
            assert original.shape == (64, 64, 3)  # the world profile's render size (its training size)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "world_t2i_tab.png"), full_page=True)
            browser.close()
    finally:
        stop(proc)
    clf = AttributeClassifier.load()
    read = clf.read([np.clip(original + 0.5, 0, 255).astype(np.uint8)])[0]
    there = [o for o in read["objects"] if tuple(o["position"]) == NAMED["cell"]]
    assert there, read  # the named place holds an object
    assert there[0]["colour"] == NAMED["colour"], read
    assert read["background_colour"] == "blue", read
