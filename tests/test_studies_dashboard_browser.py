"""The researcher page (/research) in Chromium shows, per condition, what participants recorded: a small
between-subjects study is taken through the study flows (as the participant page's actions run them), then the
dashboard's progress table and Likert chart are read from the page and compared with the answers given."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from tests.browser import block, table_rows, wait_for_text

TOKEN = "dashboard-test-token-91f3"
STUDY = """\
code: DASH-1
title: Dashboard check
consent: Agree?
seed: 5
conditions:
  - {id: tool, label: Tool, instructions: Use the tool.}
  - {id: plain, label: Plain, instructions: Write it yourself.}
assignment: {design: between, method: counterbalanced}
steps:
  - {id: write, kind: task, prompt: a dog}
  - {id: rate, kind: questionnaire, questions: [{id: effort, type: likert, text: Effort, scale: 5}]}
"""
RATING = {"tool": 5, "plain": 2}  # each condition's participants answer differently, so a swap shows
FINISHING = 4  # of 5 participants; the fifth stops after the task


@pytest.mark.browser
def test_the_researcher_page_shows_each_conditions_numbers(tmp_path, monkeypatch, chromium):
    from tests.app_process import start_app, stop
    from workbench.actions import run_action
    from workbench.events import EventBus
    from workbench.studies import flows
    from workbench.studies.recorder import attach
    from workbench.studies.store import sqlite_url

    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "dash.yaml").write_text(STUDY)
    db = tmp_path / "studies.sqlite"
    monkeypatch.setenv("WORKBENCH_STUDIES_DIR", str(folder))
    ctx = SimpleNamespace(events=EventBus(), studies=None)
    attach(ctx, sqlite_url(db))
    act = lambda session, name, fn, *args: run_action(ctx, name, fn, args, tab="studies", session_id=session)

    # What each participant was shown and answered: the condition read from the task's instructions.
    given: list[tuple[str, bool, int | None]] = []  # (condition, finished, rating)
    for k in range(5):
        s = f"p{k}"
        state, view = act(s, "studies_join", lambda c: flows.open_study(ctx, c), "DASH-1")
        state, view = act(s, "studies_consent", lambda st, a: flows.give_consent(ctx, st, a), state, True)
        assert view.stage == "task"
        condition = "tool" if "Use the tool." in view.body else "plain"
        state, view = act(s, "studies_task", lambda st, a: flows.submit_task(ctx, st, a), state, f"a dog, {k}")
        if k < FINISHING:
            rating = RATING[condition]
            state, view = act(s, "studies_q", lambda st, v: flows.submit_questionnaire(ctx, st, v), state, [rating])
            assert view.stage == "done"
            given.append((condition, True, rating))
        else:
            given.append((condition, False, None))
    assert {c for c, _, _ in given} == {"tool", "plain"}  # counterbalanced: both conditions have people

    proc, url, _ = start_app("--profile", "fake", env={"WORKBENCH_STUDIES_DB": str(db),
                                                       "WORKBENCH_STUDIES_DIR": str(folder),
                                                       "WORKBENCH_RESEARCHER_TOKEN": TOKEN}, timeout=300)
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.set_default_timeout(120_000)
        page.goto(url + "/research/", wait_until="domcontentloaded")
        page.get_by_label("Researcher token").fill(TOKEN)
        page.get_by_role("button", name="Log in", exact=True).click()
        study = page.get_by_label("Study", exact=True)
        study.wait_for(state="visible")
        study.fill("DASH-1")
        study.press("Enter")
        page.get_by_role("button", name="Refresh", exact=True).click()
        summary = wait_for_text(page.locator(".prose", has_text="participant(s)").first,
                                f"5 participant(s), {FINISHING} finished")
        assert "`DASH-1`" in summary or "DASH-1" in summary
        table = page.locator("div.block", has=page.get_by_role("columnheader", name="median seconds per step")).last
        rows = table_rows(table)
        for condition in ("tool", "plain"):
            people = [g for g in given if g[0] == condition]
            row = rows[condition]
            assert int(row["participants"]) == len(people), (condition, row)
            assert int(row["finished"]) == sum(f for _, f, _ in people), (condition, row)
            assert int(row["answers"]) == len(people) + sum(f for _, f, _ in people), (condition, row)  # task + rating
        # The Likert chart: one trace per condition, the count of each rating as bars.
        chart = block(page.locator("body"), "Likert distributions").locator(".js-plotly-plot")
        chart.wait_for(state="attached")
        traces = chart.evaluate("p => p._fullData.map(t => [t.name, Array.from(t.x, Number), Array.from(t.y, Number)])")
        shown = {(name, x): y for name, xs, ys in traces for x, y in zip(xs, ys)}
        expected = Counter((c, r) for c, f, r in given if f)
        assert shown == dict(expected), (shown, expected)
    finally:
        page.close()
        stop(proc)
