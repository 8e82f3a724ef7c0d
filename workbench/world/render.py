"""Rendering scenes (stills and videos) with anti-aliasing, plus one boolean mask per object.

Everything is drawn at `SUPERSAMPLE` times the asked size with Pillow and numpy, then averaged down in
SUPERSAMPLE x SUPERSAMPLE blocks (a box filter): edges get true partial coverage. A mask is the object's
visible part (later objects cover earlier ones) where that coverage is above one half."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from workbench.world.scene import BOUNCE_HEIGHT, DIR_VECTORS, Scene, WorldObject, centre_of
from workbench.world.vocabulary import Vocabulary, load_vocabulary

SUPERSAMPLE = 4
MIN_SIZE, MAX_SIZE = 16, 1024
MIN_FRAMES, MAX_FRAMES = 2, 64
PASTEL_WHITE = 0.45  # share of white mixed into every pixel by the pastel style
CONTRAST = 1.7  # gain about the image's mean grey of the high-contrast style
SHADOW_OFFSET, SHADOW_DARKEN = 0.035, 0.55  # image fraction down-right, darkening at the shadow's core
GLOW_STRENGTH = 1.0


def _check(size, frames=None):
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    if frames is not None and (not isinstance(frames, int) or isinstance(frames, bool)
                               or not MIN_FRAMES <= frames <= MAX_FRAMES):
        raise ValueError(f"frames must be an integer in [{MIN_FRAMES}, {MAX_FRAMES}], got {frames!r}")


def _shape_points(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    def poly(pts):
        ca, sa = math.cos(angle), math.sin(angle)
        return [(cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)) for x, y in pts]

    def regular(k, start, radius=1.0):
        return [(radius * math.cos(start + 2 * math.pi * i / k), radius * math.sin(start + 2 * math.pi * i / k))
                for i in range(k)]

    if shape == "square":
        return poly([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)])
    if shape == "triangle":
        return poly([(0, -1.0), (0.95, 0.75), (-0.95, 0.75)])
    if shape == "diamond":
        return poly([(0, -1.0), (0.7, 0), (0, 1.0), (-0.7, 0)])
    if shape == "hexagon":
        return poly(regular(6, 0.0))
    if shape == "star":
        pts = []
        for i in range(10):
            rad = 1.0 if i % 2 == 0 else 0.42
            a = -math.pi / 2 + math.pi * i / 5
            pts.append((rad * math.cos(a), rad * math.sin(a)))
        return poly(pts)
    if shape == "cross":
        t = 0.3
        return poly([(-t, -0.9), (t, -0.9), (t, -t), (0.9, -t), (0.9, t), (t, t), (t, 0.9), (-t, 0.9), (-t, t),
                     (-0.9, t), (-0.9, -t), (-t, -t)])
    if shape == "heart":
        pts = []
        for i in range(48):
            t = 2 * math.pi * i / 48
            x = 16 * math.sin(t) ** 3
            y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
            pts.append((x / 17.0, (y + 2.5) / 17.0))
        return poly(pts)
    if shape == "circle":
        return poly(regular(64, 0.0, 0.9))
    raise ValueError(f"shape {shape!r} has no outline")


def _coverage(shape: str, cx: float, cy: float, r: float, angle: float, hs: int) -> np.ndarray:
    """Float coverage (0..1) of one shape at the supersampled size `hs` (coordinates in image fractions)."""
    im = Image.new("L", (hs, hs), 0)
    d = ImageDraw.Draw(im)
    if shape == "ring":
        ro, ri = 0.92 * r * hs, 0.55 * r * hs
        d.ellipse([cx * hs - ro, cy * hs - ro, cx * hs + ro, cy * hs + ro], fill=255)
        d.ellipse([cx * hs - ri, cy * hs - ri, cx * hs + ri, cy * hs + ri], fill=0)
    else:
        d.polygon([(x * hs, y * hs) for x, y in _shape_points(shape, cx, cy, r, angle)], fill=255)
    return np.asarray(im, dtype=np.float32) / 255.0


def _downsample(a: np.ndarray, ss: int) -> np.ndarray:
    h = a.shape[0] // ss
    return a.reshape(h, ss, h, ss, *a.shape[2:]).mean(axis=(1, 3))


def _background(scene: Scene, v: Vocabulary, hs: int) -> np.ndarray:
    c = np.array(v.colours[scene.background_colour], dtype=np.float32)
    base = 0.55 * c + 0.45 * 0.92  # a muted version, so objects stand out
    light = 0.35 * c + 0.65 * 1.0
    yy, xx = np.mgrid[0:hs, 0:hs].astype(np.float32) / hs
    img = np.broadcast_to(base, (hs, hs, 3)).copy()
    if scene.background == "striped":
        band = (np.floor(yy * 8) % 2 == 1)[..., None]
        img = np.where(band, light, img)
    elif scene.background == "dotted":
        fx, fy = (xx * 8) % 1 - 0.5, (yy * 8) % 1 - 0.5
        dot = ((fx ** 2 + fy ** 2) < 0.18 ** 2)[..., None]
        img = np.where(dot, light, img)
    elif scene.background == "gradient":
        t = yy[..., None]
        img = (1 - t) * light + t * (0.6 * c)
    return img


def _object_state(o: WorldObject, v: Vocabulary, t: float):
    """Centre, angle and opacity of an object at video progress t in [0, 1] (t = 0 for a still)."""
    x, y = centre_of(o.cell, o.offset)
    angle, alpha = 0.0, 1.0
    m = o.motion
    if m is not None:
        if m.kind == "move":
            dx, dy = DIR_VECTORS[m.direction]
            d = v.distance[m.speed] * t
            x, y = x + dx * d, y + dy * d
        elif m.kind == "bounce":
            y -= BOUNCE_HEIGHT * abs(math.sin(math.pi * t))
        elif m.kind == "rotate":
            angle = math.pi * t
        elif m.kind == "fade":
            alpha = 1.0 - 0.8 * t
    return x, y, angle, alpha


def _face(o: WorldObject, v: Vocabulary, cov: np.ndarray, hs: int, ss: int) -> np.ndarray:
    """The object's colour layer: flat, striped, dotted or outlined, always in shades of its own hue."""
    c = np.array(v.colours[o.colour], dtype=np.float32)
    face = np.broadcast_to(c, (hs, hs, 3)).copy()
    yy, xx = np.mgrid[0:hs, 0:hs].astype(np.float32) / ss  # in output pixels
    if o.finish == "striped":
        band = (np.floor((xx + yy) / 3.0) % 2 == 1)[..., None]
        face = np.where(band, 0.55 * c, face)
    elif o.finish == "dotted":
        fx, fy = (xx / 4.0) % 1 - 0.5, (yy / 4.0) % 1 - 0.5
        dot = ((fx ** 2 + fy ** 2) < 0.25 ** 2)[..., None]
        face = np.where(dot, 0.5 * c + 0.5, face)
    elif o.finish == "outlined":
        im = Image.fromarray((cov * 255).astype(np.uint8))
        inner = np.asarray(im.filter(ImageFilter.MinFilter(2 * ss + 1)), dtype=np.float32) / 255.0
        border = (cov - inner > 0.5)[..., None]
        face = np.where(border, 0.4 * c, face)
    return face


