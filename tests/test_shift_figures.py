"""Behaviour-shift figures read by someone who did not build them, and the analysis as a ZIP: on the tiny model
with a LoRA adapter switched off (base) and on (instruct), as the offline Gemma pair is built."""

from __future__ import annotations

import copy
import csv
import dataclasses
import importlib.util
import io
import json
import zipfile

import numpy as np
import pytest

from tests.conftest import spec
from tests.test_shift_core import BASE, tiny_adapter  # noqa: F401 (shared fixture)
from workbench.shift.limits import METHODS as ALL_METHODS

PROMPT = "write a short poem about the sea"
N_OUT = 3


@pytest.fixture(scope="module")
def pair_manager():
    from workbench.models import ModelManager

    m = ModelManager(budget_bytes=8 * 1024**3, device="cpu")
    yield m
    m.unload_all()


def _specs(adapter):
    return spec("lm_base", "transformers-lm", BASE), spec("lm_instruct", "transformers-lm", BASE, adapter=str(adapter))


@pytest.fixture(scope="module")
def result(pair_manager, tiny_adapter):
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.limits import ShiftSettings

    return analyse_pair(pair_manager, *_specs(tiny_adapter), PROMPT,
                        settings=ShiftSettings(methods=ALL_METHODS, max_new_tokens=N_OUT, ig_steps=4))


@pytest.fixture(scope="module")
def partial(pair_manager, tiny_adapter):
    """A run cancelled when integrated gradients starts: gradient x input finished for both sides, nothing else."""
    from workbench.jobs import Cancelled, Job
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.limits import ShiftSettings

    job = Job("shift_attribute")
    job.listen(lambda u: job.cancel() if u.stage.startswith("attribution · integrated gradients") else None)
    with pytest.raises(Cancelled) as info:
        analyse_pair(pair_manager, *_specs(tiny_adapter), PROMPT,
                     settings=ShiftSettings(methods=ALL_METHODS, max_new_tokens=N_OUT, ig_steps=4), job=job)
    return info.value.partial


def _caption(adapter, on: bool) -> str:
    return f"{BASE} with adapter {adapter.name} {'on' if on else 'off'}"


def test_titles_say_base_and_instruct_and_subtitles_name_the_model(result, tiny_adapter):
    from workbench.shift import figures as fg

    for side, on in (("base", False), ("instruct", True)):
        fig = fg.attribution_heatmap(result, "gradient_x_input", side)
        assert fig.layout.title.text == f"gradient × input (the paper's) — {side}"
        assert fig.layout.title.subtitle.text == _caption(tiny_adapter, on)
        att = fg.attention_share_heatmap(result, side)
        assert att.layout.title.text == f"Attention share on instruction tokens — {side}"
        assert att.layout.title.subtitle.text == _caption(tiny_adapter, on)
        head = fg.head_view(result, side, 0, 0)
        assert head.layout.title.text.startswith(f"Head view — {side}, layer 0, head 0")
        assert head.layout.title.subtitle.text == _caption(tiny_adapter, on)
    both = f"base: {_caption(tiny_adapter, False)} · instruct: {_caption(tiny_adapter, True)}"
    for fig in (fg.density_figure(result), fg.share_figure(result, "gradient_x_input"),
                fg.position_figure(result, "gradient_x_input"),
                fg.attribution_heatmap(result, "gradient_x_input", "difference")):
        assert both in fig.layout.title.subtitle.text
        assert "(adapter" not in fig.layout.title.text and BASE not in fig.layout.title.text
        names = [t.name for t in fig.data if t.type in ("bar", "scatter")]
        assert names in (["base", "instruct"], [])  # legends name the roles; the heatmap has none
    summary = fg.summary_markdown(result)
    assert f"**base** = `{_caption(tiny_adapter, False)}`" in summary
    assert f"**instruct** = `{_caption(tiny_adapter, True)}`" in summary
    assert "- base: `" in summary and "- instruct: `" in summary


