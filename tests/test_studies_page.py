"""The Studies tab end to end through gradio_client on the fake profile: participants complete the example
study, every action is one event in the database, the dashboard refuses requests without the token and,
with it, shows choices and Likert answers per condition; exports load in pandas and TRL's DPO trainer;
50 participants at once; the Streamlit participant view."""

import json
import threading
import time

import pytest

from workbench.studies.store import sqlite_url
from tests.shown import shown

TOKEN = "test-researcher-token-8f2b"
CODE = "REFINER-AB"
# Output positions as gradio_client returns them (state and layout blocks are not returned).
HEADING, PROGRESS, BODY, PROMPT, IMAGE, ANSWER, TEXTS = range(7)
IMAGES = slice(7, 13)
CHOICE, WORST, LIKERT, MESSAGE = 19, 20, 21, 37
EVENTS_PER_PARTICIPANT = 6  # consent, task, three comparisons, questionnaire (nothing before consent)


@pytest.fixture()
def study_app(fake_ctx, tmp_path, monkeypatch, study_db_url):
    """The whole app on the fake profile with the recorder on a fresh database; yields (url, service)."""
    from gradio_client import Client  # noqa: F401 -- fail early if missing

    import app
    from tests.app_process import free_port
    from workbench.studies.recorder import attach

    monkeypatch.setenv("WORKBENCH_RESEARCHER_TOKEN", TOKEN)
    service = attach(fake_ctx, study_db_url)
    demo = app.build_demo(fake_ctx)
    demo.queue(default_concurrency_limit=8)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", service
    finally:
        demo.close()


def labels_of(update) -> list[str]:
    return [c[0] if isinstance(c, (list, tuple)) else c for c in update["choices"]]


def complete(client, answer: str, pick=lambda labels: labels[0], likert=(4, 5, 6)) -> list[tuple]:
    """One participant through the example study; returns every view they were shown."""
    seen = [client.predict(CODE, api_name="/studies_join")]
    seen.append(client.predict(True, api_name="/studies_consent"))
    assert seen[-1][PROGRESS] == "Step 1 of 5"
    seen.append(client.predict(answer, api_name="/studies_submit_task"))
    for _ in range(2):  # pairwise: text, image
        seen.append(client.predict(pick(labels_of(seen[-1][CHOICE])), None, api_name="/studies_submit_choice"))
    labels = labels_of(seen[-1][CHOICE])
    seen.append(client.predict(pick(labels), [x for x in labels if x != pick(labels)][-1],
                               api_name="/studies_submit_choice"))
    points = [labels_of(seen[-1][LIKERT + j]) for j in range(3)]  # '1 - Strongly disagree', '2', ...
    values = [points[j][likert[j] - 1] for j in range(3)] + [None] * 5 + ["", "", "", "fine"] + [""] * 4
    seen.append(client.predict(*values, api_name="/studies_submit_questionnaire"))
    assert seen[-1][HEADING].endswith("finished"), seen[-1][HEADING]
    return seen


