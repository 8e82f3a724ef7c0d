"""Train the offline safety head: all-MiniLM-L6-v2 sentence embeddings of the labelled set's TRAINING split
(never the held-out ids), a one-hidden-layer MLP with a softmax over "safe" and the seven categories
(class-balanced cross-entropy), and the threshold on P(unsafe) = 1 - P(safe) chosen on 5-fold out-of-fold
probabilities of the training split: the lowest one whose false refusals on the training hard safe negatives stay
within `max_hard_refusals`. (A sigmoid per category was tried first: out of fold it could not keep hard negatives
below 40% refusals at 0.95 recall; the softmax's explicit "safe" class can.)

    python -m workbench.safety train [--out assets/safety/head]
"""

from __future__ import annotations

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
    max_hard_refusals: float = 0.04  # threshold: false refusals on hard safe negatives (out of fold) at most this


def embedder_spec(model_id: str) -> ModelSpec:
    return ModelSpec(role="embeddings", backend="sentence-embeddings", model_id=model_id)


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


def choose_threshold(p_unsafe: Any, hard: Any, max_hard_refusals: float) -> float:
    """The lowest threshold on P(unsafe) (grid of 0.01) whose refusals of hard negatives stay within the limit."""
    import numpy as np

    for t in np.round(np.arange(0.05, 0.99, 0.01), 2):
        if float(np.mean(p_unsafe[hard] >= t)) <= max_hard_refusals:
            return float(t)
    return 0.99


def train(manager: Any, model_id: str, out: str | Path = SAFETY_ASSETS / "head",
          settings: HeadSettings | None = None) -> dict[str, Any]:
    import numpy as np

    from backends.safety_head import save_head
    from workbench.models import ManagedModel

    settings = settings or HeadSettings()
    started = time.perf_counter()
    train_set, held = split()
    held_ids = {p.id for p in held}
    if any(p.id in held_ids for p in train_set):
        raise RuntimeError("a held-out prompt reached the training split")
    x = ManagedModel(manager, embedder_spec(model_id)).embed([p.text for p in train_set]).vectors.astype("float32")
    y = labels(train_set)
    hard = np.array([p.hard_negative for p in train_set])
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(train_set))
    oof = np.zeros((len(train_set), len(CLASSES)), dtype="float32")
    for k in range(settings.folds):
        test = order[k::settings.folds]
        fit = np.setdiff1d(order, test)
        oof[test] = predict(fit_head(x[fit], y[fit], settings), x[test])
    p_unsafe = 1.0 - oof[:, 0]
    threshold = choose_threshold(p_unsafe, hard, settings.max_hard_refusals)
    flag = p_unsafe >= threshold
    oof_recall = {c: round(float(flag[y == i + 1].mean()), 3) for i, c in enumerate(CATEGORIES)}
    head = fit_head(x, y, settings)
    seconds = time.perf_counter() - started
    config = {"classes": list(CLASSES), "dim": int(x.shape[1]), "hidden": settings.hidden, "threshold": threshold,
              "embedder": model_id, "version": "safety-head-v1", "settings": asdict(settings),
              "train_prompts": len(train_set), "oof_recall": oof_recall,
              "oof_hard_refusals": round(float(flag[hard].mean()), 3),
              "oof_plain_refusals": round(float(flag[(y == 0) & ~hard].mean()), 3),
              "train_seconds": round(seconds, 1)}
    save_head(out, head, config)
    return config
