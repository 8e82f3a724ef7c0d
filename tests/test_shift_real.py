"""The offline behaviour-shift pair for real: Gemma-3-270M base with the shipped instruction LoRA adapter
switched off and on (one loaded model), on a short prompt with few tokens and steps; and process memory that
stays flat over repeated attributions on it."""

import ctypes
import ctypes.util
import gc

import numpy as np
import pytest
from tests.numerics import assert_same_completeness
from workbench.shift.limits import METHODS

pytestmark = [pytest.mark.real_models, pytest.mark.slow]


def test_offline_gemma_adapter_pair_short_prompt(real_manager, offline_profile):
    from workbench.shift import figures
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.attribution import hook_counts
    from workbench.shift.limits import ShiftSettings

    base, instruct = offline_profile.spec("lm_base"), offline_profile.spec("lm_instruct")
    assert instruct.model_id == base.model_id and instruct.option("adapter")
    backend = real_manager.get(instruct)
    hooks_before = hook_counts(backend.model)  # transformers registers some of its own at load
    loads_before = dict(real_manager.load_count)
    result = analyse_pair(real_manager, base, instruct, "List three fruits.",
                          settings=ShiftSettings(methods=METHODS, max_new_tokens=6, ig_steps=8))
    assert result.pair_kind == "adapter" and not result.random_weights
    lay = result.layout
    assert lay.text == "### Instruction:\nList three fruits.\n\n### Response:\n"  # the plain template
    assert "".join(lay.instruction_tokens()).strip() == "List three fruits."
    assert lay.special_mask[0] and lay.tokens[0] == "<bos>"
    a, b = result.sides["base"], result.sides["instruct"]
    assert len(a.output_ids) == len(b.output_ids) == 6
    for method in ("gradient_x_input", "integrated_gradients", "feature_ablation"):
        sa, sb = a.attributions[method].scores, b.attributions[method].scores
        assert sa.shape == sb.shape == (6, lay.n_tokens) and np.isfinite(sa).all()
        assert not np.allclose(sa, sb)
    ig = b.attributions["integrated_gradients"]
    assert np.isfinite(ig.completeness_rel).all()
    assert a.attention.shape == b.attention.shape == (18, 4)
    assert not np.allclose(a.attention.instruction_share, b.attention.instruction_share)
    # the shipped adapter trains the feed-forward projections too: their concepts differ between base and instruct
    overlap = result.ffn_overlap()
    assert len(overlap) == 18 and min(overlap) < 0.95 and sum(x < 1.0 for x in overlap) >= 4, overlap
    assert hook_counts(backend.model) == hooks_before and all(p.grad is None for p in backend.model.parameters())
    assert "completeness" in figures.summary_markdown(result)
    # The adapter pair is one loaded model: the analysis loaded nothing (whatever other tests loaded before).
    assert real_manager.load_count == loads_before and real_manager.is_loaded(instruct)
    # and the base role is that same copy, with the adapter off (one Gemma in memory)
    assert real_manager.is_loaded(base)
    # one copy of the LM (the safety role's classifier keeps its own six-layer copy of Gemma: another backend)
    assert [s.model_id for s, _ in real_manager.loaded_bases() if s.backend == "transformers-lm"].count(
        base.model_id) == 1


def _rss_after_collect() -> int:
    """Resident set size after Python's gc and glibc's malloc_trim (which hands freed heap pages back to the OS,
    so that memory torch has freed no longer counts as resident)."""
    import psutil

    gc.collect()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    return psutil.Process().memory_info().rss


