"""Markup typed into the app, in Chromium, in both front ends: every free-text box of every tab gets each probe,
then the tab's actions run. The probe must not run (document.title unchanged, no element built from it) and,
wherever the page shows it back (a status line, an error toast, st.error, the dashboard), it is shown literally.

Text boxes are found in the DOM per tab (every visible textarea and text input that is not a dropdown, after
opening the tab's accordions), so a new input is covered without editing this file. The actions are the tab's
primary buttons (Gradio `variant="primary"`, Streamlit `type="primary"` and form submits; the first button when
a page has neither).

Boxes and actions that appear only after another choice are reached too: every option of every radio group of the
tab is picked in turn (e.g. T2V's "Principles" mode, which shows its own action; a rewriter kind), and after each
choice and each action the tab is searched again. Whatever box or primary action has newly appeared (T2I's
editable candidates after Refine, T2V's final render once there is a run) gets the probe and is run. A study's
participant boxes and the researcher's dashboard are in `test_participant_answers_show_literally_on_the_dashboard`
(they appear only inside a study)."""

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
# the boxes not probed yet (Gradio keeps a component's element when its value or visibility changes)
NEW_BOXES = f"""root => ({TEXT_BOXES})(root).filter(e => !e.dataset.probed)"""


# Everything the page shows that mentions the probe, and traces of markup built from it.
INSPECT = """() => {
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const host = n.parentElement;
        if (!host || host.closest('textarea, script, style')) continue;
        const block = host.closest('p, li, td, div, span, pre, code') || host;
        // an echo of the probe's code (a list of its words, e.g. "drops “document”, “title”, “pwned'”", is not one)
        if (/title=\W?pwned/.test(n.textContent)) texts.push(block.textContent);
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


def _gradio_fill_new(page, panel, probe, limit: int = 99) -> int:
    """Open the panel's closed accordions, then give the probe to every visible text box not probed yet (the first
    `limit` of them)."""
    for closed in panel.locator("button.label-wrap:not(.open)").all():  # open accordions: their boxes count
        if closed.is_visible():
            closed.click()
    boxes = panel.evaluate_handle(NEW_BOXES)
    count = min(limit, page.evaluate("boxes => boxes.length", boxes))
    for i in range(count):
        box = page.evaluate_handle("([boxes, i]) => boxes[i]", [boxes, i]).as_element()
        box.fill(probe)
        box.evaluate("e => { e.dataset.probed = '1'; }")
    return count


def _gradio_actions(panel) -> list:
    return [b for b in panel.locator("button.primary").all() if b.is_visible() and b.is_enabled()]


def _gradio_run_actions(page, panel, probe, marker, title, where, done: set) -> tuple[int, int]:
    """Click every visible primary action of the panel (each checked after), then probe what the actions revealed
    and run again while new boxes or actions appear (three rounds at most). Returns (echoes seen, boxes revealed)."""
    echoed, revealed_total = 0, 0
    for _ in range(3):
        for button in _gradio_actions(panel):
            label = button.inner_text()
            done.add(label)
            button.click()
            _gradio_idle(page)
            echoed += _check(page, marker, title, f"{where} after '{label}'")
        revealed = _gradio_fill_new(page, panel, probe)
        revealed_total += revealed
        if not revealed and {b.inner_text() for b in _gradio_actions(panel)} <= done:
            break
    return echoed, revealed_total


@pytest.mark.parametrize("probe, marker", PROBES, ids=["img-onerror", "script", "markdown-js-link"])
def test_gradio_every_text_box_of_every_tab_shows_markup_literally(app_page, probe, marker):
    from pages import discover_pages
    from tests.browser import open_tab

    page = app_page
    page.wait_for_selector("[id^='tab-']", state="attached", timeout=TIMEOUT_MS)
    title = page.title()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    filled, later, actions, echoed = {}, {}, {}, 0
    for module in discover_pages():
        name = module.__name__.rsplit(".", 1)[-1]
        panel = open_tab(page, name)
        done: set[str] = set()
        # first the tab's first box alone (its prompt, idea or message), so that its actions succeed and show what
        # they reveal (e.g. T2I's candidates); then every other box, which may make the same actions fail
        filled[name] = _gradio_fill_new(page, panel, probe, limit=1)
        seen, later[name] = _gradio_run_actions(page, panel, probe, marker, title, f"gradio {name}", done)
        filled[name] += _gradio_fill_new(page, panel, probe)
        done.clear()
        more, revealed = _gradio_run_actions(page, panel, probe, marker, title, f"gradio {name} (every box)", done)
        echoed, later[name] = echoed + seen + more, later[name] + revealed
        # every option of every radio group, in turn: what a choice shows gets the probe and its actions run
        groups = panel.evaluate("root => [...root.querySelectorAll('input[type=radio]')].filter(r => "
                                "r.closest('label') && r.closest('label').offsetParent !== null)"
                                ".map(r => [r.name, r.closest('label').innerText.trim()])")
        for group in dict.fromkeys(g for g, _ in groups):
            for option in [o for g, o in groups if g == group]:
                choice = panel.locator(f"input[type=radio][name='{group}']").locator("xpath=..").filter(
                    has_text=option).first
                if not (choice.is_visible() and choice.is_enabled()):
                    continue
                choice.click()
                _gradio_idle(page)
                new = _gradio_fill_new(page, panel, probe)
                later[name] += new
                if new or {b.inner_text() for b in _gradio_actions(panel)} - done:
                    seen, revealed = _gradio_run_actions(page, panel, probe, marker, title,
                                                         f"gradio {name} ({option})", done)
                    echoed, later[name] = echoed + seen, later[name] + revealed
        later[name] += _gradio_fill_new(page, panel, probe)
        filled[name] += later[name]
        actions[name] = done
    assert dialogs == []
    # the table reached every tab that has a text box (a tab that lost all its boxes would show here)
    assert sum(filled.values()) >= 20 and all(filled[t] >= 1 for t in ("t2i", "t2v", "shift", "promptor",
                                                                        "promptcam", "studies")), filled
    # and the boxes and actions that appear only after a choice or an action: T2I's editable candidates after
    # Refine, T2V's "Rewrite with principles" once that mode is picked
    assert later["t2i"] >= 3, later
    assert {"Rewrite with principles", "Render final"} <= actions["t2v"], actions
    assert echoed >= 1, "no tab showed the probe back: the literal-display check never ran"


# --------------------------------------------------------------------------- Streamlit


TOKEN = "xss-test-token"


@pytest.fixture(scope="module")
def streamlit_url(tmp_path_factory):
    from tests.app_process import ROOT, free_port, stop, wait_for_http

    port = free_port()
    env = {**os.environ, "WORKBENCH_PROFILE": "fake", "HF_HUB_OFFLINE": "1",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "WORKBENCH_RESEARCHER_TOKEN": TOKEN,
           "WORKBENCH_STUDIES_DB": str(tmp_path_factory.mktemp("studies") / "studies.sqlite")}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/_stcore/health", proc, timeout=180)
        yield url
    finally:
        stop(proc)


def _streamlit_script_state(page, state: str, timeout: int = TIMEOUT_MS) -> None:
    """Wait until the Streamlit script's state (data-test-script-state) is `state`: "running" or "notRunning"."""
    page.wait_for_function("""state => { const app = document.querySelector('[data-testid="stApp"]');
        return app && app.getAttribute('data-test-script-state') === state; }""", arg=state, timeout=timeout)


