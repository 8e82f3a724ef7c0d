"""`python -m workbench.world eval`: the shipped world models measured on held-out scenes (seeds from
HELDOUT_SEED0, never seen in training), each beside the same architecture with random weights.

- Attribute classifier: accuracy per attribute (per object in its true cell: position, shape, colour, size,
  finish; per scene: the exact set of occupied cells, background kind and colour, effect, style).
- Small CLIP: top-1 fine caption among 16 (the scene's own and 15 of other held-out scenes), and the harder test
  of the scene's own caption against 15 captions of the same scene with one attribute changed."""

from __future__ import annotations

from pathlib import Path

from workbench.world.data import HELDOUT_SEED0, load_scenes

MAX_EVAL = 20_000


def random_classifier(config: dict, seed: int = 0):
    import torch

    from workbench.world.classifier import AttributeClassifier, build_network

    torch.manual_seed(seed)
    return AttributeClassifier(build_network(config).eval(), config, "random weights")


def random_clip(path: str | Path, seed: int = 0):
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    return CLIPModel(CLIPConfig.from_pretrained(str(path))).eval()


def load_clip(path: str | Path):
    from transformers import AutoProcessor, CLIPModel

    return CLIPModel.from_pretrained(str(path)).eval(), AutoProcessor.from_pretrained(str(path))


def evaluate_models(n: int = 1_000, classifier_dir: str | Path | None = None, clip_dir: str | Path | None = None,
                    workers: int = 1) -> list[dict]:
    """Rows {"model", "metric", "trained", "random", "n"} for the table."""
    from workbench.world.classifier import SHIPPED as CLASSIFIER_DIR
    from workbench.world.classifier import AttributeClassifier, evaluate
    from workbench.world.clip import SHIPPED as CLIP_DIR
    from workbench.world.clip import one_change_scores, retrieval_top1
    from workbench.world.scene import sample_scene

    if not isinstance(n, int) or isinstance(n, bool) or not 16 <= n <= MAX_EVAL:
        raise ValueError(f"n must be an integer in [16, {MAX_EVAL}], got {n!r}")
    held = load_scenes(HELDOUT_SEED0, n, workers=workers)
    rows: list[dict] = []
    clf = AttributeClassifier.load(classifier_dir or CLASSIFIER_DIR)
    trained, rand = evaluate(clf, held), evaluate(random_classifier(clf.config), held)
    for k, v in trained.items():
        if isinstance(v, float):
            unit = trained["objects"] if k in ("position", "shape", "colour", "size", "finish") else trained["scenes"]
            if k == "cells (occupied or empty)":
                unit = 9 * trained["scenes"]
            name = {"position": "position (object's cell found)"}.get(k, k)
            rows.append({"model": "attribute classifier", "metric": f"{name} accuracy", "trained": v,
                         "random": rand[k], "n": unit})
    path = clip_dir or CLIP_DIR
    model, processor = load_clip(path)
    rows.append({"model": "small CLIP", "metric": "top-1 caption of 16", "n": n,
                 "trained": retrieval_top1(model, processor, held.images, held.fine, group=16),
                 "random": retrieval_top1(random_clip(path), processor, held.images, held.fine, group=16)})
    scenes = [sample_scene(int(seed)) for seed in held.seeds]
    trained = one_change_scores(model, processor, held.images, scenes)
    rand = one_change_scores(random_clip(path), processor, held.images, scenes)
    rows.append({"model": "small CLIP", "metric": "own caption above 15 one-change", "n": n,
                 "trained": trained[0], "random": rand[0]})
    rows.append({"model": "small CLIP", "metric": "own above one one-change (pairs)", "n": 15 * n,
                 "trained": trained[1], "random": rand[1]})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'model':<22} {'metric (held-out)':<40} {'trained':>8} {'random weights':>15} {'n':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<22} {r['metric']:<40} {r['trained']:>8.3f} {r['random']:>15.3f} {r['n']:>6}")
    return "\n".join(lines)