def test_shared_colour_scale_by_default_and_per_model_on_request(result):
    from workbench.shift import figures as fg
    from workbench.shift import flows
    from workbench.shift.limits import METHOD_LABELS

    scores = {s: result.sides[s].attributions["gradient_x_input"].scores for s in ("base", "instruct")}
    bound = max(np.abs(scores["base"]).max(), np.abs(scores["instruct"]).max())
    view = flows.build_view(result, METHOD_LABELS["gradient_x_input"], 1, 8, "all", "all", "instruct", 0, 0)
    for side in ("base", "instruct"):
        h = view.get(f"attr_{side}").data[0]
        assert (h.zmin, h.zmax) == pytest.approx((-bound, bound))
    own = {s: fg.attribution_heatmap(result, "gradient_x_input", s, scale="per model").data[0] for s in scores}
    for s in scores:
        assert own[s].zmax == pytest.approx(np.abs(scores[s]).max())
    assert own["base"].zmax != pytest.approx(own["instruct"].zmax)
    # the difference keeps its own symmetric scale whatever the choice
    diff = view.get("attr_difference").data[0]
    assert diff.zmax == -diff.zmin == pytest.approx(float(np.abs(np.asarray(diff.z)).max()))
    # attention shares: one range (both models' min..max) by default, each its own per model
    shares = {s: result.sides[s].attention.instruction_share for s in scores}
    lo, hi = min(a.min() for a in shares.values()), max(a.max() for a in shares.values())
    for side in ("base", "instruct"):
        h = view.get(f"attn_{side}").data[0]
        assert (h.zmin, h.zmax) == pytest.approx((lo, hi))
        h = fg.attention_share_heatmap(result, side, scale="per model").data[0]
        assert (h.zmin, h.zmax) == pytest.approx((shares[side].min(), shares[side].max()))
    top = max(result.sides[s].attention.head_view(1, 2).max() for s in scores)
    assert fg.head_view(result, "base", 1, 2).data[0].zmax == pytest.approx(top)
    with pytest.raises(ValueError, match="colour scale must be one of shared, per model"):
        flows.build_view(result, METHOD_LABELS["gradient_x_input"], 1, 8, "all", "all", "instruct", 0, 0, "own")


def test_the_instruction_box_says_what_it_marks(result):
    from workbench.shift import figures as fg

    first = result.layout.instruction_mask.index(True)
    for fig in (fg.attribution_heatmap(result, "gradient_x_input", "base"), fg.density_figure(result),
                fg.head_view(result, "instruct", 0, 0)):
        [note] = [a for a in fig.layout.annotations if "instruction span" in a.text]
        assert note.text.endswith("instruction span (the user message)") and note.x == first - 0.5
        boxes = [b for b in fig.layout.shapes if b.line.color == fg.SPAN_COLOUR]
        assert note.font.color == fg.SPAN_COLOUR and boxes and boxes[0].x0 == first - 0.5
    marked = copy.copy(result)
    marked.layout = dataclasses.replace(result.layout, source="user-marked")
    assert fg.span_name(marked) == "instruction span (marked with [[...]])"


def test_density_axes_and_plain_words(result):
    from workbench.shift import figures as fg

    fig = fg.density_figure(result)
    assert fig.layout.yaxis.title.text == "importance density (L1/L4)"
    assert fig.layout.xaxis.title.text == "prompt token"
    sub = fig.layout.title.subtitle.text
    assert "0..L=10 and rounded up" in sub and "values ≤ b=7 dropped" in sub and "L1/L4 norm" in sub
    assert "higher = important for more output tokens" in sub
    assert list(fig.layout.xaxis.tickvals) == [f"{i}:{t}" for i, t in enumerate(result.layout.tokens)]


