"""The Promptor tab through both front ends on the fake profile: Gradio through gradio_client (every call goes
through the wiring layer), Streamlit through AppTest."""

from __future__ import annotations

import json

import pytest

from workbench.promptor.store import SessionStore

BACKEND = ("fake", "profile chat model", "", "", "profile chat model", "", "", True, 0.7, 0)  # profile .. seed


@pytest.fixture()
def promptor_client(monkeypatch, tmp_path, request):
    monkeypatch.setenv("WORKBENCH_PROMPTOR_SESSIONS", str(tmp_path / "sessions"))
    return request.getfixturevalue("client")


def _text(message) -> str:
    """A chat message's text (Gradio 6 returns content as a list of typed parts)."""
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _send(client, text):
    return client.predict(text, *BACKEND, api_name="/promptor_send")


def test_gradio_tab_whole_conversation_rounds_blind_and_exports(promptor_client, fake_ctx):
    client = promptor_client
    events = []
    fake_ctx.events.subscribe(events.append)
    out = _send(client, "next-phrase suggestion")
    code, chat, stage = out[0], out[1], out[2]
    assert "Step 1/7" not in stage and "Understand the task" in stage and code in stage
    assert "Suggested" in _text(chat[-1])  # (the browser empties the box at Send: tests/test_walkthrough_browser.py)
    out = _send(client, "office workers on laptops; polite tone")  # two answers in one message
    assert "**who types**: “office workers on laptops”" in _text(out[1][-1]) and "**tone**: “polite”" in _text(out[1][-1])
    saved = SessionStore().load(code)  # the session the page saved: read by the shared interpreter
    assert [m["interpretation"]["source"] for m in saved["messages"] if m["role"] == "designer"] == \
        ["local:rules+fake/embeddings"] * 2
    for _ in range(4):
        out = _send(client, "ok")
    assert "Evaluate the draft" in out[2] and "{user_text}" in out[10]  # the draft box
    out = _send(client, "end with a space so the user keeps typing")
    out = _send(client, "ok")
    assert "Test rounds" in out[2]
    out = client.predict("", *BACKEND, api_name="/promptor_test_round")
    rounds = out[14]
    assert "| draft v1 | draft v2 |" in rounds and "random weights: outputs are not meaningful" in rounds
    out = client.predict(5, api_name="/promptor_blind_start")
    blind = out[15]
    assert "**A**" in blind and "**B**" in blind and "v1" not in blind and "v2" not in blind
    out = client.predict(1, "A", None, api_name="/promptor_blind_mark")
    assert "marked: best **A**, worst **B**" in out[15]
    with pytest.raises(Exception, match="best and worst must be different"):
        client.predict(2, "B", "B", api_name="/promptor_blind_mark")
    out = _send(client, "final")
    assert "Final template" in out[2]
    files = client.predict(api_name="/promptor_export")
    paths = [f if isinstance(f, str) else f.get("path", f) for f in files]
    by_suffix = {p.rsplit("-", 1)[-1]: p for p in paths}
    assert "{user_text}" in open(by_suffix["template.txt"]).read()
    assert json.loads(open(by_suffix["template.json"]).read())["status"] == "final"
    transcript = [json.loads(line) for line in open(by_suffix["transcript.jsonl"]).read().splitlines()]
    assert [r for r in transcript if r["type"] == "preference"][0]["best_version"] in (1, 2)
    names = {e.action for e in events}
    assert {"promptor_send", "promptor_test_round", "promptor_blind_start", "promptor_blind_mark",
            "promptor_export"} <= names and all(e.tab == "promptor" for e in events)
    errors = [e for e in events if e.error]
    assert errors and "best and worst" in errors[0].error

    # a reload: a new browser session resumes the same conversation by its code
    from gradio_client import Client

    again = Client(client.src, verbose=False)
    resumed = again.predict(code, api_name="/promptor_resume")
    assert resumed[0] == code and resumed[1] == out[1] and "Final template" in resumed[2]


def test_gradio_tab_bad_input_is_a_clear_message(promptor_client):
    with pytest.raises(Exception, match="message is empty"):
        _send(promptor_client, "   ")
    with pytest.raises(Exception, match="resume code must be 10 letters"):
        promptor_client.predict("nope", api_name="/promptor_resume")
    out = _send(promptor_client, "x" * 5000)
    assert "first 4,000 were kept" in _text(out[1][-2])


def test_streamlit_tab_chat_side_panel_and_jump(monkeypatch, tmp_path):
    from tests.test_streamlit import page_test

    monkeypatch.setenv("WORKBENCH_PROMPTOR_SESSIONS", str(tmp_path / "sessions"))
    at = page_test("promptor")
    assert "Understand the task" in at.markdown[1].value or any("Understand the task" in m.value for m in at.markdown)
    at.chat_input(key="promptor_message").set_value("abbreviation expansion").run()
    assert not at.exception, at.exception
    texts = [m.value for m in at.markdown]
    assert any("Suggested" in t for t in texts)
    assert at.text_input(key="promptor_field_description").value == "abbreviation expansion"
    designer = [m for m in at.session_state["promptor_state"]["messages"] if m["role"] == "designer"]
    assert designer[0]["interpretation"]["source"] == "local:rules+fake/embeddings"  # the same interpreter
    for _ in range(6):
        at.chat_input(key="promptor_message").set_value("ok").run()
        assert not at.exception, at.exception
    assert "{user_text}" in at.text_area(key="promptor_draft").value
    assert any("Evaluate the draft" in m.value for m in at.markdown)
    at.button(key="promptor_export_btn").click().run()  # the files export_files writes, as Gradio's Export
    assert not at.exception and not at.error
    assert sorted(b.label.rsplit("-", 1)[-1] for b in at.get("download_button")) == [
        "template.json", "template.txt", "transcript.jsonl"]
    at.selectbox(key="promptor_jump_to").set_value("understand")
    at.button(key="promptor_jump_btn").click().run()
    assert not at.exception, at.exception
    assert any("Back to" in m.value for m in at.markdown)
    at.text_input(key="promptor_field_tone").set_value("very formal")
    at.button(key="promptor_fields_btn").click().run()
    assert at.session_state["promptor_state"]["fields"]["tone"] == "very formal"
