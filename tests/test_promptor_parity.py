"""The Promptor tab records the same events with the same named inputs in both front ends, and the Streamlit
drift the walkthrough found is gone: backend checks inside the action, New session keeps the parent prompt, and a
redraw writes no session file."""

from __future__ import annotations

import pytest

from tests.parity import Recorder, app_test, no_errors

BACKEND = ["profile chat model", "", "", "profile chat model", "", "", True, 0.7, 0]


@pytest.fixture()
def sessions(monkeypatch, tmp_path):
    folder = tmp_path / "sessions"
    monkeypatch.setenv("WORKBENCH_PROMPTOR_SESSIONS", str(folder))
    return folder


def test_send_fields_and_new_session_record_the_same_events(sessions, client, fake_ctx):
    events = Recorder(fake_ctx)
    out = client.predict("sentence completion", "fake", *BACKEND, api_name="/promptor_send")
    fields = client.predict("sentence completion", "me", "", "", "", "very formal", "", api_name="/promptor_fields")
    client.predict("Be brief.", api_name="/promptor_parent_prompt")
    new = client.predict("Be brief.", "", api_name="/promptor_new")

    at = app_test(fake_ctx, "promptor")
    at.run()
    at.chat_input(key="promptor_message").set_value("sentence completion").run()
    no_errors(at)
    assert at.text_input(key="promptor_field_description").value == "sentence completion"
    at.text_input(key="promptor_field_users").set_value("me")
    at.text_input(key="promptor_field_tone").set_value("very formal")
    at.button(key="promptor_fields_btn").click().run()
    no_errors(at)
    at.text_area(key="promptor_parent_prompt").set_value("Be brief.")
    at.button(key="promptor_parent_btn").click().run()
    at.button(key="promptor_new_btn").click().run()
    no_errors(at)

    assert fields[8] == "very formal"  # the tone box after Save fields (Gradio)
    assert new[-1] == "Be brief." and at.text_area(key="promptor_parent_prompt").value == "Be brief."
    assert at.session_state["promptor_state"]["parent_prompt"] == "Be brief."  # New session kept it
    recorded = events.assert_same("promptor")
    assert [name for name, _, _ in recorded] == ["promptor_send", "promptor_fields", "promptor_parent_prompt",
                                                 "promptor_new"]
    assert recorded[0][1]["message"] == "sentence completion" and recorded[0][1]["agent_kind"] == BACKEND[0]
    assert recorded[1][1]["tone"] == "very formal" and recorded[3][1] == {"parent_prompt": "Be brief.", "starter": ""}
    assert out[0] in out[2]  # the resume code is on the stage line


def test_streamlit_checks_backends_in_the_action_and_a_redraw_writes_nothing(sessions, fake_ctx):
    events = Recorder(fake_ctx)
    at = app_test(fake_ctx, "promptor")
    at.run()
    [saved] = list(sessions.glob("*"))  # the new session, written once
    written = saved.stat().st_mtime_ns
    at.run()
    at.run()
    assert saved.stat().st_mtime_ns == written and list(sessions.glob("*")) == [saved]
    at.radio(key="promptor_agent_kind").set_value("OpenAI-compatible server")
    at.text_input(key="promptor_agent_url").set_value("ftp://nowhere")
    at.chat_input(key="promptor_message").set_value("sentence completion").run()
    assert not at.exception  # a message, not a raw exception
    assert any("server URL must start with http" in e.value for e in at.error)
    [event] = events.of("streamlit", "promptor")
    assert event[0] == "promptor_send" and "server URL" in event[2]