def test_share_axis_ticks_are_output_positions_labelled_with_tokens(result):
    from workbench.shift import figures as fg

    fig = fg.share_figure(result, "gradient_x_input")
    assert fig.layout.xaxis.tickmode == "array" and list(fig.layout.xaxis.tickvals) == list(range(N_OUT))
    base, inst = result.sides["base"].output_tokens, result.sides["instruct"].output_tokens
    assert list(fig.layout.xaxis.ticktext) == [f"{i}:{base[i]} | {inst[i]}" for i in range(N_OUT)]
    assert all(float(x).is_integer() for t in fig.data for x in t.x)


def test_head_view_labels_every_token(result):
    from workbench.shift import figures as fg

    fig = fg.head_view(result, "instruct", 1, 0)
    tokens = result.layout.tokens + result.sides["instruct"].output_tokens
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.tickmode == "array" and list(axis.tickvals) == labels and list(axis.ticktext) == labels
        assert axis.tickfont.size == 9
    assert fig.layout.xaxis.tickangle == -90


def test_ig_completeness_beside_its_plot_and_notes_in_the_summary(result):
    from workbench.shift import figures as fg

    for tolerance, word, mark in ((1e9, "pass", "✓ pass"), (1e-12, "FAIL", "✗ **fail**")):
        judged = copy.copy(result)
        judged.settings = dataclasses.replace(result.settings, completeness_tolerance=tolerance)
        for side in ("base", "instruct"):
            rel = result.sides[side].attributions["integrated_gradients"].completeness_rel
            sub = fg.attribution_heatmap(judged, "integrated_gradients", side).layout.title.subtitle.text
            assert f"completeness error max {rel.max():.2%}, mean {rel.mean():.2%}" in sub and f"— {word} " in sub
            summary = fg.summary_markdown(judged)
            line = next(l for l in summary.splitlines() if l.startswith(f"- Integrated gradients completeness, {side}"))
            assert f"max {rel.max():.2%}, mean {rel.mean():.2%}" in line and mark in line
    # other methods' heatmaps carry no completeness line
    assert "completeness" not in fg.attribution_heatmap(result, "gradient_x_input", "base").layout.title.subtitle.text
    summary = fg.summary_markdown(result)
    for method, label in (("integrated_gradients", "integrated gradients (embedding layer)"),
                          ("feature_ablation", "feature ablation (token → pad)")):
        for note in result.sides["base"].attributions[method].notes:
            assert f"*{label}*: {note}" in summary


def _zip(path):
    zf = zipfile.ZipFile(path)
    mats = np.load(io.BytesIO(zf.read("matrices.npz")), allow_pickle=False)
    return zf, mats, json.loads(zf.read("analysis.json"))


