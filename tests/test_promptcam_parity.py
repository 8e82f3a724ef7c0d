"""Prompt-CAM records the same events with the same named inputs in both front ends (its inputs and actions are
declared once, workbench.promptcam.forms). In Streamlit an event is recorded only for what the user did: a rerun
records nothing, moving a slider records one promptcam_render, and the PNG export is a click."""

from __future__ import annotations

from tests.parity import Recorder, app_test, no_errors


def test_streamlit_records_events_only_for_user_actions(client, fake_ctx):
    from workbench.promptcam import flows

    events = Recorder(fake_ctx)
    client.predict("fake", None, flows.default_example(), "", "predicted", 3, 4, 0.5, api_name="/promptcam_analyse")
    client.predict(0.8, 1, api_name="/promptcam_render")
    client.predict("prompt-cam head", 1, 0.8, api_name="/promptcam_export")
    at = app_test(fake_ctx, "promptcam")
    at.run()
    at.button[0].click()  # Explain
    at.run()
    no_errors(at)
    at.run()
    at.run()  # reruns: nothing recorded
    assert [name for name, _, _ in events.of("streamlit", "promptcam")] == ["promptcam_analyse"]
    at.slider(key="promptcam_opacity").set_value(0.8).run()
    no_errors(at)
    at.button(key="promptcam_export").click().run()
    no_errors(at)
    assert at.download_button[0].proto.url
    recorded = events.of("streamlit", "promptcam")
    assert [name for name, _, _ in recorded] == ["promptcam_analyse", "promptcam_render", "promptcam_export"]
    assert recorded[1][1] == {"opacity": 0.8, "head_rank": 1}
    assert recorded[2][1] == {"panel": "prompt-cam head", "head_rank": 1, "opacity": 0.8}
    assert events.assert_same("promptcam") == recorded  # the same events, with the same inputs, from Gradio
