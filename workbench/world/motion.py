"""Motion-direction accuracy of a text-to-video renderer on the miniature world (issue 20: "Video: motion direction
accuracy"): held-out video captions that state an object moving left, right, up or down are rendered, and each such
object is tracked frame by frame in the render; a hit when it moves the stated way.

The reading (no model, so it cannot be fooled by what a learned scorer learned): an object is the pixels whose hue
is nearest to its named colour's hue among the world's eight colours, with saturation at least SATURATION_MIN and
value at least VALUE_MIN (world colours are distinct within a scene, the background's included, so the object's own
hue marks it; the muted background, a glow's pale halo and the pastel style stay apart by hue or saturation). Its
centre in each frame is the mean position of those pixels; frames with fewer than MIN_PIXELS of them are skipped
(at least MIN_FRAMES must remain). The motion is the least-squares slope of the centres over the video, times its
length: the axis that moved more and its sign give the direction, and a shift below MIN_SHIFT of the image side
(a slow world object travels 0.12) reads as "still". Chance for a reader that guesses one of the four directions is
0.25; a still video reads 0 (every object "still"). The attribute classifier is not used: it reads the 3x3 grid,
and a slow object stays within one cell."""

from __future__ import annotations

import colorsys
import time
from typing import Any, Callable, Sequence

import numpy as np

from workbench.world.data import HELDOUT_SEED0
from workbench.world.scene import sample_scene
from workbench.world.train import _check_float, _check_int
from workbench.world.vocabulary import load_vocabulary

DIRECTIONS = ("left", "right", "up", "down")
CHANCE = 1 / len(DIRECTIONS)
SATURATION_MIN = 0.25
VALUE_MIN = 0.15
MIN_PIXELS = 3
MIN_FRAMES = 4
MIN_SHIFT = 0.04  # image fraction; a slow object moves 0.12 over a video, a fast one 0.24
MAX_CAPTIONS = 2_000


def palette_hues() -> dict[str, float]:
    """Each world colour's hue in [0, 1)."""
    return {name: colorsys.rgb_to_hsv(*rgb)[0] for name, rgb in load_vocabulary().colours.items()}


def _frame_array(frame) -> np.ndarray:
    from PIL import Image

    a = np.asarray(frame.convert("RGB") if isinstance(frame, Image.Image) else frame)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"a frame must be an RGB image (H, W, 3), got shape {a.shape}")
    return a