def test_export_zip_holds_matrices_csv_figures_and_provenance(result, tiny_adapter, tmp_path):
    from workbench.shift.export import write_export_zip
    from workbench.shift.limits import METHODS

    zf, mats, rec = _zip(write_export_zip(result, tmp_path))
    n_prompt = result.layout.n_tokens
    for side in ("base", "instruct"):
        s = result.sides[side]
        for m in METHODS:
            a = s.attributions[m]
            assert mats[f"attribution_{m}_{side}"].shape == (N_OUT, n_prompt)
            np.testing.assert_array_equal(mats[f"attribution_{m}_{side}"], a.scores)
            np.testing.assert_array_equal(mats[f"target_prob_{m}_{side}"], a.target_prob)
            rows = list(csv.reader(io.StringIO(zf.read(f"csv/attribution_{m}_{side}.csv").decode())))
            assert len(rows) == 1 + N_OUT and len(rows[0]) == 1 + n_prompt
            assert rows[1][0] == f"0:{s.output_tokens[0]}" and rows[0][1] == f"0:{result.layout.tokens[0]}"
            np.testing.assert_array_equal(np.array(rows[1:])[:, 1:].astype(float), a.scores)
        np.testing.assert_array_equal(mats[f"completeness_rel_integrated_gradients_{side}"],
                                      s.attributions["integrated_gradients"].completeness_rel)
        np.testing.assert_array_equal(mats[f"attention_share_{side}"], s.attention.instruction_share)
        assert mats[f"attention_maps_{side}"].shape == s.attention.maps.shape
        np.testing.assert_array_equal(mats[f"output_ids_{side}"], s.output_ids)
        prov = rec["sides"][side]["provenance"]
        assert prov["model_id"] == BASE and prov["backend"] == "transformers-lm"
        assert prov["settings"]["adapter"] == str(tiny_adapter)
        assert prov["settings"]["adapter_enabled"] is (side == "instruct")
        assert prov["random_weights"] is True and prov["versions"]["torch"] == rec["versions"]["torch"]
        ig = rec["sides"][side]["integrated_gradients_completeness"]
        rel = s.attributions["integrated_gradients"].completeness_rel
        assert ig["max_rel"] == pytest.approx(rel.max()) and ig["mean_rel"] == pytest.approx(rel.mean())
        assert rec["sides"][side]["output_tokens"] == s.output_tokens
    np.testing.assert_array_equal(mats["prompt_ids"], result.layout.input_ids)
    per_token = list(csv.DictReader(io.StringIO(zf.read("csv/per_output_token.csv").decode())))
    assert len(per_token) == 2 * len(METHODS) * N_OUT
    ig_row = next(r for r in per_token if r["side"] == "instruct" and r["method"] == "integrated_gradients"
                  and r["position"] == "1")
    ig = result.sides["instruct"].attributions["integrated_gradients"]
    assert float(ig_row["target_prob"]) == ig.target_prob[1] and float(ig_row["completeness_rel"]) == ig.completeness_rel[1]
    assert rec["complete"] is True and rec["methods_done"] == list(METHODS) and rec["methods_missing"] == []
    assert rec["settings"]["ig_steps"] == 4 and rec["settings"]["max_new_tokens"] == N_OUT
    assert rec["prompt"]["instruction"] == PROMPT and rec["prompt"]["tokens"] == result.layout.tokens
    assert rec["inputs"] == {"prompt": PROMPT, "system": "", "use_chat_template": True}  # as the user typed them
    assert rec["pair_kind"] == "adapter" and "plotly" in rec["versions"] and "numpy" in rec["versions"]
    html = sorted(n for n in zf.namelist() if n.endswith(".html"))
    assert len(html) == 3 * 6 + 3 and "figures/plotly.min.js" in zf.namelist()
    page = zf.read("figures/attribution_gradient_x_input_base.html").decode()
    assert '<script charset="utf-8" src="plotly.min.js"></script>' in page and "— base" in page
    readme = zf.read("README.txt").decode()
    assert "State: complete." in readme
    if importlib.util.find_spec("kaleido") is None:
        assert "PNG figures are not included" in readme and not any(n.endswith(".png") for n in zf.namelist())


def test_export_of_a_cancelled_run_holds_what_finished(partial, tmp_path):
    from workbench.shift.export import write_export_zip

    assert partial.methods_done == ["gradient_x_input"]
    zf, mats, rec = _zip(write_export_zip(partial, tmp_path))
    assert sorted(k for k in mats.files if k.startswith("attribution_")) == [
        "attribution_gradient_x_input_base", "attribution_gradient_x_input_instruct"]
    assert not any("completeness" in k for k in mats.files)
    np.testing.assert_array_equal(mats["attribution_gradient_x_input_base"],
                                  partial.sides["base"].attributions["gradient_x_input"].scores)
    assert mats["attention_share_base"].shape == partial.sides["base"].attention.shape  # the quick parts are in
    assert rec["complete"] is False and rec["stopped"].startswith("attribution · integrated gradients")
    assert rec["methods_done"] == ["gradient_x_input"]
    assert rec["methods_missing"] == ["integrated_gradients", "feature_ablation"]
    assert "integrated_gradients_completeness" not in rec["sides"]["base"]
    per_token = list(csv.DictReader(io.StringIO(zf.read("csv/per_output_token.csv").decode())))
    assert len(per_token) == 2 * N_OUT and {r["method"] for r in per_token} == {"gradient_x_input"}
    assert sum(n.endswith(".html") for n in zf.namelist()) == 6 + 3
    assert "PARTIAL: stopped during attribution · integrated gradients" in zf.read("README.txt").decode()


