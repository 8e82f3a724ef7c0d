"""The T2I rewriter's training recipe: the shared LoRA SFT recipe (`workbench.common.rewriter_train`) plus
rejection sampling by image reward (render each sampled rewrite, score it, keep the best), which needs this tab's
renderer and scorer."""

from __future__ import annotations

from typing import Any

from workbench.common.rewriter_train import TrainConfig, TrainResult, request  # noqa: F401  (the recipe's types)
from workbench.common.rewriter_train import train_rewriter as _train_rewriter
from workbench.common.refiner import parse_candidate
from workbench.types import GenerationSettings


def train_rewriter(config: TrainConfig, manager: Any | None = None, progress: bool = False) -> TrainResult:
    return _train_rewriter(config, manager, progress, rejection=rejection_sample)


def rejection_sample(rewriter: Any, t2i: Any, scorer: Any, embedder: Any, prompts: list[str], config: TrainConfig,
                     progress: bool = False) -> list[dict[str, Any]]:
    """For each coarse prompt: sample k rewrites, render them with the original from one seed, score them, and
    keep the rewrite with the best user-weighted total (alignment with the original prompt, aesthetics, intent)."""
    from tqdm.auto import tqdm

    from workbench.t2i.service import render_and_score

    kept = []
    for i, coarse in enumerate(tqdm(prompts, desc="rejection sampling", disable=not progress)):
        settings = GenerationSettings(max_new_tokens=config.max_new_tokens, do_sample=True,
                                      temperature=config.temperature, num_return_sequences=config.rejection_k,
                                      seed=config.seed + i)
        gens = rewriter.generate([request(coarse, config.system_template, config.prompt_template)], settings)[0]
        texts = list(dict.fromkeys(t for t in (parse_candidate(g.text) for g in gens) if t))
        if not texts:
            continue
        rendered = render_and_score(t2i, scorer, embedder, coarse, texts, config.image, config.weights)
        totals = [s.total.value if s.total and s.total.value is not None else float("-inf") for s in rendered.scores]
        best = max(range(len(texts)), key=totals.__getitem__)
        kept.append({"coarse": coarse, "best": texts[best], "best_total": totals[best],
                     "samples": [{"text": t, "total": v, "metrics": s.values()}
                                 for t, v, s in zip(texts, totals, rendered.scores)],
                     "random_weights": any(x.random_weights for s in rendered.scores for x in s.scores.values())})
    return kept
