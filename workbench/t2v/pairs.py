"""Preference data from evolution runs, in the formats TRL's trainers read: SFT pairs (original -> best) as
prompt/completion rows for SFTTrainer, DPO pairs as prompt/chosen/rejected rows for DPOTrainer. Filters follow
Prompt-A-Video's `filter.py`: per-metric thresholds on the chosen, a minimum margin of weighted total between
chosen and rejected, a word limit on the chosen (130), and no candidate flagged unsafe as chosen. Every row
carries the scores (with their provenance) that put it there, under `provenance`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from workbench.t2v.evolve import Candidate, EvolveResult
from workbench.t2v.rewards import METRICS


@dataclass
class PairFilter:
    thresholds: dict[str, float] = field(default_factory=dict)  # metric -> minimum value for the chosen
    min_margin: float = 0.02  # chosen total - rejected total (Prompt-A-Video: > 1.4 on its 1-4 scale sums)
    max_words: int = 130  # Prompt-A-Video keeps chosen prompts of at most 130 words
    max_pairs_per_prompt: int = 4  # DPO rows per idea, largest margins first
    sft_needs_gain: bool = True  # SFT keeps original -> best only when the best beats the original

    def check(self) -> "PairFilter":
        unknown = set(self.thresholds) - set(METRICS) - {"total"}
        if unknown:
            raise ValueError(f"unknown threshold metric(s) {sorted(unknown)}; metrics: total, {', '.join(METRICS)}")
        for name, value in self.thresholds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not -10 <= value <= 10:
                raise ValueError(f"threshold for {name} must be a number between -10 and 10, got {value!r}")
        if not isinstance(self.min_margin, (int, float)) or not 0 <= self.min_margin <= 10:
            raise ValueError(f"min_margin must be between 0 and 10, got {self.min_margin!r}")
        if not isinstance(self.max_words, int) or not 1 <= self.max_words <= 1000:
            raise ValueError(f"max_words must be a whole number between 1 and 1000, got {self.max_words!r}")
        if not isinstance(self.max_pairs_per_prompt, int) or not 1 <= self.max_pairs_per_prompt <= 100:
            raise ValueError(f"max_pairs_per_prompt must be between 1 and 100, got {self.max_pairs_per_prompt!r}")
        return self


def _value(c: Candidate, metric: str) -> float | None:
    if metric == "total":
        return c.total
    return ((c.scores.get("scores") or {}).get(metric) or {}).get("value")


def rejection_reason(c: Candidate, filt: PairFilter) -> str:
    """Why `c` may not be a chosen prompt ("" when it may)."""
    if not c.safe:
        return "flagged unsafe"
    if c.total is None:
        return "no weighted total"
    if len(c.prompt.split()) > filt.max_words:
        return f"{len(c.prompt.split())} words > {filt.max_words}"
    for metric, low in filt.thresholds.items():
        value = _value(c, metric)
        if value is None or value < low:
            return f"{metric} {value if value is None else round(value, 4)} < {low}"
    return ""


def _evidence(c: Candidate) -> dict[str, Any]:
    return {"id": c.id, "total": c.total, "scores": c.scores, "video": c.video, "rewriter": c.rewriter}


def sft_pairs(result: EvolveResult, filt: PairFilter | None = None) -> list[dict[str, Any]]:
    filt = (filt or PairFilter()).check()
    best = result.best
    if best is None or rejection_reason(best, filt):
        return []
    if filt.sft_needs_gain and result.baseline is not None and result.baseline.total is not None:
        if best.total is None or best.total - result.baseline.total < filt.min_margin:
            return []
    return [{"prompt": result.original, "completion": best.prompt,
             "provenance": json.dumps({"best": _evidence(best), "original": _evidence(result.baseline)
                                       if result.baseline else None, "filter": asdict(filt)})}]


def dpo_pairs(result: EvolveResult, filt: PairFilter | None = None) -> list[dict[str, Any]]:
    """Chosen/rejected rows: every eligible chosen against every candidate (the original prompt included) whose
    total is at least `min_margin` lower; at most `max_pairs_per_prompt`, largest margins first."""
    filt = (filt or PairFilter()).check()
    pool = result.candidates() + ([result.baseline] if result.baseline else [])
    rows = []
    for chosen in pool:
        if rejection_reason(chosen, filt):
            continue
        for rejected in pool:
            if rejected is chosen or rejected.total is None or rejected.prompt == chosen.prompt:
                continue
            margin = chosen.total - rejected.total
            if margin >= filt.min_margin:
                rows.append((margin, chosen, rejected))
    rows.sort(key=lambda r: -r[0])
    return [{"prompt": result.original, "chosen": c.prompt, "rejected": r.prompt,
             "provenance": json.dumps({"margin": m, "chosen": _evidence(c), "rejected": _evidence(r),
                                       "filter": asdict(filt)})}
            for m, c, r in rows[: filt.max_pairs_per_prompt]]


def why_empty(results: Sequence[EvolveResult], filt: PairFilter, sft_rows: int, dpo_rows: int) -> list[str]:
    """Why an export wrote no SFT rows or no DPO pairs, and what to change; [] when both have rows."""
    reasons: list[str] = []
    cands = [c for r in results for c in r.candidates()]
    if not cands:
        return ["no evolution candidates yet: run Evolve (at least one round) before exporting"]
    eligible = [c for c in cands if not rejection_reason(c, filt)]
    if sft_rows == 0:
        gains = [(r.best.total - r.baseline.total) for r in results if r.best is not None and r.best.total is not None
                 and r.baseline is not None and r.baseline.total is not None]
        best = [r.best for r in results if r.best is not None]
        blocked = [f"{c.id}: {rejection_reason(c, filt)}" for c in best if rejection_reason(c, filt)]
        if blocked:
            reasons.append("0 SFT rows: the best candidate may not be a chosen prompt (" + "; ".join(blocked) +
                           "); loosen the thresholds, or raise the word limit")
        elif filt.sft_needs_gain and gains and max(gains) < filt.min_margin:
            reasons.append(f"0 SFT rows: the best candidate beats your original prompt by {max(gains):+.4f}, less "
                           f"than the minimum margin {filt.min_margin:g}; lower the margin, or run more rounds")
        else:
            reasons.append("0 SFT rows: no scored best candidate to pair with your original prompt; run Evolve again")
    if dpo_rows == 0:
        if not eligible:
            why = sorted({rejection_reason(c, filt) for c in cands})
            reasons.append(f"0 DPO pairs: no candidate may be a chosen prompt ({'; '.join(why[:3])}); loosen the "
                           f"thresholds")
        else:
            margins = [c.total - o.total for r in results for c in r.candidates() if not rejection_reason(c, filt)
                       for o in r.candidates() + ([r.baseline] if r.baseline else [])
                       if o is not c and o.total is not None and c.total is not None and o.prompt != c.prompt]
            widest = max(margins) if margins else None
            reasons.append("0 DPO pairs: " + (f"the widest gap between a chosen and a rejected prompt is "
                                              f"{widest:.4f}, below the minimum margin {filt.min_margin:g}; lower "
                                              f"the margin (e.g. to {max(widest, 0.0) / 2:.4f}), or run more rounds "
                                              f"so the scores spread" if widest is not None else
                                              "only one scored prompt, nothing to compare it with; run more rounds "
                                              "or a larger population"))
    return reasons


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def export_pairs(results: Sequence[EvolveResult], out_dir: str | Path,
                 filt: PairFilter | None = None, safety: Any = None) -> dict[str, Any]:
    """Write sft.jsonl and dpo.jsonl into `out_dir`; returns the paths and counts. Every prompt of every row
    (completion, chosen AND rejected) is checked again with `safety` (texts -> SafetyVerdicts,
    workbench.safety.checker; the keyword rule alone without it): a row holding an unsafe rewrite is dropped and
    counted, so no unsafe rewrite is ever exported, also from runs recorded before the check existed."""
    from workbench.safety import check_texts

    filt = (filt or PairFilter()).check()
    sft = [row for r in results for row in sft_pairs(r, filt)]
    dpo = [row for r in results for row in dpo_pairs(r, filt)]
    texts = sorted({row[k] for row in sft + dpo for k in ("completion", "chosen", "rejected") if k in row})
    verdicts = dict(zip(texts, safety(texts) if safety is not None else check_texts(None, texts))) if texts else {}
    unsafe = {t for t, v in verdicts.items() if not v.safe}
    keep_sft = [row for row in sft if row["completion"] not in unsafe]
    keep_dpo = [row for row in dpo if row["chosen"] not in unsafe and row["rejected"] not in unsafe]
    out = Path(out_dir)
    source = next(iter(verdicts.values())).source if verdicts else None
    return {"sft": str(write_jsonl(keep_sft, out / "sft.jsonl")), "dpo": str(write_jsonl(keep_dpo, out / "dpo.jsonl")),
            "sft_rows": len(keep_sft), "dpo_rows": len(keep_dpo), "filter": asdict(filt),
            "dropped_unsafe_rows": (len(sft) - len(keep_sft)) + (len(dpo) - len(keep_dpo)), "safety": source,
            "reasons": why_empty(results, filt, len(keep_sft), len(keep_dpo))}
