"""The T2V tab through gradio_client (the real app on the fake profile) and the Streamlit page via AppTest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app_process import ROOT
from workbench.t2v.flows import MODES, REWRITER_LABELS
from workbench.t2v.rewards import DEFAULT_WEIGHTS, METRICS


def _evolve_args(prompt: str, rounds=2, population=2, frames=3, width=32):
    return ("fake", prompt, rounds, population, 3, 2, 0, 0.9, 0, width, 32, frames, 2, 0,
            REWRITER_LABELS["profile"], "", "", 60, *[DEFAULT_WEIGHTS[m] for m in METRICS])


def test_tab_evolve_open_check_render_export(client):
    from gradio_client.exceptions import AppError

    # gr.State is neither an input nor an output of the API: outputs are the view, status first
    out = client.predict(*_evolve_args("a dog running on a beach"), api_name="/t2v_evolve")
    status, tree, choice, table = out[0], out[2], out[3], out[4]
    assert "Best:" in status and "random weights" in status and "Run folder" in status
    assert "round 1 (from candidate" in tree and choice["value"].startswith("r") and len(choice["choices"]) == 5
    assert len(table["data"]) == 5 and table["data"][0][0] == "original"
    assert "align_original" in out[8] and out[10]  # score panel; chosen prompt filled with the best
    opened = client.predict("fake", "r1c1", api_name="/t2v_open")
    assert opened[3]["value"] == "r1c1" and opened[6]  # the candidate's preview GIF
    checked = client.predict("fake", opened[10], REWRITER_LABELS["profile"], "", "", 60, api_name="/t2v_check")
    assert "| accurate |" in checked[9]
    final = client.predict("fake", opened[10], 32, 32, 3, 1, 4, api_name="/t2v_render_final")
    assert "seed 4" in final[11] and final[12] and final[13] and len(final[14]) == 3
    exported = client.predict("fake", "", 0.0, api_name="/t2v_export")
    assert "SFT row" in exported[15] and len(exported[16]) == 2
    with pytest.raises(AppError, match="video idea is empty"):
        client.predict(*_evolve_args("   "), api_name="/t2v_evolve")
    with pytest.raises(AppError, match="greater than maximum value 12"):  # the slider's own check
        client.predict(*_evolve_args("a dog", rounds=40), api_name="/t2v_evolve")
    with pytest.raises(AppError, match="frames must be between 2 and 129"):
        client.predict(*_evolve_args("a dog", frames=5000), api_name="/t2v_evolve")
    with pytest.raises(AppError, match="width must be a multiple of 8"):
        client.predict(*_evolve_args("a dog", width=33), api_name="/t2v_evolve")
    with pytest.raises(AppError, match=r"Refused: this video idea is unsafe to render: graphic violence \(“gory"):
        client.predict("fake", "a gory massacre", 0.5, 2, 2, 0, REWRITER_LABELS["profile"], "", "", 60,
                       api_name="/t2v_principles")


def _streamlit_page(root: str) -> None:
    import streamlit as st

    from pages import t2v
    from workbench.context import AppContext
    from workbench.models import ModelManager
    from workbench.profiles import load_profiles

    @st.cache_resource
    def context():
        return AppContext(ModelManager(budget_bytes=2 * 1024**3, device="cpu"), load_profiles(), "fake")

    st.session_state.setdefault("profile", "fake")
    t2v.render_streamlit(context())


def test_streamlit_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_streamlit_page, kwargs={"root": str(ROOT)}, default_timeout=90)
    at.run()
    assert not at.exception
    at.button(key="t2v_evolve").click().run()
    assert any("video idea is empty" in e.value for e in at.error)
    at.text_area(key="t2v_prompt").set_value("a kite over a hill").run()
    at.slider(key="t2v_rounds").set_value(2).run()
    at.number_input(key="t2v_video_width").set_value(32).run()
    at.number_input(key="t2v_video_height").set_value(32).run()
    at.number_input(key="t2v_video_frames").set_value(3).run()
    at.number_input(key="t2v_video_steps").set_value(1).run()
    at.button(key="t2v_evolve").click().run()
    assert not at.exception
    markdown = " ".join(m.value for m in at.markdown)
    assert "Best:" in markdown and "align_original" in markdown
    assert at.text_area(key="t2v_chosen").value.startswith("a kite over a hill")
    at.button(key="t2v_check").click().run()
    assert not at.exception and "Principles check" in " ".join(m.value for m in at.markdown)
    at.radio(key="t2v_mode").set_value(MODES[1]).run()
    at.button(key="t2v_principles").click().run()
    assert not at.exception and "VPO rewrite" in " ".join(m.value for m in at.markdown)


@pytest.mark.real_models
@pytest.mark.slow
def test_offline_profile_evolves_three_rounds(real_manager, profiles, tmp_path):
    """The issue's done-when on the offline profile: three rounds with the tab's defaults, a check, a final render,
    pairs that TRL's formats accept."""
    import time

    from workbench.context import AppContext
    from workbench.t2v import flows

    ctx = AppContext(manager=real_manager, profiles=profiles, default_profile="offline")
    started = time.perf_counter()
    state, view = flows.evolve(ctx, "offline", None, "a dog running on a beach",
                               flows.EvolveInputs(rounds=3, patience=3), flows.VideoInputs(), flows.RewriterInputs())
    seconds = time.perf_counter() - started
    assert len(state["evolve"]["rounds"]) == 3 and view.chart is not None, view.status
    # the world's video model at its preview (64 px, 8 frames), its note naming the idea's words it does not know
    assert state["video"]["width"] == 64 and state["video"]["num_frames"] == 8 and "random weights" not in view.status
    assert "Videos come from the miniature world" in view.status and "“dog”" in view.status
    print(f"offline evolution, 3 rounds: {seconds:.1f} s")
    state, view = flows.check_candidate(ctx, "offline", state, view.chosen, flows.RewriterInputs())
    assert "| accurate |" in view.principles
    state, view = flows.render_final(ctx, "offline", state, view.chosen, flows.VideoInputs())
    assert Path(view.final_chosen).stat().st_size > 0
    state, view = flows.export(ctx, "offline", state, "", 0.0)
    rows = [json.loads(line) for line in Path(view.export_files[1]).read_text().splitlines()]
    assert len(rows) >= 1, view.export_status  # three evolved rounds give at least one preference pair
    assert all({"prompt", "chosen", "rejected"} <= set(r) for r in rows)
