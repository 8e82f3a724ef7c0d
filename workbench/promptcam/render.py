"""Pictures of maps: heatmap overlays (a jet colour map, as the official visualisation), trait crops around a head's
peak, and PNG export with a caption band (model, checkpoint, class, head)."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from workbench.promptcam.explain import display_map

DISPLAY_SIZE = 256  # small inputs (64 px) are enlarged for viewing; maps are upsampled to the same size


def jet(x: np.ndarray) -> np.ndarray:
    """Matplotlib-style jet colour map for values in [0, 1] -> uint8 RGB."""
    x = np.clip(x, 0, 1)
    r = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (np.stack([r, g, b], -1) * 255).round().astype(np.uint8)


def enlarge(image: Any, size: int = DISPLAY_SIZE):
    from PIL import Image

    w, h = image.size
    scale = size / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                        Image.NEAREST if scale >= 2 else Image.BICUBIC)


def upsample_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map in [0, 1] resized bilinearly to `size` (width, height)."""
    from PIL import Image

    img = Image.fromarray(np.asarray(m, dtype=np.float32), mode="F").resize(size, Image.BILINEAR)
    return np.clip(np.asarray(img), 0, 1)


def overlay(image: Any, m: np.ndarray, opacity: float = 0.5, size: int = DISPLAY_SIZE):
    """The image (enlarged) with the map's display form laid over it in jet at `opacity` (0 = image only)."""
    from PIL import Image

    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity!r}")
    base = enlarge(image.convert("RGB"), size)
    heat = jet(upsample_map(display_map(m), base.size))
    mixed = (1 - opacity) * np.asarray(base, dtype=np.float32) + opacity * heat.astype(np.float32)
    return Image.fromarray(mixed.round().astype(np.uint8))


def peak_crop(image: Any, m: np.ndarray, patches: int = 3, size: int = 128):
    """A crop of `patches` x `patches` patches centred on the map's highest patch, enlarged to `size`."""
    gh, gw = np.asarray(m).shape
    r, c = divmod(int(np.argmax(np.asarray(m))), gw)
    w, h = image.size
    pw, ph = w / gw, h / gh
    half = patches / 2
    r0, c0 = min(max(r + 0.5 - half, 0), gh - patches), min(max(c + 0.5 - half, 0), gw - patches)
    box = (round(max(c0, 0) * pw), round(max(r0, 0) * ph), round(min(c0 + patches, gw) * pw),
           round(min(r0 + patches, gh) * ph))
    return enlarge(image.crop(box), size), (r, c)


def with_caption(image: Any, lines: list[str], width_chars: int | None = None):
    """The image above a white band holding the caption lines (wrapped), for PNG export."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    lines = [line.replace("·", "|").replace("−", "-") for line in lines]  # the bitmap font has no such glyphs
    width = max(image.width, 420)
    per_line = width_chars or max(30, width // 7)
    wrapped = [w for line in lines for w in (textwrap.wrap(line, per_line) or [""])]
    band = 8 + 14 * len(wrapped)
    out = Image.new("RGB", (width, image.height + band), "white")
    out.paste(image, ((width - image.width) // 2, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(wrapped):
        draw.text((6, image.height + 4 + 14 * i), line, fill=(0, 0, 0), font=font)
    return out