def _streamlit_idle(page) -> None:
    page.wait_for_timeout(300)  # let the rerun start before waiting for it to end
    _streamlit_script_state(page, "notRunning")


def _streamlit_settle(page, main) -> None:
    """After a choice that reruns the script: wait for the rerun to start (on a loaded machine it can start later
    than _streamlit_idle's 300 ms; CI once moved on before T2V's principles group was drawn), for it to end, and
    for the page to stop changing (the same primary buttons and boxes 0.7 s apart), since an action whose result
    shows or hides a group reruns twice."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        _streamlit_script_state(page, "running", timeout=3_000)
    except PlaywrightTimeoutError:
        pass  # it had already ended, or the choice reran nothing
    last = None
    for _ in range(10):
        _streamlit_idle(page)
        now = (tuple(main.evaluate(STREAMLIT_ACTIONS)), main.locator("textarea, input").count())
        if now == last:
            return
        last = now
        page.wait_for_timeout(700)


def _streamlit_open(page, title: str) -> None:
    """Click the page's entry in the sidebar, by its exact title. Until app.py's first run calls st.navigation,
    Streamlit lists the files of pages/ by file name ("studies", "wiring", ...): a case-blind match could click
    one of those, which runs the module as a script (a blank page)."""
    import re

    link = page.locator("[data-testid='stSidebarNavLink']").filter(has_text=re.compile(f"^{re.escape(title)}$"))
    link.first.click()


STREAMLIT_ACTIONS = """main => { const all = [...main.querySelectorAll('button')].filter(b => b.offsetParent !== null);
    const act = all.filter(b => /primary|FormSubmit/i.test(b.getAttribute('data-testid') || b.getAttribute('kind') || ''));
    return (act.length ? act : all.slice(0, 1)).map(b => b.innerText.trim()); }"""


# Each visible box's name: its label and its place among boxes of that label (Streamlit redraws elements on every
# rerun, so a box is recognised by its label, not by its element).
STREAMLIT_BOX_KEYS = f"""root => {{ const seen = {{}};
    return ({TEXT_BOXES})(root).map(e => {{ const label = e.getAttribute('aria-label') || e.id || '';
        seen[label] = (seen[label] || 0) + 1; return label + '#' + seen[label]; }}); }}"""
STREAMLIT_RADIOS = """main => [...main.querySelectorAll('[data-testid="stRadio"]')].filter(g => g.offsetParent !== null)
    .map(g => [...g.querySelectorAll('label')].filter(l => l.querySelector('input[type=radio]'))
               .map(l => l.innerText.trim()))"""


def _streamlit_fill_new(page, main, probe, probed: set, limit: int = 99) -> int:
    """Open closed expanders, then give the probe to every visible box not probed yet (the first `limit` of them);
    returns how many."""
    for closed in main.locator("[data-testid='stExpander'] details:not([open]) summary").all():
        if closed.is_visible():
            closed.click()
            _streamlit_idle(page)
    count = 0
    for _ in range(40):  # each commit reruns the script and may redraw the page: find the boxes again
        if count >= limit:
            break
        keys = main.evaluate(STREAMLIT_BOX_KEYS)
        todo = [i for i, key in enumerate(keys) if key not in probed]
        if not todo:
            break
        key = keys[todo[0]]
        probed.add(key)
        box = main.evaluate_handle(f"root => ({TEXT_BOXES})(root)[{todo[0]}]").as_element()
        try:
            if not (box.is_visible() and box.is_editable()):  # e.g. a box of zero size in a collapsed part
                continue
            box.fill(probe)
            box.press("Tab")  # Streamlit commits a text box's value when it loses focus
        except Exception as error:  # a rerun still drawing replaced the box: find it again
            if "not attached" not in str(error):
                raise
            probed.discard(key)
            _streamlit_idle(page)
            continue
        _streamlit_idle(page)
        count += 1
    return count


def _streamlit_run_actions(page, main, probe, marker, title, where, done: set, probed: set) -> tuple[int, int]:
    """Click every visible primary action (each checked after), then probe what appeared, while anything new
    appears (three rounds at most). Returns (echoes seen, boxes revealed)."""
    echoed, revealed_total = 0, 0
    for _ in range(3):
        for label in main.evaluate(STREAMLIT_ACTIONS):
            button = main.get_by_role("button", name=label, exact=True).first
            if button.is_visible() and button.is_enabled():
                done.add(label)
                button.click()
                _streamlit_idle(page)
                echoed += _check(page, marker, title, f"{where} after '{label}'")
        revealed = _streamlit_fill_new(page, main, probe, probed)
        revealed_total += revealed
        if not revealed and set(main.evaluate(STREAMLIT_ACTIONS)) <= done:
            break
    return echoed, revealed_total


@pytest.mark.parametrize("probe, marker", PROBES, ids=["img-onerror", "script", "markdown-js-link"])
def test_streamlit_every_text_box_of_every_page_shows_markup_literally(chromium, streamlit_url, probe, marker):
    from pages import discover_pages

    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    filled, later, actions, echoed = {}, {}, {}, 0
    try:
        page.goto(streamlit_url, wait_until="domcontentloaded")
        for module in discover_pages():
            name = module.__name__.rsplit(".", 1)[-1]
            _streamlit_open(page, module.TITLE)
            main = page.locator("[data-testid='stMain']")
            main.locator("h1", has_text=module.TITLE).first.wait_for()
            _streamlit_idle(page)
            title = page.title()
            done: set[str] = set()
            probed: set[str] = set()
            # the first box alone first (see the Gradio test), then every other box
            filled[name] = _streamlit_fill_new(page, main, probe, probed, limit=1)
            seen, later[name] = _streamlit_run_actions(page, main, probe, marker, title, f"streamlit {name}", done,
                                                       probed)
            filled[name] += _streamlit_fill_new(page, main, probe, probed)
            done.clear()
            more, revealed = _streamlit_run_actions(page, main, probe, marker, title, f"streamlit {name} (every box)",
                                                    done, probed)
            echoed, later[name] = echoed + seen + more, later[name] + revealed
            # every option of every radio group, in turn (found again after each choice: the page redraws)
            for g, options in enumerate(main.evaluate(STREAMLIT_RADIOS)):
                for option in options:
                    groups = main.locator("[data-testid='stRadio']")
                    if g >= groups.count():
                        break
                    choice = groups.nth(g).locator("label").filter(has_text=option).first
                    if not (choice.count() and choice.is_visible() and choice.is_enabled()):
                        continue
                    choice.click()
                    _streamlit_settle(page, main)
                    new = _streamlit_fill_new(page, main, probe, probed)
                    later[name] += new
                    if new or set(main.evaluate(STREAMLIT_ACTIONS)) - done:
                        seen, revealed = _streamlit_run_actions(page, main, probe, marker, title,
                                                                f"streamlit {name} ({option})", done, probed)
                        echoed, later[name] = echoed + seen, later[name] + revealed
            filled[name] += later[name]
            actions[name] = done
    finally:
        page.close()
    assert dialogs == []
    assert sum(filled.values()) >= 10 and all(filled[t] >= 1 for t in ("t2i", "t2v", "shift", "studies")), filled
    # boxes and actions shown only after a choice or an action: T2I's candidates, T2V's principles mode
    assert later["t2i"] >= 3, (later, actions)
    assert "Rewrite with principles" in actions["t2v"], actions
    assert echoed >= 1, "no page showed the probe back: the literal-display check never ran"


# --------------------------------------------------------------------------- a study: participant -> dashboard

# what the participant types: the task answer holds two probes, the free-text question the third
ANSWER = f"{PROBES[0][0]} then {PROBES[2][0]}"
COMMENT = PROBES[1][0]


def _check_probes(page, title: str, where: str) -> int:
    """Every echo of any probe shows that probe's markup characters (each text is checked against the markers of
    the probes it holds)."""
    seen = page.evaluate(INSPECT)
    assert seen["title"] == title, f"{where}: a probe ran (document.title is {seen['title']!r})"
    assert seen["injected_img"] == 0 and seen["js_links"] == 0 and seen["bold"] == 0, (where, seen)
    for text in seen["texts"]:
        flat = " ".join(text.split())
        assert any(marker in flat for _, marker in PROBES), \
            f"{where}: a probe was echoed, not literally: {flat[:300]!r}"
    return len(seen["texts"])


def test_participant_answers_show_literally_on_the_dashboard(chromium, tmp_path):
    """A participant types markup into the study's task box and its free-text question (boxes that exist only
    inside a study, on the participant page); the researcher's dashboard then shows both answers as typed."""
    from tests.app_process import start_app, stop
    from tests.browser import wait_for_text

    env = {**os.environ, "WORKBENCH_RESEARCHER_TOKEN": TOKEN, "WORKBENCH_STUDIES_DB": str(tmp_path / "s.sqlite")}
    proc, url, _ = start_app("--profile", "fake", env=env)
    page = chromium.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(url + "/study", wait_until="domcontentloaded")  # the link as handed out (no trailing slash)
        page.locator("#study-code input, #study-code textarea").first.fill("REFINER-AB")
        title = page.title()
        assert title == "Study"
        page.locator("#study-join").click()
        page.locator("#study-agree input[type=checkbox]").check()
        page.locator("#study-start").click()
        page.get_by_text("Step 1 of 5").first.wait_for()
        page.locator("#study-answer textarea").fill(ANSWER)
        page.locator("#study-submit-task").click()
        page.get_by_text("Step 2 of 5").first.wait_for()
        _check_probes(page, title, "participant page after the task")
        for step, best, worst in ((3, "A", None), (4, "B", None), (5, "A", "D")):
            page.locator("#study-choice").get_by_label(best, exact=True).first.check()
            if worst:
                page.locator("#study-worst").get_by_label(worst, exact=True).first.check()
            page.locator("#study-submit-choice").click()
            page.get_by_text(f"Step {step} of 5").first.wait_for()
        for i, value in enumerate(("4", "5 - Strongly agree", "6")):
            page.locator(f"#study-q{i}-likert").get_by_label(value, exact=True).first.check()
        page.locator("#study-q3-text textarea").fill(COMMENT)
        page.locator("#study-submit-q").click()
        page.get_by_text("all your answers are saved").first.wait_for()
        _check_probes(page, title, "participant page at the end")

        page.goto(url + "/research", wait_until="domcontentloaded")
        page.locator("#study-token input").fill(TOKEN)
        title = page.title()
        page.locator("#study-login").click()
        page.locator("#study-refresh").click()
        free = page.locator("#study-free-text")
        wait_for_text(free, "document.title='pwned'</script>")
        echoed = _check_probes(page, title, "dashboard")
        shown = " ".join(free.inner_text().split())
        for probe, marker in PROBES:  # each answer is shown whole, as typed
            assert probe in shown, (probe, shown[:500])
        assert echoed >= 2
    finally:
        page.close()
        stop(proc)
    assert dialogs == []


