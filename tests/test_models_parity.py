"""The Models tab's load and unload are one declared action each (workbench.model_table.LOAD/UNLOAD): the same
message and the same recorded event (profile, role) in both front ends."""

from __future__ import annotations

from tests.parity import Recorder, app_test, no_errors


def test_load_and_unload_record_the_same_events(client, fake_ctx):
    events = Recorder(fake_ctx)
    _, _, loaded = client.predict("fake", "chat", api_name="/load_model")
    _, _, unloaded = client.predict("fake", "chat", api_name="/unload_model")

    at = app_test(fake_ctx, "models")
    at.run()
    at.selectbox(key="models_role").set_value("chat")
    at.button(key="models_load").click().run()
    no_errors(at)
    assert loaded in [m.value for m in at.markdown]
    at.button(key="models_unload").click().run()
    assert unloaded in [m.value for m in at.markdown]

    recorded = events.assert_same("models")
    assert [(name, inputs) for name, inputs, _ in recorded] == [
        ("load_model", {"profile": "fake", "role": "chat"}), ("unload_model", {"profile": "fake", "role": "chat"})]
