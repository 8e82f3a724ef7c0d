"""Explanations and their measures: Prompt-CAM per-head maps ranked by greedy head blurring, Grad-CAM (captum
`LayerGradCam`) and attention rollout (Abnar & Zuidema 2020) for comparison; pointing game, energy in the trait mask,
and deletion/insertion curves (Petsiuk et al. 2018).

Map convention (all three methods): a map is a non-negative (h, w) array over the patch grid that sums to 1 (a
distribution over patches; `normalise_map`). For display, `display_map` rescales it to [0, 1] by its min and max
(a constant map becomes all zeros).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from workbench.promptcam.model import PromptCAM, prefix_tokens


def normalise_map(m: Any) -> np.ndarray:
    """Clamp at 0 and divide by the sum: a distribution over patches (uniform when the map is all zeros)."""
    a = np.nan_to_num(np.asarray(m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
    total = a.sum()
    return a / total if total > 0 else np.full_like(a, 1.0 / a.size)


def display_map(m: Any) -> np.ndarray:
    """Min-max to [0, 1] for overlays; a constant map gives zeros."""
    a = np.asarray(m, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


# --------------------------------------------------------------------------- Prompt-CAM head ranking


@dataclass
class HeadRanking:
    order: list[int]  # heads, most important first
    probability: float  # the class's probability with no head blurred
    steps: list[dict[str, Any]] = field(default_factory=list)  # per greedy step: candidate -> probability when blurred

    @property
    def importance(self) -> dict[int, float]:
        """Per head: the class probability lost when it was blurred at the step it was removed (the kept heads: at
        the last step)."""
        out: dict[int, float] = {}
        for step in self.steps:
            for head, p in step["probabilities"].items():
                out[int(head)] = round(self.probability - p, 6)
        return out


@torch.no_grad()
def rank_heads(model: PromptCAM, pixels: torch.Tensor, target: int, keep: int = 1) -> HeadRanking:
    """Greedy head blurring (the official `prune_attn_heads`): repeatedly blur, in the last layer, the head of class
    `target`'s prompt whose blurring keeps the class probability highest (the least important), until `keep` heads
    remain; those are ranked by how far blurring each one drops the probability, then the blurred heads in reverse
    removal order. Each step runs its candidates as one batch. Deterministic: ties go to the lower head index."""
    if pixels.shape[0] != 1:
        raise ValueError("rank_heads takes one image at a time")
    H = model.num_heads
    if not 1 <= keep <= H:
        raise ValueError(f"keep must be between 1 and {H} (the number of heads), got {keep}")
    base = torch.softmax(model(pixels).logits.float(), -1)[0, target].item()
    remaining, blurred, steps = list(range(H)), [], []
    scores: dict[int, float] = {}
    while True:
        n = len(remaining)
        blur = torch.zeros(n, H, dtype=torch.bool, device=pixels.device)
        if blurred:
            blur[:, blurred] = True
        blur[torch.arange(n), remaining] = True
        rows = torch.full((n,), int(target), dtype=torch.long, device=pixels.device)
        probs = torch.softmax(model(pixels.expand(n, -1, -1, -1), blur=blur, blur_rows=rows).logits.float(), -1)
        scores = {h: float(probs[i, target]) for i, h in enumerate(remaining)}
        steps.append({"blurred": list(blurred), "probabilities": scores})
        if n <= keep:
            break
        least = max(remaining, key=lambda h: (round(scores[h], 7), -h))
        blurred.append(least)
        remaining.remove(least)
    kept = sorted(remaining, key=lambda h: (round(scores[h], 7), h))
    return HeadRanking(order=kept + blurred[::-1], probability=base, steps=steps)


# --------------------------------------------------------------------------- baselines


@contextlib.contextmanager
def gradients_enabled() -> Iterator[None]:
    """Grad-CAM needs autograd even when called from an inference path; nothing outlives the block."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def grad_cam(model: PromptCAM, pixels: torch.Tensor, target: int) -> np.ndarray:
    """captum LayerGradCam on the patch tokens entering the last block (ReLU'd), for class `target`'s score;
    returns (B, h, w) normalised maps. captum removes its hooks when it returns."""
    from captum.attr import LayerGradCam

    with gradients_enabled():
        cam = LayerGradCam(lambda px: model(px).logits, model.tap)
        attr = cam.attribute(pixels.detach().clone(), target=int(target), relu_attributions=True)
    maps = attr.detach()[:, 0].cpu().numpy()
    return np.stack([normalise_map(m) for m in maps])


