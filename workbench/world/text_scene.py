"""Scene reading: fine-tune the small CLIP's text encoder so that its token states tell, cell by cell, what a caption
puts where, before the world's UNet learns to draw from them (`train-t2i --text-init scene`).

Why: the UNet's cross-attention is one hop. A latent position in the top-left cell must find, among the caption's
77 token states, the one that says what lies there, and read its shape and colour from that same state. The CLIP
(trained contrastively) spreads an object's words over several tokens and barely marks the place (see
diffusion.TEXT_LR); a UNet trained 1,600-3,000 steps on it, or on a fresh text encoder trained with it, never
placed an object. A UNet given one clean token per occupied cell placed objects within 50 steps.

The objective imitates that hop. A `SceneReader` holds ten learned queries, one per grid cell and one for the scene,
and reads the encoder's states with single-head attention (linear keys and values, every one of the 77 positions
attended, padding included, as the pipeline's cross-attention does); linear heads then name each cell's shape
("empty" included), colour, size and finish, and the scene's background, its colour, the effect and the style.
Cross-entropy on the training captions' ground-truth labels trains the encoder and the reader together; the reader
is then dropped and the encoder is what the pipeline ships. Only fine captions are read (a coarse caption does not
say where its objects are), and relation captions ("a star above a ring") keep their labels: the reader learns
which cells they allow.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from workbench.world.data import CELL_LABELS, SCENE_LABELS, Batch, label_names
from workbench.world.vocabulary import load_vocabulary

READER_DIM = 64
LABELS = (*CELL_LABELS, *SCENE_LABELS)


class SceneReader(torch.nn.Module):
    """Ten learned queries (nine grid cells, row-major, then the scene) attend over a text encoder's hidden states
    with one head; linear heads name the cell and scene labels (`data.label_names`)."""

    def __init__(self, hidden_size: int, dim: int = READER_DIM):
        super().__init__()
        names = label_names(load_vocabulary())
        self.queries = torch.nn.Parameter(torch.randn(10, dim) * 0.5)
        self.key = torch.nn.Linear(hidden_size, dim)
        self.value = torch.nn.Linear(hidden_size, dim)
        self.heads = torch.nn.ModuleDict({k: torch.nn.Linear(dim, len(names[k])) for k in LABELS})
        self.dim = dim

    def forward(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, L, hidden) -> logits per label: cell labels (B, 9, classes), scene labels (B, classes)."""
        att = torch.softmax(torch.einsum("qd,bld->bql", self.queries, self.key(states)) / self.dim ** 0.5, -1)
        read = torch.einsum("bql,bld->bqd", att, self.value(states))
        out = {k: self.heads[k](read[:, :9]) for k in CELL_LABELS}
        out.update({k: self.heads[k](read[:, 9]) for k in SCENE_LABELS})
        return out


def scene_targets(batch: Batch) -> dict[str, torch.Tensor]:
    """The labels the reader is trained on (data.IGNORE, -1, where an attribute does not apply)."""
    return {k: torch.as_tensor(np.asarray(batch.labels[k])).long() for k in LABELS}


def reader_loss(out: dict, targets: dict, idx) -> torch.Tensor:
    return sum(torch.nn.functional.cross_entropy(out[k].reshape(-1, out[k].shape[-1]),
                                                 targets[k][idx].reshape(-1), ignore_index=-1) for k in LABELS)


def states_in_order(enc, ids, batch_size: int = 256) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([enc(ids[i:i + batch_size])[0] for i in range(0, len(ids), batch_size)])


def reading_accuracy(enc, reader: SceneReader, ids, targets: dict, placed: torch.Tensor) -> dict[str, float]:
    """Held-out accuracy per label. Cell labels are scored on the captions that place every object (`placed`, no
    relation), over the cells where the label applies (shape: all nine, "empty" included)."""
    was = enc.training
    enc.eval()
    with torch.inference_mode():
        out = reader(states_in_order(enc, ids))
    enc.train(was)
    res = {}
    for k in CELL_LABELS:
        pred, true = out[k].argmax(-1)[placed], targets[k][placed]
        keep = true >= 0
        res[k] = float((pred[keep] == true[keep]).float().mean()) if keep.any() else float("nan")
    for k in SCENE_LABELS:
        res[k] = float((out[k].argmax(-1) == targets[k]).float().mean())
    return res


def pretrain_scene_text(enc, ids, train: Batch, steps: int, seed: int, heldout_ids=None, heldout: Batch | None = None,
                        batch_size: int = 128, lr: float = 1e-3, log: Callable[[str], None] = print) -> dict:
    """Fine-tune `enc` (a CLIPTextModel, in place) with a fresh SceneReader on the fine captions' token ids `ids`
    (N, 77) and their scenes' labels `train`, `steps` AdamW steps on a cosine schedule. Returns what to record:
    steps, seconds, final loss and, given `heldout_ids`/`heldout`, the held-out reading accuracy per label."""
    torch.manual_seed(seed + 5)
    reader = SceneReader(enc.config.hidden_size)
    targets = scene_targets(train)
    params = [*enc.parameters(), *reader.parameters()]
    was = [p.requires_grad for p in enc.parameters()]
    enc.train().requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(seed + 6)
    t0, running, loss = time.time(), 0.0, torch.zeros(())
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / 50) * 0.5 * (1 + np.cos(np.pi * step / steps))
        idx = torch.randint(0, len(ids), (batch_size,), generator=gen)
        loss = reader_loss(reader(enc(ids[idx])[0]), targets, idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running += float(loss.detach())
        if step % 100 == 0 or step == steps:
            log(f"scene reading step {step}/{steps} loss {running / (100 if step % 100 == 0 else step % 100):.4f} "
                f"({time.time() - t0:.0f}s)")
            running = 0.0
    enc.eval()
    for p, w in zip(enc.parameters(), was):
        p.requires_grad_(w)
    record = {"steps": steps, "batch_size": batch_size, "lr": lr, "seconds": round(time.time() - t0),
              "final_loss": round(float(loss.detach()), 4), "reader_dim": READER_DIM}
    if heldout is not None and heldout_ids is not None:
        phrases = tuple(load_vocabulary().positions)
        placed = torch.tensor([any(p in caption for p in phrases) for caption in heldout.fine])
        acc = reading_accuracy(enc, reader, heldout_ids, scene_targets(heldout), placed)
        record["heldout"] = {k: round(v, 4) for k, v in acc.items()}
        record["heldout_captions"] = len(heldout_ids)
        log("held-out scene reading: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    return record
