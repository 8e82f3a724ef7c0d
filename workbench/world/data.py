"""Training and held-out data for the world's models: rendered stills, their captions and per-cell labels.

Seeds split the world: training scenes come from seeds [0, HELDOUT_SEED0), held-out scenes from
HELDOUT_SEED0 upwards, so no held-out scene is ever seen in training. Renders are cached in chunks of CHUNK
seeds under the workbench cache (`WORKBENCH_CACHE`), keyed by generator version, vocabulary digest and size, so
two trainers share one rendering and a changed generator never reads stale images.

Labels (the attribute classifier's targets): an object sits in one cell of the 3x3 grid (cells are distinct in
every scene), so a scene is read as 9 cells, each empty or holding one object with a shape, colour, size and
finish, plus the background kind and colour, the effect and the style."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.world.render import render
from workbench.world.scene import Scene, sample_scene, sample_simple_scene
from workbench.world.vocabulary import Vocabulary, load_vocabulary

HELDOUT_SEED0 = 1_000_000
CHUNK = 500
MAX_SCENES = 200_000
IGNORE = -1  # label of an attribute that does not apply (the colour of an empty cell)


@dataclass(frozen=True)
class Batch:
    images: np.ndarray  # (N, size, size, 3) uint8
    fine: list[str]
    coarse: list[str]
    seeds: np.ndarray  # (N,) int64
    labels: dict[str, np.ndarray]  # see `label_names`


def label_names(v: Vocabulary) -> dict[str, list[str]]:
    """Class names of every label; the cell labels (shape, colour, size, finish) have one per grid cell."""
    return {"shape": [*v.shapes, "empty"], "colour": list(v.colours), "size": list(v.sizes),
            "finish": ["plain", *v.finishes], "background": list(v.backgrounds),
            "background_colour": list(v.colours), "effect": ["none", *v.effects.values()],
            "style": ["none", *v.styles]}


CELL_LABELS = ("shape", "colour", "size", "finish")
SCENE_LABELS = ("background", "background_colour", "effect", "style")


def cell_index(cell) -> int:
    """Row-major index of a (column, row) cell of the 3x3 grid."""
    return int(cell[1]) * 3 + int(cell[0])


def scene_labels(scene: Scene, v: Vocabulary) -> dict[str, np.ndarray]:
    names = label_names(v)
    empty = names["shape"].index("empty")
    out = {"shape": np.full(9, empty, np.int64)}
    for k in CELL_LABELS[1:]:
        out[k] = np.full(9, IGNORE, np.int64)
    for o in scene.objects:
        i = cell_index(o.cell)
        out["shape"][i] = names["shape"].index(o.shape)
        out["colour"][i] = names["colour"].index(o.colour)
        out["size"][i] = names["size"].index(o.size)
        out["finish"][i] = names["finish"].index(o.finish)
    out["background"] = np.int64(names["background"].index(scene.background))
    out["background_colour"] = np.int64(names["background_colour"].index(scene.background_colour))
    out["effect"] = np.int64(names["effect"].index(scene.effect))
    out["style"] = np.int64(names["style"].index(scene.style))
    return out


def cache_dir(size: int) -> Path:
    from workbench.world import GENERATOR_VERSION

    base = Path(os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "prompt-workbench")
    return base / "world" / f"stills-g{GENERATOR_VERSION}-{load_vocabulary().digest}-{size}"


def _render_chunk(args) -> dict:
    start, n, size, *simple = args
    v = load_vocabulary()
    images, fine, coarse, labels = [], [], [], []
    for seed in range(start, start + n):
        scene = sample_simple_scene(seed, vocab=v) if simple and simple[0] else sample_scene(seed, vocab=v)
        images.append(render(scene, size, v)[0])
        fine.append(scene.caption("fine", v))
        coarse.append(scene.caption("coarse", v))
        labels.append(scene_labels(scene, v))
    out = {"images": np.stack(images), "seeds": np.arange(start, start + n, dtype=np.int64),
           "fine": np.array(json.dumps(fine)), "coarse": np.array(json.dumps(coarse))}
    for k in labels[0]:
        out["label_" + k] = np.stack([lab[k] for lab in labels])
    return out


def _batch(chunk: dict, lo: int = 0, hi: int | None = None) -> Batch:
    labels = {k[len("label_"):]: v[lo:hi] for k, v in chunk.items() if k.startswith("label_")}
    return Batch(chunk["images"][lo:hi], json.loads(str(chunk["fine"]))[lo:hi],
                 json.loads(str(chunk["coarse"]))[lo:hi], chunk["seeds"][lo:hi], labels)


def make_scenes(start: int, n: int, size: int = 64) -> Batch:
    """Scenes of seeds [start, start + n) rendered now, without the cache."""
    if not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    if not isinstance(n, int) or not 1 <= n <= CHUNK:
        raise ValueError(f"n must be an integer in [1, {CHUNK}], got {n!r}")
    return _batch(_render_chunk((start, n, size)))


def simple_scenes(n: int, size: int = 64) -> Batch:
    """`n` one-object scenes on plain backgrounds (scene.sample_simple_scene, seeds 0..n-1), rendered now: the T2I
    trainer's curriculum. Their seeds are the simple sampler's own, unrelated to sample_scene's."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SCENES:
        raise ValueError(f"n must be an integer in [1, {MAX_SCENES}], got {n!r}")
    return concat_batches([_batch(_render_chunk((s, min(CHUNK, n - s), size, True))) for s in range(0, n, CHUNK)])


