"""Behaviour shift, fast path: the teacher-forced batched attribution matches the per-token reference on tiny
models; the analysis reports progress naming model, method and tokens, shows the cheap parts first, and a
cancel keeps what finished."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import spec

from tests.test_shift_core import BASE, INSTRUCT, layout, tiny_backend  # noqa: F401 (shared fixtures)
from tests.numerics import assert_same_completeness, assert_same_numbers
from workbench.shift.limits import METHODS as ALL_METHODS

pytestmark = pytest.mark.numerical


@pytest.fixture()
def tiny_backend64(tiny_backend):
    """The tiny model in float64. The batched and per-token paths are the same arithmetic in another order; in
    float32 their agreement depended on the CPU's kernels (a completeness error is a small difference of
    probabilities, and its float32 rounding differed by 0.15% between two Xeons), so the equivalence is checked in
    float64, where it holds on any CPU."""
    tiny_backend.model.double()
    try:
        yield tiny_backend
    finally:
        tiny_backend.model.float()  # float32 -> float64 -> float32 is exact


@pytest.mark.parametrize("n_out, chunk, ig_batch, ablation_batch", [(1, 8, 16, 8), (5, 2, 5, 3), (7, 16, 3, 1)])
def test_teacher_forced_matches_per_token(tiny_backend64, layout, n_out, chunk, ig_batch, ablation_batch):
    from workbench.shift.attribution import attribute, attribute_per_token, hook_counts
    from workbench.shift.limits import ShiftSettings

    out = [5, 17, 42, 7, 99, 3, 250][:n_out]
    settings = ShiftSettings(methods=ALL_METHODS, ig_steps=16, ig_internal_batch=ig_batch, target_chunk=chunk, ablation_batch=ablation_batch)
    old = attribute_per_token(tiny_backend64, layout.input_ids, out, layout.special_mask, settings)
    new = attribute(tiny_backend64, layout.input_ids, out, layout.special_mask, settings)
    for method, ref in old.items():
        got = new[method]
        assert got.scores.shape == ref.scores.shape == (n_out, layout.n_tokens)
        assert np.abs(ref.scores).max() > 0, method  # a real comparison, not of two zero matrices
        assert_same_numbers(got.scores, ref.scores, f"{method} scores")
        assert_same_numbers(got.target_prob, ref.target_prob, f"{method} target probabilities")
    ig_new, ig_old = new["integrated_gradients"], old["integrated_gradients"]
    assert np.abs(ig_old.completeness_abs).max() > 0
    assert_same_completeness(ig_new, ig_old)
    assert hook_counts(tiny_backend64.model) == 0
    assert all(p.grad is None for p in tiny_backend64.model.parameters())


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_teacher_forced_ig_baselines_match_captum_per_token(tiny_backend64, layout, kind):
    """The zero and mean embedding baselines: the teacher-forced path matches captum's IntegratedGradients on
    `inputs_embeds`, token by token; special tokens keep their embedding (score 0); the note names the baseline."""
    import torch

    from workbench.shift.attribution import attribute, attribute_per_token, ig_baseline_embeddings

    from workbench.shift.limits import ShiftSettings

    out = [5, 17, 42, 7]
    settings = ShiftSettings(ig_steps=16, ig_internal_batch=6, target_chunk=3, ig_baseline=kind,
                             methods=("integrated_gradients",))
    old = attribute_per_token(tiny_backend64, layout.input_ids, out, layout.special_mask, settings)["integrated_gradients"]
    new = attribute(tiny_backend64, layout.input_ids, out, layout.special_mask, settings)["integrated_gradients"]
    assert_same_numbers(new.scores, old.scores, "IG scores")
    assert_same_completeness(new, old)
    assert np.all(new.scores[:, np.asarray(layout.special_mask)] == 0)
    assert np.abs(new.scores).max() > 0
    assert kind in new.notes[0] and kind in old.notes[0]
    layer = tiny_backend64.input_embeddings()
    ids = torch.tensor([layout.input_ids])
    with torch.no_grad():
        x = layer(ids)
    xb = ig_baseline_embeddings(layer, x, ids, layout.special_mask, kind)
    moved = ~np.asarray(layout.special_mask)
    assert torch.equal(xb[0, ~torch.tensor(moved)], x[0, ~torch.tensor(moved)])
    expect = torch.zeros(x.shape[-1], dtype=x.dtype) if kind == "zero" else layer.weight.mean(0)
    # float64 throughout: the vocabulary mean summed in another order differs by float64 rounding only
    torch.testing.assert_close(xb[0, torch.tensor(moved)], expect.expand(int(moved.sum()), -1), rtol=1e-12, atol=1e-14)


def test_ig_baseline_setting_is_checked():
    from workbench.shift.limits import ShiftSettings

    with pytest.raises(ValueError, match="ig_baseline must be one of pad, zero, mean"):
        ShiftSettings(ig_baseline="noise").check()


def test_special_tokens_score_zero_and_without_batched_backward(tiny_backend64, layout, monkeypatch):
    """Special tokens keep their id in the baseline, so ablation and IG give them exactly 0; where the batched
    backward is unavailable the loop fallback gives the same numbers and says so in the notes."""
    import torch

    from workbench.shift import attribution
    from workbench.shift.limits import ShiftSettings

    special = [True] + [False] * (layout.n_tokens - 1)
    settings = ShiftSettings(methods=ALL_METHODS, ig_steps=8, target_chunk=4, backward="vmap")
    res = attribution.attribute(tiny_backend64, layout.input_ids, [5, 6, 7], special, settings)
    assert np.all(res["feature_ablation"].scores[:, 0] == 0)
    assert np.all(res["integrated_gradients"].scores[:, 0] == 0)
    real_grad = torch.autograd.grad

    def no_vmap(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("Batching rule not implemented for this operator")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_vmap)
    looped = attribution.attribute(tiny_backend64, layout.input_ids, [5, 6, 7], special, settings,
                                   ["gradient_x_input", "integrated_gradients"])
    for method in looped:
        assert_same_numbers(looped[method].scores, res[method].scores, method)
        assert any("one target at a time" in n for n in looped[method].notes)
    monkeypatch.setattr(torch.autograd, "grad", real_grad)
    # the loop by choice (the CPU default): the same numbers, no fallback note
    chosen = attribution.attribute(tiny_backend64, layout.input_ids, [5, 6, 7], special,
                                   ShiftSettings(methods=ALL_METHODS, ig_steps=8, target_chunk=4, backward="loop"),
                                   ["gradient_x_input", "integrated_gradients"])
    for method in chosen:
        assert_same_numbers(chosen[method].scores, res[method].scores, method)
        assert not any("one target at a time" in n for n in chosen[method].notes)
    assert attribution.use_vmap("auto", "cpu") is False and attribution.use_vmap("auto", "cuda:0") is True
    with pytest.raises(ValueError, match="backward must be one of auto, vmap, loop"):
        ShiftSettings(backward="fast").check()


def test_attribute_progress_and_cancel_keep_finished_methods(tiny_backend, layout):
    from workbench.jobs import Cancelled, Job
    from workbench.shift.attribution import attribute, hook_counts
    from workbench.shift.limits import ShiftSettings

    job = Job("t")
    seen = []

    def step(method, done, total, item):
        seen.append((method, done, total, item))
        if method == "integrated_gradients" and done == 2:
            job.cancel()
        job.update(method, done, total, item)

    settings = ShiftSettings(methods=ALL_METHODS, ig_steps=8, ig_internal_batch=4, target_chunk=2)
    with pytest.raises(Cancelled) as info:
        attribute(tiny_backend, layout.input_ids, [5, 6, 7], layout.special_mask, settings, on_step=step,
                  token_names=["a", "b", "c"])
    assert list(info.value.partial) == ["gradient_x_input"]  # finished before the cancel; IG was cut
    assert seen[0] == ("gradient_x_input", 1, 2, "output tokens 1–2 of 3 ('a' … 'b')")
    assert ("integrated_gradients", 1, 4, "integration steps 1–4 of 8 · output tokens 1–2 of 3 ('a' … 'b')") in seen
    assert hook_counts(tiny_backend.model) == 0 and all(p.grad is None for p in tiny_backend.model.parameters())


def test_analysis_reports_cheap_parts_first_and_cancel_keeps_them(manager):
    from workbench.jobs import Cancelled, Job
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.limits import ShiftSettings

    base, instruct = spec("lm_base", "transformers-lm", BASE), spec("lm_instruct", "transformers-lm", INSTRUCT)
    partials = []
    job = Job("shift")

    def listen(update):
        if job.partial is not None and (not partials or partials[-1][0] is not update):
            partials.append((update, len(job.partial.sides), sum(len(s.attributions) for s in job.partial.sides.values())))
        if update.stage.startswith("attribution · feature ablation") and update.stage.endswith("instruct"):
            job.cancel()

    job.listen(listen)
    settings = ShiftSettings(methods=ALL_METHODS, max_new_tokens=3, ig_steps=4)
    with pytest.raises(Cancelled) as info:
        analyse_pair(manager, base, instruct, "write a short poem", settings=settings, job=job)
    result = info.value.partial
    assert not result.complete and result.stopped.startswith("attribution · feature ablation")
    assert result.stopped.endswith("instruct")
    # the cheap views of both sides were reported before any attribution
    first_attr = next(i for i, u in enumerate(job.history) if u.stage.startswith("attribution"))
    assert any(p[1] == 2 and p[2] == 0 for p in partials), partials
    assert all(u.stage.startswith(("loading", "answer")) for u in job.history[:first_attr])
    a, b = result.sides["base"], result.sides["instruct"]
    assert a.attention is not None and b.attention is not None and a.ffn is not None and b.ffn is not None
    # method by method, both sides each: ablation finished for base, not for instruct
    assert set(a.attributions) == {"gradient_x_input", "integrated_gradients", "feature_ablation"}
    assert set(b.attributions) == {"gradient_x_input", "integrated_gradients"}
    assert result.methods_done == ["gradient_x_input", "integrated_gradients"]
    # progress names the model, the method and the tokens
    items = [u.describe() for u in job.history]
    assert any("integrated gradients" in t and "tiny:causal-lm?seed=0" in t and "output token" in t for t in items)
    assert any("feature ablation" in t and "prompt token" in t for t in items)
    # the summary of a partial result names only what finished, and a full run afterwards works
    from workbench.shift import figures

    assert "gradient" in figures.summary_markdown(result)
    full = analyse_pair(manager, base, instruct, "write a short poem", settings=settings)
    assert full.complete and full.methods_done == list(settings.methods)
    np.testing.assert_allclose(full.sides["base"].attributions["integrated_gradients"].scores,
                               a.attributions["integrated_gradients"].scores, rtol=1e-6)
