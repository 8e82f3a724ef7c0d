"""Prompt-CAM vs Grad-CAM vs attention rollout on the synthetic dataset's held-out split, in one run.

For every test image, with the class set to the image's true class: Prompt-CAM's top head (greedy head blurring),
the mean of all heads, Grad-CAM (captum LayerGradCam) and rollout (class-agnostic) are measured by
- pointing game: the map's highest patch contains trait pixels;
- energy in mask: the map's share on trait pixels (a uniform map scores the mask's area share, shown as "uniform");
- deletion AUC (lower is better) and insertion AUC (higher is better) of the true class's probability, removing or
  revealing patches in the map's order (16 steps);
- milliseconds per image for each method (same process, same threads, side by side).
Classification accuracy of the Prompt-CAM checkpoint is printed above the table.

    OMP_NUM_THREADS=1 python -m bench.bench_promptcam [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import torch

    from workbench.promptcam.data import DatasetSettings, ImageFolder, iter_split, trait_grid
    from workbench.promptcam.explain import (
        attention_rollout, auc, box_blur, deletion_insertion, energy_in_mask, grad_cam, normalise_map,
        pointing_hit, rank_heads,
    )
    from workbench.promptcam.model import Preprocess, load_promptcam
    from workbench.promptcam.train import load_backbone

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "assets/promptcam/checkpoint")
    parser.add_argument("--backbone", default=None, help="default: the checkpoint's backbone (repo-relative path)")
    parser.add_argument("--data", type=Path, default=None,
                        help="an image folder with masks (the generator's test/); default: regenerate the test split "
                             "from the recipe's dataset settings in memory")
    parser.add_argument("--limit", type=int, default=0, help="images per class (0 = all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    meta = json.loads((args.checkpoint / "promptcam.json").read_text())
    backbone_id = args.backbone or meta["backbone"]
    if not Path(backbone_id).is_absolute() and (ROOT / backbone_id).exists():
        backbone_id = str(ROOT / backbone_id)
    backbone, processor = load_backbone(backbone_id, device=args.device)
    model, meta_obj = load_promptcam(backbone, args.checkpoint)
    model.to(args.device)
    pre = Preprocess.for_backbone(backbone.config, processor)
    classes = meta_obj.class_names
    patch = model.backbone.config.patch_size

    samples = []  # (image, label, mask)
    if args.data:
        folder = ImageFolder.open(args.data, classes)
        per: dict[int, int] = {}
        for i, (_, label) in enumerate(folder.items):
            if args.limit and per.get(label, 0) >= args.limit:
                continue
            per[label] = per.get(label, 0) + 1
            samples.append((folder.image(i), label, folder.mask(i)))
    else:
        summary = json.loads((args.checkpoint.parent / "recipe_summary.json").read_text())
        ds = DatasetSettings(**summary["dataset"])
        for label, i, img, mask in iter_split(ds, "test"):
            if args.limit and i >= args.limit:
                continue
            # generator labels follow its trait table; the checkpoint's follow the sorted class folders
            samples.append((img, classes.index(ds.class_names[label]), mask))

    methods = ("Prompt-CAM top head", "Prompt-CAM mean of heads", "Grad-CAM", "Attention rollout", "uniform")
    rows = {m: {"hit": [], "energy": [], "del": [], "ins": [], "ms": []} for m in methods}
    correct = 0
    threads = torch.get_num_threads()
    warm = pre([samples[0][0]]).to(args.device)  # first calls import captum and build kernels: not timed
    grad_cam(model, warm, 0)
    attention_rollout(model.backbone, warm)
    rank_heads(model, warm, 0)
    started = time.perf_counter()
    for img, label, mask in samples:
        pixels = pre([img]).to(args.device)
        grid_mask = trait_grid(mask, pre.size, patch)
        t = time.perf_counter()
        with torch.no_grad():
            logits, maps = model.head_maps(pixels, label)
        t_maps = time.perf_counter() - t
        correct += int(int(logits.argmax(-1)) == label)
        t = time.perf_counter()
        ranking = rank_heads(model, pixels, label, keep=1)
        t_rank = time.perf_counter() - t
        maps = maps[0].cpu().numpy()
        t = time.perf_counter()
        gc = grad_cam(model, pixels, label)[0]
        t_gc = time.perf_counter() - t
        t = time.perf_counter()
        ro = attention_rollout(model.backbone, pixels)[0]
        t_ro = time.perf_counter() - t
        found = {
            "Prompt-CAM top head": (normalise_map(maps[ranking.order[0]]), t_maps + t_rank),
            "Prompt-CAM mean of heads": (normalise_map(maps.mean(0)), t_maps),
            "Grad-CAM": (gc, t_gc),
            "Attention rollout": (ro, t_ro),
            "uniform": (np.full(maps.shape[1:], 1.0 / maps[0].size), 0.0),
        }
        blurred = box_blur(pixels)
        for name, (m, secs) in found.items():
            r = rows[name]
            r["hit"].append(pointing_hit(m, grid_mask))
            r["energy"].append(energy_in_mask(m, grid_mask))
            if name == "uniform":  # a random patch order stands in: uniform maps have no order
                rng = np.random.default_rng(len(r["del"]))
                m = rng.random(m.shape)
            d, i = deletion_insertion(model, pixels, m, label, blurred=blurred)
            r["del"].append(auc(d))
            r["ins"].append(auc(i))
            r["ms"].append(secs * 1000)
    elapsed = time.perf_counter() - started
    # The uniform row's pointing game: the chance that a random patch holds trait pixels.
    rows["uniform"]["hit"] = [float(np.mean(trait_grid(mk, pre.size, patch).reshape(-1) > 0)) for _, _, mk in samples]
    n = len(samples)
    print(f"Prompt-CAM benchmark: {n} held-out images, {len(classes)} classes, backbone {meta['backbone']}, "
          f"checkpoint {args.checkpoint.relative_to(ROOT) if args.checkpoint.is_relative_to(ROOT) else args.checkpoint}"
          f", device {args.device}, torch threads {threads}, {elapsed:.0f} s")
    print(f"Accuracy (top-1): {correct / n:.1%} ({correct}/{n}); chance {1 / len(classes):.1%}")
    header = f"| {'method':<26} | pointing hit | energy in mask | deletion AUC (lower better) | " \
             f"insertion AUC (higher better) | ms / image |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    table = {}
    for name in methods:
        r = rows[name]
        vals = {k: float(np.mean(v)) for k, v in r.items()}
        table[name] = vals
        ms = "—" if name == "uniform" else f"{vals['ms']:.1f}"
        print(f"| {name:<26} | {vals['hit']:>12.1%} | {vals['energy']:>14.1%} | {vals['del']:>27.3f} | "
              f"{vals['ins']:>29.3f} | {ms:>10} |")
    gc, pc = table["Grad-CAM"], table["Prompt-CAM top head"]
    print(f"Ratios, Prompt-CAM top head / Grad-CAM: energy in mask {pc['energy'] / max(gc['energy'], 1e-9):.2f}x, "
          f"pointing {pc['hit'] / max(gc['hit'], 1e-9):.2f}x, time {pc['ms'] / max(gc['ms'], 1e-9):.2f}x")
    print("uniform row: pointing = chance a random patch holds trait pixels; energy = trait area share; "
          "deletion/insertion with a random patch order.")
    if args.json:
        args.json.write_text(json.dumps({"n": n, "accuracy": correct / n, "table": table, "threads": threads,
                                         "seconds": elapsed}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
