"""Per-metric scores for rendered candidates, never collapsed silently: CLIP alignment with the ORIGINAL
prompt (intent) and with the refined prompt, kept apart (VBench #89); the LAION linear aesthetic head where
the profile has one; text intent preservation; image diversity. A user-weighted total sits beside them.
Every score carries the model ids, settings and package versions that produced it; random-weight models
are labelled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from backends.provenance import Provenance

RANDOM_NOTE = "random weights: outputs are not meaningful"

METRICS: dict[str, str] = {
    "align_original": "image-text alignment with the ORIGINAL prompt (CLIP cosine)",
    "align_refined": "image-text alignment with the refined prompt (CLIP cosine)",
    "aesthetic": "LAION linear aesthetic head on the CLIP image embedding (~1-10)",
    "intent": "intent preservation: embedding cosine of refined vs original prompt",
    "image_diversity": "mean CLIP-image cosine distance to the other images of this round",
    "pickscore": "PickScore with the ORIGINAL prompt: logit scale x CLIP-H cosine (~15-25; compare within a prompt)",
    "image_reward": "ImageReward with the ORIGINAL prompt: BLIP + MLP preference, z-scored (~-2 to 2)",
    "hps": "HPSv2.1 with the ORIGINAL prompt: cosine of its CLIP-H embeddings (~0.2-0.35)",
}

# The reward models a profile may name, by metric: the profile role that holds each (assets/profiles.yaml).
REWARD_ROLES = {"pickscore": "pickscore", "image_reward": "image_reward", "hps": "hpsv2"}

DEFAULT_WEIGHTS = {"align_original": 1.0, "align_refined": 0.5, "aesthetic": 0.5, "intent": 1.0,
                   "image_diversity": 0.25, "pickscore": 0.5, "image_reward": 0.5, "hps": 0.5}
# The total (and the chart) scale each metric onto a comparable 0-1-ish range: the aesthetic (~1-10) by 1/10,
# PickScore (~15-25) by 1/20, ImageReward (~-2..2) by 1/4.
_SCALE = {"aesthetic": 0.1, "pickscore": 0.05, "image_reward": 0.25}


def scale_note(metric: str) -> str:
    """How a metric is scaled in the total and the chart ("" when it is not), e.g. " /10"."""
    return _scale_note(_SCALE.get(metric))


def scale_factor(metric: str) -> float:
    return _SCALE.get(metric, 1.0)


def metrics_present(items: Sequence["ImageScores"]) -> list[str]:
    """The metrics these scores hold, in METRICS order: what the panel, table and chart show for a profile."""
    return [m for m in METRICS if any(m in item.scores for item in items)]


@dataclass
class Score:
    metric: str
    value: float | None  # None: not available (e.g. no aesthetic head in this profile)
    provenance: Provenance | None
    note: str = ""

    @property
    def random_weights(self) -> bool:
        return bool(self.provenance and self.provenance.random_weights)

    def label(self) -> str:
        if self.value is None:
            return f"n/a ({self.note})" if self.note else "n/a"
        text = f"{self.value:.3f}"
        if self.random_weights:
            text += f" ({RANDOM_NOTE})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "note": self.note, "random_weights": self.random_weights,
                "provenance": self.provenance.to_dict() if self.provenance else None}


@dataclass
class ImageScores:
    prompt: str  # the prompt the image was rendered from
    scores: dict[str, Score] = field(default_factory=dict)
    total: Score | None = None

    def values(self) -> dict[str, float | None]:
        return {k: s.value for k, s in self.scores.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "scores": {k: s.to_dict() for k, s in self.scores.items()},
                "total": self.total.to_dict() if self.total else None}


def as_numpy(values: Any) -> Any:
    """Embeddings as float numpy, whether a backend returned a torch tensor or a numpy array."""
    import numpy as np

    if type(values).__module__.startswith("torch"):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def _prov(backend: Any, metric: str, **settings: Any) -> Provenance:
    return Provenance.of(backend, settings={"metric": metric, "definition": METRICS[metric], **settings})


def check_weights(weights: dict[str, float] | None, metrics: dict[str, str] | None = None,
                  defaults: dict[str, float] | None = None) -> dict[str, float]:
    """Weights checked against a metric table (this module's, or another tab's such as the T2V rewards)."""
    metrics = METRICS if metrics is None else metrics
    weights = dict((DEFAULT_WEIGHTS if defaults is None else defaults) if weights is None else weights)
    unknown = set(weights) - set(metrics)
    if unknown:
        raise ValueError(f"unknown metric weight(s) {sorted(unknown)}; metrics: {', '.join(metrics)}")
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 10.0:
            raise ValueError(f"weight for {name} must be between 0 and 10, got {value!r}")
    if not any(float(v) > 0 for v in weights.values()):
        raise ValueError("at least one metric weight must be above 0")
    return {k: float(v) for k, v in weights.items()}


def _scale_note(factor: float | None) -> str:
    if factor is None:
        return ""
    return f" /{1 / factor:g}" if 1 / factor == round(1 / factor) else f" x{factor:g}"


def weighted_total(scores: dict[str, Score], weights: dict[str, float] | None = None,
                   metrics: dict[str, str] | None = None, defaults: dict[str, float] | None = None,
                   scale: dict[str, float] | None = None, source: str = "workbench.t2i.scoring") -> Score:
    """Sum of weight x value over the available metrics, divided by the sum of their weights (aesthetic / 10).
    Shown beside the metrics, never instead of them; the note says which metrics went in. Another tab passes
    its own metric table, default weights and scales (the T2V rewards do)."""
    weights = check_weights(weights, metrics, defaults)
    scale = _SCALE if scale is None else scale
    used = {m: w for m, w in weights.items() if w > 0 and m in scores and scores[m].value is not None}
    if not used:
        return Score("total", None, None, note="no weighted metric is available")
    value = sum(w * scores[m].value * scale.get(m, 1.0) for m, w in used.items()) / sum(used.values())
    parts = ", ".join(f"{w:g}x{m}" + _scale_note(scale.get(m)) for m, w in used.items())
    random = any(scores[m].random_weights for m in used)
    prov = Provenance(model_id="weighted-total", backend=source, random_weights=random,
                      settings={"weights": weights, "used": list(used), "formula": "sum(w*v)/sum(w)"})
    return Score("total", float(value), prov, note=f"user-weighted: {parts}")


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


def _checkpoint(model: Any) -> dict[str, Any]:
    """What a reward score records besides the model id: the checkpoint file and processor the profile names
    (the backend's defaults when it names none)."""
    spec = model.spec
    info = {k: v for k, v in spec.options if k in ("checkpoint", "version", "processor", "med_config", "tokenizer")}
    return {"checkpoint": info, "scorer_backend": spec.backend}


def round_image_diversity(scorer: Any, images: Sequence[Any]) -> float | None:
    """Mean pairwise CLIP-image cosine distance over a round's images (None for fewer than two)."""
    from workbench.t2i.diversity import pairwise_diversity

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


def format_value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def score_rows(item: ImageScores | dict[str, Any]) -> list[dict[str, Any]]:
    """The one formatting of a score panel (tab, batch report): a row per metric, then the weighted total.
    Takes `ImageScores` or its `to_dict()` (as kept in session state and batch records)."""
    data = item.to_dict() if isinstance(item, ImageScores) else (item or {})
    rows = []
    for metric, s in (data.get("scores") or {}).items():
        rows.append({"metric": metric, "value": format_value(s.get("value")), "raw": s.get("value"),
                     "model": (s.get("provenance") or {}).get("model_id", ""), "note": s.get("note", ""),
                     "random_weights": bool(s.get("random_weights")), "total": False})
    total = data.get("total") or {}
    if total:
        rows.append({"metric": "weighted total", "value": format_value(total.get("value")), "raw": total.get("value"),
                     "model": "", "note": total.get("note", ""), "random_weights": bool(total.get("random_weights")),
                     "total": True})
    return rows


def score_markdown(item: ImageScores | dict[str, Any]) -> str:
    data = item.to_dict() if isinstance(item, ImageScores) else (item or {})
    lines = ["| metric | value | model | note |", "|---|---|---|---|"]
    for row in score_rows(data):
        name = "**weighted total** (beside, not instead)" if row["total"] else row["metric"]
        value = row["value"] + (" ⚠️ random weights" if row["random_weights"] and not row["total"] else "")
        lines.append(f"| {name} | {value} | {row['model']} | {row['note']} |")
    versions = next(((s.get("provenance") or {}).get("versions") for s in (data.get("scores") or {}).values()
                     if s.get("provenance")), {})
    if versions:
        lines.append("")
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return "\n".join(lines)
