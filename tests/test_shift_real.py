"""The offline behaviour-shift pair for real: Gemma-3-270M base with the shipped instruction LoRA adapter
switched off and on (one loaded model), on a short prompt with few tokens and steps."""

import numpy as np
import pytest

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
    result = analyse_pair(real_manager, base, instruct, "List three fruits.",
                          settings=ShiftSettings(max_new_tokens=6, ig_steps=8))
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
    assert result.ffn_overlap() == [1.0] * 18  # the adapter is on q/k/v/o only
    assert hook_counts(backend.model) == hooks_before and all(p.grad is None for p in backend.model.parameters())
    assert "completeness" in figures.summary_markdown(result)
    assert not real_manager.is_loaded(base) or real_manager.load_count.get(instruct.key) == 1
