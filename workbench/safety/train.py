"""Train the offline safety head: all-MiniLM-L6-v2 sentence embeddings of the labelled set's TRAINING split
(never the held-out ids, never fresh3), a one-hidden-layer MLP with a softmax over "safe" and the seven categories
(class-balanced cross-entropy), and the threshold on P(unsafe) = 1 - P(safe) chosen on out-of-fold
probabilities of the training split, one threshold per category (applied to the texts whose most probable category
it is): the highest one (so the fewest false refusals) at which the head ALONE still refuses at least `min_recall`
of that category's training prompts out of fold (0.95; 0.85 for real-person and hate, the issue's targets).
Since the fourth pass the folds are the BATCHES the training prompts were written in (the first lists, the
training-only extra list, fresh, fresh2): each batch is judged by a head trained on the others, as new text written
later would be. (Random 5-fold splits put near-copies of a prompt on both sides and promised 2.8% false refusals on
hard negatives where new text then got 5-14%; grouped folds estimate 3-5%.) The same out-of-fold probabilities choose
`weak_rule_threshold`: a weak keyword match ("?pattern" in rules.py) refuses only when P(unsafe) reaches it. One
threshold for all categories was tried first: at 0.95 recall in every category it refused 19% of the training hard
negatives out of fold; per-category thresholds refuse 7%. The head alone, not head + rule: the rule was tuned on these same training prompts, so
its recall on them is flattering and would push the threshold up. (A sigmoid per category was tried first: out of fold it could not keep hard negatives
below 40% refusals at 0.95 recall; the softmax's explicit "safe" class can.)

    python -m workbench.safety train [--out assets/safety/head]
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from backends.base import ModelSpec
from workbench.safety.data import CATEGORIES, LabelledPrompt, SAFETY_ASSETS, split

CLASSES = ("safe", *CATEGORIES)


@dataclass
class HeadSettings:
    hidden: int = 64  # 384 -> 64 -> 8: enough for ~500 prompts (256 was no better out of fold)
    epochs: int = 300  # full batch, Adam; converges well before
    lr: float = 0.01
    weight_decay: float = 1e-3  # L2 (none or 1e-4 overfit more out of fold)
    folds: int = 5  # out-of-fold probabilities for the threshold
    seed: int = 0
    knn_k: int = 7  # the head's probabilities are mixed with the vote of the k nearest training prompts ...
    knn_temperature: float = 0.05
    knn_weight: float = 0.5  # ... at this weight (grouped out of fold, 1410 prompts: hard-negative refusals 7.6% with
    # no vote, 5.2% at 0.3, 3.6% at 0.5, 3.4% at 0.6, 3.9% at 0.7, all at equal recall)
    min_recall: float = 0.95  # threshold: out-of-fold recall of the head alone in every category at least this ...
    min_recall_loose: float = 0.85  # ... and this for real-person and hate
    weak_recall: float = 0.99  # weak_rule_threshold: the highest P(unsafe) that still confirms this share of the
    # unsafe training prompts whose keyword matches are all weak (out of fold) ...
    weak_cap: float = 0.35  # ... and never above this: recall first (training's weak-only unsafe prompts reach 0.5
    # out of fold, but new text sits lower; the false refusals a weak word causes mostly sit under 0.1)
    grouped_folds: bool = True  # folds = the batches the prompts were written in (else `folds` random folds)


# the eighth pass's recipe (safety-head-v6), kept by the ninth (safety-head-v7): out-of-fold recall of 0.95 (0.88 for
# real-person and hate) when the thresholds are chosen, 600 epochs; chosen by leaving each seen set out in turn
# (head/TRAINING.md). The seventh pass's (safety-head-v5) was 0.96 / 0.88 and 300 epochs.
HEAD_SETTINGS = HeadSettings(min_recall=0.95, min_recall_loose=0.88, epochs=600)
# the embedder of safety-head-v5 to -v7: Gemma-3-270M (base) read after decoder layer 6 of 18, mean-pooled, standardised
LM_EMBEDDER = ("lm-layer-embeddings", 6)


def embedder_spec(model_id: str, backend: str = "sentence-embeddings", layer: int | None = None) -> ModelSpec:
    """The embedder a head is trained on: the same spec the safety-head backend builds from head.json."""
    from backends.safety_head import embedder_spec as head_embedder_spec

    return head_embedder_spec(ModelSpec(role="embeddings", backend=backend, model_id=model_id),
                              {"embedder_backend": backend, "embedder_layer": layer})


def labels(prompts: Sequence[LabelledPrompt]) -> Any:
    import numpy as np

    return np.array([CLASSES.index(p.category) if p.unsafe else 0 for p in prompts], dtype=np.int64)


def fit_head(x: Any, y: Any, settings: HeadSettings) -> Any:
    import torch

    from backends.safety_head import build_head

    with torch.random.fork_rng():
        torch.manual_seed(settings.seed)
        head = build_head(x.shape[1], settings.hidden, len(CLASSES))
        xt, yt = torch.as_tensor(x), torch.as_tensor(y)
        counts = torch.bincount(yt, minlength=len(CLASSES)).float().clamp(min=1)
        weight = counts.sum() / counts  # balanced: "safe" is as large as all categories together
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight / weight.mean())
        opt = torch.optim.Adam(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        for _ in range(settings.epochs):
            opt.zero_grad()
            loss = loss_fn(head(xt), yt)
            loss.backward()
            opt.step()
    return head.eval()


def predict(head: Any, x: Any) -> Any:
    import torch

    with torch.inference_mode():
        return torch.softmax(head(torch.as_tensor(x)), dim=-1).numpy()


LOOSE = ("real-person", "hate")  # the categories whose recall target is `min_recall_loose`


def recall_by_category(flag: Any, y: Any) -> dict[str, float]:
    return {c: round(float(flag[y == i + 1].mean()), 3) for i, c in enumerate(CATEGORIES) if (y == i + 1).any()}


def choose_thresholds(p_unsafe: Any, y: Any, settings: HeadSettings) -> dict[str, float]:
    """Per category, the highest threshold on P(unsafe) (grid of 0.01, so the fewest false refusals) at which the
    share of that category's prompts reaching it out of fold meets the category's target; 0.05 when none does."""
    import numpy as np

    out = {}
    for i, c in enumerate(CATEGORIES):
        need = settings.min_recall_loose if c in LOOSE else settings.min_recall
        members = p_unsafe[y == i + 1]
        out[c] = next((float(t) for t in np.round(np.arange(0.95, 0.04, -0.01), 2)
                       if members.size and float(np.mean(members >= t)) >= need), 0.05)
    return out


def flags(probs: Any, thresholds: dict[str, float]) -> Any:
    """The head's decision (as backends/safety_head.py makes it): P(unsafe) reaches its top category's threshold."""
    import numpy as np

    limits = np.array([thresholds[c] for c in CATEGORIES])[probs[:, 1:].argmax(axis=1)]
    return (1.0 - probs[:, 0]) >= limits


SEEN_BATCHES = {"ft": "fresh3", "fq": "fresh4", "fv": "fresh5", "fx": "fresh6",  # trained on since the seventh pass
                "fy": "fresh7", "fz": "fresh8"}  # since the eighth, the ninth


def batch_of(prompt_id: str) -> str:
    """The batch a training prompt was written in: fresh (fr...), fresh2 (fs...), fresh3-fresh7 (ft, fq, fv, fx, fy),
    the fifth pass's list (xv...), the training-only extra list (x...), or the first lists."""
    if re.match(r"xv(vio|wea|sex|min|slf|hat|rea|hrd|pln)-", prompt_id):
        return "fifth"  # prompts_train_fifth.txt, written by the fifth pass (the extra list's violence is xvio-...)
    if prompt_id.startswith("rw-"):  # the rewriter corpora's prompts (ninth pass): one batch per modality
        return "rewrites-t2v" if prompt_id.startswith("rw-t2v-") else "rewrites-t2i"
    if prompt_id[:2] in SEEN_BATCHES:
        return SEEN_BATCHES[prompt_id[:2]]
    return prompt_id[:2] if prompt_id[:2] in ("fr", "fs") else ("extra" if prompt_id.startswith("x") else "first")


