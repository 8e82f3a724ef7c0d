"""Study flows without a front end: a within-subjects study through the wiring layer's run_action, events of
other tabs attributed to the participant's step and condition, the recorder under 50 writer threads, and the
token check."""

import threading
from types import SimpleNamespace

import pytest

from workbench.actions import ActionError, run_action
from workbench.events import Event, EventBus
from workbench.studies import flows
from workbench.studies.recorder import attach
from workbench.studies.store import sqlite_url

WITHIN = """\
code: WITHIN-1
title: Within
consent: Agree?
seed: 11
conditions:
  - {id: tool, label: Tool, tab: t2i, instructions: Use the tool.}
  - {id: plain, label: Plain, instructions: Write it yourself.}
assignment: {design: within, method: counterbalanced}
steps:
  - {id: intro, kind: questionnaire, per_condition: false, questions: [{id: exp, type: likert, text: Experience, scale: 3}]}
  - {id: write, kind: task, prompt: a dog}
  - {id: load, kind: questionnaire, per_condition: true, questions: [{id: effort, type: likert, text: Effort}]}
  - id: clips
    kind: comparison
    mode: best_worst
    media: video
    question: Which clip is best and which worst?
    items: [{id: a, condition: tool, path: a.gif}, {id: b, condition: plain, path: b.gif}, {id: c, path: c.gif}]
"""


@pytest.fixture()
def ctx(tmp_path, monkeypatch, study_db_url):
    from PIL import Image

    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "within.yaml").write_text(WITHIN)
    for name, colour in (("a", "red"), ("b", "blue"), ("c", "green")):
        frames = [Image.new("RGB", (16, 16), colour), Image.new("RGB", (16, 16), "white")]
        frames[0].save(folder / f"{name}.gif", save_all=True, append_images=frames[1:], duration=100)
    monkeypatch.setenv("WORKBENCH_STUDIES_DIR", str(folder))
    monkeypatch.setenv("WORKBENCH_RESEARCHER_TOKEN", "tok")
    context = SimpleNamespace(events=EventBus(), studies=None)
    attach(context, study_db_url)
    return context


def act(ctx, session, name, fn, *args):
    return run_action(ctx, name, fn, args, tab="studies", session_id=session)


def test_a_within_subjects_participant_does_every_condition_in_the_assigned_order(ctx):
    state, view = act(ctx, "s1", "studies_join", lambda c: flows.open_study(ctx, c), "within-1")
    assert view.stage == "consent" and view.body == "Agree?"
    state, view = act(ctx, "s1", "studies_consent", lambda s, a: flows.give_consent(ctx, s, a), state, True)
    order = ctx.studies.store.participant(state["participant_id"])["conditions"]
    assert sorted(order) == ["plain", "tool"]
    assert view.stage == "questionnaire" and view.progress == "Step 1 of 6"
    state, view = act(ctx, "s1", "q", lambda s, v: flows.submit_questionnaire(ctx, s, v), state, ["2 - x"])
    shown_conditions = []
    for round_ in range(2):
        assert view.stage == "task" and view.prompt == "a dog"
        shown_conditions.append("tool" if "Use the tool." in view.body else "plain")
        assert (view.tab == "t2i") == (shown_conditions[-1] == "tool")
        # An action in another tab while the task is shown: recorded under this step and condition.
        ctx.events.emit(Event(action="t2i_refine", tab="t2i", session_id="s1", frontend="gradio",
                              inputs={"prompt": f"a dog, round {round_}"}))
        state, view = act(ctx, "s1", "t", lambda s, a: flows.submit_task(ctx, s, a), state, f"answer {round_}")
        state, view = act(ctx, "s1", "q", lambda s, v: flows.submit_questionnaire(ctx, s, v), state, [3])
    assert shown_conditions == order
    assert view.stage == "comparison" and view.media == "video" and [o[0] for o in view.options] == ["A", "B", "C"]
    assert all(o[1].endswith(".gif") and "/workbench-study-media/" in o[1] for o in view.options)
    with pytest.raises(ActionError, match="best and the worst must differ"):
        act(ctx, "s1", "c", lambda s, b, w: flows.submit_comparison(ctx, s, b, w), state, "A", "A")
    with pytest.raises(ActionError, match="Also pick the worst one"):
        act(ctx, "s1", "c", lambda s, b, w: flows.submit_comparison(ctx, s, b, w), state, "A", None)
    stale = dict(state)
    state, view = act(ctx, "s1", "c", lambda s, b, w: flows.submit_comparison(ctx, s, b, w), state, "B", "C")
    assert view.stage == "done"
    with pytest.raises(ActionError, match="finished this study"):
        act(ctx, "s1", "c", lambda s, b, w: flows.submit_comparison(ctx, s, b, w), stale, "B", "C")

    store = ctx.studies.store
    responses = store.table("responses", "WITHIN-1")
    assert [r["step_key"] for r in responses] == ["intro", f"write@{order[0]}", f"load@{order[0]}",
                                                  f"write@{order[1]}", f"load@{order[1]}", "clips"]
    t2i = [e for e in store.table("events", "WITHIN-1") if e["tab"] == "t2i"]
    assert [(e["step_key"], e["condition"]) for e in t2i] == [(f"write@{o}", o) for o in order]


