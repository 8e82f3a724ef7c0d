"""The T2I tab through gradio_client (the real app on the fake profile) and the Streamlit page via AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_process import free_port
from workbench.t2i.scoring import METRICS

ROOT = Path(__file__).resolve().parent.parent
N_SLOTS = 8
HEAD = 5  # state, status, tree, round, pick (state is not part of the API output)


REWRITER = ["profile chat model", "", "", ""]


def _refine_args(prompt: str, n: int = 3, kind: str = "profile chat model"):
    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE

    return ["fake", prompt, kind, "", "", "", DEFAULT_SYSTEM_TEMPLATE, n, 0.5, 2, 0.9, 0]


SLOT = 3  # per candidate slot in the API output: text, diff, flag
RESULTS = 6  # render status, ZIP, grid, chart, table, sort key
HEAT = 5  # heatmap image, caption, PNG, image choice, word choice


def _texts(out):
    return [out[4 + SLOT * i] for i in range(N_SLOTS)]


def test_tab_refine_edit_render_pick_refine_further_go_back(client):
    import json
    import zipfile

    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE

    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ("/t2i_refine", "/t2i_render", "/t2i_refine_further", "/t2i_go_back", "/t2i_regenerate_1", "/t2i_sort"):
        assert name in api
    out = client.predict(*_refine_args("a cat on a sofa", n=3), api_name="/t2i_refine")
    assert len(out) == 4 + SLOT * N_SLOTS + RESULTS + HEAT
    status, tree = out[0], out[1]
    assert "3 candidate(s)" in status and "random weights" in status
    assert "round 0" in tree
    texts = _texts(out)
    assert all(t.startswith("a cat on a sofa") for t in texts[:3]) and texts[3:] == [""] * 5
    assert any(p["class_or_confidence"] == "added" for p in out[5])
    assert "77 tokens" in out[6]
    # Regenerate slot 2 only.
    regen = client.predict("fake", *texts, "profile chat model", "", "", "", DEFAULT_SYSTEM_TEMPLATE, 3, 0.5, 2, 0.9, 0,
                           api_name="/t2i_regenerate_2")
    new_text = regen[0]
    assert new_text and new_text not in (texts[0], texts[2])
    texts[1] = new_text
    # The user edits candidate 3 before rendering; the render uses the edit (and its tail is flagged).
    texts[2] = texts[2] + ", " + " ".join(["extremely detailed"] * 40)
    rendered = client.predict("fake", *texts, 1, 64, 7, 7.5, 1.0, 0.5, 0.5, 1.0, 0.25, api_name="/t2i_render")
    summary, zip_path, grid, chart, table, sort_key, heat_view, heat_caption, heat_png, heat_image, heat_word = rendered
    # the heatmap's choices follow the render: the grid's labels, the first candidate's words; no heatmap yet
    assert heat_image["value"] == "#1" and [c[0] for c in heat_image["choices"]] == ["original", "#1", "#2", "#3"]
    assert [c[0] for c in heat_word["choices"]][:4] == ["a", "cat", "on", "sofa"]  # #1's words, each once
    assert heat_view is None and heat_png is None
    assert "Rendered 4 images" in summary and "Image diversity" in summary and "random weights" in summary
    assert "[3]" in summary  # candidate 3 crossed the 77-token window
    assert len(grid) == 4 and grid[0]["caption"].startswith("original (same seed)")
    assert all("random weights" in tile["caption"] for tile in grid)
    assert [row[0] for row in table["data"]] == ["original", "#1", "#2", "#3"]
    assert table["headers"][:3] == ["image", "align_original", "align_refined"] and "weighted total" in table["headers"]
    assert chart is not None and sort_key == "candidate order"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        record = json.loads(zf.read("round.json"))
    assert "round.json" in names and "00_original.png" in names and "03_candidate.png" in names
    assert record["images"][2]["prompt"] == new_text
    assert record["images"][1]["provenance"]["model_id"] == "fake/t2i" and record["images"][1]["scores"]["total"]
    # Sort by the weighted total: the table's candidate rows come highest first.
    sorted_out = client.predict("weighted total", api_name="/t2i_sort")
    totals = [float(r[-2]) for r in sorted_out[3]["data"][1:]]
    assert totals == sorted(totals, reverse=True)
    further = client.predict("fake", 2, *texts, "profile chat model", "", "", "", DEFAULT_SYSTEM_TEMPLATE, 2, 0.5, 2,
                             0.9, 0, api_name="/t2i_refine_further")
    assert "round 1 (from candidate 2 of round 0)" in further[1] and "current" in further[1]
    assert further[4].startswith(new_text.rstrip("."))
    assert further[4 + SLOT * N_SLOTS] in (None, "")  # the last round's render summary is cleared
    back = client.predict("fake", 0, api_name="/t2i_go_back")
    assert "Back at round 0" in back[0]
    assert back[4] == texts[0]


def test_tab_bad_input_and_baseline(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="prompt is empty"):
        client.predict(*_refine_args("   "), api_name="/t2i_refine")
    with pytest.raises(AppError, match="9 is greater than maximum value 8"):  # the slider's own bound
        client.predict(*_refine_args("a cat", n=9), api_name="/t2i_refine")
    with pytest.raises(AppError, match="control character"):
        client.predict(*_refine_args("a cat\x07"), api_name="/t2i_refine")
    with pytest.raises(AppError, match="2001 characters long"):
        client.predict(*_refine_args("a" * 2001), api_name="/t2i_refine")
    with pytest.raises(AppError, match="could not reach the rewriter server"):
        args = _refine_args("a cat", kind="OpenAI-compatible server")
        args[3], args[4] = f"http://127.0.0.1:{free_port()}/v1", "m"
        client.predict(*args, api_name="/t2i_refine")
    with pytest.raises(AppError, match="nothing to render yet"):
        client.predict("fake", *([""] * N_SLOTS), 1, 64, 0, 7.5, 1, 1, 1, 1, 1, api_name="/t2i_render")
    out = client.predict(*_refine_args("a red car", n=2, kind="keyword baseline (Promptist/MagicPrompt style)"),
                         api_name="/t2i_refine")
    assert "keyword-baseline" in out[0]
    with pytest.raises(AppError, match="seed must be between 0 and 4294967295"):
        client.predict("fake", *_texts(out), 1, 64, -1, 7.5, 1, 1, 1, 1, 1, api_name="/t2i_render")
    with pytest.raises(AppError, match="at least one metric weight must be above 0"):
        client.predict("fake", *_texts(out), 1, 64, 0, 7.5, *([0] * len(METRICS)), api_name="/t2i_render")


def test_streamlit_token_heatmap_on_the_offline_models():
    """Streamlit draws the same heatmap box: after a render on the offline image model, Show heatmap gives the
    overlay, its caption and its PNG download; the word list follows the chosen image."""
    from streamlit.testing.v1 import AppTest

    from workbench.t2i.flows import REWRITER_LABELS

    at = AppTest.from_function(_streamlit_page, kwargs={"root": str(ROOT), "profile": "offline"}, default_timeout=180)
    at.run()
    at.text_area(key="t2i_prompt").set_value("a red fox in the snow").run()
    at.radio(key="t2i_kind").set_value(REWRITER_LABELS["baseline"]).run()
    at.slider(key="t2i_n").set_value(2).run()
    at.button(key="t2i_refine").click().run()
    at.slider(key="t2i_img_steps").set_value(2).run()
    at.slider(key="t2i_img_size").set_value(64).run()
    at.button(key="t2i_render").click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="t2i_heat_image").value == "#1" and "fox" in at.selectbox(key="t2i_heat_word").options
    at.selectbox(key="t2i_heat_word").set_value("fox").run()
    at.button(key="t2i_heatmap").click().run()
    assert not at.exception and not at.error
    markdown = " ".join(m.value for m in at.markdown)
    assert "cross-attention put **fox** in image **#1**" in markdown
    # the offline image model is the world's: its note names the prompt's words outside the world
    assert "Images come from the miniature world" in markdown and "“fox”" in markdown
    assert sum(len(i.proto.imgs) for i in at.get("image")) == 4  # the grid's 3 and the heatmap
    assert len(at.get("download_button")) == 2  # the round's ZIP and the heatmap's PNG
    at.selectbox(key="t2i_heat_image").set_value("original").run()  # the word list follows the chosen image
    assert "ink" not in at.selectbox(key="t2i_heat_word").options and "fox" in at.selectbox(key="t2i_heat_word").options


def _streamlit_page(root: str, profile: str = "fake") -> None:
    import sys

    import streamlit as st

    from pages import t2i
    from workbench.context import AppContext
    from workbench.models import ModelManager
    from workbench.profiles import load_profiles

    @st.cache_resource
    def context():
        return AppContext(ModelManager(budget_bytes=2 * 1024**3, device="cpu"), load_profiles(), profile)

    st.session_state.setdefault("profile", profile)
    t2i.render_streamlit(context())


def test_streamlit_page(tmp_path):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_streamlit_page, kwargs={"root": str(ROOT)}, default_timeout=60)
    at.run()
    assert not at.exception
    at.text_area(key="t2i_prompt").set_value("").run()
    at.button(key="t2i_refine").click().run()
    assert any("prompt is empty" in e.value for e in at.error)
    at.text_area(key="t2i_prompt").set_value("a cat on a sofa").run()
    at.slider(key="t2i_n").set_value(2).run()
    at.button(key="t2i_refine").click().run()
    assert not at.exception
    first = at.text_area(key="t2i_cand_0").value
    assert first.startswith("a cat on a sofa") and at.text_area(key="t2i_cand_1").value
    at.text_area(key="t2i_cand_0").set_value(first + ", watercolor").run()
    at.button(key="t2i_render").click().run()
    assert not at.exception
    markdown = " ".join(m.value for m in at.markdown)
    assert "Rendered 3 images" in markdown and "Image diversity" in markdown
    assert len(at.get("plotly_chart")) == 1  # the one chart of every metric
    assert sum(len(i.proto.imgs) for i in at.get("image")) == 3  # the grid: the original and both candidates
    assert len(at.get("download_button")) == 1  # the round as a ZIP
    at.button(key="t2i_regen_1").click().run()
    assert not at.exception
    at.button(key="t2i_further").click().run()
    assert not at.exception
    assert "round 1 (from candidate 1 of round 0)" in " ".join(m.value for m in at.markdown)
    assert at.text_area(key="t2i_cand_0").value.startswith("a cat on a sofa")


def test_rewriter_labels_map_to_roles(fake_ctx):
    from workbench.t2i import service
    from workbench.t2i.flows import REWRITER_LABELS, RewriterInputs

    choice = RewriterInputs(kind=REWRITER_LABELS["profile:t2i_rewriter"]).parse()[0]
    assert (choice.kind, choice.role) == ("profile", "t2i_rewriter")
    assert choice.spec(fake_ctx.profiles["paper"]).model_id == "microsoft/Promptist"
    with pytest.raises(ValueError, match="profile 'fake' has no model for role 't2i_rewriter'"):
        service.refine(fake_ctx, "fake", "a cat", choice)


def test_tab_facets_are_chosen_and_shown_per_candidate(client):
    out = client.predict(*_refine_args("a lighthouse at dusk"), ["lighting", "style", "detail"],
                         api_name="/t2i_refine")
    status, captions = out[0], [out[4 + SLOT * i + 2] for i in range(3)]
    assert "Facets, one per candidate:" in status
    assert all(c.startswith("**Facet: ") for c in captions)
    assert {c.split("**Facet: ")[1].split("**")[0] for c in captions} <= {"lighting", "style / medium",
                                                                       "subject detail"}
    plain = client.predict(*_refine_args("a lighthouse at dusk"), [], api_name="/t2i_refine")
    assert "Facets" not in plain[0] and not plain[4 + 2].startswith("**Facet")
