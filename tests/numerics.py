"""Numerical comparisons for the equivalence tests, with tolerances derived from the compared quantity's scale and
the arithmetic's precision (issue 26: a float32 tolerance that held on one CPU failed on another)."""

from __future__ import annotations

import numpy as np

FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 1.19e-7


def assert_same_numbers(got, ref, what, scale=None, rel=1e-6):
    """Equal to `rel` of the matrix's largest entry (or of `scale`). For two float64 computations the default 1e-6 is
    not float64's 1e-16: transformers computes rotary cos/sin in float32 even in a float64 model
    (LlamaRotaryEmbedding.forward, Gemma likewise), and a vectorised float32 cos can differ by one ulp (1.2e-7) with
    the sequence length each path runs; measured on the tiny model: 6.6e-8 of the largest entry. A wrong attribution
    differs at order 1, and a 1e-4 error in the IG weights already fails."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    scale = float(np.abs(ref).max()) if scale is None else float(scale)
    np.testing.assert_allclose(got, ref, rtol=rel, atol=rel * scale, err_msg=what)


def completeness_scale(ig) -> float:
    """The size of the terms a completeness error is the difference of: the scores' row sums and the target
    probability (which bounds the probability change from the baseline, both being probabilities)."""
    return float(max(np.abs(ig.scores.sum(-1)).max(), np.abs(ig.target_prob).max()))


def assert_same_completeness(new, ref, rel=1e-6):
    """IG completeness errors agree. The absolute error is a difference of two nearly cancelling terms, so its
    rounding follows the terms' scale, not its own size; the relative error divides it by the probability change, so
    its allowance grows by the same factor."""
    scale = completeness_scale(ref)
    assert_same_numbers(new.completeness_abs, ref.completeness_abs, "IG completeness (absolute)", scale=scale, rel=rel)
    change = np.abs(ref.completeness_abs) / np.maximum(np.abs(ref.completeness_rel), 1e-300)
    allowed = rel * scale / np.maximum(change, 1e-300) + rel * np.abs(ref.completeness_rel)
    gap = np.abs(np.asarray(new.completeness_rel) - np.asarray(ref.completeness_rel))
    assert np.all(gap <= allowed), f"IG completeness (relative): gap {gap} > allowed {allowed}"
