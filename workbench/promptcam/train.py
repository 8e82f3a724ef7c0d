"""Training: Prompt-CAM prompts on a frozen backbone (the official defaults), and the small ViT we train from scratch on
the synthetic data to stand in for DINO (pretrained weights cannot be downloaded here).

Both loops run through `accelerate` (one process on CPU, or `accelerate launch -m workbench.promptcam train ...` for
several GPUs), show tqdm bars, report validation accuracy every epoch, and write safetensors checkpoints (no pickle);
prompt training resumes from its `last/` checkpoint with `--resume`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from workbench.promptcam.data import ImageFolder
from workbench.promptcam.model import (
    CheckpointMeta, Preprocess, PromptCAM, backbone_fingerprint, backbone_summary, check_compatible, read_checkpoint,
    save_checkpoint,
)


@dataclass
class PromptTrainSettings:
    """Defaults are the official Prompt-CAM config (experiment/config/prompt_cam/dino/cub/args.yaml)."""

    epochs: int = 130  # official: 130
    batch_size: int = 16  # official: 16
    lr: float = 0.005  # official: SGD lr 0.005
    momentum: float = 0.9  # official
    weight_decay: float = 0.001  # official wd
    warmup_epochs: int = 20  # official: linear warm-up from 0 over 20 epochs, then cosine
    lr_min: float = 1e-6  # official cosine floor
    prompt_dropout: float = 0.1  # official vpt_dropout
    seed: int = 42  # official random_seed
    flip: bool = True  # horizontal flips (a bird's traits do not depend on its facing)
    eval_batch_size: int = 32  # official test_batch_size

    def check(self) -> "PromptTrainSettings":
        for name, low, high in (("epochs", 1, 10_000), ("batch_size", 1, 4096), ("warmup_epochs", 0, 10_000),
                                ("eval_batch_size", 1, 4096)):
            value = getattr(self, name)
            if int(value) != value or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}")
        for name, low, high in (("lr", 1e-8, 10.0), ("momentum", 0.0, 0.999), ("weight_decay", 0.0, 1.0),
                                ("lr_min", 0.0, 1.0), ("prompt_dropout", 0.0, 0.9)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")
        if self.warmup_epochs >= self.epochs and self.epochs > 1:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})")
        return self


def lr_at(step: int, total: int, warmup: int, base: float, floor: float) -> float:
    """Linear warm-up from 0, then cosine down to `floor` (timm's CosineLRScheduler as the official config uses)."""
    if warmup and step < warmup:
        return base * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + 0.5 * (base - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


class FolderDataset(torch.utils.data.Dataset):
    """An ImageFolder as tensors; small datasets are decoded once and kept in memory."""

    def __init__(self, folder: ImageFolder, preprocess: Preprocess, cache_limit_bytes: int = 512 * 1024**2):
        self.folder, self.preprocess = folder, preprocess
        self.cache: list[torch.Tensor] | None = None
        if len(folder) * 3 * preprocess.size**2 * 4 <= cache_limit_bytes:
            self.cache = [preprocess([folder.image(i)])[0] for i in range(len(folder))]

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.cache[i] if self.cache is not None else self.preprocess([self.folder.image(i)])[0]
        return x, self.folder.items[i][1]


def _flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    mask = torch.rand(x.shape[0], generator=g) < 0.5
    x = x.clone()
    x[mask] = x[mask].flip(-1)
    return x


def _loader(ds: torch.utils.data.Dataset, batch: int, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=shuffle, generator=g, num_workers=0)


@torch.no_grad()
def accuracy(forward: Callable[[torch.Tensor], torch.Tensor], loader, accelerator=None) -> float:
    correct = total = 0
    for x, y in loader:
        pred = forward(x).argmax(-1)
        if accelerator is not None:
            pred, y = accelerator.gather_for_metrics((pred, y))
        correct += int((pred == y).sum())
        total += int(y.numel())
    return correct / max(1, total)


def _accelerator(cpu: bool):
    from accelerate import Accelerator

    return Accelerator(cpu=cpu)


def _progress(iterable, **kw):
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


def load_backbone(backbone_id: str, device: str = "cpu"):
    """(model, processor) of a frozen backbone with eager attention, through the `vit` backend."""
    from backends.base import ModelSpec
    from workbench.models import load_standalone

    spec = ModelSpec(role="promptcam", backend="vit", model_id=str(backbone_id))
    loaded = load_standalone(spec, device=device, dtype="float32")
    return loaded.model, loaded.processor


def train_prompts(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Train Prompt-CAM prompts (see `_train_prompts`); the seeded global RNG (dropout) is restored afterwards, so
    an in-process call leaves the caller's random state alone."""
    with torch.random.fork_rng(devices=[]):
        return _train_prompts(*args, **kwargs)


def _train_prompts(data_root: str | Path, backbone_id: str, out: str | Path,
                   settings: PromptTrainSettings | None = None, *, resume: bool = False, cpu: bool = False,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train Prompt-CAM prompts + head on `data_root/train`, validating on `data_root/val` every epoch.

    Writes `out/` (the best checkpoint by validation accuracy), `out/last/` (with optimizer state, for --resume)
    and `out/log.jsonl`. Returns the summary written into the checkpoint's `training` field."""
    settings = (settings or PromptTrainSettings()).check()
    data_root, out = Path(data_root), Path(out)
    train_folder = ImageFolder.open(data_root / "train")
    val_folder = ImageFolder.open(data_root / "val", train_folder.class_names)
    accelerator = _accelerator(cpu)
    backbone, processor = load_backbone(backbone_id, device="cpu")
    preprocess = Preprocess.for_backbone(backbone.config, processor)
    torch.manual_seed(settings.seed)  # prompt dropout draws from it (inside fork_rng: restored on return)
    model = PromptCAM(backbone, len(train_folder.class_names), prompt_dropout=settings.prompt_dropout,
                      seed=settings.seed)
    params = [model.prompts, *model.head.parameters()]
    optimizer = torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    start_epoch, best_acc, history = 0, -1.0, []
    meta = CheckpointMeta(backbone=str(backbone_id), backbone_config=backbone_summary(backbone.config),
                          backbone_fingerprint=backbone_fingerprint(backbone), class_names=train_folder.class_names,
                          preprocess=asdict(preprocess), training={"settings": asdict(settings)})
    if resume:
        last = out / "last"
        prev, tensors = read_checkpoint(last)
        check_compatible(prev, tensors, backbone, where=f"checkpoint '{last}'")
        if prev.class_names != train_folder.class_names:
            raise ValueError(f"cannot resume: checkpoint '{last}' has classes {prev.class_names}, the dataset has "
                             f"{train_folder.class_names}")
        model.load_trainable_state(tensors)
        for i, p in enumerate(params):
            key = f"optim.momentum.{i}"
            if key in tensors:
                optimizer.state[p]["momentum_buffer"] = tensors[key].clone()
        start_epoch = int(prev.training.get("epoch", 0))
        best_acc = float(prev.training.get("best_val_accuracy", -1.0))
        history = list(prev.training.get("history", []))
        log(f"resuming from epoch {start_epoch} (best val accuracy so far {best_acc:.3f})")
    train_ds = FolderDataset(train_folder, preprocess)
    val_ds = FolderDataset(val_folder, preprocess)
    train_loader = _loader(train_ds, settings.batch_size, True, settings.seed + start_epoch)
    val_loader = _loader(val_ds, settings.eval_batch_size, False, 0)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    core = accelerator.unwrap_model(model)
    steps_per_epoch = len(train_loader)
    total = settings.epochs * steps_per_epoch
    g = torch.Generator().manual_seed(settings.seed + 1 + start_epoch)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for epoch in range(start_epoch, settings.epochs):
        model.train()
        running, seen = 0.0, 0
        bar = _progress(train_loader, desc=f"prompts epoch {epoch + 1}/{settings.epochs}", leave=False,
                        disable=not accelerator.is_local_main_process)
        for step, (x, y) in enumerate(bar):
            lr = lr_at(epoch * steps_per_epoch + step, total, settings.warmup_epochs * steps_per_epoch, settings.lr,
                       settings.lr_min)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if settings.flip:
                x = _flip(x, g)
            loss = loss_fn(model(x).logits, y)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            running += float(loss.detach()) * len(y)
            seen += len(y)
            bar.set_postfix(loss=f"{running / seen:.3f}", lr=f"{lr:.2e}")
        model.eval()
        val_acc = accuracy(lambda px: model(px).logits, val_loader, accelerator)
        row = {"epoch": epoch + 1, "train_loss": round(running / max(1, seen), 4), "val_accuracy": round(val_acc, 4),
               "seconds": round(time.perf_counter() - started, 1)}
        history.append(row)
        log(json.dumps(row))
        if accelerator.is_main_process:
            improved = val_acc > best_acc
            best_acc = max(best_acc, val_acc)
            meta.training.update({"epoch": epoch + 1, "best_val_accuracy": best_acc, "history": history})
            momentum = {f"optim.momentum.{i}": optimizer.state[p]["momentum_buffer"].detach().cpu().contiguous()
                        for i, p in enumerate(params) if "momentum_buffer" in optimizer.state.get(p, {})}
            save_checkpoint(core, out / "last", meta, extra=momentum)
            if improved:
                save_checkpoint(core, out, meta)
            with open(out / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    accelerator.wait_for_everyone()
    return {"best_val_accuracy": best_acc, "epochs": settings.epochs, "history": history,
            "seconds": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------- the stand-in backbone


@dataclass
class BackboneSettings:
    """A small ViT trained from scratch, supervised, on the synthetic train split (standing in for DINO)."""

    hidden_size: int = 64  # ~0.2 M parameters: trains from scratch on 2 CPU cores in minutes
    num_layers: int = 4
    num_heads: int = 4
    patch_size: int = 8  # 64 px -> an 8 x 8 patch grid
    image_size: int = 64
    epochs: int = 50  # a from-scratch ViT sits at chance for ~10 epochs before it finds the traits
    batch_size: int = 32
    lr: float = 2e-3  # AdamW, cosine with warm-up: the usual small-ViT-from-scratch recipe
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    seed: int = 0
    flip: bool = True

    def check(self) -> "BackboneSettings":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must divide by num_heads {self.num_heads}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if not 1 <= self.epochs <= 10_000:
            raise ValueError(f"epochs must be between 1 and 10000, got {self.epochs}")
        return self


def train_backbone(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Train the stand-in backbone (see `_train_backbone`) with the caller's random state restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        return _train_backbone(*args, **kwargs)


def _train_backbone(data_root: str | Path, out: str | Path, settings: BackboneSettings | None = None, *,
                    cpu: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a ViT (CLS + linear head) on `data_root/train`; save the ViTModel (without the head) and its image
    processor with `save_pretrained` (safetensors) in `out`, keeping the epoch with the best validation accuracy."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    settings = (settings or BackboneSettings()).check()
    data_root, out = Path(data_root), Path(out)
    train_folder = ImageFolder.open(data_root / "train")
    val_folder = ImageFolder.open(data_root / "val", train_folder.class_names)
    accelerator = _accelerator(cpu)
    torch.manual_seed(settings.seed)  # weight init (inside fork_rng: restored on return)
    config = ViTConfig(hidden_size=settings.hidden_size, num_hidden_layers=settings.num_layers,
                       num_attention_heads=settings.num_heads, intermediate_size=4 * settings.hidden_size,
                       image_size=settings.image_size, patch_size=settings.patch_size, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0)
    config._attn_implementation = "eager"
    vit = ViTModel(config, add_pooling_layer=False)
    processor = ViTImageProcessor(size={"height": settings.image_size, "width": settings.image_size},
                                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    preprocess = Preprocess.for_backbone(config, processor)
    head = nn.Linear(settings.hidden_size, len(train_folder.class_names))
    model = nn.ModuleDict({"vit": vit, "head": head})

    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return m["head"](m["vit"](pixel_values=x).last_hidden_state[:, 0])

    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    train_loader = _loader(FolderDataset(train_folder, preprocess), settings.batch_size, True, settings.seed)
    val_loader = _loader(FolderDataset(val_folder, preprocess), 64, False, 0)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    steps_per_epoch = len(train_loader)
    total = settings.epochs * steps_per_epoch
    g = torch.Generator().manual_seed(settings.seed + 1)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    best, history, started = -1.0, [], time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        running, seen = 0.0, 0
        bar = _progress(train_loader, desc=f"backbone epoch {epoch + 1}/{settings.epochs}", leave=False,
                        disable=not accelerator.is_local_main_process)
        for step, (x, y) in enumerate(bar):
            lr = lr_at(epoch * steps_per_epoch + step, total, settings.warmup_epochs * steps_per_epoch, settings.lr,
                       settings.lr * 0.01)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if settings.flip:
                x = _flip(x, g)
            loss = loss_fn(forward(model, x), y)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            running += float(loss.detach()) * len(y)
            seen += len(y)
            bar.set_postfix(loss=f"{running / seen:.3f}")
        model.eval()
        val_acc = accuracy(lambda px: forward(model, px), val_loader, accelerator)
        row = {"epoch": epoch + 1, "train_loss": round(running / max(1, seen), 4), "val_accuracy": round(val_acc, 4),
               "seconds": round(time.perf_counter() - started, 1)}
        history.append(row)
        log(json.dumps(row))
        if val_acc > best and accelerator.is_main_process:
            best = val_acc
            core = accelerator.unwrap_model(model)
            core["vit"].save_pretrained(out, safe_serialization=True)
            processor.save_pretrained(out)
    summary = {"settings": asdict(settings), "class_names": train_folder.class_names, "best_val_accuracy": best,
               "history": history, "seconds": round(time.perf_counter() - started, 1),
               "note": "supervised on the synthetic train split with a linear CLS head (head not saved); "
                       "a stand-in for a self-supervised DINO backbone"}
    if accelerator.is_main_process:
        (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
