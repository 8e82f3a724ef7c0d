"""Per-metric scores for rendered candidates, never collapsed silently: CLIP alignment with the ORIGINAL
prompt (intent) and with the refined prompt, kept apart (VBench #89); the LAION linear aesthetic head where
the profile has one; text intent preservation; image diversity. A user-weighted total sits beside them.
Every score carries the model ids, settings and package versions that produced it; random-weight models
are labelled."""

from __future__ import annotations

from typing import Any, Sequence

from workbench.common import scores as shared
from workbench.common.scores import (  # noqa: F401  (the tab's names for the shared score types)
    RANDOM_NOTE, ImageScores, Score, as_numpy, format_value, score_markdown, score_rows,
)
from workbench.common.reward_models import (  # noqa: F401  (REWARD_ROLES: the tab's name for it)
    REWARD_METRICS, REWARD_ROLES, REWARD_SCALE, checkpoint_info,
)
from workbench.types import Provenance

METRICS: dict[str, str] = {
    "align_original": "image-text alignment with the ORIGINAL prompt (CLIP cosine)",
    "align_refined": "image-text alignment with the refined prompt (CLIP cosine)",
    "aesthetic": "LAION linear aesthetic head on the CLIP image embedding (~1-10)",
    "intent": "intent preservation: embedding cosine of refined vs original prompt",
    "image_diversity": "mean CLIP-image cosine distance to the other images of this round",
    **REWARD_METRICS,
}


DEFAULT_WEIGHTS = {"align_original": 1.0, "align_refined": 0.5, "aesthetic": 0.5, "intent": 1.0,
                   "image_diversity": 0.25, "pickscore": 0.5, "image_reward": 0.5, "hps": 0.5}
# The total (and the chart) scale each metric onto a comparable 0-1-ish range: the aesthetic (~1-10) by 1/10,
# PickScore (~15-25) by 1/20, ImageReward (~-2..2) by 1/4.
_SCALE = {"aesthetic": 0.1, **REWARD_SCALE}


def scale_note(metric: str) -> str:
    """How a metric is scaled in the total and the chart ("" when it is not), e.g. " /10"."""
    return shared.scale_text(_SCALE.get(metric))


def scale_factor(metric: str) -> float:
    return _SCALE.get(metric, 1.0)


def metrics_present(items: Sequence["ImageScores"]) -> list[str]:
    """The metrics these scores hold, in METRICS order: what the panel, table and chart show for a profile."""
    return [m for m in METRICS if any(m in item.scores for item in items)]


def _prov(backend: Any, metric: str, **settings: Any) -> Provenance:
    return Provenance.of(backend, settings={"metric": metric, "definition": METRICS[metric], **settings})


def check_weights(weights: dict[str, float] | None, metrics: dict[str, str] | None = None,
                  defaults: dict[str, float] | None = None) -> dict[str, float]:
    """Weights checked against this tab's metric table (or another table given)."""
    return shared.check_weights(weights, METRICS if metrics is None else metrics,
                                DEFAULT_WEIGHTS if defaults is None else defaults)


def weighted_total(scores: dict[str, Score], weights: dict[str, float] | None = None) -> Score:
    """Sum of weight x value over the available image metrics, divided by the sum of their weights (aesthetic /
    10); shown beside the metrics, never instead of them."""
    return shared.weighted_total(scores, weights, METRICS, DEFAULT_WEIGHTS, _SCALE, source="workbench.t2i.scoring")