def test_resubmitting_a_step_from_a_second_tab_is_refused(ctx):
    state, _ = flows.open_study(ctx, "WITHIN-1")
    state, _ = act(ctx, "s1", "studies_consent", lambda s, a: flows.give_consent(ctx, s, a), state, True)
    first = dict(state)
    flows.submit_questionnaire(ctx, state, [1])
    with pytest.raises(ValueError, match="You have already submitted 'intro'; it cannot be changed"):
        flows.submit_questionnaire(ctx, first, [2])
    state, view = flows.view_current(ctx, state)
    with pytest.raises(ValueError, match="current step is a task, not a questionnaire"):
        flows.submit_questionnaire(ctx, state, [None])
    assert view.stage == "task"
    assert flows.likert_point("5 - Strongly agree", 5) == 5
    with pytest.raises(ValueError, match=r"rating must be a point from 1 to 5; got 9"):
        flows.likert_point("9", 5)


def test_sessions_outside_a_study_are_not_recorded_unless_asked(ctx, tmp_path):
    ctx.events.emit(Event(action="t2i_refine", tab="t2i", session_id="stranger", frontend="gradio", inputs={}))
    assert ctx.studies.store.count_events() == 0
    everyone = SimpleNamespace(events=EventBus(), studies=None)
    service = attach(everyone, sqlite_url(tmp_path / "all.sqlite"), log_all=True)
    everyone.events.emit(Event(action="t2i_refine", tab="t2i", session_id="stranger", frontend="gradio",
                               inputs={"prompt": "x", "api_key": "sk-123"}))
    rows = service.store.table("events")
    assert len(rows) == 1 and rows[0]["participant_id"] is None and "sk-123" not in rows[0]["inputs"]


def test_fifty_threads_writing_events_lose_none(ctx):
    """The recorder's write path under contention (SQLite serialises writers; none may fail or be lost)."""
    state, _ = flows.open_study(ctx, "WITHIN-1")
    sessions = []
    for i in range(50):
        s, _ = act(ctx, f"s{i}", "studies_consent", lambda st, a: flows.give_consent(ctx, st, a), state, True)
        sessions.append(f"s{i}")
    before = ctx.studies.store.count_events()
    assert before == 50

    def writer(session: str) -> None:
        for j in range(20):
            ctx.events.emit(Event(action="t2i_render", tab="t2i", session_id=session, frontend="gradio",
                                  inputs={"j": j}))

    threads = [threading.Thread(target=writer, args=(s,)) for s in sessions]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert ctx.studies.errors == 0
    assert ctx.studies.store.count_events("WITHIN-1") == before + 50 * 20
    assert ctx.studies.store.integrity_check() == "ok"


def test_researcher_flows_need_the_token(ctx, monkeypatch):
    for token in (None, "", "to", "tok2", "TOK"):
        with pytest.raises(flows.AccessDenied, match="Wrong researcher token"):
            flows.researcher_login(ctx, token)
    assert flows.researcher_login(ctx, "tok") == []
    with pytest.raises(ValueError, match="No data for study 'WITHIN-1' yet"):
        flows.dashboard(ctx, "tok", "WITHIN-1")
    monkeypatch.delenv("WORKBENCH_RESEARCHER_TOKEN")
    with pytest.raises(flows.AccessDenied, match="dashboard is off"):
        flows.researcher_login(ctx, "")


def test_a_participant_resumes_after_a_reload_with_their_resume_code(ctx):
    state, _ = act(ctx, "tab1", "studies_join", lambda c: flows.open_study(ctx, c), "WITHIN-1")
    state, view = act(ctx, "tab1", "studies_consent", lambda s, a: flows.give_consent(ctx, s, a), state, True)
    code = state["participant_id"]
    assert f"Your resume code is `{code}`" in view.message
    act(ctx, "tab1", "q", lambda s, v: flows.submit_questionnaire(ctx, s, v), state, [1])
    # The page is reloaded: a new session with an empty state types the resume code into the study code box.
    resumed, view = act(ctx, "tab2", "studies_join", lambda c: flows.open_study(ctx, c), f"  {code.upper()} ")
    assert resumed["participant_id"] == code and view.stage == "task" and view.progress == "Step 2 of 6"
    assert view.message.startswith("Welcome back")
    ctx.events.emit(Event(action="t2i_refine", tab="t2i", session_id="tab2", frontend="gradio", inputs={}))
    events = ctx.studies.store.table("events", "WITHIN-1")
    assert events[-1]["participant_id"] == code and events[-1]["tab"] == "t2i"
    assert len(ctx.studies.store.table("participants", "WITHIN-1")) == 1  # resuming does not add a participant
    with pytest.raises(ActionError, match="That resume code is not known here"):
        act(ctx, "tab3", "studies_join", lambda c: flows.open_study(ctx, c), "0" * 32)
