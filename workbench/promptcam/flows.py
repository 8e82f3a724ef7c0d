"""The Prompt-CAM tab's flows, written once for both front ends: each takes the session state (a JSON-able dict) and
inputs, and returns the new state and a view model (`PromptCamView`). Pages only lay out widgets and call these.

analyse  -> runs the model once: class probabilities, the chosen class's per-head maps ranked by greedy head blurring,
            Grad-CAM and rollout; keeps the maps (small patch grids) in the state.
render   -> redraws the view from the state (opacity, which ranked head for the before/after view): no model call.
export   -> one panel as a PNG with its caption (model, checkpoint, class, head).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import ModelSpec
from workbench.types import Provenance
from workbench.profiles import ASSETS
from workbench.text import escape_markdown as _escape

ROOT = ASSETS.parent
ROLE = "promptcam"
EXAMPLES_DIR = ASSETS / "promptcam" / "examples"
CLASS_CHOICES = ("predicted", "true class")  # then the class names, or a class index
MAX_TOP_K = 20
PANELS = ("prompt-cam head", "grad-cam", "rollout")

INTRO = (
    "**Prompt-CAM** (Chowdhury et al., CVPR'25): a frozen ViT with one learned prompt per class at every layer; each "
    "class is scored from its own prompt, so the true class's prompt must attend to the patches that set it apart "
    "(its *traits*). The last layer's attention of the chosen class's prompt is shown per head, heads ranked by "
    "greedy head blurring (the official method). Grad-CAM (captum `LayerGradCam` on the last block's input) and "
    "attention rollout (the plain backbone's CLS token, class-agnostic) sit beside it. Maps are distributions over "
    "the patch grid (sum 1), shown min-max scaled. Choose *any* class to see how that class's prompt looks at the "
    "image. Limits: images up to 25 megapixels and 30 MB; grayscale, palette, alpha, 16-bit and CMYK images are "
    "converted to RGB (with a note)."
)


@dataclass
class PromptCamView:
    summary: str = ""
    top_classes: list[list[Any]] = field(default_factory=list)  # [rank, class, probability]
    heads: list[tuple[Any, str]] = field(default_factory=list)  # ranked per-head overlays (PIL, caption)
    before_after: tuple[Any, Any] | None = None  # (image, chosen head's overlay)
    traits: list[tuple[Any, str]] = field(default_factory=list)  # crops around the top heads' peaks
    grad_cam: Any = None
    rollout: Any = None
    grad_cam_caption: str = ""
    rollout_caption: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- examples and specs


def list_examples() -> list[dict[str, str]]:
    """The shipped example images: [{"file", "mask", "true_class"}], file names relative to EXAMPLES_DIR."""
    index = EXAMPLES_DIR / "examples.json"
    if not index.is_file():
        return []
    return json.loads(index.read_text(encoding="utf-8"))


def example_names() -> list[str]:
    return [e["file"] for e in list_examples()]


def default_example() -> str | None:
    """The example a newcomer sees first: the first one the shipped checkpoint classifies correctly (the index
    records the checkpoint's prediction for each; 6 of the 8 are right), so the first click shows the method working;
    the misclassified ones stay in the list."""
    examples = list_examples()
    right = [e["file"] for e in examples if e.get("predicted") == e.get("true_class")]
    return (right or [e["file"] for e in examples] or [None])[0]


def _local(path: str) -> str:
    """Profiles name shipped files relative to the repository root; hub ids and absolute paths pass through."""
    p = Path(path)
    if not p.is_absolute() and (ROOT / p).exists():
        return str(ROOT / p)
    return path


def resolve_spec(ctx: Any, profile_name: str | None, checkpoint: str | None = None) -> tuple[ModelSpec, str | None]:
    """(backbone spec with shipped paths made absolute, checkpoint folder or None)."""
    spec = ctx.profile(profile_name).spec(ROLE)
    chosen = (checkpoint or "").strip() or spec.option("checkpoint")
    spec = dataclasses.replace(spec, model_id=_local(spec.model_id),
                               options=tuple((k, v) for k, v in spec.options if k != "checkpoint"))
    return spec, (_local(str(chosen)) if chosen else None)


def checkpoint_classes(ctx: Any, profile_name: str | None) -> list[str]:
    """The class names of the profile's checkpoint, read from its JSON (no model and no torch import: the app's
    start-up path calls this)."""
    _, ckpt = resolve_spec(ctx, profile_name)
    if ckpt is None:
        return []
    try:
        return [str(n) for n in json.loads((Path(ckpt) / "promptcam.json").read_text(encoding="utf-8"))["class_names"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


_MODELS: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def promptcam_for(backend: Any, checkpoint: str) -> tuple[Any, Any]:
    """The Prompt-CAM wrapper of a loaded backbone for one checkpoint, built once per (backbone, checkpoint files);
    forgotten when the manager unloads the backbone."""
    from workbench.promptcam.model import CHECKPOINT_WEIGHTS, load_promptcam

    folder = Path(checkpoint)
    if not folder.is_dir():
        raise ValueError(f"checkpoint folder '{checkpoint}' does not exist")
    weights = folder / CHECKPOINT_WEIGHTS
    stamp = f"{folder.resolve()}|{weights.stat().st_mtime_ns if weights.exists() else 0}"
    per_backend = _MODELS.setdefault(backend, {})
    if stamp not in per_backend:
        per_backend.clear()
        per_backend[stamp] = load_promptcam(backend.model, folder)
    return per_backend[stamp]


# --------------------------------------------------------------------------- analyse


def _upload_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "prompt-workbench-promptcam"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _whole(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}") from None
    if number != int(number) or not low <= number <= high:
        raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}")
    return int(number)


def resolve_class(choice: Any, class_names: list[str], predicted: int, true_class: str | None) -> int:
    """'predicted', 'true class', a class name, or a class index (0-based) -> index; clear errors otherwise."""
    text = str(choice if choice is not None else "predicted").strip()
    if text in ("", "predicted"):
        return predicted
    if text == "true class":
        if true_class is None:
            raise ValueError("'true class' is known only for the shipped examples; choose 'predicted' or a class")
        if true_class not in class_names:
            raise ValueError(f"the example's true class '{true_class}' is not one of this checkpoint's classes")
        return class_names.index(true_class)
    if text in class_names:
        return class_names.index(text)
    try:
        index = int(text)
    except ValueError:
        raise ValueError(f"class must be 'predicted', 'true class', one of {', '.join(class_names)}, or an index "
                         f"from 0 to {len(class_names) - 1}; got {text!r}") from None
    if not 0 <= index < len(class_names):
        raise ValueError(f"class index must be between 0 and {len(class_names) - 1} (this checkpoint has "
                         f"{len(class_names)} classes), got {index}")
    return index


def _load_input(upload: Any, example: str | None) -> tuple[Any, list[str], str, str | None]:
    from workbench.promptcam.inputs import check_image

    if upload not in (None, ""):
        checked = check_image(upload)
        name = Path(str(upload)).name if isinstance(upload, (str, Path)) else "upload"
        return checked.image, checked.notes, name, None
    if example:
        known = {e["file"]: e for e in list_examples()}
        if example not in known:
            raise ValueError(f"unknown example {example!r}; choose one of: {', '.join(known) or '(none shipped)'}")
        checked = check_image(EXAMPLES_DIR / example)
        return checked.image, checked.notes, example, known[example]["true_class"]
    raise ValueError("no image: upload one or pick an example")


def analyse(ctx: Any, state: dict | None, profile_name: str | None, upload: Any, example: str | None,
            checkpoint: str | None, class_choice: Any, top_k: Any = 3, top_traits: Any = 4,
            opacity: Any = 0.5) -> tuple[dict, PromptCamView]:
    """Run Prompt-CAM, Grad-CAM and rollout on one image for the chosen class; returns (state, view)."""
    import torch

    from workbench.promptcam.explain import explain
    from workbench.promptcam.model import Preprocess

    image, notes, name, true_class = _load_input(upload, example)
    spec, ckpt = resolve_spec(ctx, profile_name, checkpoint)
    if ckpt is None:
        raise ValueError(f"profile '{ctx.profile(profile_name).name}' has no Prompt-CAM checkpoint for backbone "
                         f"'{spec.model_id}'. Train one: python -m workbench.promptcam train --data DATASET "
                         f"--backbone {spec.model_id} --out CHECKPOINT, then enter CHECKPOINT above.")
    with ctx.manager.use(spec) as backend:
        model, meta = promptcam_for(backend, ckpt)
        classes = list(meta.class_names)
        top_k = _whole(top_k, "top-k", 1, min(MAX_TOP_K, len(classes)))
        heads = model.num_heads
        top_traits = _whole(top_traits, "top traits (heads shown)", 1, heads)
        if str(class_choice).strip() not in ("", "predicted", "true class", "None") and \
                str(class_choice).strip() not in classes:
            resolve_class(class_choice, classes, 0, true_class)  # an out-of-range index fails before any work
        pre = Preprocess.for_backbone(backend.model.config, backend.processor)
        pixels = pre([image]).to(backend.device)
        with torch.inference_mode():
            probs = torch.softmax(model(pixels).logits.float(), -1)[0].cpu().numpy()
        predicted = int(np.argmax(probs))
        target = resolve_class(class_choice, classes, predicted, true_class)
        result = explain(model, pixels, target, keep=top_traits)
        random_weights = bool(getattr(backend, "random_weights", False))
    digest = hashlib.sha256(np.asarray(image).tobytes()).hexdigest()[:16]
    stored = _upload_dir() / f"{digest}.png"
    if not stored.exists():
        image.save(stored)
    prov = Provenance(model_id=spec.model_id, backend=spec.backend, seed=None, revision=spec.revision,
                      device=str(pixels.device), dtype="float32", random_weights=random_weights,
                      settings={"checkpoint": ckpt, "class": classes[target], "top_traits": top_traits,
                                "input_size": pre.size, "method": "prompt-cam last-layer head attention"})
    state = {
        "image_file": str(stored), "image_name": name, "true_class": true_class, "notes": notes,
        "profile": ctx.profile(profile_name).name, "backbone": spec.model_id, "checkpoint": ckpt,
        "checkpoint_training": {k: meta.training.get(k) for k in ("best_val_accuracy", "epoch")},
        "class_names": classes, "probabilities": [float(p) for p in probs], "predicted": predicted,
        "target": target, "top_k": top_k, "top_traits": top_traits,
        "ranking": result.ranking.order[:top_traits], "importance": result.ranking.importance,
        "base_probability": result.ranking.probability,
        "head_maps": result.head_maps.tolist(), "grad_cam": result.grad_cam.tolist(),
        "rollout": result.rollout.tolist(), "seconds": {k: round(v, 4) for k, v in result.seconds.items()},
        "random_weights": random_weights, "provenance": prov.to_dict(), "caption": prov.caption(),
    }
    return state, render(state, opacity, 1)


# --------------------------------------------------------------------------- render and export


def _need(state: dict | None) -> dict:
    if not state or "head_maps" not in state:
        raise ValueError("analyse an image first")
    return state


def _image(state: dict):
    from PIL import Image

    path = Path(state["image_file"])
    if not path.is_file():
        raise ValueError("the analysed image is no longer on the server; analyse it again")
    with Image.open(path) as im:
        return im.convert("RGB")


def _importance(state: dict, head: int) -> float:
    """The class probability lost when the head was blurred (JSON keeps dict keys as strings)."""
    table = state["importance"]
    return float(table.get(str(head), table.get(head, 0.0)))


def summary_markdown(state: dict) -> str:
    names = state["class_names"]
    target, predicted = state["target"], state["predicted"]
    lines = []
    if state.get("random_weights"):
        lines.append("⚠️ **Random weights: outputs are not meaningful.**")
    acc = (state.get("checkpoint_training") or {}).get("best_val_accuracy")
    lines.append(f"**Image** {_escape(state['image_name'])} · **predicted** {_escape(names[predicted])} "
                 f"({state['probabilities'][predicted]:.1%})"
                 + (f" · **true class** {_escape(state['true_class'])}" if state.get("true_class") else ""))
    lines.append(f"**Explaining class** {_escape(names[target])} (index {target}; "
                 f"p = {state['probabilities'][target]:.1%}); heads ranked by greedy blurring: "
                 + ", ".join(f"head {h} (blurred: {-_importance(state, h):+.1%})" for h in state["ranking"]))
    lines.append(f"**Backbone** {_escape(state['backbone'])} · **checkpoint** {_escape(state['checkpoint'])}"
                 + (f" (validation accuracy {acc:.1%})" if isinstance(acc, (int, float)) else ""))
    secs = state["seconds"]
    lines.append("**Time** " + ", ".join(f"{k.replace('_', '-')} {v * 1000:.0f} ms" for k, v in secs.items()))
    for note in state.get("notes") or []:
        lines.append(f"ℹ️ {_escape(note)}")
    lines.append(f"*Provenance:* {_escape(state['caption'])}")
    return "\n\n".join(lines)


def render(state: dict | None, opacity: Any = 0.5, head_rank: Any = 1) -> PromptCamView:
    """The view for a stored analysis: no model call (opacity and the before/after head change only pictures)."""
    from workbench.promptcam.render import enlarge, overlay, peak_crop

    state = _need(state)
    try:
        opacity = float(opacity)
    except (TypeError, ValueError):
        raise ValueError(f"opacity must be a number between 0 and 1, got {opacity!r}") from None
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity!r}")
    ranking = state["ranking"]
    rank = _whole(head_rank, "head rank", 1, len(ranking))
    image = _image(state)
    names = state["class_names"]
    cls = names[state["target"]]
    maps = np.asarray(state["head_maps"])
    heads, traits = [], []
    for r, h in enumerate(ranking, 1):
        heads.append((overlay(image, maps[h], opacity), f"#{r}: head {h} · blurring it changes p({cls}) by "
                                                         f"{-_importance(state, h):+.1%}"))
        crop, (pr, pc) = peak_crop(image, maps[h])
        traits.append((crop, f"trait #{r} (head {h}): patch row {pr}, col {pc}"))
    order = np.argsort(-np.asarray(state["probabilities"]))[: state["top_k"]]
    top = [[i + 1, names[c], round(float(state["probabilities"][c]), 4)] for i, c in enumerate(order)]
    chosen = ranking[rank - 1]
    return PromptCamView(
        summary=summary_markdown(state), top_classes=top, heads=heads,
        before_after=(enlarge(image), overlay(image, maps[chosen], opacity)), traits=traits,
        grad_cam=overlay(image, np.asarray(state["grad_cam"]), opacity),
        rollout=overlay(image, np.asarray(state["rollout"]), opacity),
        grad_cam_caption=f"Grad-CAM for {cls} ({state['seconds'].get('grad_cam', 0) * 1000:.0f} ms)",
        rollout_caption=f"Attention rollout, class-agnostic ({state['seconds'].get('rollout', 0) * 1000:.0f} ms)",
        provenance=state["provenance"])


def export_png(state: dict | None, panel: str = "prompt-cam head", head_rank: Any = 1, opacity: Any = 0.5) -> str:
    """One panel as a PNG with a caption band: model, checkpoint, class, head (for Prompt-CAM) and the provenance.
    Returns the file's path."""
    from workbench.promptcam.render import overlay, with_caption

    state = _need(state)
    if panel not in PANELS:
        raise ValueError(f"panel must be one of {', '.join(PANELS)}, got {panel!r}")
    render(state, opacity, head_rank)  # the same checks as the view
    rank = int(float(head_rank))
    image = _image(state)
    cls = state["class_names"][state["target"]]
    if panel == "prompt-cam head":
        head = state["ranking"][rank - 1]
        picture = overlay(image, np.asarray(state["head_maps"])[head], float(opacity))
        what = f"Prompt-CAM · class {cls} · head {head} (rank {rank} of {len(state['ranking'])} by greedy blurring)"
        tag = f"head{head}"
    else:
        key = "grad_cam" if panel == "grad-cam" else "rollout"
        picture = overlay(image, np.asarray(state[key]), float(opacity))
        what = f"{'Grad-CAM' if key == 'grad_cam' else 'Attention rollout (class-agnostic)'} · class {cls}"
        tag = key
    lines = [what, f"model {state['backbone']} · checkpoint {state['checkpoint']}",
             f"image {state['image_name']}", state["caption"]]
    out = with_caption(picture, lines)
    digest = hashlib.sha256(("|".join(lines) + str(opacity)).encode()).hexdigest()[:10]
    path = _upload_dir() / f"promptcam_{cls}_{tag}_{digest}.png"
    out.save(path)
    return str(path)