def score_images(scorer: Any, embedder: Any, original: str, prompts: Sequence[str], images: Sequence[Any],
                 image_provenance: Sequence[Provenance | None] | None = None,
                 weights: dict[str, float] | None = None,
                 rewards: dict[str, Any] | None = None) -> list[ImageScores]:
    """Scores for each image i rendered from prompts[i]. `original` is the user's own prompt (the root of the
    session), so intent is always measured against what the user asked for. `rewards` maps a metric of
    REWARD_ROLES to the profile's reward model (an image_text backend whose similarity is its score), each scored
    with the original prompt; metrics the profile has no model for are left out, not shown as zero."""
    import numpy as np

    if len(prompts) != len(images):
        raise ValueError(f"need one prompt per image, got {len(prompts)} prompts and {len(images)} images")
    weights = check_weights(weights)
    n = len(images)
    if n == 0:
        return []
    image_provenance = list(image_provenance or [None] * n)
    limit = scorer.text_token_limit()
    align_orig = np.asarray(scorer.image_text_similarity(list(images), [original] * n), dtype=float)
    align_ref = np.asarray(scorer.image_text_similarity(list(images), list(prompts)), dtype=float)
    aesthetic = scorer.aesthetic(list(images))  # None when the profile configures no aesthetic head
    emb = embedder.embed([original, *prompts]).vectors
    intent = np.asarray(emb[1:]) @ np.asarray(emb[0])
    img_emb = scorer.image_embeddings(list(images))
    img_emb = as_numpy(img_emb)
    img_emb = img_emb / np.maximum(np.linalg.norm(img_emb, axis=1, keepdims=True), 1e-12)
    dist = 1.0 - img_emb @ img_emb.T
    rewards = dict(rewards or {})
    unknown = set(rewards) - set(REWARD_ROLES)
    if unknown:
        raise ValueError(f"rewards must be among {', '.join(REWARD_ROLES)}, got {sorted(unknown)}")
    reward_values = {m: as_numpy(r.image_text_similarity(list(images), [original] * n)).reshape(-1)
                     for m, r in rewards.items()}
    out = []
    for i in range(n):
        src = image_provenance[i]
        image_info = {"image_model": src.model_id, "image_seed": src.seed,
                      "image_random_weights": src.random_weights} if src else {}
        clip_settings = {"text_truncated_at_tokens": limit, "prefix": "none (no 'A photo depicts')", **image_info}
        scores = {
            "align_original": Score("align_original", float(align_orig[i]),
                                    _prov(scorer, "align_original", text="original", **clip_settings)),
            "align_refined": Score("align_refined", float(align_ref[i]),
                                   _prov(scorer, "align_refined", text="refined", **clip_settings)),
            "aesthetic": (Score("aesthetic", float(aesthetic[i]), _prov(scorer, "aesthetic", **image_info),
                                note="uncalibrated linear head")
                          if aesthetic is not None else
                          Score("aesthetic", None, None, note="this profile's CLIP scorer has no aesthetic head")),
            "intent": Score("intent", float(intent[i]), _prov(embedder, "intent", pooling="sentence embedding")),
            "image_diversity": (Score("image_diversity", float(np.delete(dist[i], i).mean()),
                                      _prov(scorer, "image_diversity", images_in_round=n, **image_info))
                                if n > 1 else Score("image_diversity", None, None, note="needs two or more images")),
        }
        for metric, values in reward_values.items():
            reward = rewards[metric]
            scores[metric] = Score(metric, float(values[i]),
                                   _prov(reward, metric, text="original", **_checkpoint(reward), **image_info))
        for s in scores.values():
            if s.random_weights and RANDOM_NOTE not in s.note:
                s.note = (s.note + "; " if s.note else "") + RANDOM_NOTE
        item = ImageScores(prompt=prompts[i], scores=scores)
        item.total = weighted_total(scores, weights)
        out.append(item)
    return out


_checkpoint = checkpoint_info


def round_image_diversity(scorer: Any, images: Sequence[Any]) -> float | None:
    """Mean pairwise CLIP-image cosine distance over a round's images (None for fewer than two)."""
    from workbench.common.diversity import pairwise_diversity

    if len(images) < 2:
        return None
    emb = scorer.image_embeddings(list(images))
    emb = as_numpy(emb)
    return pairwise_diversity(emb).mean


def score_table(items: Sequence[ImageScores]) -> list[list[Any]]:
    """Rows for a table: one per image, one column per metric, the total last."""
    rows = []
    shown = metrics_present(items)
    for i, item in enumerate(items):
        rows.append([i, *[item.scores[m].label() if m in item.scores else "" for m in shown],
                     item.total.label() if item.total else ""])
    return rows


