"""The Studies tab's researcher actions record the same events in both front ends, and only on clicks: a
Streamlit rerun records nothing (before, every rerun logged a login and a dashboard view)."""

from __future__ import annotations

from tests.parity import Recorder, app_test, no_errors

TOKEN = "parity-token-5c1e"
YAML = "id: x\nsteps: []\n"


def test_login_check_and_reruns_record_the_same_events(client, fake_ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_STUDIES_DB", str(tmp_path / "studies.sqlite"))
    monkeypatch.setenv("WORKBENCH_RESEARCHER_TOKEN", TOKEN)
    events = Recorder(fake_ctx)
    client.predict(TOKEN, api_name="/studies_login")
    gradio_verdict = client.predict(TOKEN, YAML, api_name="/studies_check")

    at = app_test(fake_ctx, "studies")
    at.run()
    at.text_input(key="study_token").set_value(TOKEN)
    at.button(key="study_login").click().run()
    no_errors(at)
    at.text_area(key="study_text").set_value(YAML)
    at.button(key="study_check").click().run()
    no_errors(at)
    assert gradio_verdict in [m.value for m in at.markdown]
    at.run()
    at.run()  # reruns: no action, no event

    recorded = events.assert_same("studies")
    assert [name for name, _, _ in recorded] == ["studies_login", "studies_check"]
    assert recorded[0][1] == {"token": TOKEN} and recorded[1][1] == {"token": TOKEN, "text": YAML}
