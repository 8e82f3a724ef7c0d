"""The behaviour-shift tab through gradio_client (the real app on the fake profile, whose lm_base/lm_instruct
are tiny random causal LMs) and the Streamlit page via AppTest."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT
from workbench.shift import page as shift_page
from workbench.shift.limits import METHODS as ALL_METHODS


METHODS = ["gradient × input (the paper's)", "integrated gradients (embedding layer)", "feature ablation (token → pad)"]
PARTS = ["attribution", "attention", "ffn"]


def _views(method=METHODS[0], page=1, page_size=8, layers="all", heads="all", side="instruct", layer=0, head=0):
    return [method, page, page_size, layers, heads, side, layer, head]


def _heatmap(plot):
    """The (zmin, zmax) and title of a heatmap as gradio_client returns a Plot."""
    fig = json.loads(plot["plot"])
    return (fig["data"][0]["zmin"], fig["data"][0]["zmax"]), fig["layout"]["title"]


def _exported(path):
    zf = zipfile.ZipFile(path)
    return zf, np.load(io.BytesIO(zf.read("matrices.npz")), allow_pickle=False), json.loads(zf.read("analysis.json"))


def test_shift_tab_analyse_then_filter_and_page(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert "/shift_analyse" in api and "/shift_views" in api and "/shift_attribute" in api and "/shift_cancel" in api
    assert "/shift_export" in api
    assert api["/shift_views"]["parameters"][-1]["parameter_default"] == "shared"  # the colour-scale control
    # first step: answers, attention and FFN concepts at once, attribution still to come
    out = client.predict("fake", "write a short poem about the sea", "", True, 5, 8, METHODS, PARTS, *_views(page_size=2),
                         api_name="/shift_analyse")
    summary, *plots, ffn, method = out
    assert "Attribution is running" in summary and "completeness" not in summary
    assert plots[:6] == [None] * 6 and all(p is not None for p in plots[6:])  # attention views already there
    # second step (the job the Analyse button chains): attribution
    out = client.predict("fake", *_views(page_size=2), api_name="/shift_attribute")
    summary, *plots, ffn, method = out
    assert "Random weights" in summary and "two models" in summary
    assert "Integrated gradients completeness" in summary and "tolerance" in summary
    assert "write a short poem about the sea" in summary  # the instruction span from the chat template
    assert len(plots) == 10 and all(p is not None for p in plots)
    assert ffn["headers"][0] == "layer" and len(ffn["data"]) == 2 * 3  # 2 layers x 3 components
    # titles name the roles, subtitles the models; one colour scale for base and instruct by default
    (base_z, base_title), (inst_z, inst_title) = _heatmap(plots[0]), _heatmap(plots[1])
    assert base_title["text"].endswith("— base") and base_title["subtitle"]["text"] == "tiny:causal-lm?seed=0"
    assert inst_title["text"].endswith("— instruct") and inst_title["subtitle"]["text"] == "tiny:causal-lm?seed=1"
    assert base_z == inst_z
    own = client.predict(*_views(page_size=2), "per model", api_name="/shift_views")
    assert _heatmap(own[1])[0] != _heatmap(own[2])[0]
    assert max(_heatmap(own[1])[0][1], _heatmap(own[2])[0][1]) == pytest.approx(base_z[1])
    # the download: the analysis as one ZIP (the Analyse button chains it after attribution)
    zf, mats, rec = _exported(client.predict(api_name="/shift_export"))
    assert rec["complete"] is True and len(rec["methods_done"]) == 3 and rec["settings"]["max_new_tokens"] == 5
    assert rec["sides"]["instruct"]["provenance"]["model_id"] == "tiny:causal-lm?seed=1"
    assert mats["attribution_integrated_gradients_base"].shape == (5, len(rec["prompt"]["tokens"]))
    assert "csv/per_output_token.csv" in zf.namelist()
    ffn_props = next(c["props"] for c in client.config["components"] if c["props"].get("elem_id") == "shift-ffn")
    assert ffn_props["column_widths"] == ["6%", "9%", "10%", "33%", "33%", "9%"]  # numbers never squashed
    # page 3 of 5 output tokens at 2 per page: one row in the heatmap
    out = client.predict(*_views(method=METHODS[1], page=3, page_size=2, layers="1", heads="0,2", layer=1, head=3),
                         api_name="/shift_views")
    assert len(out) == 12 and [r[0] for r in out[-1]["data"]] == [1, 1, 1]
    # bad filters come back as clear messages
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="page must be between 1 and 3"):
        client.predict(*_views(page=4, page_size=2), api_name="/shift_views")
    with pytest.raises(AppError, match="layers must lie between 0 and 1"):
        client.predict(*_views(layers="0-5"), api_name="/shift_views")
    with pytest.raises(AppError, match="head must be between 0 and 3"):
        client.predict(*_views(head=9), api_name="/shift_views")


def test_shift_tab_reports_limits_and_marks(client):
    from gradio_client.exceptions import AppError

    from workbench.shift.limits import LIMITS

    with pytest.raises(AppError, match=f"at most {LIMITS.max_prompt_tokens}"):
        client.predict("fake", "the sea " * 300, "", True, 2, 4, METHODS[:1], PARTS, *_views(),
                       api_name="/shift_analyse")
    with pytest.raises(AppError, match="mark the instruction"):
        client.predict("fake", "no marks", "", False, 2, 4, METHODS[:1], PARTS, *_views(), api_name="/shift_analyse")
    client.predict("fake", "the sea is wide. [[summarise the text]]", "", False, 2, 4, METHODS[:1], ["attribution"],
                   *_views(), api_name="/shift_analyse")
    out = client.predict("fake", *_views(), api_name="/shift_attribute")
    summary = out[0]
    assert "user-marked" in summary and "summarise the text" in summary
    assert out[7] is None and out[11]["data"] == []  # attention and FFN were not asked for


def test_shift_cancel_keeps_finished_methods_and_frees_the_model(client, fake_ctx, monkeypatch):
    """A Cancel during integrated gradients returns the methods that finished (gradient x input for both
    models); the job is gone and the model lock free, so the next analysis runs to the end."""
    import time

    start = fake_ctx.jobs.start

    def slow_start(*args, **kwargs):  # tiny models finish in a blink: every progress step takes 0.2 s here
        job = start(*args, **kwargs)
        job.listen(lambda update: time.sleep(0.2))
        return job

    monkeypatch.setattr(fake_ctx.jobs, "start", slow_start)
    client.predict("fake", "write a short poem about the sea", "", True, 16, 64, METHODS, PARTS, *_views(),
                   api_name="/shift_analyse")
    job = client.submit("fake", *_views(), api_name="/shift_attribute")
    seen, deadline = None, time.time() + 300
    while time.time() < deadline and not job.done():
        running = fake_ctx.jobs.running(client.session_hash)
        last = running.last if running is not None else None
        if last is not None and last.stage.startswith("attribution · integrated gradients") and last.done:
            seen = last
            break
        time.sleep(0.02)
    assert seen is not None, "attribution never reached integrated gradients"
    assert "tiny:causal-lm" in seen.describe() and "integration steps" in seen.describe()
    assert client.predict(api_name="/shift_cancel") == "Cancelling at the next step..."
    summary, *plots, ffn, method = job.result(timeout=300)
    assert "Partial result" in summary and "integrated gradients" in summary
    assert "gradient × input (the paper's) |" in summary  # the finished method's row in the summary table
    assert plots[0] is not None and plots[6] is not None  # attribution (gradient x input) and attention views
    assert method["choices"] == [[METHODS[0], METHODS[0]]] or method.get("choices") in ([METHODS[0]], None)
    assert fake_ctx.jobs.running(client.session_hash) is None
    assert client.predict(api_name="/shift_cancel") == "Nothing is running."
    zf, mats, rec = _exported(client.predict(api_name="/shift_export"))  # the partial result exports what finished
    assert rec["complete"] is False and rec["methods_done"] == ["gradient_x_input"]
    assert "attribution_gradient_x_input_instruct" in mats.files and "attribution_feature_ablation_base" not in mats.files
    client.predict("fake", "write a short poem", "", True, 2, 4, METHODS, PARTS, *_views(), api_name="/shift_analyse")
    summary = client.predict("fake", *_views(), api_name="/shift_attribute")[0]
    assert "Partial result" not in summary and "completeness" in summary


def _page_script(root: str) -> None:
    import sys

    import streamlit as st

    from workbench.context import build_context

    @st.cache_resource
    def ctx():
        return build_context(profile="fake")

    st.session_state.setdefault("profile", "fake")
    import pages.shift

    pages.shift.render_streamlit(ctx())


def test_shift_streamlit_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page_script, args=(str(ROOT),), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    at.text_area(key="shift_prompt").set_value("list three fruits")
    at.slider(key="shift_max_new").set_value(2)
    at.slider(key="shift_ig_steps").set_value(4)
    from workbench.shift.limits import IG_BASELINE_LABELS, ShiftSettings

    assert at.selectbox(key="shift_ig_baseline").value == IG_BASELINE_LABELS[ShiftSettings().ig_baseline]
    at.selectbox(key="shift_ig_baseline").set_value(IG_BASELINE_LABELS["mean"])
    at.multiselect(key="shift_methods").set_value(METHODS)  # integrated gradients is one tick away
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text = " ".join(m.value for m in at.markdown)
    assert "Random weights" in text and "list three fruits" in text
    assert "the vocabulary's mean embedding" in text  # the baseline the user picked is the one used
    assert "completeness" in text and "Partial result" not in text  # attribution ran after the quick views
    button = at.download_button(key="shift_download")
    assert button.label == shift_page.DOWNLOAD_LABEL and button.proto.url  # the bytes are served
    zf, mats, rec = _exported(at.session_state["shift_shown"]["download"])
    assert rec["complete"] is True and rec["prompt"]["instruction"] == "list three fruits"
    assert mats["attribution_gradient_x_input_base"].shape == (2, len(rec["prompt"]["tokens"]))
    assert at.radio(key="shift_scale").value == "shared"
    at.radio(key="shift_scale").set_value("per model")
    at.button(key="shift_update").click().run()
    assert not at.exception and not at.error
    assert at.session_state["shift_shown"]["download"] == zf.filename  # same result: the ZIP is not written again
    at.text_input(key="shift_layers").set_value("7")
    at.button(key="shift_update").click().run()
    assert any("layers must lie between 0 and 1" in e.value for e in at.error)


def test_shift_streamlit_keeps_a_stopped_run():
    """A click during attribution stops Streamlit's script; the wiring keeps the job's partial result, and the
    page shows it (what finished, marked as partial)."""
    from streamlit.testing.v1 import AppTest

    from workbench.jobs import Cancelled, Job
    from workbench.models import ModelManager
    from workbench.profiles import load_profiles
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.limits import ShiftSettings

    fake = load_profiles()["fake"]
    manager = ModelManager(budget_bytes=8 * 1024**3, device="cpu")
    job = Job("shift_attribute")
    job.listen(lambda u: job.cancel() if u.stage.startswith("attribution · integrated gradients") else None)
    try:
        analyse_pair(manager, fake.spec("lm_base"), fake.spec("lm_instruct"), "list three fruits",
                     settings=ShiftSettings(methods=ALL_METHODS, max_new_tokens=2, ig_steps=4), job=job)
    except Cancelled as exc:
        partial = exc.partial
    finally:
        manager.unload_all()
    partial.stopped = ""  # as the wiring keeps it when Streamlit's rerun (not Cancelled) stopped the script
    at = AppTest.from_function(_page_script, args=(str(ROOT),), default_timeout=300)
    at.session_state["shift_attribute_partial"] = partial
    at.run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Partial result" in text and "stopped by a click" in text and "list three fruits" in text
    assert [o for o in at.selectbox(key="shift_method").options] == [METHODS[0]]
    _, mats, rec = _exported(at.session_state["shift_shown"]["download"])
    assert at.download_button(key="shift_download").proto.url
    assert rec["complete"] is False and rec["methods_done"] == ["gradient_x_input"]
    assert "attribution_integrated_gradients_base" not in mats.files


def test_ig_baseline_control_reaches_the_attribution(client):
    """The baseline dropdown's choice is the one integrated gradients used (the summary's note names it); the
    default is the measured one; a value outside the choices is refused with them named."""
    from workbench.shift import flows
    from workbench.shift.limits import IG_BASELINE_LABELS, ShiftSettings

    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert api["/shift_analyse"]["parameters"][-1]["parameter_default"] == IG_BASELINE_LABELS[ShiftSettings().ig_baseline]
    for key, words in (("pad", "pad token"), ("mean", "mean embedding")):
        client.predict("fake", "list two colours", "", True, 2, 4, METHODS[1:2], PARTS, *_views(METHODS[1]), "shared",
                       IG_BASELINE_LABELS[key], api_name="/shift_analyse")
        summary = client.predict("fake", *_views(METHODS[1]), api_name="/shift_attribute")[0]
        assert f"baseline: {'every prompt token replaced by the ' if key == 'pad' else 'the vocabulary' + chr(39) + 's '}" \
               f"{words}" in summary
    with pytest.raises(ValueError, match="baseline must be one of pad, zero, mean"):
        flows.ig_baseline_key("noise")
