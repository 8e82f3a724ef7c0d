"""Training the world's models on CPU, reproducibly from a seed (`python -m workbench.world train-classifier` and
`train-clip`). Data: training seeds [0, n); held-out seeds from HELDOUT_SEED0 (see workbench/world/data.py).

Uses torch and transformers directly (no backend module: the world stays below every tab, see the
import-linter contract); what it writes loads through the project's backends unchanged."""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from workbench.world.data import CELL_LABELS, HELDOUT_SEED0, IGNORE, SCENE_LABELS, label_names, load_scenes
from workbench.world.vocabulary import load_vocabulary

MAX_STEPS = 1_000_000


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _check_float(name: str, value, lo: float, hi: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo < value <= hi:
        raise ValueError(f"{name} must be a number in ({lo}, {hi}], got {value!r}")
    return float(value)


def _versions() -> dict:
    import torch
    import transformers

    from workbench.world import GENERATOR_VERSION

    return {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "generator_version": GENERATOR_VERSION, "vocabulary_digest": load_vocabulary().digest}


def _cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


# -- the attribute classifier ----------------------------------------------------------------------------------
# shape is the one label read from an object's outline rather than its pixel statistics; with equal weights the
# colour, size and background terms are learned first and shape lagged near chance for hundreds of steps
SHAPE_WEIGHT = 4.0

def train_classifier(out: str | Path, n_train: int = 6_000, n_heldout: int = 2_000, epochs: int = 12,
                     batch_size: int = 64, lr: float = 2e-3, seed: int = 0, workers: int = 1,
                     channels: Sequence[int] = (16, 32, 64, 128, 128), train_start: int = 0,
                     log: Callable[[str], None] = print) -> dict:
    """Train the attribute classifier on world stills of seeds [train_start, train_start + n_train). The shipped
    scorer uses the defaults; `channels` and `train_start` give a second, independently trained reader (the shape
    critic that `train-t2i --shape-weight` trains against, so that the shipped scorer measures what it did)."""
    import torch
    from safetensors.torch import save_file

    from workbench.world.classifier import CONFIG, WEIGHTS, AttributeClassifier, build_network, evaluate, to_tensor

    _check_int("n_train", n_train, 64, 200_000)
    _check_int("n_heldout", n_heldout, 16, 20_000)
    _check_int("epochs", epochs, 1, 200)
    _check_int("batch_size", batch_size, 1, 4096)
    _check_float("lr", lr, 0.0, 1.0)
    _check_int("seed", seed, 0, 2**31 - 1)
    _check_int("train_start", train_start, 0, HELDOUT_SEED0 - n_train)
    channels = [int(c) for c in channels]
    if len(channels) != 5 or not all(4 <= c <= 512 for c in channels):
        raise ValueError(f"channels must be 5 integers in [4, 512], got {channels!r}")
    t0 = time.time()
    train = load_scenes(train_start, n_train, workers=workers, log=log)
    held = load_scenes(HELDOUT_SEED0, n_heldout, workers=workers, log=log)
    log(f"data ready in {time.time() - t0:.0f}s")
    v = load_vocabulary()
    config = {"architecture": "AttributeNet", "image_size": 64, "channels": channels, "pools": 3,
              "hidden": 128, "classes": label_names(v), "cells": "row-major 3x3 grid, index = row * 3 + column"}
    torch.manual_seed(seed)
    net = build_network(config)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    x_all = to_tensor(train.images)
    y_all = {k: torch.from_numpy(np.asarray(v)) for k, v in train.labels.items()}
    steps_per_epoch = n_train // batch_size
    total = steps_per_epoch * epochs
    gen = torch.Generator().manual_seed(seed)
    step, t_train = 0, time.time()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(n_train, generator=gen)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            for g in opt.param_groups:
                g["lr"] = _cosine_lr(step, total, lr, warmup=min(200, total // 10))
            logits = net(x_all[idx])
            loss = sum(SHAPE_WEIGHT ** (k == "shape")
                       * torch.nn.functional.cross_entropy(logits[k].reshape(-1, logits[k].shape[-1]),
                                                           y_all[k][idx].reshape(-1), ignore_index=IGNORE)
                       for k in (*CELL_LABELS, *SCENE_LABELS))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += float(loss.detach())
            step += 1
        net.eval()
        clf = AttributeClassifier(net, config, str(out))
        acc = evaluate(clf, held)
        log(f"epoch {epoch + 1}/{epochs} loss {running / steps_per_epoch:.3f} held-out "
            + " ".join(f"{k} {v:.3f}" for k, v in acc.items() if isinstance(v, float))
            + f" ({time.time() - t_train:.0f}s)")
    seconds = time.time() - t_train
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: t.contiguous() for k, t in net.state_dict().items()}, str(out / WEIGHTS))
    command = "python -m workbench.world train-classifier"
    if channels != [16, 32, 64, 128, 128] or train_start or seed:
        command += (f" --channels {' '.join(map(str, channels))} --train-start {train_start} --seed {seed}"
                    f" --out {out}")
    config["training"] = {"command": command, "n_train": n_train,
                          "train_seeds": [train_start, train_start + n_train - 1], "n_heldout": n_heldout,
                          "heldout_seeds": [HELDOUT_SEED0, HELDOUT_SEED0 + n_heldout - 1], "epochs": epochs,
                          "batch_size": batch_size, "lr": lr, "seed": seed, "steps": total,
                          "shape_loss_weight": SHAPE_WEIGHT,
                          "train_seconds": round(seconds), "torch_threads": torch.get_num_threads(),
                          "heldout_accuracy": acc, "versions": _versions()}
    (out / CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    log(f"saved {out} ({(out / WEIGHTS).stat().st_size / 1e6:.1f} MB) after {seconds:.0f}s of training")
    return acc


# -- the small CLIP ---------------------------------------------------------------------------------------------
def train_clip(out: str | Path, n_train: int = 7_000, n_heldout: int = 2_000, epochs: int = 9,
               batch_size: int = 64, lr: float = 1e-3, hidden: int = 96, text_layers: int = 2, vision_layers: int = 3,
               seed: int = 0, hard_negatives: int = 0,
               workers: int = 1, log: Callable[[str], None] = print) -> dict:
    """Contrastive training (CLIP's symmetric cross-entropy over in-batch pairs) on world stills and their fine
    captions; held-out metric: top-1 caption among 16 (see `workbench.world.clip.retrieval_top1`).

    hard_negatives > 0: each scene gets that many captions with one attribute changed
    (`workbench.world.clip.one_change_captions`); every step adds one of them per image to the batch's texts, so the
    image-to-text loss must rank its own caption above a caption that differs in a single attribute."""
    import torch

    from workbench.world.clip import MAX_TOKENS, build_model, build_processor, pixel_values, retrieval_top1

    _check_int("n_train", n_train, 256, 200_000)
    _check_int("n_heldout", n_heldout, 16, 20_000)
    _check_int("epochs", epochs, 1, 500)
    _check_int("batch_size", batch_size, 2, 4096)
    _check_float("lr", lr, 0.0, 1.0)
    _check_int("hidden", hidden, 16, 1024)
    _check_int("text_layers", text_layers, 1, 12)
    _check_int("vision_layers", vision_layers, 1, 12)
    _check_int("seed", seed, 0, 2**31 - 1)
    _check_int("hard_negatives", hard_negatives, 0, 15)
    t0 = time.time()
    train = load_scenes(0, n_train, workers=workers, log=log)
    held = load_scenes(HELDOUT_SEED0, n_heldout, workers=workers, log=log)
    negatives = None
    if hard_negatives:
        from workbench.world.clip import one_change_captions
        from workbench.world.scene import sample_scene

        negatives = [one_change_captions(sample_scene(int(s)), hard_negatives, rng_seed=seed + 1) for s in train.seeds]
    log(f"data ready in {time.time() - t0:.0f}s")
    processor = build_processor()
    tok = processor.tokenizer
    model = build_model(tok, hidden=hidden, text_layers=text_layers, vision_layers=vision_layers, heads=4,
                        projection=hidden, seed=seed)
    enc = tok(train.fine, padding="max_length", truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    longest = int(enc["attention_mask"].sum(1).max())
    ids, mask = enc["input_ids"][:, :longest], enc["attention_mask"][:, :longest]
    log(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, vocabulary {len(tok)}, "
        f"longest caption {longest} tokens")
    x_all = pixel_values(train.images, processor)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-6)
    steps_per_epoch = n_train // batch_size
    total = steps_per_epoch * epochs
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(batch_size)
    step, t_train, history = 0, time.time(), []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=gen)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            for g in opt.param_groups:
                g["lr"] = _cosine_lr(step, total, lr, warmup=max(1, total // 20))
            if negatives is None:
                m = mask[idx]
                width = int(m.sum(1).max())
                o = model(input_ids=ids[idx, :width], attention_mask=m[:, :width], pixel_values=x_all[idx])
                logits = o.logits_per_image
                loss = (torch.nn.functional.cross_entropy(logits, labels)
                        + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
            else:
                pick = torch.randint(0, hard_negatives, (batch_size,), generator=gen)
                texts = [train.fine[int(i)] for i in idx] + [negatives[int(i)][int(j) % len(negatives[int(i)])]
                                                             for i, j in zip(idx, pick)]
                b = tok(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
                o = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], pixel_values=x_all[idx])
                logits = o.logits_per_image  # (images, own texts + one-change texts)
                loss = (torch.nn.functional.cross_entropy(logits, labels)
                        + torch.nn.functional.cross_entropy(logits[:, :batch_size].T, labels)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            running += float(loss.detach())
            step += 1
        model.eval()
        top1 = retrieval_top1(model, processor, held.images, held.fine, group=16)
        history.append({"epoch": epoch + 1, "loss": round(running / steps_per_epoch, 4), "heldout_top1_of_16": top1,
                        "seconds": round(time.time() - t_train)})
        log(f"epoch {epoch + 1}/{epochs} loss {running / steps_per_epoch:.3f} held-out top-1 of 16 {top1:.3f} "
            f"logit scale {float(model.logit_scale.exp()):.1f} ({time.time() - t_train:.0f}s)")
    seconds = time.time() - t_train
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    random_model = build_model(tok, hidden=hidden, text_layers=text_layers, vision_layers=vision_layers, heads=4,
                        projection=hidden, seed=seed).eval()
    baseline = retrieval_top1(random_model, processor, held.images, held.fine, group=16)
    from workbench.world.clip import one_change_top1
    from workbench.world.scene import sample_scene

    k = min(500, n_heldout)
    one_change = one_change_top1(model, processor, held.images[:k], [sample_scene(int(s)) for s in held.seeds[:k]])
    log(f"held-out: own caption above 15 one-change captions for {one_change:.3f} of {k} scenes")
    result = {"command": "python -m workbench.world train-clip", "n_train": n_train, "train_seeds": [0, n_train - 1],
              "n_heldout": n_heldout, "heldout_seeds": [HELDOUT_SEED0, HELDOUT_SEED0 + n_heldout - 1],
              "epochs": epochs, "batch_size": batch_size, "lr": lr, "hard_negatives": hard_negatives,
              "hidden": hidden, "text_layers": text_layers, "vision_layers": vision_layers, "seed": seed,
              "steps": total, "train_seconds": round(seconds), "torch_threads": torch.get_num_threads(),
              "heldout_top1_of_16": history[-1]["heldout_top1_of_16"], "random_weights_top1_of_16": baseline,
              "heldout_own_above_15_one_change": one_change, "one_change_scenes": k, "history": history,
              "versions": _versions()}
    (out / "training.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    log(f"saved {out} ({size:.1f} MB) after {seconds:.0f}s of training; random-weights baseline {baseline:.3f}")
    return result
