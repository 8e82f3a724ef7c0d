"""Token heatmaps for the T2I tab (PromptCharm's view, the DAAM method): pick a rendered image and a word of its
prompt, see where the image model's cross-attention put that word, as an overlay with adjustable opacity, and
download it as a PNG with a provenance caption. The image is rendered again with the same seed and settings while
the UNet's cross-attention is recorded (backends/_cross_attention.py); the maps are kept per user, so another
word or opacity needs no second render."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from backends.base import ImageSettings, prompt_words
from workbench.models import ManagedModel
from workbench.storage import export_folder
from workbench.t2i import results
from workbench.t2i.scoring import RANDOM_NOTE
from workbench.text import escape_markdown

# Inferno-like colour stops (black → purple → red → orange → pale yellow), linear between them.
_STOPS = ((0.0, (0, 0, 4)), (0.25, (87, 16, 110)), (0.5, (188, 55, 84)), (0.75, (249, 142, 9)),
          (1.0, (252, 255, 164)))
# words a user seldom means (the first other word is the default pick)
_FUNCTION_WORDS = frozenset("a an the of on in at to with and or by for from its his her their is are".split())


@dataclass
class Attended:
    """One image rendered again with its cross-attention recorded: kept per user between word choices."""

    label: str  # "original" or "#k", as the grid names it
    prompt: str
    image: Any  # PIL image (the re-render: the same seed and settings as the grid's)
    attention: Any  # backends TokenAttention
    provenance: Any  # the re-render's Provenance, with the heatmap method in its settings
    random_weights: bool


@dataclass
class HeatmapView:
    image: Any  # the overlay (PIL)
    caption: str  # Markdown: word, image, method, honesty notes
    png: str  # the overlay with its provenance caption, for download
    images: list[str]  # the rendered images' labels (original, #1, ...)
    words: list[str]  # the chosen image's words that the model read
    label: str
    word: str


def image_choices(rendered: Any) -> list[str]:
    """The labels of a render's images, as the grid and table name them."""
    if rendered is None:
        return []
    return [results.label(k) for k in range(len(rendered.images) + 1)]


def default_label(rendered: Any) -> str:
    """The image a heatmap starts on: the first candidate, or the original when no candidate finished."""
    return results.label(1 if rendered.images else 0)


def rendered_image(rendered: Any, label: str) -> Any:
    """The ImageResult the grid shows as `label`; ValueError naming the labels there are."""
    labels = image_choices(rendered)
    if label not in labels:
        raise ValueError(f"image must be one of {', '.join(labels)} (the grid's labels), got {label!r}")
    k = labels.index(label)
    return rendered.images[k - 1] if k else rendered.original


def words_of(rendered: Any, label: str | None) -> list[str]:
    """The words of image `label`'s prompt (the default image's for a label not in the render), for the word list:
    no model needed."""
    if rendered is None:
        return []
    label = label if label in image_choices(rendered) else default_label(rendered)
    return prompt_words(rendered_image(rendered, label).prompt)


def _settings(provenance: Any) -> ImageSettings:
    names = {f.name for f in dataclasses.fields(ImageSettings)}
    return ImageSettings(**{k: v for k, v in provenance.settings.items() if k in names}).check()


def attend(t2i: Any, rendered: Any, label: str, job: Any = None) -> Attended:
    """Render the image `label` of `rendered` again with its seed and settings, recording cross-attention."""
    from workbench.jobs import Job

    job = job or Job.none()
    if not t2i.capabilities.token_heatmaps:
        raise ValueError(f"the image model's backend '{t2i.spec.backend}' has no cross-attention to record: token "
                         f"heatmaps need a diffusers UNet pipeline (the offline and GPU profiles have one)")
    shown = rendered_image(rendered, label)
    settings = _settings(shown.provenance)

    def on_step(step: int, total: int) -> None:
        job.update("heatmap", step, total, f"image {label}, denoising step {step}/{total} (recording attention)")

    result, attention = t2i.attend(shown.prompt, settings, on_step=on_step)
    return Attended(label=label, prompt=shown.prompt, image=result.image, attention=attention,
                    provenance=result.provenance, random_weights=bool(result.provenance.random_weights))


def default_word(attention: Any) -> str:
    words = attention.word_choices()
    if not words:
        raise ValueError("the prompt has no words the image model read")
    return next((w for w in words if w not in _FUNCTION_WORDS), words[0])


def colormap(values: Any) -> Any:
    """values in [0, 1] (numpy, any shape) -> uint8 RGB (shape + (3,))."""
    import numpy as np

    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    xs = [s[0] for s in _STOPS]
    return np.stack([np.interp(v, xs, [s[1][c] for s in _STOPS]) for c in range(3)], axis=-1).round().astype(np.uint8)


def normalised(heat: Any) -> Any:
    """Min-max to [0, 1] (DAAM shows each word's map on its own scale); a flat map is all zeros."""
    import numpy as np

    heat = np.asarray(heat, dtype=np.float32)
    span = float(heat.max() - heat.min())
    return (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)


