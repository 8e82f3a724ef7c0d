"""Scores with provenance (model ids, settings, versions), original vs refined alignment kept apart, random
weights labelled, the weighted total beside the metrics, and the 77-token flag on the tiny SD pipeline."""

from __future__ import annotations

import pytest

from backends.base import ImageSettings
from workbench.models import ManagedModel
from workbench.t2i.scoring import RANDOM_NOTE, Score, check_weights, weighted_total
from workbench.t2i.service import render_and_score, token_flags

SMALL = ImageSettings(steps=2, width=32, height=32, seed=5)


@pytest.fixture()
def tiny(manager, make_spec):
    return dict(
        t2i=ManagedModel(manager, make_spec("t2i", "diffusers-t2i", "tiny:sd")),
        scorer=ManagedModel(manager, make_spec("image_text", "clip-scorer", "tiny:clip")),
        embedder=ManagedModel(manager, make_spec("embeddings", "sentence-embeddings", "tiny:text-embedder")),
    )


def test_scores_keep_original_and_refined_alignment_apart_with_provenance(tiny):
    original = "a cat on a sofa"
    cands = ["a cat on a sofa, oil painting, soft light", "a dog running on the beach, golden hour"]
    out = render_and_score(tiny["t2i"], tiny["scorer"], tiny["embedder"], original, cands, SMALL)
    assert len(out.images) == 2 and len(out.scores) == 2
    # The original and every candidate come from the same seed.
    assert {r.provenance.seed for r in [out.original, *out.images]} == {5}
    for item, cand in zip(out.scores, cands):
        s = item.scores
        assert set(s) == {"align_original", "align_refined", "aesthetic", "intent", "image_diversity"}
        assert s["align_original"].provenance.settings["text"] == "original"
        assert s["align_refined"].provenance.settings["text"] == "refined"
        assert s["align_original"].value != pytest.approx(s["align_refined"].value)
        for score in s.values():
            prov = score.provenance
            assert prov.model_id in ("tiny:clip", "tiny:text-embedder")
            assert prov.versions["torch"] and prov.versions["transformers"] and prov.versions["pillow"]
            assert prov.settings["metric"] == score.metric and prov.settings["definition"]
            assert score.random_weights and RANDOM_NOTE in score.note
        assert s["align_original"].provenance.settings["image_model"] == "tiny:sd"
        assert s["align_original"].provenance.settings["image_seed"] == 5
        assert s["intent"].provenance.model_id == "tiny:text-embedder"
        assert item.total is not None and "user-weighted" in item.total.note
        assert item.total.provenance.random_weights
    # The original's own image: its refined alignment is its original alignment; diversity needs 2+ images.
    own = out.original_scores.scores
    assert own["align_original"].value == pytest.approx(own["align_refined"].value)
    assert own["image_diversity"].value is None and "two or more" in own["image_diversity"].note
    assert out.round_diversity is not None and out.round_diversity >= 0
    assert any(RANDOM_NOTE in w for w in out.warnings)
    as_dict = out.scores[0].to_dict()
    assert as_dict["scores"]["aesthetic"]["provenance"]["versions"]["diffusers"]


def test_token_limit_flag_on_tiny_sd_shows_the_tail(tiny):
    long_prompt = ", ".join(["a cat on a sofa with soft light and detailed fur"] * 9)  # ~100 CLIP tokens
    short, long = token_flags(tiny["t2i"].prompt_window(), ["a cat on a sofa", long_prompt])
    assert short.limit == 77 and not short.truncated
    assert long.truncated and long.tail and long_prompt.endswith(long.tail)
    assert long.kept + " " + long.tail == long_prompt
    assert "77-token limit" in long.message() and long.tail in long.message()
    out = render_and_score(tiny["t2i"], tiny["scorer"], tiny["embedder"], "a cat", [long_prompt], SMALL)
    assert out.flags[0].tail == long.tail


def test_weighted_total_is_beside_and_skips_missing_metrics():
    scores = {"align_original": Score("align_original", 0.3, None), "aesthetic": Score("aesthetic", None, None),
              "intent": Score("intent", 0.9, None)}
    total = weighted_total(scores, {"align_original": 1.0, "aesthetic": 5.0, "intent": 1.0})
    assert total.value == pytest.approx(0.6)
    assert "aesthetic" not in total.note
    with pytest.raises(ValueError, match="weight for intent must be between 0 and 10"):
        check_weights({"intent": 11})
    with pytest.raises(ValueError, match="at least one metric weight"):
        check_weights({"intent": 0.0})
    with pytest.raises(ValueError, match="unknown metric"):
        check_weights({"musiq": 1.0})