def concat_batches(parts: "list[Batch]") -> Batch:
    return Batch(np.concatenate([b.images for b in parts]), [c for b in parts for c in b.fine],
                 [c for b in parts for c in b.coarse], np.concatenate([b.seeds for b in parts]),
                 {k: np.concatenate([b.labels[k] for b in parts]) for k in parts[0].labels})


def _chunk_path(start: int, size: int) -> Path:
    return cache_dir(size) / f"chunk_{start:08d}.npz"


def load_scenes(start: int, n: int, size: int = 64, workers: int = 1, log=None) -> Batch:
    """Scenes of seeds [start, start + n), rendered at `size` (cached in chunks; `workers` processes render the
    missing ones)."""
    if not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    if not isinstance(n, int) or not 1 <= n <= MAX_SCENES:
        raise ValueError(f"n must be an integer in [1, {MAX_SCENES}], got {n!r}")
    if not isinstance(workers, int) or not 1 <= workers <= 16:
        raise ValueError(f"workers must be an integer in [1, 16], got {workers!r}")
    first = start - start % CHUNK
    starts = list(range(first, start + n, CHUNK))
    missing = [s for s in starts if not _chunk_path(s, size).exists()]
    if missing and n < CHUNK // 4:  # a few scenes: render just those rather than whole chunks
        return make_scenes(start, n, size)
    if missing:
        cache_dir(size).mkdir(parents=True, exist_ok=True)
        jobs = [(s, CHUNK, size) for s in missing]
        results = (ProcessPoolExecutor(workers).map(_render_chunk, jobs) if workers > 1
                   else map(_render_chunk, jobs))
        for k, (s, chunk) in enumerate(zip(missing, results)):
            tmp = _chunk_path(s, size).with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **chunk)
            tmp.rename(_chunk_path(s, size))
            if log:
                log(f"rendered seeds {s}..{s + CHUNK - 1} ({k + 1}/{len(missing)} chunks)")
    parts = []
    for s in starts:
        with np.load(_chunk_path(s, size)) as z:
            parts.append({k: z[k] for k in z.files})
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k not in ("fine", "coarse")}
    for k in ("fine", "coarse"):
        cat[k] = np.array(json.dumps([c for p in parts for c in json.loads(str(p[k]))]))
    return _batch(cat, start - first, start - first + n)


if __name__ == "__main__":  # python -m workbench.world.data START N WORKERS: pre-render a range into the cache
    import sys
    import time

    t0 = time.time()
    b = load_scenes(int(sys.argv[1]), int(sys.argv[2]), workers=int(sys.argv[3]),
                    log=lambda m: print(f"{time.time() - t0:7.1f}s {m}", flush=True))
    print(f"{len(b.seeds)} scenes ready in {time.time() - t0:.1f}s", flush=True)