def overlay(image: Any, heat: Any, opacity: float) -> Any:
    """The image with the word's map (normalised, upsampled bicubically to the image) blended in at `opacity`."""
    import numpy as np
    from PIL import Image

    _check_opacity(opacity)
    base = image.convert("RGB")
    small = Image.fromarray((normalised(heat) * 255).round().astype(np.uint8), mode="L")
    big = np.asarray(small.resize(base.size, Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    mixed = (1 - opacity) * np.asarray(base, dtype=np.float32) + opacity * colormap(big).astype(np.float32)
    return Image.fromarray(mixed.round().clip(0, 255).astype(np.uint8), mode="RGB")


DISPLAY_PX = 320  # a 64-128 px render is drawn at least this large, so its heatmap can be read


def enlarged(image: Any, at_least: int = DISPLAY_PX) -> Any:
    """`image` scaled by a whole factor (nearest neighbour: its pixels stay sharp, nothing is invented) until its
    shorter side is at least `at_least` pixels; an image that large already is returned as is."""
    from PIL import Image

    k = max(1, -(-at_least // min(image.size)))
    return image if k == 1 else image.resize((image.width * k, image.height * k), Image.Resampling.NEAREST)


def _check_opacity(opacity: Any) -> float:
    if not isinstance(opacity, (int, float)) or isinstance(opacity, bool) or not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be a number from 0 to 1, got {opacity!r}")
    return float(opacity)


def _caption_lines(attended: Attended, word: str, opacity: float) -> list[str]:
    prov = attended.provenance
    att = attended.attention
    return [f"word '{word}' · image {attended.label} · opacity {opacity:.2f}",
            f"{prov.model_id} · seed {prov.seed} · {prov.settings.get('steps')} steps · "
            f"{prov.settings.get('width')}x{prov.settings.get('height')} · "
            f"guidance {prov.settings.get('guidance_scale')}",
            f"DAAM cross-attention: {att.layers} layers x {att.steps} steps, heads averaged"
            + (" · RANDOM WEIGHTS: not meaningful" if attended.random_weights else "")]


def heatmap_png(picture: Any, attended: Attended, word: str, opacity: float,
                folder: str | Path | None = None) -> Path:
    """The overlay above a caption strip (word, image, model, seed, settings, method) as a PNG whose `provenance`
    text chunk holds the re-render's provenance and the heatmap's settings as JSON."""
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    lines = _caption_lines(attended, word, opacity)
    width = max(picture.width, 420)
    strip = 14 * len(lines) + 8
    sheet = Image.new("RGB", (width, picture.height + strip), "white")
    sheet.paste(picture, ((width - picture.width) // 2, 0))
    draw = ImageDraw.Draw(sheet)
    for k, line in enumerate(lines):
        draw.text((4, picture.height + 4 + 14 * k), line, fill=(0, 0, 0))
    info = PngInfo()
    record = {"word": word, "image": attended.label, "opacity": opacity, "prompt": attended.prompt,
              "provenance": attended.provenance.to_dict()}
    info.add_text("provenance", json.dumps(record, ensure_ascii=False))
    folder = Path(folder or export_folder("t2i-heatmap-"))
    folder.mkdir(parents=True, exist_ok=True)
    safe_word = "".join(ch for ch in word if ch.isalnum())[:24] or "word"
    path = folder / f"heatmap_{attended.label.strip('#')}_{safe_word}.png"
    sheet.save(path, format="PNG", pnginfo=info)
    return path


def view(attended: Attended, rendered: Any, word: str | None, opacity: float) -> HeatmapView:
    """The overlay, caption and PNG for one word of an attended image."""
    opacity = _check_opacity(opacity)
    word = (word or "").strip().lower() or default_word(attended.attention)
    heat = attended.attention.word_map(word)  # ValueError naming the words there are
    picture = overlay(enlarged(attended.image), heat, opacity)  # the map is upsampled to the enlarged image
    notes = [f"Where the image model's cross-attention put **{escape_markdown(word)}** in image "
             f"**{attended.label}**: DAAM, heads averaged, summed over {attended.attention.layers} cross-attention "
             f"layers and {attended.attention.steps} denoising steps, shown on its own scale (bright = most)."]
    if attended.random_weights:
        notes.append(f"⚠️ {RANDOM_NOTE}: the image model has random weights, so this map shows where untrained "
                     f"attention fell, not what the word means.")
    png = heatmap_png(picture, attended, word, opacity)
    return HeatmapView(image=picture, caption="\n\n".join(notes), png=str(png), images=image_choices(rendered),
                       words=attended.attention.word_choices(), label=attended.label, word=word)


def show(t2i: Any, rendered: Any, label: str | None, word: str | None, opacity: float,
         kept: Attended | None = None, job: Any = None) -> tuple[Attended, HeatmapView]:
    """The heatmap of `word` in image `label` of the last render: the recorded maps are reused when the same image
    of the same render was attended before (`kept`), otherwise the image is rendered again with recording."""
    if rendered is None:
        raise ValueError("nothing rendered yet: press Render first, then pick an image and a word")
    _check_opacity(opacity)
    label = label or default_label(rendered)
    shown = rendered_image(rendered, label)
    same = (kept is not None and kept.label == label and kept.prompt == shown.prompt
            and kept.provenance.model_id == shown.provenance.model_id
            and _settings(kept.provenance) == _settings(shown.provenance))
    attended = kept if same else attend(t2i, rendered, label, job=job)
    return attended, view(attended, rendered, word, opacity)


def managed_t2i(ctx: Any, profile_name: str | None) -> ManagedModel:
    return ManagedModel(ctx.manager, ctx.profile(profile_name).spec("t2i"))


__all__: Sequence[str] = ("Attended", "HeatmapView", "attend", "colormap", "default_label", "heatmap_png",
                          "image_choices", "normalised", "overlay", "rendered_image", "show", "view", "words_of")
