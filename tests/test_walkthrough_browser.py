"""The newcomer walkthrough's defects, checked in Chromium on the `fake` profile (issue 19): what a person sees
after an error, while a job is idle, and how model ids read."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import open_tab, wait_for_text

pytestmark = pytest.mark.browser


def test_t2i_buttons_come_back_after_an_error(app_page):
    page = app_page
    panel = open_tab(page, "t2i")
    buttons = [panel.locator(f"#{b}") for b in ("t2i-refine", "t2i-render", "t2i-further")]
    panel.locator("#t2i-render").click()  # Render before Refine: an error
    expect(page.locator(".toast-body").filter(has_text="nothing to render yet")).to_be_visible(timeout=60_000)
    for button in buttons:
        expect(button).to_be_enabled(timeout=10_000)
    panel.locator("#t2i-prompt textarea").fill("   ")
    panel.locator("#t2i-refine").click()  # an empty prompt: an error
    expect(page.locator(".toast-body").filter(has_text="prompt is empty")).to_be_visible(timeout=60_000)
    for button in buttons:
        expect(button).to_be_enabled(timeout=10_000)
    panel.locator("#t2i-prompt textarea").fill("a cat on a sofa")  # and the tab still works
    panel.locator("#t2i-refine").click()
    wait_for_text(panel.locator("#t2i-status"), "candidate(s)")
    grid = panel.locator("#t2i-grid")
    expect(grid).to_be_hidden()  # no empty gallery area before there is anything to show
    panel.locator("#t2i-render").click()
    wait_for_text(panel.locator("#t2i-render-status"), "Image diversity of this round")
    expect(grid).to_be_visible()
    images = grid.locator("img")
    expect(images).to_have_count(5)
    # the gallery is as tall as its one row of images (plus its label), not a fixed empty box
    rows = {round(box["y"]) for box in (images.nth(i).bounding_box() for i in range(5))}
    assert len(rows) == 1
    assert grid.bounding_box()["height"] < images.first.bounding_box()["height"] + 160


def test_shift_cancel_shows_only_while_an_analysis_runs(app_page):
    page = app_page
    panel = open_tab(page, "shift")
    cancel = panel.locator("#shift-cancel")
    expect(cancel).to_be_hidden()  # idle: nothing to cancel
    panel.locator("#shift-max-new input[type=number]").fill("2")
    panel.locator("#shift-ig-steps input[type=number]").fill("2")
    page.evaluate("""() => { window.cancelShown = false;  // the tiny models finish fast: watch, don't poll
        new MutationObserver(() => { const b = document.querySelector('#shift-cancel');
            if (b && b.offsetParent !== null) window.cancelShown = true; })
          .observe(document.body, {subtree: true, childList: true, attributes: true}); }""")
    panel.locator("#shift-run").click()
    wait_for_text(panel.locator("#shift-summary"), "Instruction span", timeout=240_000)
    expect(cancel).to_be_hidden(timeout=240_000)  # finished: hidden again
    assert page.evaluate("window.cancelShown")  # it was there while the analysis ran
    panel.locator("#shift-prompt textarea").fill("")
    panel.locator("#shift-run").click()  # an error: hidden again too
    expect(page.locator(".toast-body").first).to_be_visible(timeout=60_000)
    expect(cancel).to_be_hidden(timeout=30_000)


def test_promptor_text_typed_before_a_reply_starts_is_kept_and_sent(chromium, tmp_path):
    import os

    from tests.app_process import start_app, stop

    env = {**os.environ, "WORKBENCH_PROMPTOR_SESSIONS": str(tmp_path / "sessions")}
    proc, url, _ = start_app("--profile", "fake", env=env)
    try:
        page = chromium.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(120_000)
        page.goto(url, wait_until="domcontentloaded")
        panel = open_tab(page, "promptor")
        page.get_by_text("Resume code:").first.wait_for()
        box, send = panel.locator("#promptor-message textarea"), panel.locator("#promptor-send")
        held: list = []  # the first message's request to the server, held until the test lets it go
        page.route("**/gradio_api/queue/join*", lambda route: held.append(route) if "sentence completion" in (
            route.request.post_data or "") else route.continue_())
        box.fill("sentence completion")
        send.click()
        while not held:
            page.wait_for_timeout(50)
        # the box empties at the click, in the browser, before the server has even seen the message; what is
        # typed now, before the reply starts, stays in the box when the reply arrives
        expect(box).to_have_value("", timeout=5_000)
        box.fill("ok")
        held[0].continue_()
        chat = panel.locator("#promptor-chat")
        expect(chat.get_by_label("user's message: sentence completion", exact=True)).to_be_visible(timeout=60_000)
        page.wait_for_timeout(2_000)  # the reply has streamed (the fake profile's agent answers at once)
        expect(box).to_have_value("ok")
        send.click()  # and sent while the reply streams (or after): it reaches the conversation
        # both messages reach the conversation, in order, each answered; the box ends empty
        # the user's own bubble (the fake bot may also bold the word "ok" in its replies)
        expect(chat.get_by_label("user's message: ok", exact=True)).to_be_visible(timeout=60_000)
        wait_for_text(chat, "What do they type?")  # the question after "who types" was kept with ok
        expect(box).to_have_value("")
        texts = chat.inner_text()
        assert texts.index("sentence completion") < texts.rindex("ok")
        page.close()
    finally:
        stop(proc)
