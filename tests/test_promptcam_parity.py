"""Prompt-CAM in Streamlit records an event only for what the user did, as Gradio does: a rerun records nothing,
moving a slider records one promptcam_render, and the PNG export is a click (before, every rerun recorded a
render and an export)."""

from __future__ import annotations

from tests.parity import Recorder, app_test, no_errors


def test_streamlit_records_events_only_for_user_actions(fake_ctx):
    events = Recorder(fake_ctx)
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
    assert at.download_button(key="promptcam_download").proto.url
    recorded = events.of("streamlit", "promptcam")
    assert [name for name, _, _ in recorded] == ["promptcam_analyse", "promptcam_render", "promptcam_export"]
    assert recorded[1][1] == {"opacity": 0.8, "head_rank": 1}
    assert recorded[2][1] == {"panel": "prompt-cam head", "head_rank": 1, "opacity": 0.8}
