"""Command line: `python -m workbench.promptcam {generate,train-backbone,train,recipe} ...`.

`recipe` rebuilds the shipped assets/promptcam/ from nothing: it writes the synthetic dataset, trains the small ViT
backbone from scratch, freezes it, trains the Prompt-CAM prompts, copies example images, and writes TRAINING.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

from workbench.promptcam.data import DatasetSettings, ImageFolder, write_dataset
from workbench.promptcam.train import BackboneSettings, PromptTrainSettings, train_backbone, train_prompts


def _add_settings(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    defaults = cls()
    for f in fields(cls):
        if f.name in skip:
            continue
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes", "on"), default=default,
                                metavar="BOOL", help=f"(default {default})")
        elif isinstance(default, (int, float)):
            parser.add_argument(flag, type=type(default), default=default, help=f"(default {default})")


def _settings(cls, args: argparse.Namespace, **extra):
    given = vars(args)
    values = {f.name: given[f.name] for f in fields(cls) if f.name in given}
    values.update(extra)
    return cls(**values)


def _dataset_settings(args: argparse.Namespace) -> DatasetSettings:
    return DatasetSettings(seed=args.seed, num_classes=args.classes, image_size=args.size,
                           per_class={"train": args.train, "val": args.val, "test": args.test}).check()


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    d = DatasetSettings()
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--classes", type=int, default=d.num_classes)
    p.add_argument("--size", type=int, default=d.image_size)
    p.add_argument("--train", type=int, default=d.per_class["train"], help="images per class")
    p.add_argument("--val", type=int, default=d.per_class["val"])
    p.add_argument("--test", type=int, default=d.per_class["test"])


# The CPU recipe: the official prompt-training settings, shortened (epochs, warm-up) to fit ~10 minutes on 2 cores.
RECIPE_PROMPTS = dict(epochs=30, warmup_epochs=3, batch_size=16, lr=0.005)


def recipe(out: Path, work: Path, cpu: bool, backbone_epochs: int, prompt_epochs: int, lr: float) -> dict:
    started = time.perf_counter()
    data = work / "data"
    if data.exists():
        shutil.rmtree(data)
    ds = DatasetSettings()
    t0 = time.perf_counter()
    write_dataset(data, ds)
    gen_seconds = time.perf_counter() - t0
    backbone_dir = out / "backbone"
    bb_settings = BackboneSettings(epochs=backbone_epochs)
    bb = train_backbone(data, backbone_dir, bb_settings, cpu=cpu)
    pt_settings = PromptTrainSettings(**{**RECIPE_PROMPTS, "epochs": prompt_epochs, "lr": lr})
    ckpt_dir = out / "checkpoint"
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    # The checkpoint names its backbone by the repository-relative path the profiles use.
    pt = train_prompts(data, str(backbone_dir), ckpt_dir, pt_settings, cpu=cpu)
    shutil.rmtree(ckpt_dir / "last", ignore_errors=True)  # resume state is not shipped
    meta_path = ckpt_dir / "promptcam.json"
    meta = json.loads(meta_path.read_text())
    meta["backbone"] = "assets/promptcam/backbone"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    # Examples: the first two test images of each class, with their masks.
    ex_dir = out / "examples"
    if ex_dir.exists():
        shutil.rmtree(ex_dir)
    ex_dir.mkdir(parents=True)
    test = ImageFolder.open(data / "test")
    examples = []
    per_class: dict[int, int] = {}
    for i, (path, label) in enumerate(test.items):
        if per_class.get(label, 0) >= 2:
            continue
        per_class[label] = per_class.get(label, 0) + 1
        name = f"{test.class_names[label]}_{path.stem}.png"
        shutil.copy(path, ex_dir / name)
        mask = test.mask(i)
        from PIL import Image
        import numpy as np

        Image.fromarray(mask.astype(np.uint8) * 255).save(ex_dir / f"mask_{name}")
        examples.append({"file": name, "mask": f"mask_{name}", "true_class": test.class_names[label]})
    (ex_dir / "examples.json").write_text(json.dumps(examples, indent=2) + "\n")
    annotate_examples(out)
    total = time.perf_counter() - started
    summary = {"dataset": asdict(ds), "generate_seconds": round(gen_seconds, 1), "backbone": bb, "prompts": pt,
               "total_seconds": round(total, 1)}
    (out / "recipe_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_training_md(out, summary)
    return summary


def annotate_examples(out: Path) -> list[dict]:
    """Record in examples.json what the shipped checkpoint predicts for each example (they are not cherry-picked:
    the first two test images of each class)."""
    import torch

    from PIL import Image

    from workbench.promptcam.model import Preprocess, load_promptcam
    from workbench.promptcam.train import load_backbone

    backbone, processor = load_backbone(str(out / "backbone"))
    model, meta = load_promptcam(backbone, out / "checkpoint")
    pre = Preprocess.for_backbone(backbone.config, processor)
    index = out / "examples" / "examples.json"
    examples = json.loads(index.read_text())
    for e in examples:
        with Image.open(out / "examples" / e["file"]) as im, torch.no_grad():
            probs = torch.softmax(model(pre([im.convert("RGB")])).logits, -1)[0]
        e["predicted"] = meta.class_names[int(probs.argmax())]
        e["probability"] = round(float(probs.max()), 4)
    index.write_text(json.dumps(examples, indent=2) + "\n")
    return examples


def write_training_md(out: Path, summary: dict, cpu_note: str = "") -> Path:
    """assets/promptcam/TRAINING.md from the recipe's summary: command, settings, time, accuracy, versions."""
    from workbench.types import package_versions

    bb, pt, ds = summary["backbone"], summary["prompts"], summary["dataset"]
    versions = package_versions("accelerate", "safetensors")
    rows_bb = "\n".join(f"| {r['epoch']} | {r['train_loss']} | {r['val_accuracy']:.3f} |" for r in bb["history"]
                        if r["epoch"] % 5 == 0 or r["epoch"] == 1)
    rows_pt = "\n".join(f"| {r['epoch']} | {r['train_loss']} | {r['val_accuracy']:.3f} |" for r in pt["history"]
                        if r["epoch"] % 5 == 0 or r["epoch"] == 1)
    text = f"""# The shipped Prompt-CAM checkpoint: how it was made

Rebuild everything here from nothing (dataset, backbone, prompts, examples, this file) with one command:

```bash
OMP_NUM_THREADS=1 python -m workbench.promptcam recipe --out assets/promptcam --work build/promptcam
```

Pretrained DINO / DINOv2 weights cannot be downloaded on the machines this project is built on, so the recipe
(a) trains a **small ViT from scratch** on the synthetic dataset as a stand-in for DINO, then (b) **freezes** it
and trains Prompt-CAM's class prompts and head on it. The stand-in is weaker and, unlike DINO, was trained with the
same labels (supervised, linear head on CLS, head discarded): an easier setting than the paper's. On real data use a
real backbone: `python -m workbench.promptcam train --data DIR --backbone facebook/dinov2-base --out CKPT`.

## Data (`workbench/promptcam/data.py`)

Synthetic birds, {ds['num_classes']} classes ({', '.join(bb['class_names'])}), {ds['image_size']} px, seed
{ds['seed']}, per class {ds['per_class']}, {ds['clutter']} clutter shapes, decoy blob probability {ds['decoy_prob']}.
Classes differ only by one small trait (a coloured crown, a wing bar, a tail tip, ...); each image has its trait
mask. Generation took {summary['generate_seconds']} s.

## (a) Backbone (`assets/promptcam/backbone/`, transformers `ViTModel`, safetensors)

Settings: `{json.dumps(bb['settings'])}`.
Best validation accuracy (its own linear head): **{bb['best_val_accuracy']:.3f}**; {bb['seconds']} s.

| epoch | train loss | val accuracy |
|---|---|---|
{rows_bb}

## (b) Prompt-CAM prompts (`assets/promptcam/checkpoint/`: prompts.safetensors + promptcam.json)

The official defaults (SGD lr 0.005, momentum 0.9, weight decay 0.001, batch 16, prompt dropout 0.1, linear
warm-up then cosine to 1e-6) with epochs and warm-up shortened for a CPU: `{json.dumps(pt_settings_of(out))}`.
Best validation accuracy: **{pt['best_val_accuracy']:.3f}** (chance {1 / ds['num_classes']:.3f}); {pt['seconds']} s.

| epoch | train loss | val accuracy |
|---|---|---|
{rows_pt}

## Time and machine

Total {summary['total_seconds']} s wall clock, one process, `OMP_NUM_THREADS=1`, CPU only. {cpu_note}
Versions: {', '.join(f'{k} {v}' for k, v in versions.items())}.

Held-out test accuracy and the localisation comparison with Grad-CAM and rollout: `python -m bench.bench_promptcam`
(numbers in the README's Prompt-CAM section).
"""
    path = out / "TRAINING.md"
    path.write_text(text, encoding="utf-8")
    return path