def test_models_tab_shows_one_row_per_base_with_its_adapters(profiles, tiny_adapter):
    """Data-driven: roles on one base model, with or without an adapter, are one loaded copy and one row of the
    Models tab, whatever the roles are called; the adapter is listed with its own state and memory."""
    from workbench import model_table as mt
    from workbench.context import AppContext
    from workbench.models import ModelManager
    from workbench.profiles import Profile

    base, inst = _specs(tiny_adapter)
    fake = profiles["fake"]
    roles = {**fake.roles, "lm_base": base, "lm_instruct": inst}
    renamed = {"plain": dataclasses.replace(base, role="plain"), "tuned": dataclasses.replace(inst, role="tuned")}
    ctx = AppContext(manager=ModelManager(budget_bytes=8 * 1024**3, device="cpu"),
                     profiles={**profiles, "pair": Profile("pair", "", roles), "renamed": Profile("renamed", "", renamed)},
                     default_profile="pair")
    try:
        rows = {r["role"]: r for r in mt.model_records(ctx, "pair")}
        assert "lm_base" not in rows and "lm_instruct" not in rows
        row = rows["lm_base, lm_instruct"]
        assert row["adapter"] == f"{tiny_adapter.name} for lm_instruct (not loaded)"
        assert row["state"] == "not loaded" and rows["chat"]["adapter"] == ""
        from workbench.shift import flows

        flows.run_analysis(ctx, "pair", "list three fruits", "", True, 2, 2, ["gradient × input (the paper's)"],
                           ["attribution"])
        row = {r["role"]: r for r in mt.model_records(ctx, "pair")}["lm_base, lm_instruct"]
        adapter_mib = ctx.manager.status(inst).memory_bytes / 2**20
        assert row["state"] == "loaded" and 0 < adapter_mib < row["memory MiB"]
        assert row["adapter"] == f"{tiny_adapter.name} for lm_instruct (loaded, {adapter_mib:.1f} MiB)"
        assert ctx.manager.is_loaded(base) and ctx.manager.is_loaded(inst)  # the base is that one copy
        assert len(ctx.manager.loaded_bases()) == 1 and set(ctx.manager.load_count.values()) == {1}
        index = [r["role"] for r in mt.model_records(ctx, "pair")].index("lm_base, lm_instruct")
        assert mt.model_rows(ctx, "pair")[index][mt.COLUMNS.index("state")] == "loaded"
        assert "Loaded: 1 model(s) and 1 adapter(s) on them (each base model once)" in mt.memory_summary(ctx)
        # other role names: the same grouping, the same loaded copy
        rows = {r["role"]: r for r in mt.model_records(ctx, "renamed")}
        assert rows["plain, tuned"]["state"] == "loaded"
        assert rows["plain, tuned"]["adapter"].startswith(f"{tiny_adapter.name} for tuned (loaded")
        # unloading the adapter's role leaves the base loaded; unloading the base takes the adapter along
        assert mt.unload_role(ctx, "pair", "lm_instruct").endswith("stays loaded.")
        row = {r["role"]: r for r in mt.model_records(ctx, "pair")}["lm_base, lm_instruct"]
        assert row["state"] == "loaded" and row["adapter"].endswith("(not loaded)")
        ctx.manager.get(inst)
        assert mt.unload_role(ctx, "pair", "lm_base").endswith(f"with the adapters on it ({tiny_adapter.name}).")
        assert not ctx.manager.is_loaded(inst)
        # the fake profile's pair is two models: two rows, no adapter
        rows = {r["role"]: r for r in mt.model_records(ctx, "fake")}
        assert rows["lm_base"]["adapter"] == rows["lm_instruct"]["adapter"] == ""
    finally:
        ctx.manager.unload_all()