def _blur(a: np.ndarray, radius: float) -> np.ndarray:
    im = Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0


def render_frame(scene: Scene, size: int = 64, t: float = 0.0, vocab: Vocabulary | None = None):
    """(RGB uint8 array of size x size x 3, list of boolean size x size masks, one per object) at progress t.
    A mask is the object's shape whatever its opacity (a fading object keeps its mask)."""
    _check(size)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t!r}")
    v = vocab or load_vocabulary()
    ss = SUPERSAMPLE
    hs = size * ss
    img = _background(scene, v, hs)
    covs, states = [], []
    for o in scene.objects:
        x, y, angle, alpha = _object_state(o, v, t)
        covs.append(_coverage(o.shape, x, y, v.sizes[o.size], angle, hs))
        states.append(alpha)
    union = np.zeros((hs, hs), np.float32)
    for cov, alpha in zip(covs, states):
        union = np.maximum(union, cov * alpha)
    if scene.effect == "soft shadow":
        shift = int(round(SHADOW_OFFSET * hs))
        sh = np.zeros_like(union)
        sh[shift:, shift:] = union[:-shift, :-shift]
        sh = _blur(sh, 0.02 * hs)
        img = img * (1 - SHADOW_DARKEN * sh[..., None])
    for o, cov, alpha in zip(scene.objects, covs, states):
        a = (cov * alpha)[..., None]
        img = img * (1 - a) + _face(o, v, cov, hs, ss) * a
    if scene.effect == "glow":
        glow_rgb = np.zeros((hs, hs, 3), np.float32)
        glow_a = np.zeros((hs, hs), np.float32)
        for o, cov, alpha in zip(scene.objects, covs, states):
            grown = Image.fromarray((cov * alpha * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(4 * ss + 1))
            g = _blur(np.asarray(grown, np.float32) / 255.0, 0.035 * hs) * GLOW_STRENGTH
            c = 0.2 * np.array(v.colours[o.colour], np.float32) + 0.8  # a light halo tinted by the object
            glow_rgb = np.where((g > glow_a)[..., None], c, glow_rgb)
            glow_a = np.maximum(glow_a, g)
        outside = (glow_a * (1 - union))[..., None]
        img = img * (1 - outside) + glow_rgb * outside
    if scene.style == "pastel":
        img = (1 - PASTEL_WHITE) * img + PASTEL_WHITE
    elif scene.style == "high contrast":
        grey = float(img.mean())
        img = np.clip((img - grey) * CONTRAST + grey, 0, 1)
    out = (np.clip(_downsample(img, ss), 0, 1) * 255 + 0.5).astype(np.uint8)
    masks = []
    for i, cov in enumerate(covs):
        visible = cov.copy()
        for later in covs[i + 1:]:
            visible *= 1 - later
        masks.append(_downsample(visible, ss) > 0.5)
    return out, masks


def render(scene: Scene, size: int = 64, vocab: Vocabulary | None = None):
    """A still: (RGB uint8 array, one boolean mask per object)."""
    return render_frame(scene, size, 0.0, vocab)


def render_video(scene: Scene, size: int = 64, frames: int = 8, vocab: Vocabulary | None = None):
    """(list of `frames` RGB arrays, list per frame of per-object masks); motion runs from t = 0 to t = 1."""
    _check(size, frames)
    images, masks = [], []
    for k in range(frames):
        im, m = render_frame(scene, size, k / (frames - 1), vocab)
        images.append(im)
        masks.append(m)
    return images, masks