def pt_settings_of(out: Path) -> dict:
    meta = json.loads((out / "checkpoint" / "promptcam.json").read_text())
    return meta["training"]["settings"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.promptcam", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write the synthetic fine-grained dataset (images + trait masks)")
    g.add_argument("--out", required=True, type=Path)
    _add_dataset_args(g)

    b = sub.add_parser("train-backbone", help="train the small stand-in ViT from scratch on an image folder")
    b.add_argument("--data", required=True, type=Path, help="dataset root with train/ and val/ class folders")
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is present")
    _add_settings(b, BackboneSettings)

    t = sub.add_parser("train", help="train Prompt-CAM prompts on a frozen backbone (official defaults)")
    t.add_argument("--data", required=True, type=Path, help="dataset root with train/ and val/ class folders")
    t.add_argument("--backbone", required=True,
                   help="hub id (facebook/dino-vitb16, facebook/dinov2-base, ...) or a local save_pretrained folder")
    t.add_argument("--out", required=True, type=Path, help="checkpoint folder (best epoch; last/ for --resume)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last")
    t.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is present")
    _add_settings(t, PromptTrainSettings)

    r = sub.add_parser("recipe", help="rebuild assets/promptcam from the generator (dataset, backbone, prompts)")
    r.add_argument("--out", type=Path, default=Path("assets/promptcam"))
    r.add_argument("--work", type=Path, default=Path("build/promptcam"), help="where the dataset is written")
    r.add_argument("--backbone-epochs", type=int, default=BackboneSettings().epochs)
    r.add_argument("--prompt-epochs", type=int, default=RECIPE_PROMPTS["epochs"])
    r.add_argument("--lr", type=float, default=RECIPE_PROMPTS["lr"])
    r.add_argument("--cpu", action="store_true")

    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            root = write_dataset(args.out, _dataset_settings(args))
            print(f"wrote {root}")
        elif args.command == "train-backbone":
            summary = train_backbone(args.data, args.out, _settings(BackboneSettings, args), cpu=args.cpu)
            print(f"best val accuracy {summary['best_val_accuracy']:.3f}; saved {args.out}")
        elif args.command == "train":
            summary = train_prompts(args.data, args.backbone, args.out, _settings(PromptTrainSettings, args),
                                    resume=args.resume, cpu=args.cpu)
            print(f"best val accuracy {summary['best_val_accuracy']:.3f}; saved {args.out}")
        elif args.command == "recipe":
            summary = recipe(args.out, args.work, args.cpu, args.backbone_epochs, args.prompt_epochs, args.lr)
            print(json.dumps({k: summary[k] for k in ("total_seconds",)} | {
                "backbone_val": summary["backbone"]["best_val_accuracy"],
                "prompts_val": summary["prompts"]["best_val_accuracy"], "python": platform.python_version()}))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