def test_three_participants_complete_the_study_and_the_dashboard_shows_them(study_app, tmp_path):
    import pandas as pd
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, service = study_app
    clients = [Client(url, verbose=False) for _ in range(3)]
    views = [complete(c, f"a detailed prompt number {i}", likert=(i + 2, 3, 5)) for i, c in enumerate(clients)]

    # Consent first, then the task with its condition's instructions; counterbalancing: 2 + 1 over 3 joins.
    assert "consent" in views[0][0][HEADING] and "We record what you type" in views[0][0][BODY]
    bodies = [v[1][BODY] for v in views]
    assert sum("Refine button" in b for b in bodies) + sum("without the refiner" in b for b in bodies) == 3
    # Blinding: comparison views never carry condition or item ids, nor the researcher's file names.
    for v in views:
        for shown in v[2:5]:
            text = json.dumps(shown)
            assert not any(word in text for word in ("refiner", "manual", "sofa_a", "sofa_b", "warm", "cool"))
    image_view = views[0][3]
    assert [u["visible"] for u in image_view[IMAGES]][:3] == [True, True, False]

    # Resubmitting a finished step, a finished study, a wrong kind: clear messages.
    with pytest.raises(AppError, match="finished this study and all your answers are saved"):
        clients[0].predict("again", api_name="/studies_submit_task")
    fresh = Client(url, verbose=False)
    with pytest.raises(AppError, match="No study has the code 'NOPE-1'"):
        fresh.predict("NOPE-1", api_name="/studies_join")
    with pytest.raises(AppError, match="Join a study first"):
        fresh.predict("text", api_name="/studies_submit_task")
    fresh.predict(CODE, api_name="/studies_join")
    with pytest.raises(AppError, match="tick 'I agree'"):
        fresh.predict(False, api_name="/studies_consent")
    fresh.predict(True, api_name="/studies_consent")
    with pytest.raises(AppError, match="current step is a task, not a questionnaire"):
        fresh.predict(*[None] * 8, *[""] * 8, api_name="/studies_submit_questionnaire")
    with pytest.raises(AppError, match="Type your result"):
        fresh.predict("  ", api_name="/studies_submit_task")

    # Every action after consent is one event, with the step and condition it happened in.
    store = service.store
    events = store.table("events")
    assert sum(1 for e in events if e["participant_id"]) >= 3 * EVENTS_PER_PARTICIPANT
    first = [e for e in events if e["participant_id"] == events[0]["participant_id"]]
    assert [e["action"] for e in first] == ["studies_consent", "studies_submit_task", "studies_submit_choice",
                                            "studies_submit_choice", "studies_submit_choice",
                                            "studies_submit_questionnaire", "studies_submit_task"]
    assert [e["step_key"] for e in first] == ["write_prompt", "write_prompt", "pick_text", "pick_image",
                                              "rank_texts", "survey", "finished"]
    assert first[-1]["error"].startswith("You have finished this study") and first[-1]["error_kind"] == "input"
    assert first[0]["condition"] in ("refiner", "manual")

    # The dashboard: refused without the token, with it choices and Likert answers per condition.
    researcher = Client(url, verbose=False)
    for bad in ("", "wrong", TOKEN[:-1]):
        for api, args in (("/studies_login", (bad,)), ("/studies_dashboard", (bad, CODE)),
                          ("/studies_export", (bad, CODE, "responses.csv")), ("/studies_check", (bad, "x: 1"))):
            with pytest.raises(AppError, match="Wrong researcher token"):
                researcher.predict(*args, api_name=api)
    pick = researcher.predict(TOKEN, api_name="/studies_login")  # (the dashboard column is not returned)
    assert pick["value"] == CODE
    summary, table, choices, likert, times, free = researcher.predict(TOKEN, CODE, api_name="/studies_dashboard")
    assert "4 participant(s), 3 finished" in summary
    # Free-text answers on the dashboard too (not only in exports): each task result and the text question.
    answers = [r[4] for r in free["data"]]
    assert sorted(a for a in answers if a.startswith("a detailed")) == [f"a detailed prompt number {i}" for i in range(3)]
    assert answers.count("fine") == 3 and {r[0] for r in free["data"]} == {f"{CODE}-P00{i}" for i in (1, 2, 3)}
    rows = {r[0]: r for r in table["data"]}
    assert int(rows["refiner"][1]) + int(rows["manual"][1]) == 4 and int(rows["refiner"][2]) + int(rows["manual"][2]) == 3
    for figure, title in ((choices, "Choices per condition"), (likert, "Likert distributions per condition"),
                          (times, "Time on task")):
        plot = json.loads(figure["plot"])
        assert plot["layout"]["title"]["text"].startswith(title) and plot["data"]
    assert {d["name"] for d in json.loads(likert["plot"])["data"]} <= {"refiner", "manual"}

    # Exports load in pandas, name participants by pseudonym, and never hold the token.
    frames = {}
    for what in ("responses.csv", "responses.jsonl", "responses.parquet", "events.csv", "events.jsonl",
                 "events.parquet"):
        path = researcher.predict(TOKEN, CODE, what, api_name="/studies_export")
        reader = {"csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True), "parquet": pd.read_parquet}
        frames[what] = reader[what.rsplit(".", 1)[1]](path)
    responses = frames["responses.parquet"]
    assert len(responses) == 3 * 5 + 0 and set(responses["participant"]) == {f"{CODE}-P00{i}" for i in (1, 2, 3)}
    assert sorted(responses.loc[responses["step"] == "survey", "q_ease"].astype(int)) == [2, 3, 4]
    assert len(frames["responses.csv"]) == len(frames["responses.jsonl"]) == 15
    assert len(frames["events.parquet"]) == store.count_events(CODE)
    assert not any(TOKEN in str(e["inputs"]) for e in store.table("events"))
    assert not any(pid in frames["events.csv"].to_csv() for pid in (p["id"] for p in store.table("participants")))

    verdict = researcher.predict(TOKEN, "code: x\ntitle: t\n", api_name="/studies_check")
    assert verdict.startswith("**Problems:**") and "line 1 (code): code must be 3-40 letters" in verdict
    assert "line 1: 'consent' is missing" in verdict

    pairs_path = researcher.predict(TOKEN, CODE, "dpo_pairs.jsonl", api_name="/studies_export")
    pairs = [json.loads(line) for line in open(pairs_path)]
    assert len(pairs) == 3 * (1 + 5)  # pairwise text: 1 pair; best-worst over 4: 2 + 2 + 1
    check_dpo_pairs(pairs_path, tmp_path)


def check_dpo_pairs(path: str, tmp_path) -> None:
    """The pairs file through TRL: datasets reads it, DPOTrainer tokenizes it and takes one step."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from backends.tiny import tiny_causal_lm

    dataset = Dataset.from_json(path)
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    model, tokenizer = tiny_causal_lm()
    reference, _ = tiny_causal_lm()
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2, report_to=[],
                     save_strategy="no", use_cpu=True, max_length=64, logging_steps=1)
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=dataset,
                         processing_class=tokenizer)
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(trainer.train_dataset.column_names)
    result = trainer.train()
    assert result.training_loss == pytest.approx(0.6931, abs=0.01)  # log 2: policy equals reference at step 0


def test_participants_cannot_reach_state_or_other_participants(study_app):
    import httpx
    from gradio_client import Client

    url, service = study_app
    # The study file (which says which item is which condition) and the database are not served.
    for path in ("assets/studies/refiner_ab.yaml", str(service.store.engine.url.database)):
        assert httpx.get(f"{url}gradio_api/file={path}").status_code in (403, 404)
    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    # No endpoint takes a participant id or the state: a session only ever acts as itself.
    for name in ("/studies_current", "/studies_submit_task", "/studies_submit_choice"):
        assert not any("state" in p["parameter_name"] or "participant" in p["parameter_name"]
                       for p in api[name]["parameters"]), api[name]
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    complete(a, "the answer of participant A")
    b.predict(CODE, api_name="/studies_join")
    view_b = b.predict(True, api_name="/studies_consent")
    assert view_b[PROGRESS] == "Step 1 of 5"  # B starts at B's own step, not where A is
    assert "participant A" not in json.dumps(view_b)
    # Another tab's action in B's session is recorded as B's, under B's current step and condition.
    message = b.predict("fake", "chat", api_name="/load_model")[-1]
    assert message.startswith("Loaded chat")
    store = service.store
    models = [e for e in store.table("events") if e["tab"] == "models"]
    assert len(models) == 1 and models[0]["step_key"] == "write_prompt"
    b_id = store.table("sessions")[-1]["participant_id"]
    assert models[0]["participant_id"] == b_id and models[0]["condition"] in ("refiner", "manual")


@pytest.mark.slow
def test_researcher_actions_in_a_participants_session_are_not_theirs_and_free_text_stays_text(study_app):
    """A researcher who tried the study in this browser tab, then logged in and exported in the same tab: the
    login, dashboard and export are not recorded as the participant's events. Free-text answers are on the
    dashboard as typed: plain table cells, never rendered as Markdown or HTML."""
    from gradio_client import Client

    url, service = study_app
    client = Client(url, verbose=False)
    tricky = "<img src=x onerror=alert(1)> **not bold** [link](javascript:alert(1)) | a pipe"
    client.predict(CODE, api_name="/studies_join")
    client.predict(True, api_name="/studies_consent")
    client.predict(tricky, api_name="/studies_submit_task")
    client.predict(TOKEN, api_name="/studies_login")
    *_, free = client.predict(TOKEN, CODE, api_name="/studies_dashboard")
    client.predict(TOKEN, CODE, "responses.csv", api_name="/studies_export")
    client.predict(TOKEN, "code: x\n", api_name="/studies_check")

    store = service.store
    (participant,) = store.table("participants", CODE)
    theirs = [e["action"] for e in store.table("events", CODE) if e["participant_id"] == participant["id"]]
    assert theirs == ["studies_consent", "studies_submit_task"]
    assert not [e for e in store.table("events") if e["action"] in ("studies_login", "studies_dashboard",
                                                                     "studies_export", "studies_check")]
    assert [r[3:] for r in free["data"]] == [["(task result)", tricky]]
    # the table shows strings as text: its column types are "str", never "markdown" or "html"
    table = next(c for c in client.config["components"] if c["props"].get("elem_id") == "study-free-text")
    datatype = table["props"]["datatype"]
    assert (datatype if isinstance(datatype, list) else [datatype]) in (["str"], ["str"] * 5)


def test_fifty_participants_at_once(study_app):
    """50 simulated participants in threads: no errors, every event in the database, balanced conditions."""
    from gradio_client import Client

    url, service = study_app
    errors, done = [], []
    start = time.perf_counter()

    def participant(i: int) -> None:
        try:
            # 50 clients on 2 shared cores: a request may wait longer than gradio_client's 20 s default.
            client = Client(url, verbose=False, httpx_kwargs={"timeout": 180})
            complete(client, f"answer {i}", pick=lambda labels: labels[i % len(labels)])
            done.append(i)
        except BaseException as exc:  # noqa: BLE001 -- collected and reported
            errors.append(f"{i}: {exc!r}")

    threads = [threading.Thread(target=participant, args=(i,)) for i in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    seconds = time.perf_counter() - start
    assert not errors, errors[:5]
    assert len(done) == 50
    store = service.store
    assert store.count_events(CODE) == 50 * EVENTS_PER_PARTICIPANT
    assert len(store.table("responses", CODE)) == 50 * 5
    people = store.table("participants", CODE)
    assert sorted(p["number"] for p in people) == list(range(50))
    conditions = [json.loads(p["conditions"])[0] for p in people]
    assert conditions.count("refiner") == conditions.count("manual") == 25
    assert service.errors == 0 and store.integrity_check() == "ok"
    print(f"\n50 participants x 7 actions in {seconds:.1f} s; {store.count_events(CODE)} events, 0 errors")


def test_app_start_attaches_the_recorder_without_importing_the_database():
    import subprocess
    import sys

    from tests.app_process import ROOT

    code = ("import sys, app\nfrom workbench.context import build_context\nctx = build_context(profile='fake')\n"
            "app.build_demo(ctx)\nprint(ctx.studies.record in ctx.events._subscribers, 'sqlalchemy' in sys.modules,"
            " 'alembic' in sys.modules, 'plotly' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "False", "False", "False"], out.stderr[-2000:]


def _streamlit_studies_page() -> None:
    import streamlit as st

    from pages import studies
    from workbench.context import build_context

    @st.cache_resource
    def ctx():
        return build_context(profile="fake")

    studies.render_streamlit(ctx())


def test_streamlit_participant_view_and_dashboard(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_STUDIES_DB", str(tmp_path / "st.sqlite"))
    monkeypatch.setenv("WORKBENCH_RESEARCHER_TOKEN", TOKEN)
    at = AppTest.from_function(_streamlit_studies_page, default_timeout=120)
    at.run()
    at.text_input(key="study_code").set_value("nope-code")
    at.button(key="study_join").click().run()
    assert "No study has the code 'nope-code'" in shown(at.error[0].value)
    at.text_input(key="study_code").set_value(CODE)
    at.button(key="study_join").click().run()
    assert any(m.value.startswith("### ") and m.value.endswith("consent") for m in at.markdown)  # the heading
    at.checkbox(key="study_agreed").check()
    at.button(key="study_start").click().run()
    assert not at.exception, at.exception
    assert "Step 1 of 5" in [m.value for m in at.markdown]
    at.text_area[0].set_value("a long prompt written in streamlit")
    at.button(key="study_submit_task").click().run()
    markdown = [m.value for m in at.markdown]
    assert "Step 2 of 5" in markdown and any("Saved your answer to step 1" in m for m in markdown)
    at.text_input(key="study_token").set_value("wrong")
    at.button(key="study_login").click().run()
    assert any("Wrong researcher token" in e.value for e in at.error)
    at.text_input(key="study_token").set_value(TOKEN)
    at.button(key="study_login").click().run()
    at.button(key="study_refresh").click().run()
    assert not at.exception, at.exception
    assert any("1 participant(s), 0 finished" in m.value for m in at.markdown)
    # "Check a study file" exists in Streamlit too (it was Gradio-only)
    at.text_area(key="study_text").set_value("id: x\nsteps: []\n")
    at.button(key="study_check").click().run()
    assert not at.exception, at.exception
    verdict = " ".join(m.value for m in at.markdown)
    assert "**Problems:**" in verdict and "unknown field 'id'" in verdict and "'code' is missing" in verdict
