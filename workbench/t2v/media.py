"""Video files for the tab and the CLI: GIF previews (Pillow), MP4 downloads (imageio-ffmpeg, whose wheel carries
its own ffmpeg), and the provenance JSON written beside each file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


def save_gif(frames: Sequence[Any], path: str | Path, fps: int = 8, scale_to: int | None = None) -> Path:
    """An animated, looping GIF; tiny frames are scaled up (nearest) to `scale_to` pixels so they can be seen."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [f.convert("RGB") for f in frames]
    if scale_to and images and images[0].width < scale_to:
        from PIL import Image

        factor = max(1, scale_to // images[0].width)
        images = [im.resize((im.width * factor, im.height * factor), Image.NEAREST) for im in images]
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0)
    return path


def save_mp4(frames: Sequence[Any], path: str | Path, fps: int = 8, scale_to: int | None = 256) -> Path:
    """H.264 MP4 through imageio-ffmpeg. Sides are padded up to even numbers (yuv420p needs them); tiny frames
    are scaled up (nearest) so a browser shows them at a visible size."""
    import imageio_ffmpeg
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [f.convert("RGB") for f in frames]
    if scale_to and images and images[0].width < scale_to:
        from PIL import Image

        factor = max(1, scale_to // images[0].width)
        images = [im.resize((im.width * factor, im.height * factor), Image.NEAREST) for im in images]
    w, h = images[0].size
    w2, h2 = w + w % 2, h + h % 2
    writer = imageio_ffmpeg.write_frames(str(path), (w2, h2), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, output_params=["-movflags", "+faststart"])
    writer.send(None)
    try:
        for im in images:
            arr = np.zeros((h2, w2, 3), dtype=np.uint8)
            arr[:h, :w] = np.asarray(im)
            writer.send(arr.tobytes())
    finally:
        writer.close()
    return path


def save_provenance(data: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return path
