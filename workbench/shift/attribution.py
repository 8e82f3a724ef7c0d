"""Attribution of each output token to each prompt token (captum), and the behaviour-shift paper's summaries.

Methods: gradient x input on the input embeddings (the paper's `input_explain`, Wu et al., NAACL'24),
integrated gradients on the embedding layer (with its completeness error reported), and feature ablation
(each prompt token replaced by the pad token). The target is the probability of the generated token, as in
the paper. Summaries: the paper's importance density (negatives zeroed, column-normalised, scaled by L and
ceil'd, <= b dropped, L1/Lp), the instruction span's share of attribution mass, and mass by prompt position
(the lost-in-the-middle view). Hooks and gradients live inside context managers; parameters never get grads.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from workbench.shift.limits import METHODS, ShiftSettings

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")
_CAPTURE_MARK = "_output_capturing_hooks_installed"


@dataclass
class AttributionResult:
    method: str
    scores: np.ndarray  # (n_outputs, n_prompt): attribution of output token j to prompt token i
    target_prob: np.ndarray  # (n_outputs,) probability of each generated token (the attributed output)
    seconds: float
    completeness_abs: np.ndarray | None = None  # IG: |sum(attr) - (f(x) - f(baseline))| per output token
    completeness_rel: np.ndarray | None = None  # the same relative to |f(x) - f(baseline)|
    notes: list[str] = field(default_factory=list)

    def completeness_ok(self, tolerance: float) -> bool | None:
        if self.completeness_rel is None:
            return None
        return bool(np.all(self.completeness_rel <= tolerance))


# ---------------------------------------------------------------------------- hooks and gradients


def hook_counts(model: Any) -> int:
    """Forward/backward hooks registered on any module of `model` (the tests check this returns to zero)."""
    total = 0
    for module in model.modules():
        for name in _HOOK_DICTS:
            total += len(getattr(module, name, {}) or {})
    return total


@contextlib.contextmanager
def hooks_removed_on_exit(model: Any) -> Iterator[None]:
    """Whatever hooks the block adds to `model`'s modules are removed when it ends, also after an error."""
    before = {id(m): {name: set((getattr(m, name, {}) or {}).keys()) for name in _HOOK_DICTS} for m in model.modules()}
    # transformers 5 installs output-capturing hooks on the first output_attentions call and marks the model;
    # those are removed too, and the mark with them, so transformers installs them again when next needed
    marked = {id(m) for m in model.modules() if getattr(m, _CAPTURE_MARK, False)}
    try:
        yield
    finally:
        for module in model.modules():
            if getattr(module, _CAPTURE_MARK, False) and id(module) not in marked:
                setattr(module, _CAPTURE_MARK, False)
        for module in model.modules():
            known = before.get(id(module), {})
            for name in _HOOK_DICTS:
                hooks = getattr(module, name, None)
                if not hooks:
                    continue
                for key in [k for k in hooks if k not in known.get(name, set())]:
                    del hooks[key]


@contextlib.contextmanager
def input_gradients_only(model: Any) -> Iterator[None]:
    """Gradients on, but only towards inputs: parameters are frozen for the block and get no `.grad`."""
    import torch

    saved = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
            p.grad = None


# ---------------------------------------------------------------------------- captum methods


def _target_forward(model: Any, target_id: int):
    """f(ids) = probability of `target_id` after the sequence (the paper's objective)."""
    import torch

    def forward(input_ids: Any) -> Any:
        # only the last position's logits: with a 262k-token vocabulary the output projection over every
        # position would cost more than the rest of the model
        logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False,
                       logits_to_keep=1).logits
        return torch.softmax(logits[:, -1, :].float(), dim=-1)[:, target_id]

    return forward


def baseline_ids(prompt_ids: Sequence[int], special_mask: Sequence[bool], pad_id: int) -> list[int]:
    """Every prompt token becomes the pad token except special tokens (BOS is an attention sink; replacing it
    measures the sink, not the prompt)."""
    return [tid if special else pad_id for tid, special in zip(prompt_ids, special_mask)]


def integrated_gradients(model: Any, layer: Any, ids: Any, baselines: Any, target_id: int, steps: int,
                         internal_batch: int) -> tuple[Any, float, float]:
    """Layer integrated gradients on `layer` (the input embeddings) for p(target | ids): per-position attributions
    (summed over the hidden size), the absolute completeness error and that error relative to f(x) - f(baseline).
    Call inside `input_gradients_only` and `hooks_removed_on_exit`."""
    import torch
    from captum.attr import LayerIntegratedGradients

    forward = _target_forward(model, target_id)
    attr, delta = LayerIntegratedGradients(forward, layer).attribute(
        ids, baselines=baselines, n_steps=steps, internal_batch_size=internal_batch, return_convergence_delta=True)
    with torch.no_grad():
        gap = float(forward(ids)[0] - forward(baselines)[0])
    error = abs(float(delta.reshape(-1)[0]))
    return attr.sum(-1)[0].detach(), error, error / max(abs(gap), 1e-12)