@torch.no_grad()
def attention_rollout(backbone: Any, pixels: torch.Tensor, residual: float = 0.5) -> np.ndarray:
    """Rollout of the plain backbone's attention (no prompts): per layer A = residual*I + (1-residual)*mean over heads,
    rows renormalised, multiplied through the layers; the CLS row over the patches. Class-agnostic. (B, h, w)."""
    out = backbone(pixel_values=pixels, output_attentions=True)
    if not out.attentions or any(a is None for a in out.attentions):
        raise RuntimeError("the backbone returned no attentions; eager attention is required")
    config = backbone.config
    T = out.attentions[0].shape[-1]
    eye = torch.eye(T, device=pixels.device)
    joint = None
    for a in out.attentions:
        a = residual * eye + (1 - residual) * a.float().mean(1)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else a @ joint
    p = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    h, w = pixels.shape[-2] // p, pixels.shape[-1] // p
    cls_row = joint[:, 0, prefix_tokens(config):]
    return np.stack([normalise_map(m) for m in cls_row.reshape(-1, h, w).cpu().numpy()])


# --------------------------------------------------------------------------- measures


def pointing_hit(m: np.ndarray, mask_grid: np.ndarray) -> bool:
    """Pointing game at patch level: the map's highest patch contains trait pixels (ties: the first in row order)."""
    return bool(mask_grid.reshape(-1)[int(np.argmax(np.asarray(m).reshape(-1)))] > 0)


def energy_in_mask(m: np.ndarray, mask_grid: np.ndarray) -> float:
    """Share of the map's mass on trait pixels: each patch's mass spread evenly over its pixels, so a patch half
    covered by the trait counts half. A uniform map scores the mask's area share."""
    return float((normalise_map(m) * mask_grid).sum())


@torch.no_grad()
def deletion_insertion(model: PromptCAM, pixels: torch.Tensor, m: np.ndarray, target: int, steps: int = 16,
                       blurred: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class probability as patches are removed (deletion: replaced by 0 = the dataset's mean colour) or revealed
    (insertion: onto a heavily blurred copy), in the map's order, highest first; `steps`+1 points each, from 0% to
    100% of the patches. One batched forward per curve. Their AUCs are the curves' means (trapezoid on [0, 1])."""
    B, _, Hpx, Wpx = pixels.shape
    gh, gw = np.asarray(m).shape
    ph, pw = Hpx // gh, Wpx // gw
    order = np.argsort(-np.asarray(m).reshape(-1), kind="stable")
    n = gh * gw
    counts = np.linspace(0, n, steps + 1).round().astype(int)
    if blurred is None:
        blurred = box_blur(pixels)
    keep_masks = torch.zeros(steps + 1, 1, gh, gw, device=pixels.device)
    for i, c in enumerate(counts):
        flat = keep_masks[i].view(-1)
        flat[torch.as_tensor(order[:c], device=pixels.device)] = 1.0
    up = keep_masks.repeat_interleave(ph, 2).repeat_interleave(pw, 3)  # 1 where the patch is "taken"
    deletion = pixels * (1 - up)
    insertion = blurred * (1 - up) + pixels * up
    probs = torch.softmax(model(torch.cat([deletion, insertion])).logits.float(), -1)[:, target].cpu().numpy()
    return probs[: steps + 1], probs[steps + 1:]


def box_blur(pixels: torch.Tensor, k: int = 11) -> torch.Tensor:
    pad = k // 2
    x = torch.nn.functional.pad(pixels, (pad, pad, pad, pad), mode="replicate")
    return torch.nn.functional.avg_pool2d(x, k, stride=1)


def auc(curve: np.ndarray) -> float:
    x = np.linspace(0, 1, len(curve))
    return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(x)))


# --------------------------------------------------------------------------- one image, every method


@dataclass
class Explanation:
    probabilities: np.ndarray  # (C,)
    target: int
    ranking: HeadRanking
    head_maps: np.ndarray  # (H, h, w), normalised, in head index order
    grad_cam: np.ndarray  # (h, w)
    rollout: np.ndarray  # (h, w)
    seconds: dict[str, float]


def explain(model: PromptCAM, pixels: torch.Tensor, target: int | None = None, keep: int = 1) -> Explanation:
    """Everything the tab and the benchmark show for one image: class probabilities, class `target`'s per-head
    maps ranked by greedy blurring (default target: the predicted class), Grad-CAM and rollout; timed per method."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    with torch.no_grad():
        logits, maps = model.head_maps(pixels, target if target is not None else 0)
        probs = torch.softmax(logits.float(), -1)[0].cpu().numpy()
        if target is None:
            target = int(np.argmax(probs))
            logits, maps = model.head_maps(pixels, target)
        ranking = rank_heads(model, pixels, target, keep=keep)
    seconds["prompt_cam"] = time.perf_counter() - t
    t = time.perf_counter()
    gc = grad_cam(model, pixels, target)[0]
    seconds["grad_cam"] = time.perf_counter() - t
    t = time.perf_counter()
    ro = attention_rollout(model.backbone, pixels)[0]
    seconds["rollout"] = time.perf_counter() - t
    head_maps = np.stack([normalise_map(mm) for mm in maps[0].cpu().numpy()])
    return Explanation(probs, int(target), ranking, head_maps, gc, ro, seconds)
