"""The T2V tab records the same events with the same named inputs in both front ends (workbench.t2v.forms), and
Streamlit has what it lacked: the max-new-tokens control, a final render that uses its video inputs, Reopen."""

from __future__ import annotations

from tests.parity import Recorder, app_test, no_errors


def test_evolve_final_render_and_reopen_record_the_same_events(client, fake_ctx):
    from workbench.t2v.flows import REWRITER_LABELS
    from workbench.t2v.rewards import DEFAULT_WEIGHTS, METRICS

    events = Recorder(fake_ctx)
    out = client.predict("fake", "a kite over a hill", 2, 2, 3, 2, 0, 0.9, 16, 32, 32, 3, 2, 0,
                         REWRITER_LABELS["profile"], "", "", 60, *[DEFAULT_WEIGHTS[m] for m in METRICS],
                         api_name="/t2v_evolve")
    chosen = out[10]
    final = client.predict("fake", chosen, 32, 32, 3, 1, 4, api_name="/t2v_render_final")
    folder = out[0].split("Run folder: `")[1].split("`")[0]
    reopened = client.predict("fake", folder, api_name="/t2v_reopen")

    at = app_test(fake_ctx, "t2v")
    at.run()
    at.text_area(key="t2v_prompt").set_value("a kite over a hill")
    for key, value in (("rounds", 2), ("patience", 2)):
        at.slider(key=f"t2v_{key}").set_value(value)
    for key, value in (("population", 2), ("max_new_tokens", 16), ("video_width", 32), ("video_height", 32),
                       ("video_frames", 3), ("video_steps", 2)):
        at.number_input(key=f"t2v_{key}").set_value(value)
    at.button(key="t2v_evolve").click().run()
    no_errors(at)
    assert at.text_area(key="t2v_chosen").value == chosen
    for key, value in (("width", 32), ("height", 32), ("frames", 3), ("steps", 1), ("seed", 4)):
        at.number_input(key=f"t2v_final_{key}").set_value(value)
    at.button(key="t2v_final").click().run()
    no_errors(at)
    markdown = " ".join(m.value for m in at.markdown)
    assert "seed 4" in final[11] and final[11] in markdown  # the final render used the video inputs
    at.text_input(key="t2v_folder").set_value(at.session_state["t2v_shown"]["state"]["run_dir"])
    at.button(key="t2v_reopen").click().run()
    no_errors(at)
    assert "Best:" in reopened[0]

    recorded = Recorder.__new__(Recorder)
    recorded.events = [e for e in events.events if e.action != "t2v_reopen"]  # the run folders differ
    same = recorded.assert_same("t2v")
    assert [name for name, _, _ in same] == ["t2v_evolve", "t2v_render_final"]
    assert same[0][1]["max_new_tokens"] == 16 and same[0][1]["VideoInputs.seed"] == 0
    assert same[1][1]["width"] == 32 and same[1][1]["seed"] == 4
    reopen = [e for e in events.events if e.action == "t2v_reopen"]
    assert [e.frontend for e in reopen] == ["gradio", "streamlit"] and not any(e.error for e in reopen)