def test_streamlit_participant_answers_show_literally_on_the_dashboard(chromium, streamlit_url):
    """The same study in the Streamlit front end's Studies page (its dashboard's tables are drawn on a canvas, so
    there the check is that nothing ran and no element was built from the answers)."""
    from pages import studies

    page = chromium.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    main = page.locator("[data-testid='stMain']")

    def click(name: str) -> None:
        main.get_by_role("button", name=name, exact=True).first.click()
        _streamlit_idle(page)

    def fill(label: str, value: str) -> None:
        box = main.get_by_label(label, exact=True).first
        box.fill(value)
        box.press("Tab")
        _streamlit_idle(page)

    try:
        page.goto(streamlit_url, wait_until="domcontentloaded")
        _streamlit_open(page, studies.TITLE)
        main.locator("h1", has_text=studies.TITLE).first.wait_for()
        _streamlit_idle(page)
        title = page.title()
        fill("Study code", "REFINER-AB")
        click("Join")
        main.get_by_text("I have read the text above and agree to take part").click()
        _streamlit_idle(page)
        click("Start")
        main.get_by_text("Step 1 of 5").first.wait_for()
        fill("Your result (e.g. your final prompt)", ANSWER)
        click("Submit result")
        main.get_by_text("Step 2 of 5").first.wait_for()
        _check_probes(page, title, "streamlit participant after the task")
        def choose(group: int, option: str) -> None:
            main.locator("[data-testid='stRadio']").nth(group).get_by_role("radio", name=option, exact=True).check(
                force=True)  # Streamlit draws its own circle over the input
            _streamlit_idle(page)

        for step, best, worst in ((3, "A", None), (4, "B", None), (5, "A", "D")):
            _streamlit_idle(page)
            choose(0, best)
            if worst:
                choose(1, worst)
            click("Submit choice")
            main.get_by_text(f"Step {step} of 5").first.wait_for()
        _streamlit_idle(page)
        for i, value in enumerate(("4", "5 - Strongly agree", "6")):
            choose(i, value)
        fill("Anything else you want to tell us? (optional)", COMMENT)
        click("Submit answers")
        main.get_by_text("all your answers are saved").first.wait_for()
        _check_probes(page, title, "streamlit participant at the end")

        main.get_by_role("tab", name="Researcher dashboard").click()
        main.get_by_label("Researcher token", exact=True).first.click()
        page.keyboard.type(TOKEN)
        page.keyboard.press("Enter")  # a password box commits on Enter
        _streamlit_idle(page)
        click("Log in")
        click("Refresh")
        main.get_by_text("1 participant(s)").first.wait_for()
        _check_probes(page, title, "streamlit dashboard")
    finally:
        page.close()
    assert dialogs == []
