"""The score types every scoring tab shares: one `Score` per metric with its provenance (never collapsed
silently), an item's scores with a user-weighted total beside them, the weight check against a tab's metric
table, and the one formatting of a score panel. Each tab passes its own metric table, default weights and
scales (T2I's image scores, T2V's rewards)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.types import Provenance

RANDOM_NOTE = "random weights: outputs are not meaningful"


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


def check_weights(weights: dict[str, float] | None, metrics: dict[str, str],
                  defaults: dict[str, float]) -> dict[str, float]:
    """Weights checked against a tab's metric table; None gives the tab's defaults."""
    weights = dict(defaults if weights is None else weights)
    unknown = set(weights) - set(metrics)
    if unknown:
        raise ValueError(f"unknown metric weight(s) {sorted(unknown)}; metrics: {', '.join(metrics)}")
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 10.0:
            raise ValueError(f"weight for {name} must be between 0 and 10, got {value!r}")
    if not any(float(v) > 0 for v in weights.values()):
        raise ValueError("at least one metric weight must be above 0")
    return {k: float(v) for k, v in weights.items()}


def scale_text(factor: float | None) -> str:
    """How a metric is scaled in a total: " /10" for 0.1, " /20" for 0.05, else " x<factor>"."""
    if factor is None:
        return ""
    return f" /{1 / factor:g}" if 1 / factor == round(1 / factor) else f" x{factor:g}"


def weighted_total(scores: dict[str, Score], weights: dict[str, float] | None, metrics: dict[str, str],
                   defaults: dict[str, float], scale: dict[str, float], source: str) -> Score:
    """Sum of weight x value over the available metrics, divided by the sum of their weights (aesthetic / 10).
    Shown beside the metrics, never instead of them; the note says which metrics went in. Another tab passes
    its own metric table, default weights and scales (the T2V rewards do)."""
    weights = check_weights(weights, metrics, defaults)
    used = {m: w for m, w in weights.items() if w > 0 and m in scores and scores[m].value is not None}
    if not used:
        return Score("total", None, None, note="no weighted metric is available")
    value = sum(w * scores[m].value * scale.get(m, 1.0) for m, w in used.items()) / sum(used.values())
    parts = ", ".join(f"{w:g}x{m}" + scale_text(scale.get(m)) for m, w in used.items())
    random = any(scores[m].random_weights for m in used)
    prov = Provenance(model_id="weighted-total", backend=source, random_weights=random,
                      settings={"weights": weights, "used": list(used), "formula": "sum(w*v)/sum(w)"})
    return Score("total", float(value), prov, note=f"user-weighted: {parts}")


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
