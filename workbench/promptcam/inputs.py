"""Checking an uploaded image once, up front: readable, not too large, converted to 8-bit RGB with a note saying what
was converted (grayscale, palette, alpha, 16-bit, CMYK...). Every refusal is a ValueError naming the limit."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_MEGAPIXELS = 25.0  # a decoded 25 MP RGB image is 75 MB; larger uploads are refused before decoding
MAX_FILE_MB = 30.0


@dataclass
class CheckedImage:
    image: Any  # PIL RGB, 8-bit
    notes: list[str] = field(default_factory=list)
    original_mode: str = "RGB"
    original_size: tuple[int, int] = (0, 0)


def _to_rgb(img: Any) -> tuple[Any, list[str]]:
    from PIL import Image

    mode, notes = img.mode, []
    if mode == "RGB":
        return img, notes
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(a.max()), 1.0)
        if mode == "F":
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        else:
            a = a / hi * 255.0
        img = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), "L").convert("RGB")
        notes.append(f"converted a {'16-bit' if mode.startswith('I;16') else mode + '-mode'} grayscale image to 8-bit RGB")
        return img, notes
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
        notes.append(f"flattened the transparency ({mode}) onto white")
        return img, notes
    if mode == "CMYK":
        notes.append("converted CMYK to RGB (colours may shift slightly)")
    elif mode in ("L", "1"):
        notes.append("converted a grayscale image to RGB (the colour traits cannot be seen)")
    else:
        notes.append(f"converted {mode} to RGB")
    return img.convert("RGB"), notes


def check_image(source: Any, max_megapixels: float = MAX_MEGAPIXELS, max_file_mb: float = MAX_FILE_MB) -> CheckedImage:
    """An upload (path, bytes or PIL image) as 8-bit RGB, or a ValueError naming what is wrong."""
    from PIL import Image, UnidentifiedImageError

    if source is None or (isinstance(source, str) and not source.strip()):
        raise ValueError("no image: upload one or pick an example")
    if isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise ValueError(f"image file '{path.name}' was not found")
            size_mb = path.stat().st_size / 1024**2
            if size_mb > max_file_mb:
                raise ValueError(f"the file is {size_mb:.1f} MB; the limit is {max_file_mb:g} MB")
            data = path.read_bytes()
        elif isinstance(source, (bytes, bytearray)):
            data = bytes(source)
            if len(data) / 1024**2 > max_file_mb:
                raise ValueError(f"the file is {len(data) / 1024**2:.1f} MB; the limit is {max_file_mb:g} MB")
        else:
            raise ValueError(f"expected an image file, got {type(source).__name__}")
        if not data:
            raise ValueError("the file is empty; upload a PNG, JPEG, WebP, BMP or TIFF image")
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise ValueError(f"the image is far larger than the limit of {max_megapixels:g} megapixels "
                             "(downscale it first)") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError("the file is not an image Pillow can read (PNG, JPEG, WebP, BMP, TIFF): "
                             f"{type(exc).__name__}") from None
    w, h = img.size
    if w * h > max_megapixels * 1e6:
        raise ValueError(f"the image is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is {max_megapixels:g} "
                         "megapixels (downscale it first)")
    if w < 8 or h < 8:
        raise ValueError(f"the image is {w}x{h} pixels; it must be at least 8x8")
    mode = img.mode
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"the image file is damaged or truncated and cannot be decoded ({exc})") from None
    rgb, notes = _to_rgb(img)
    if getattr(img, "n_frames", 1) > 1:
        notes.append(f"used the first of {img.n_frames} frames")
    return CheckedImage(image=rgb, notes=notes, original_mode=mode, original_size=(w, h))