def test_rss_stays_flat_over_repeated_attributions_on_real_gemma(real_manager, offline_profile):
    """Hooks and autograd graphs live inside context managers (STYLE.md habit 8), so repeated attributions leave
    nothing behind. The bound: one full-vocabulary logits tensor for this prompt (262k vocabulary x ~16
    positions x 4 bytes, about 16 MiB). Over 4 runs, anything a run keeps that holds its logits, a graph over
    them, a hook's captured activations of that size, or a copy of any weight matrix of the model, adds up to
    at least that. Measured here: under 1 MiB of growth over 4 runs after gc + malloc_trim."""
    from workbench.shift.analysis import greedy_answer
    from workbench.shift.attribution import attribute, hook_counts
    from workbench.shift.limits import ShiftSettings
    from workbench.shift.spans import build_layout

    backend = real_manager.get(offline_profile.spec("lm_instruct"))
    layout = build_layout(backend.tokenizer, "List three fruits.")
    output_ids = greedy_answer(backend, layout.input_ids, 2)
    settings = ShiftSettings(methods=METHODS, max_new_tokens=2, ig_steps=2)
    hooks = hook_counts(backend.model)

    def run():
        out = attribute(backend, layout.input_ids, output_ids, layout.special_mask, settings,
                        methods=("gradient_x_input", "integrated_gradients"))
        assert np.isfinite(out["gradient_x_input"].scores).all()

    run()  # warm-up: captum imports, allocator pools, lazily built buffers
    before = _rss_after_collect()
    for _ in range(4):
        run()
    grown = _rss_after_collect() - before
    vocab = backend.model.get_output_embeddings().weight.shape[0]
    bound = vocab * (layout.n_tokens + len(output_ids)) * 4
    assert bound > 8 * 2**20  # the bound is a real amount for this model, not a rounding error
    assert grown < bound, f"RSS grew {grown / 2**20:.1f} MiB over 4 attributions (bound {bound / 2**20:.1f} MiB)"
    assert hook_counts(backend.model) == hooks and all(p.grad is None for p in backend.model.parameters())


@pytest.mark.numerical
def test_teacher_forced_attribution_matches_per_token_on_gemma(real_manager, offline_profile):
    """The batched teacher-forced path gives the per-token reference's numbers on the real pair (adapter on).

    In float64 the two agree to 1e-6 for every method. In float32 gradient x input and feature ablation agree to
    1e-4, but integrated gradients near Gemma's pad baseline amplify float32 rounding to ~0.3% in either path (the
    float64 run shows which is nearer: the teacher-forced one), so float32 IG is held to 1%."""
    from workbench.shift.analysis import greedy_answer
    from workbench.shift.attribution import attribute, attribute_per_token, hook_counts
    from workbench.shift.limits import ShiftSettings
    from workbench.shift.spans import build_layout

    instruct = offline_profile.spec("lm_instruct")
    backend = real_manager.get(instruct)
    hooks_before = hook_counts(backend.model)
    layout = build_layout(backend.tokenizer, "Name a fruit.")
    settings = ShiftSettings(methods=METHODS, max_new_tokens=2, ig_steps=4, ig_internal_batch=4, target_chunk=2, ablation_batch=4)

    def both():
        old = attribute_per_token(backend, layout.input_ids, out, layout.special_mask, settings)
        new = attribute(backend, layout.input_ids, out, layout.special_mask, settings)
        return old, new

    def worst(old, new, method):
        return np.abs(new[method].scores - old[method].scores).max() / np.abs(old[method].scores).max()

    with backend.adapter_enabled(True):
        out = greedy_answer(backend, layout.input_ids, 2)
        old, new = both()
        assert worst(old, new, "gradient_x_input") < 1e-4 and worst(old, new, "feature_ablation") < 1e-4
        assert worst(old, new, "integrated_gradients") < 1e-2
        for method in old:
            assert np.allclose(new[method].target_prob, old[method].target_prob, rtol=1e-4)
        backend.model.double()  # float32 -> float64 -> float32 is exact, so the shared model comes back unchanged
        try:
            old, new = both()
        finally:
            backend.model.float()
        for method in old:
            assert worst(old, new, method) < 1e-6, method
        assert_same_completeness(new["integrated_gradients"], old["integrated_gradients"])
    assert hook_counts(backend.model) == hooks_before and all(p.grad is None for p in backend.model.parameters())
    assert next(backend.model.parameters()).dtype.is_floating_point and str(next(backend.model.parameters()).dtype) == "torch.float32"