def attribute(backend: Any, prompt_ids: Sequence[int], output_ids: Sequence[int], special_mask: Sequence[bool],
              settings: ShiftSettings, methods: Sequence[str] | None = None) -> dict[str, AttributionResult]:
    """Attribute each generated token to the prompt tokens with each method; (n_outputs, n_prompt) per method.

    Output token j is explained given the prompt and the j tokens generated before it (kept fixed)."""
    import torch
    from captum.attr import FeatureAblation, LayerGradientXActivation

    methods = tuple(methods or settings.methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {', '.join(METHODS)}, got {unknown}")
    model = backend.model
    layer = backend.input_embeddings()
    device = backend.device
    n_prompt, n_out = len(prompt_ids), len(output_ids)
    if n_out == 0:
        raise ValueError("there are no output tokens to attribute")
    pad_id = backend.tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has no pad token to use as the attribution baseline")
    base_prompt = baseline_ids(prompt_ids, special_mask, pad_id)
    full = list(prompt_ids) + list(output_ids)
    results: dict[str, AttributionResult] = {}
    with hooks_removed_on_exit(model), input_gradients_only(model):
        for method in methods:
            scores = np.zeros((n_out, n_prompt), dtype=np.float64)
            probs = np.zeros(n_out, dtype=np.float64)
            delta_abs = np.zeros(n_out) if method == "integrated_gradients" else None
            delta_rel = np.zeros(n_out) if method == "integrated_gradients" else None
            started = time.perf_counter()
            for j, target in enumerate(output_ids):
                ids = torch.tensor([full[: n_prompt + j]], device=device)
                base = torch.tensor([base_prompt + full[n_prompt: n_prompt + j]], device=device)
                forward = _target_forward(model, int(target))
                if method == "gradient_x_input":
                    attr = LayerGradientXActivation(forward, layer, multiply_by_inputs=True).attribute(ids)
                    row = attr.sum(-1)[0, :n_prompt]
                elif method == "integrated_gradients":
                    attr, delta_abs[j], delta_rel[j] = integrated_gradients(
                        model, layer, ids, base, int(target), settings.ig_steps, settings.ig_internal_batch)
                    row = attr[:n_prompt]
                else:
                    mask = torch.tensor([list(range(n_prompt)) + [n_prompt] * j], device=device)
                    attr = FeatureAblation(forward).attribute(ids, baselines=base, feature_mask=mask,
                                                              perturbations_per_eval=settings.ablation_batch)
                    row = attr[0, :n_prompt]
                with torch.no_grad():
                    probs[j] = float(forward(ids)[0])
                scores[j] = row.detach().double().cpu().numpy()
                del attr
            res = AttributionResult(method=method, scores=scores, target_prob=probs,
                                    seconds=time.perf_counter() - started,
                                    completeness_abs=delta_abs, completeness_rel=delta_rel)
            if method != "gradient_x_input":
                res.notes.append("baseline: every prompt token replaced by the pad token, special tokens (BOS) kept")
            results[method] = res
    return results


# ---------------------------------------------------------------------------- the paper's summaries


@dataclass
class ImportanceDensity:
    sparse: np.ndarray  # (n_outputs, n_prompt) integers 0 or b+1..L after the paper's sparsification
    per_input: np.ndarray  # (n_prompt,) the paper's density: L1/Lp of each input token's row over outputs
    per_output: np.ndarray  # (n_outputs,) L1/Lp of each output token's column over inputs


def importance_density(scores: np.ndarray, scale: int = 10, threshold: int = 7, p: int = 4,
                       eps: float = 1e-7) -> ImportanceDensity:
    """The paper's `input_explain` summary: negatives zeroed, each output token's scores divided by their
    maximum over the prompt, scaled by L and ceil'd, scores <= b dropped; density = L1 / Lp norm."""
    expl = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)  # (n_out, n_in)
    expl = expl / (expl.max(axis=1, keepdims=True) + eps)
    expl = np.ceil(expl * scale)
    expl = np.where(expl <= threshold, 0.0, expl)

    def density(matrix: np.ndarray, axis: int) -> np.ndarray:
        l1 = matrix.sum(axis=axis)
        lp = (matrix ** p).sum(axis=axis) ** (1.0 / p) + eps
        return l1 / lp

    return ImportanceDensity(sparse=expl.astype(np.int64), per_input=density(expl, 0), per_output=density(expl, 1))


def instruction_share(scores: np.ndarray, instruction_mask: Sequence[bool], special_mask: Sequence[bool]) -> np.ndarray:
    """Per output token, the share of absolute attribution mass on instruction tokens (special tokens left out)."""
    mass = np.abs(np.asarray(scores, dtype=np.float64))
    keep = ~np.asarray(special_mask, dtype=bool)
    instr = np.asarray(instruction_mask, dtype=bool) & keep
    total = mass[:, keep].sum(axis=1)
    return np.divide(mass[:, instr].sum(axis=1), total, out=np.zeros(len(mass)), where=total > 0)


def position_profile(scores: np.ndarray, special_mask: Sequence[bool], bins: int = 10) -> np.ndarray:
    """Share of absolute attribution mass per relative prompt position bin (0 = start, bins-1 = end), averaged
    over output tokens: the lost-in-the-middle view. Special tokens are left out."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    mass = np.abs(np.asarray(scores, dtype=np.float64))[:, ~np.asarray(special_mask, dtype=bool)]
    n = mass.shape[1]
    if n == 0:
        return np.zeros(bins)
    which = np.minimum((np.arange(n) * bins) // n, bins - 1)
    per_bin = np.stack([mass[:, which == b].sum(axis=1) for b in range(bins)], axis=1)
    totals = per_bin.sum(axis=1, keepdims=True)
    shares = np.divide(per_bin, totals, out=np.zeros_like(per_bin), where=totals > 0)
    return shares.mean(axis=0)