def colour_masks(frame, hues: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """name -> boolean (H, W) mask of the pixels read as that world colour (see the module's docstring)."""
    hues = hues or palette_hues()
    rgb = _frame_array(frame).astype(np.float32) / 255.0
    mx, mn = rgb.max(-1), rgb.min(-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    d = np.maximum(mx - mn, 1e-6)
    h = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) / 6.0
    names = list(hues)
    ref = np.array([hues[n] for n in names], np.float32)
    dist = np.abs(h[..., None] - ref)
    dist = np.minimum(dist, 1 - dist)
    nearest = dist.argmin(-1)
    coloured = (sat >= SATURATION_MIN) & (mx >= VALUE_MIN)
    return {n: coloured & (nearest == i) for i, n in enumerate(names)}


def track(frames: Sequence[Any], colour: str) -> np.ndarray:
    """(F, 2) centre (x, y, image fractions) of the pixels read as `colour` in each frame; NaN where fewer than
    MIN_PIXELS."""
    hues = palette_hues()
    if colour not in hues:
        raise ValueError(f"colour must be one of {sorted(hues)}, got {colour!r}")
    out = np.full((len(frames), 2), np.nan)
    for k, frame in enumerate(frames):
        m = colour_masks(frame, hues)[colour]
        if m.sum() >= MIN_PIXELS:
            ys, xs = np.nonzero(m)
            out[k] = ((xs.mean() + 0.5) / m.shape[1], (ys.mean() + 0.5) / m.shape[0])
    return out


def read_direction(centres: np.ndarray) -> tuple[str, float, float]:
    """(direction, dx, dy) from a track: "left" / "right" / "up" / "down", "still" (shift below MIN_SHIFT) or
    "not found" (fewer than MIN_FRAMES frames show the colour). dx, dy: the fitted shift over the whole video."""
    ok = ~np.isnan(centres[:, 0])
    if ok.sum() < MIN_FRAMES:
        return "not found", float("nan"), float("nan")
    t = np.linspace(0.0, 1.0, len(centres))[ok]
    dx = float(np.polyfit(t, centres[ok, 0], 1)[0])
    dy = float(np.polyfit(t, centres[ok, 1], 1)[0])
    if max(abs(dx), abs(dy)) < MIN_SHIFT:
        return "still", dx, dy
    if abs(dx) >= abs(dy):
        return ("right" if dx > 0 else "left"), dx, dy
    return ("down" if dy > 0 else "up"), dx, dy


def heldout_video_captions(n: int, start: int = HELDOUT_SEED0, level: str = "fine") -> tuple[list[str], list[list[dict]]]:
    """`n` captions of held-out video scenes (seeds from `start`, never trained on) in which at least one object
    moves left, right, up or down, with each moving object's colour, shape and direction."""
    _check_int("n", n, 1, MAX_CAPTIONS)
    if not isinstance(start, int) or isinstance(start, bool) or start < HELDOUT_SEED0:
        raise ValueError(f"start must be an integer >= {HELDOUT_SEED0} (held-out seeds), got {start!r}")
    if level not in ("fine", "coarse"):
        raise ValueError(f"level must be fine or coarse, got {level!r}")
    captions, moving, seed = [], [], start
    while len(captions) < n:
        scene = sample_scene(seed, video=True)
        seed += 1
        objs = [{"colour": o.colour, "shape": o.shape, "direction": o.motion.direction, "seed": scene.seed}
                for o in scene.objects if o.motion is not None and o.motion.kind == "move"]
        if objs:
            captions.append(scene.caption(level))
            moving.append(objs)
    return captions, moving


def motion_direction_accuracy(render_fn: Callable[[list[str]], Sequence[Sequence[Any]]], n: int = 40,
                              start: int = HELDOUT_SEED0, level: str = "fine") -> dict:
    """Render `n` held-out video captions with `render_fn(prompts) -> videos` (each a list of frames, PIL or uint8
    arrays) and read each moving object's direction (module docstring). Returns {"accuracy", "chance", "found",
    "still", "objects", "captions", "seconds", "rows"}: accuracy = objects read moving the stated way; found =
    objects whose colour shows in enough frames; still = objects read as not moving."""
    if not callable(render_fn):
        raise ValueError(f"render_fn must be a callable prompts -> videos, got {type(render_fn).__name__}")
    captions, moving = heldout_video_captions(n, start, level)
    t0 = time.time()
    videos = list(render_fn(captions))
    seconds = time.time() - t0
    if len(videos) != len(captions):
        raise ValueError(f"render_fn returned {len(videos)} videos for {len(captions)} prompts")
    rows, hits, found, still = [], 0, 0, 0
    for caption, video, objs in zip(captions, videos, moving):
        if len(video) < 2:
            raise ValueError(f"a video must have at least 2 frames, got {len(video)}")
        for o in objs:
            read, dx, dy = read_direction(track(video, o["colour"]))
            hits += read == o["direction"]
            found += read != "not found"
            still += read == "still"
            rows.append({"caption": caption, "object": f"{o['colour']} {o['shape']}", "stated": o["direction"],
                         "read": read, "dx": round(dx, 4), "dy": round(dy, 4)})
    k = len(rows)
    return {"accuracy": hits / k, "chance": CHANCE, "found": found / k, "still": still / k, "objects": k,
            "captions": len(captions), "seconds": round(seconds, 1), "rows": rows}


def world_renderer(size: int = 64, frames: int = 8, start: int = HELDOUT_SEED0, level: str = "fine"):
    """prompts -> the world's own renders of the held-out video scenes those captions came from (the truth a
    perfect model would draw; the reference row of the eval)."""
    from workbench.world.render import render_video

    def run(prompts: list[str]) -> list:
        wanted, out, seed = set(prompts), {}, start
        while len(out) < len(wanted):
            if seed - start > 100 * len(prompts) + 1000:
                raise ValueError("world_renderer: a prompt is not the caption of a held-out video scene")
            scene = sample_scene(seed, video=True)
            seed += 1
            cap = scene.caption(level)
            if cap in wanted and cap not in out:
                out[cap] = render_video(scene, size, frames)[0]
        return [out[p] for p in prompts]

    return run


def video_pipeline_renderer(pipe, steps: int = 8, guidance: float = 3.0, size: int = 64, frames: int = 8,
                            seed: int = 0) -> Callable[[list[str]], list]:
    """prompts -> videos (lists of uint8 frames) from a diffusers text-to-video pipeline, one call per prompt from
    the same seed's noise (as the diffusers-t2v backend renders)."""
    import torch

    _check_int("steps", steps, 1, 200)
    _check_float("guidance", guidance, 0.0, 50.0)
    _check_int("size", size, 16, 1024)
    _check_int("frames", frames, 2, 64)

    def run(prompts: list[str]) -> list:
        videos = []
        for prompt in prompts:
            with torch.inference_mode():
                out = pipe(prompt=prompt, num_inference_steps=steps, guidance_scale=guidance, height=size, width=size,
                           num_frames=frames, generator=torch.Generator().manual_seed(seed), output_type="np").frames
            videos.append([(np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8) for f in np.asarray(out)[0]])
        return videos

    return run