def weak_rule_threshold(p_unsafe: Any, y: Any, weak_only: Any, settings: HeadSettings) -> float:
    """The highest P(unsafe) (grid of 0.01, at most `weak_cap`) that at least `weak_recall` of the unsafe prompts
    whose rule matches are all weak reach out of fold: a weak match below it is taken for its harmless sense."""
    import numpy as np

    members = p_unsafe[(y > 0) & weak_only]
    if not members.size:
        return 0.0
    return next((float(t) for t in np.round(np.arange(settings.weak_cap, 0.0, -0.01), 2)
                 if float(np.mean(members >= t)) >= settings.weak_recall), 0.0)


def knn_oof(x: Any, y: Any, fit: Any, test: Any, settings: HeadSettings) -> Any:
    from backends.safety_head import knn_probs

    return knn_probs(x[test], x[fit], y[fit], len(CLASSES), settings.knn_k, settings.knn_temperature)


def train(manager: Any, model_id: str, out: str | Path = SAFETY_ASSETS / "head",
          settings: HeadSettings | None = None, embedder: tuple[str, int | None] = LM_EMBEDDER) -> dict[str, Any]:
    """Train and save a head on `model_id` read by `embedder` (backend, layer): ("lm-layer-embeddings", 6) for a
    causal LM (the vectors standardised with the training split's mean and deviation, then L2-normalised; both
    saved), or ("sentence-embeddings", None) for MiniLM (safety-head-v4's recipe)."""
    import numpy as np

    from backends.safety_head import mix_probs, save_head, standardized
    from workbench.models import ManagedModel

    settings = settings or HEAD_SETTINGS
    started = time.perf_counter()
    from workbench.safety.rules import check_rule

    from workbench.safety.data import refuse_held_out

    train_set, held = split()
    refuse_held_out(train_set)
    backend, layer = embedder
    raw = ManagedModel(manager, embedder_spec(model_id, backend, layer)).embed([p.text for p in train_set]).vectors
    raw = np.asarray(raw, dtype="float32")
    standardize = backend == "lm-layer-embeddings"
    stats = (raw.mean(axis=0), raw.std(axis=0) + 1e-6) if standardize else None
    x = standardized(raw, stats)
    y = labels(train_set)
    hard = np.array([p.hard_negative for p in train_set])
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(train_set))
    oof = np.zeros((len(train_set), len(CLASSES)), dtype="float32")
    batches = np.array([batch_of(p.id) for p in train_set])
    folds = ([np.where(batches == b)[0] for b in dict.fromkeys(batches)] if settings.grouped_folds
             else [order[k::settings.folds] for k in range(settings.folds)])
    for test in folds:
        fit = np.setdiff1d(order, test)
        oof[test] = mix_probs(predict(fit_head(x[fit], y[fit], settings), x[test]),
                              knn_oof(x, y, fit, test, settings), settings.knn_weight)
    p_unsafe = 1.0 - oof[:, 0]
    thresholds = choose_thresholds(p_unsafe, y, settings)
    threshold = min(thresholds.values())  # the fallback of a category a head.json does not list
    flag = flags(oof, thresholds)
    oof_recall = recall_by_category(flag, y)
    verdicts = [check_rule(p.text) for p in train_set]
    strong = np.array([bool(v.strong) for v in verdicts])
    weak_only = np.array([bool(v.matches) and not v.strong for v in verdicts])
    weak_t = weak_rule_threshold(p_unsafe, y, weak_only, settings)
    combined = flag | strong | (weak_only & (p_unsafe >= weak_t))
    curve = {f"{t:.2f}": {"min_recall": min(recall_by_category(p_unsafe >= t, y).values()),
                          "hard_refusals": round(float((p_unsafe[hard] >= t).mean()), 3)}
             for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}  # one threshold for all, for comparison
    head = fit_head(x, y, settings)
    seconds = time.perf_counter() - started
    config = {"classes": list(CLASSES), "dim": int(x.shape[1]), "hidden": settings.hidden, "threshold": threshold,
              "thresholds": thresholds,
              "embedder": model_id, "embedder_backend": backend, "embedder_layer": layer, "standardize": standardize,
              "version": "safety-head-v7" if standardize else "safety-head-v4", "weak_rule_threshold": weak_t,
              "knn": {"k": settings.knn_k, "temperature": settings.knn_temperature, "weight": settings.knn_weight}, "settings": asdict(settings),
              "train_prompts": len(train_set), "oof_recall": oof_recall,
              "oof_hard_refusals": round(float(flag[hard].mean()), 3),
              "oof_plain_refusals": round(float(flag[(y == 0) & ~hard].mean()), 3), "oof_single_threshold_curve": curve,
              "folds": "batches" if settings.grouped_folds else f"{settings.folds} random",
              "oof_combined_recall": recall_by_category(combined, y),
              "oof_combined_hard_refusals": round(float(combined[hard].mean()), 3),
              "oof_rule_only_hard_refusals": round(float((strong | weak_only)[hard].mean()), 3),
              "train_seconds": round(seconds, 1)}
    # float16 on disk (the Hub takes at most 10 MiB per file without LFS; 6010 x 640 float32 vectors are 14.7 MiB);
    # the vote reads them back as float32
    bank = {"vectors": x.astype("float16"), "labels": y}
    if stats is not None:
        bank.update(mean=stats[0].astype("float32"), std=stats[1].astype("float32"))
    save_head(out, head, config, bank=bank)
    return config
