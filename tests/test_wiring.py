"""The wiring layer: one error policy and one event per user action, in both front ends."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import spec
from workbench.actions import ActionError, run_action, stream_action
from workbench.context import AppContext
from workbench.models import ModelLoadError, ModelManager
from tests.shown import shown


@pytest.fixture()
def ctx(profiles):
    c = AppContext(manager=ModelManager(budget_bytes=2**30, device="cpu"), profiles=profiles, default_profile="fake")
    yield c
    c.manager.unload_all()


def test_an_action_emits_one_event_with_named_inputs_outputs_and_provenance(ctx):
    from backends.provenance import Provenance

    events = []
    ctx.events.subscribe(events.append)

    def flow(prompt, n):
        prov = Provenance(model_id="m/1", backend="fake-chat", seed=3)
        return {"text": prompt * n, "provenance": prov}

    out = run_action(ctx, "demo_flow", flow, ("ab", 2), tab="demo", session_id="s1", frontend="gradio")
    assert out["text"] == "abab"
    [event] = events
    assert (event.action, event.tab, event.session_id, event.frontend) == ("demo_flow", "demo", "s1", "gradio")
    assert event.inputs == {"prompt": "ab", "n": 2}
    assert event.outputs["text"] == "abab" and event.error is None
    assert [p["model_id"] for p in event.provenance] == ["m/1"] and event.provenance[0]["seed"] == 3
    assert event.seconds >= 0


def test_known_errors_keep_their_message_and_unknown_ones_are_logged_not_shown(ctx, caplog):
    events = []
    ctx.events.subscribe(events.append)

    def bad_input():
        raise ValueError("n must be between 1 and 8, got 9")

    with pytest.raises(ActionError) as info:
        run_action(ctx, "a", bad_input)
    assert info.value.message == "n must be between 1 and 8, got 9" and info.value.kind == "input"

    def load_fails():
        raise ModelLoadError("Could not load the chat model 'x'. What to do: ...")

    with pytest.raises(ActionError, match="Could not load the chat model 'x'"):
        run_action(ctx, "b", load_fails)

    def bug():
        return {}["missing"]

    with caplog.at_level(logging.ERROR, logger="workbench.actions"):
        with pytest.raises(ActionError) as info:
            run_action(ctx, "c", bug)
    assert info.value.kind == "internal"
    assert "Something went wrong in 'c' (KeyError" in info.value.message and "Traceback" not in info.value.message
    assert "Traceback" in caplog.text and "KeyError" in caplog.text  # the server log has the traceback
    assert [e.error_kind for e in events] == ["input", "input", "internal"]


def test_a_user_error_is_one_log_line_with_the_action_and_only_a_bug_has_a_traceback(ctx, caplog):
    def bad_code(code):
        raise ValueError(f"No study has the code '{code}'.")

    with caplog.at_level(logging.INFO, logger="workbench.actions"):
        for _ in range(3):
            with pytest.raises(ActionError):
                run_action(ctx, "studies_join", bad_code, ("<b>x</b>" * 2000,))
    records = [r for r in caplog.records if r.name == "workbench.actions"]
    assert len(records) == 3 and all(r.exc_info is None for r in records)
    lines = caplog.text.splitlines()
    assert len(lines) == 3 and all("action studies_join: input error: No study has the code" in ln for ln in lines)
    assert max(len(ln) for ln in lines) < 400  # the 14,000-character code is previewed, not logged whole
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="workbench.actions"):
        with pytest.raises(ActionError):
            run_action(ctx, "t2i_refine", lambda: {}["missing"])
    (record,) = [r for r in caplog.records if r.name == "workbench.actions"]
    assert record.exc_info is not None and "t2i_refine" in record.getMessage()


def test_an_error_message_is_cut_and_shown_literally_in_both_front_ends(ctx):
    probe = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1))"

    def echo(code):
        raise ValueError(f"bad code {code}")

    with pytest.raises(ActionError) as info:
        run_action(ctx, "a", echo, (probe + "y" * 10_000,))
    error = info.value
    assert len(error.message) < 2100 and error.message.endswith("characters)")
    assert "<img" not in error.html and "&lt;img src=x onerror=alert(1)&gt;" in error.html
    assert "**" not in error.markdown.replace("\\*", "") and "](" not in error.markdown
    assert shown(error.markdown) == error.message


def test_a_broken_subscriber_never_breaks_the_action(ctx):
    def broken(event):
        raise RuntimeError("database down")

    seen = []
    ctx.events.subscribe(broken)
    ctx.events.subscribe(seen.append)
    assert run_action(ctx, "ok", lambda: 5) == 5
    assert [e.action for e in seen] == ["ok"]


def test_jobs_report_progress_refuse_a_second_job_and_cancel_keeping_partial_results(ctx):
    import threading

    updates, started, release = [], threading.Event(), threading.Event()

    def long_flow(n, job):
        done = []
        for i in range(n):
            if i == 2:
                started.set()
                release.wait(5)
            job.update("render", i, n, f"candidate {i + 1}", partial=list(done))
            done.append(i)
        return done

    result: dict = {}

    def run():
        try:
            run_action(ctx, "render", long_flow, (5,), session_id="u1", job=True, on_progress=updates.append)
        except ActionError as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(5)
    with pytest.raises(ActionError, match="'render' is still running in this session"):
        run_action(ctx, "refine", lambda job: None, session_id="u1", job=True)
    assert run_action(ctx, "refine", lambda job: "other user", session_id="u2", job=True) == "other user"
    assert ctx.jobs.cancel("u1")
    release.set()
    thread.join(5)
    error = result["error"]
    assert error.kind == "cancelled" and "What finished before the cancel is kept" in error.message
    assert error.partial == [0, 1]  # the two finished items
    assert [u.item for u in updates] == ["candidate 1", "candidate 2", "candidate 3"]
    assert ctx.jobs.running("u1") is None  # the session can start again
    assert run_action(ctx, "again", lambda job: 1, session_id="u1", job=True) == 1


def test_stream_action_records_the_partial_reply_when_the_backend_fails_mid_stream(ctx):
    events = []
    ctx.events.subscribe(events.append)

    def reply():
        yield "Hel"
        yield "Hello"
        raise ConnectionError("server went away")

    pieces = []
    with pytest.raises(ActionError, match="server went away") as info:
        for piece in stream_action(ctx, "chat", reply, session_id="s"):
            pieces.append(piece)
    assert pieces == ["Hel", "Hello"] and info.value.partial == "Hello"
    assert events[0].outputs == "Hello" and events[0].error == "server went away"


def _failing_ctx(profiles):
    profile = profiles["fake"].with_role("lm_base", spec("lm_base", "transformers-lm", "tiny:no-such-model"))
    return AppContext(manager=ModelManager(budget_bytes=2**30, device="cpu"),
                      profiles={**profiles, "fake": profile}, default_profile="fake")


def test_a_model_load_failure_is_the_same_clear_message_in_gradio_and_streamlit(profiles):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    import app
    from tests.app_process import free_port

    ctx = _failing_ctx(profiles)
    events = []
    ctx.events.subscribe(events.append)
    demo = app.build_demo(ctx)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        with pytest.raises(AppError) as info:
            client.predict("fake", "list three fruits", "", True, 2, 4, ["gradient × input (the paper's)"],
                           ["attribution"], "gradient × input (the paper's)", 1, 8, "all", "all", "instruct", 0, 0,
                           api_name="/shift_analyse")
    finally:
        demo.close()
    gradio_message = str(info.value)
    assert "Could not load the lm_base model 'tiny:no-such-model'" in gradio_message
    [event] = [e for e in events if e.action == "shift_analyse"]
    assert event.frontend == "gradio" and event.session_id not in ("", "anonymous")
    assert event.inputs["prompt"] == "list three fruits"  # named as declared in workbench.shift.forms

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_streamlit_shift_with_broken_model, default_timeout=120)
    at.run()
    at.text_area(key="shift_prompt").set_value("list three fruits")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == [event.error]


def _streamlit_shift_with_broken_model() -> None:
    import streamlit as st

    from tests.test_wiring import _failing_ctx
    from workbench.profiles import load_profiles

    @st.cache_resource
    def ctx():
        return _failing_ctx(load_profiles())

    st.session_state.setdefault("profile", "fake")
    import pages.shift

    pages.shift.render_streamlit(ctx())
