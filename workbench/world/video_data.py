"""Training and held-out videos of the world (8 frames of 64x64 by default) with their captions, for the
text-to-video trainer (workbench/world/video.py) and the motion evaluation (workbench/world/motion.py).

Video scenes come from `sample_scene(seed, video=True)`; the seed split is the stills' (training seeds below
HELDOUT_SEED0, held-out from it). Renders are cached in chunks of VIDEO_CHUNK seeds under the workbench cache
(`WORKBENCH_CACHE`), keyed by generator version, vocabulary digest, size and frame count, beside the stills'."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.world.data import HELDOUT_SEED0
from workbench.world.render import render_video
from workbench.world.scene import Scene, sample_scene, sample_simple_scene
from workbench.world.vocabulary import load_vocabulary

VIDEO_CHUNK = 100
MAX_VIDEOS = 50_000
FRAMES = 8  # the "at least 8 frames"
__all__ = ["HELDOUT_SEED0", "VideoBatch", "load_videos", "make_videos", "simple_videos", "concat_videos", "VIDEO_CHUNK",
           "FRAMES", "MAX_VIDEOS"]


@dataclass(frozen=True)
class VideoBatch:
    frames: np.ndarray  # (N, F, size, size, 3) uint8
    fine: list[str]
    coarse: list[str]
    seeds: np.ndarray  # (N,) int64
    occupied: np.ndarray  # (N, 9) bool: row-major grid cells an object's mask centre visits in some frame
    scenes: list[dict]  # Scene.to_dict() of each video


def _check_args(start, n, size, frames, hi_n):
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= hi_n:
        raise ValueError(f"n must be an integer in [1, {hi_n}], got {n!r}")
    if not isinstance(frames, int) or isinstance(frames, bool) or not 2 <= frames <= 64:
        raise ValueError(f"frames must be an integer in [2, 64], got {frames!r}")
    if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 256:
        raise ValueError(f"size must be an integer in [16, 256], got {size!r}")


def video_cache_dir(size: int, frames: int) -> Path:
    from workbench.world import GENERATOR_VERSION

    base = Path(os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "prompt-workbench")
    return base / "world" / f"videos-g{GENERATOR_VERSION}-{load_vocabulary().digest}-{size}-{frames}f"


def _occupied(masks: list[list[np.ndarray]]) -> np.ndarray:
    """The grid cells (row-major) where an object's mask centre lies in at least one frame."""
    occ = np.zeros(9, bool)
    for frame in masks:
        for m in frame:
            ys, xs = np.nonzero(m)
            if len(xs):
                side = m.shape[0]
                col, row = min(2, int(xs.mean() * 3 / side)), min(2, int(ys.mean() * 3 / side))
                occ[row * 3 + col] = True
    return occ


def _render_chunk(start: int, n: int, size: int, frames: int, simple: bool = False) -> dict:
    v = load_vocabulary()
    out_frames, fine, coarse, occ, scenes = [], [], [], [], []
    for seed in range(start, start + n):
        scene = (sample_simple_scene if simple else sample_scene)(seed, video=True, vocab=v)
        images, masks = render_video(scene, size, frames, v)
        out_frames.append(np.stack(images))
        fine.append(scene.caption("fine", v))
        coarse.append(scene.caption("coarse", v))
        occ.append(_occupied(masks))
        scenes.append(scene.to_dict())
    return {"frames": np.stack(out_frames), "seeds": np.arange(start, start + n, dtype=np.int64),
            "occupied": np.stack(occ), "fine": np.array(json.dumps(fine)), "coarse": np.array(json.dumps(coarse)),
            "scenes": np.array(json.dumps(scenes))}


def _batch(chunk: dict, lo: int = 0, hi: int | None = None) -> VideoBatch:
    return VideoBatch(chunk["frames"][lo:hi], json.loads(str(chunk["fine"]))[lo:hi],
                      json.loads(str(chunk["coarse"]))[lo:hi], chunk["seeds"][lo:hi], chunk["occupied"][lo:hi],
                      json.loads(str(chunk["scenes"]))[lo:hi])


def make_videos(start: int, n: int, size: int = 64, frames: int = FRAMES) -> VideoBatch:
    """Video scenes of seeds [start, start + n) rendered now, without the cache."""
    _check_args(start, n, size, frames, VIDEO_CHUNK)
    return _batch(_render_chunk(start, n, size, frames))


def simple_videos(n: int, size: int = 64, frames: int = FRAMES) -> VideoBatch:
    """`n` videos of one moving object on a plain background (scene.sample_simple_scene, seeds 0..n-1), rendered now:
    the video trainer's curriculum. Their seeds are the simple sampler's own, unrelated to sample_scene's."""
    _check_args(0, n, size, frames, MAX_VIDEOS)
    parts = [_render_chunk(s, min(VIDEO_CHUNK, n - s), size, frames, simple=True) for s in range(0, n, VIDEO_CHUNK)]
    return concat_videos([_batch(p) for p in parts])


def concat_videos(parts: "list[VideoBatch]") -> VideoBatch:
    return VideoBatch(np.concatenate([b.frames for b in parts]), [c for b in parts for c in b.fine],
                      [c for b in parts for c in b.coarse], np.concatenate([b.seeds for b in parts]),
                      np.concatenate([b.occupied for b in parts]), [d for b in parts for d in b.scenes])


def load_videos(start: int, n: int, size: int = 64, frames: int = FRAMES, log=None) -> VideoBatch:
    """Video scenes of seeds [start, start + n) (cached in chunks of VIDEO_CHUNK seeds; a few videos outside the
    cache are rendered directly)."""
    _check_args(start, n, size, frames, MAX_VIDEOS)
    first = start - start % VIDEO_CHUNK
    starts = list(range(first, start + n, VIDEO_CHUNK))
    folder = video_cache_dir(size, frames)
    path = lambda s: folder / f"chunk_{s:08d}.npz"  # noqa: E731
    missing = [s for s in starts if not path(s).exists()]
    if missing and n < VIDEO_CHUNK // 4:
        return make_videos(start, n, size, frames)
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        for k, s in enumerate(missing):
            chunk = _render_chunk(s, VIDEO_CHUNK, size, frames)
            tmp = path(s).with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **chunk)
            tmp.rename(path(s))
            if log:
                log(f"rendered video seeds {s}..{s + VIDEO_CHUNK - 1} ({k + 1}/{len(missing)} chunks)")
    parts = []
    for s in starts:
        with np.load(path(s)) as z:
            parts.append({k: z[k] for k in z.files})
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("frames", "seeds", "occupied")}
    for k in ("fine", "coarse", "scenes"):
        cat[k] = np.array(json.dumps([c for p in parts for c in json.loads(str(p[k]))]))
    return _batch(cat, start - first, start - first + n)


def scene_of(d: dict) -> Scene:
    return Scene.from_dict(d)


if __name__ == "__main__":  # python -m workbench.world.video_data START N: pre-render a range into the cache
    import sys
    import time

    t0 = time.time()
    b = load_videos(int(sys.argv[1]), int(sys.argv[2]), log=lambda m: print(f"{time.time() - t0:7.1f}s {m}", flush=True))
    print(f"{len(b.seeds)} videos ready in {time.time() - t0:.1f}s", flush=True)
