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
from typing import Any, Callable, Iterator, Sequence

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


def _at_least_float32(tensor: Any) -> Any:
    """Softmax over a large vocabulary in float32 at least (float64 stays float64, as the precision tests use)."""
    import torch

    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def _target_forward(model: Any, target_id: int):
    """f(ids) = probability of `target_id` after the sequence (the paper's objective)."""
    import torch

    def forward(input_ids: Any) -> Any:
        # only the last position's logits: with a 262k-token vocabulary the output projection over every
        # position would cost more than the rest of the model
        logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False,
                       logits_to_keep=1).logits
        return torch.softmax(_at_least_float32(logits[:, -1, :]), dim=-1)[:, target_id]

    return forward


def baseline_ids(prompt_ids: Sequence[int], special_mask: Sequence[bool], pad_id: int) -> list[int]:
    """Every prompt token becomes the pad token except special tokens (BOS is an attention sink; replacing it
    measures the sink, not the prompt)."""
    return [tid if special else pad_id for tid, special in zip(prompt_ids, special_mask)]


def vocabulary_mean_embedding(layer: Any, chunk: int = 16384) -> Any:
    """The embedding layer's output averaged over the whole vocabulary (1-D, the layer's dtype): looked up in
    chunks through the layer itself, so any scaling the layer applies (Gemma multiplies by sqrt(hidden)) is kept."""
    import torch

    weight = layer.weight
    vocab, device = weight.shape[0], weight.device
    total = None
    with torch.no_grad():
        for s in range(0, vocab, chunk):
            part = layer(torch.arange(s, min(vocab, s + chunk), device=device)).double().sum(0)
            total = part if total is None else total + part
    return (total / vocab).to(weight.dtype)


def ig_baseline_embeddings(layer: Any, x: Any, base_ids: Any, special_mask: Sequence[bool], kind: str) -> Any:
    """The integrated-gradients baseline at the embedding layer's output, shaped like `x` (1, L, H): every
    prompt position that is not a special token gets the pad token's embedding (`pad`), zeros (`zero`) or the
    vocabulary's mean embedding (`mean`); special tokens and the answer positions keep their embeddings."""
    import torch

    with torch.no_grad():
        if kind == "pad":
            return layer(base_ids).detach()
        if kind not in ("zero", "mean"):
            raise ValueError(f"ig_baseline must be one of pad, zero, mean, got {kind!r}")
        moved = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
        moved[: len(special_mask)] = ~torch.tensor(list(special_mask), dtype=torch.bool, device=x.device)
        xb = x.detach().clone()
        xb[0, moved] = 0.0 if kind == "zero" else vocabulary_mean_embedding(layer).to(x.dtype)
        return xb


BASELINE_NOTES = {
    "pad": "baseline: every prompt token replaced by the pad token, special tokens (BOS) kept",
    "zero": "baseline: a zero embedding at every prompt token, special tokens (BOS) kept",
    "mean": "baseline: the vocabulary's mean embedding at every prompt token, special tokens (BOS) kept",
}


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


def integrated_gradients_on_embeddings(model: Any, x: Any, xb: Any, target_id: int, steps: int,
                                       internal_batch: int) -> tuple[Any, float, float]:
    """Integrated gradients (captum, on `inputs_embeds`) of p(target | sequence) from the embedding-layer baseline
    `xb` to `x` (both (1, L, H)): the per-token reference for the zero and mean baselines, which are not token ids.
    Returns per-position attributions, the absolute completeness error and that error relative to the gap."""
    import torch
    from captum.attr import IntegratedGradients

    def forward(embeds: Any) -> Any:
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        logits = model(inputs_embeds=embeds, attention_mask=mask, use_cache=False, logits_to_keep=1).logits
        return torch.softmax(_at_least_float32(logits[:, -1, :]), dim=-1)[:, target_id]

    attr, delta = IntegratedGradients(forward).attribute(
        x, baselines=xb, n_steps=steps, internal_batch_size=internal_batch, return_convergence_delta=True)
    with torch.no_grad():
        gap = float(forward(x)[0] - forward(xb)[0])
    error = abs(float(delta.reshape(-1)[0]))
    return attr.sum(-1)[0].detach(), error, error / max(abs(gap), 1e-12)


# ---------------------------------------------------------------------------- teacher-forced, batched attribution


class BodyHead:
    """The model as a body (embeddings at every position -> features at the last `n_keep` positions) and a
    position-wise head (features -> probability of each position's target). Because the head is position-wise,
    one backward through it gives every target's gradient at its own position at once."""

    def __init__(self, model: Any, prefix_cache: Any = None):
        from workbench.shift.ffn import unwrap_peft

        self.prefix_cache = prefix_cache  # the backend's WhiteBoxLM.prefix_cache; None: no shared-prefix shortcut

        inner = unwrap_peft(model)
        body = next((getattr(inner, n) for n in ("model", "transformer") if isinstance(getattr(inner, n, None),
                                                                                         _nn_module())), None)
        head = inner.get_output_embeddings()  # every transformers causal LM has one (None when it has no head)
        self.model, self.body, self.head = model, body, head
        self.split = body is not None and head is not None
        self.cap = getattr(getattr(inner, "config", None), "final_logit_softcapping", None)

    def features(self, embeds: Any, n_keep: int) -> Any:
        import torch

        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        if self.split:
            hidden = self.body(inputs_embeds=embeds, attention_mask=mask, use_cache=False).last_hidden_state
            return hidden[:, -n_keep:]
        # an architecture without the usual body/head attributes: the logits are the features
        return self.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False, logits_to_keep=n_keep).logits

    def probs(self, features: Any, targets: Any) -> Any:
        """(B, P, F) features and (P,) target ids -> (B, P) probability of each position's target."""
        import torch

        logits = _at_least_float32(self.head(features) if self.split else features)
        if self.split and self.cap:
            logits = torch.tanh(logits / self.cap) * self.cap
        logp = torch.log_softmax(logits, dim=-1)
        return logp.gather(-1, targets.view(1, -1, 1).expand(logits.shape[0], -1, 1)).squeeze(-1).exp()


def _nn_module() -> type:
    import torch

    return torch.nn.Module


# positions per head call: the (batch, positions, vocabulary) logits of a 262k-token vocabulary are the
# largest tensor of the whole computation, so the head runs over a few answer positions at a time
_HEAD_POSITIONS = 8


def _probs_of(split: BodyHead, embeds: Any, targets: Any) -> Any:
    """Probability of each answer token given its prefix, for each row of `embeds` (no gradients): (B, n_out)."""
    import torch

    with torch.no_grad():
        return _head_probs(split, split.features(embeds, len(targets)), targets)


def _head_probs(split: BodyHead, feats: Any, targets: Any) -> Any:
    """(B, n_out, F) features at the answer positions -> (B, n_out) probabilities, a few positions per head call."""
    import torch

    return torch.cat([split.probs(feats[:, s:s + _HEAD_POSITIONS], targets[s:s + _HEAD_POSITIONS])
                      for s in range(0, len(targets), _HEAD_POSITIONS)], dim=1)


def _target_gradients(split: BodyHead, embeds: Any, targets: Any, chunk: int, notes: list[str],
                      on_chunk: Callable[[int, int, int], None] | None = None,
                      batched: bool = True) -> tuple[Any, Any]:
    """d p_j / d embeds for every answer token j, from one forward pass over the whole sequence.

    embeds: (B, L, H) leaf tensor with requires_grad; targets: (n_out,) ids of the answer tokens, which sit at
    the last n_out positions' predictions. Returns grads (n_out, B, L, H) and probs (B, n_out).
    `on_chunk(k, first, last)` follows the k-th batch of targets (first..last, 0-based)."""
    import torch

    n_out = len(targets)
    feats = split.features(embeds, n_out)  # (B, n_out, F), graph back to embeds
    detached = feats.detach()
    feat_grads = torch.zeros_like(detached)
    probs = torch.empty(detached.shape[:2], dtype=torch.promote_types(detached.dtype, torch.float32),
                        device=detached.device)
    for s in range(0, n_out, _HEAD_POSITIONS):
        part = detached[:, s:s + _HEAD_POSITIONS].clone().requires_grad_(True)
        p = split.probs(part, targets[s:s + _HEAD_POSITIONS])
        (feat_grads[:, s:s + _HEAD_POSITIONS],) = torch.autograd.grad(p.sum(), part)
        probs[:, s:s + _HEAD_POSITIONS] = p.detach()
    grads = torch.empty((n_out, *embeds.shape), dtype=embeds.dtype, device=embeds.device)
    for s in range(0, n_out, chunk):
        which = list(range(s, min(n_out, s + chunk)))
        cotangents = torch.zeros((len(which), *feats.shape), dtype=feats.dtype, device=feats.device)
        for c, j in enumerate(which):  # target j's gradient enters at its own position only
            cotangents[c, :, j] = feat_grads[:, j]
        grads[s:s + len(which)] = _batched_vjp(feats, embeds, cotangents, notes, batched)
        if on_chunk is not None:
            on_chunk(s // chunk + 1, which[0], which[-1])
    del feats
    return grads, probs


def use_vmap(mode: str, device: Any) -> bool:
    """Whether the targets' backward passes run batched (vmap over autograd) or one after another. `auto`: batched
    on accelerators, a loop on the CPU, where one backward per target measured ~20% faster than the batched pass
    on Gemma-3-270M (8 targets x 16 integration steps: 25 s vs 31 s of one thread)."""
    if mode == "auto":
        return str(device).split(":")[0] != "cpu"
    return mode == "vmap"


def _batched_vjp(outputs: Any, inputs: Any, cotangents: Any, notes: list[str], batched: bool = True) -> Any:
    """The gradients for a batch of cotangents: one backward pass (vmap over autograd) when `batched`, else one
    backward per cotangent; the loop also where an operator has no batching rule."""
    import torch

    if not batched:
        return torch.stack([torch.autograd.grad(outputs, inputs, c, retain_graph=True)[0] for c in cotangents])
    try:
        (grads,) = torch.autograd.grad(outputs, inputs, cotangents, retain_graph=True, is_grads_batched=True)
        return grads
    except RuntimeError as exc:  # e.g. an attention kernel without a vmap rule
        note = f"batched backward unavailable ({str(exc)[:120]}); gradients were taken one target at a time"
        if note not in notes:
            notes.append(note)
        return torch.stack([torch.autograd.grad(outputs, inputs, c, retain_graph=True)[0] for c in cotangents])


def _tokens_item(names: Sequence[str] | None, first: int, last: int, n: int, what: str = "output") -> str:
    """'output tokens 1–8 of 32 ('The' … 'sea')' for progress messages."""
    text = f"{what} token{'s' if last > first else ''} {first + 1}{f'–{last + 1}' if last > first else ''} of {n}"
    if names:
        text += f" ('{names[first]}'" + (f" … '{names[last]}')" if last > first else ")")
    return text


def _gauss_legendre(steps: int) -> tuple[list[float], list[float]]:
    """captum's integration rule for integrated gradients (step sizes, alphas), so both paths integrate alike."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters("gausslegendre")
    return list(step_sizes(steps)), list(alphas(steps))


ProgressFn = Callable[[str, int, int, str], None]


def attribute(backend: Any, prompt_ids: Sequence[int], output_ids: Sequence[int], special_mask: Sequence[bool],
              settings: ShiftSettings, methods: Sequence[str] | None = None,
              on_step: ProgressFn | None = None, token_names: Sequence[str] | None = None) -> dict[str, AttributionResult]:
    """Attribute each generated token to the prompt tokens with each method; (n_outputs, n_prompt) per method.

    Output token j is explained given the prompt and the j tokens generated before it (kept fixed), exactly
    as in `attribute_per_token`, but teacher-forced: the model is causal, so one pass over the prompt and the
    whole answer gives every answer token's probability given its own prefix. Feature ablation ablates each
    prompt token once over that sequence (the ablated sequences batched); gradient x input and integrated
    gradients take one forward pass (per batch of integration steps) and the gradients of all answer tokens in
    batched backward passes of `settings.target_chunk` targets.

    `on_step(method, done, total, item)` is called after each unit of work (`item` names the answer tokens or
    prompt tokens, with `token_names` when given); an exception it raises (a `workbench.jobs.Cancelled`) stops
    the run and carries the methods that finished as its `partial`."""
    import torch

    from workbench.jobs import Cancelled

    methods = tuple(methods or settings.methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {', '.join(METHODS)}, got {unknown}")
    n_prompt, n_out = len(prompt_ids), len(output_ids)
    if n_out == 0:
        raise ValueError("there are no output tokens to attribute")
    if n_prompt == 0:
        raise ValueError("there are no prompt tokens to attribute to")
    pad_id = backend.tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has no pad token to use as the attribution baseline")
    model, layer = backend.model, backend.input_embeddings()
    device = getattr(backend, "device", "cpu")
    step = on_step or (lambda *a: None)
    base_prompt = baseline_ids(prompt_ids, special_mask, pad_id)
    seq = list(prompt_ids) + list(output_ids[:-1])  # the last answer token is only ever a target
    ids = torch.tensor([seq], device=device)
    base = torch.tensor([base_prompt + list(output_ids[:-1])], device=device)
    targets = torch.tensor(list(output_ids), device=device)
    n_chunks = -(-n_out // settings.target_chunk)
    split = BodyHead(model, backend.prefix_cache)
    results: dict[str, AttributionResult] = {}
    try:
        with hooks_removed_on_exit(model), input_gradients_only(model):
            with torch.no_grad():
                x = layer(ids).detach()  # (1, L, H)
            xb = ig_baseline_embeddings(layer, x, base, special_mask, settings.ig_baseline) \
                if "integrated_gradients" in methods else None
            for method in methods:
                started = time.perf_counter()
                notes: list[str] = []
                delta_abs = delta_rel = None
                if method == "feature_ablation":
                    scores, probs = _ablation(split, ids, base, targets, n_prompt, settings.ablation_batch,
                                              lambda d, t, item: step(method, d, t, item))
                elif method == "gradient_x_input":
                    embeds = x.clone().requires_grad_(True)
                    grads, p = _target_gradients(
                        split, embeds, targets, settings.target_chunk, notes,
                        lambda k, a, b: step(method, k, n_chunks, _tokens_item(token_names, a, b, n_out)),
                        batched=use_vmap(settings.backward, device))
                    scores = (grads[:, 0, :n_prompt] * x[0, :n_prompt]).sum(-1)
                    probs = p[0]
                    del grads, embeds
                else:
                    scores, probs, delta_abs, delta_rel = _integrated(
                        split, x, xb, targets, n_prompt, settings, notes,
                        lambda d, t, item: step(method, d, t, item), token_names)
                res = AttributionResult(method=method, scores=scores.detach().double().cpu().numpy(),
                                        target_prob=probs.detach().double().cpu().numpy(),
                                        seconds=time.perf_counter() - started,
                                        completeness_abs=delta_abs, completeness_rel=delta_rel, notes=notes)
                if method == "integrated_gradients":
                    res.notes.insert(0, BASELINE_NOTES[settings.ig_baseline])
                elif method == "feature_ablation":
                    res.notes.insert(0, BASELINE_NOTES["pad"])
                results[method] = res
    except Cancelled as exc:
        raise Cancelled(str(exc), partial=dict(results)) from None
    return results


def _ablation(split: BodyHead, ids: Any, base: Any, targets: Any, n_prompt: int, batch: int,
              step: Callable[[int, int, str], None]) -> tuple[Any, Any]:
    """Feature ablation teacher-forced: score[j, i] = p_j(sequence) - p_j(sequence with prompt token i -> its
    baseline). Special tokens (baseline = the token itself) score 0 without a forward pass."""
    import torch

    layer_ids = ids[0]
    p0 = _probs_of_ids(split, ids, targets)[0]
    scores = torch.zeros((len(targets), n_prompt), dtype=p0.dtype, device=ids.device)
    ablate = [i for i in range(n_prompt) if int(base[0, i]) != int(layer_ids[i])]
    total = max(1, -(-len(ablate) // batch))
    for n, s in enumerate(range(0, len(ablate), batch), 1):
        which = ablate[s:s + batch]  # ascending: every row of the batch shares the tokens before which[0]
        rows = layer_ids.repeat(len(which), 1)
        for r, i in enumerate(which):
            rows[r, i] = base[0, i]
        p = _probs_after_prefix(split, rows, which[0], targets)  # (b, n_out)
        scores[:, which] = (p0[None, :] - p).T
        step(n, total, _tokens_item(None, which[0], which[-1], n_prompt, "prompt"))
    if not ablate:
        step(1, 1, "no prompt token to ablate")
    return scores, p0


def _probs_after_prefix(split: BodyHead, rows: Any, shared: int, targets: Any) -> Any:
    """`_probs_of_ids` for rows that agree on their first `shared` tokens: the shared prefix runs once (batch 1)
    into a key/value cache, repeated for the batch, and only the rest of each row runs per row. Causal attention
    makes this the same computation (to float rounding); it saves about 40% of feature ablation's work."""
    import torch

    if shared == 0 or split.prefix_cache is None:
        return _probs_of_ids(split, rows, targets)
    n_rows, length = rows.shape
    n_out = len(targets)
    if shared > length - n_out:  # the suffix must hold every answer position
        return _probs_of_ids(split, rows, targets)
    runner = split.body if split.split else split.model
    with torch.no_grad():
        cache = split.prefix_cache(runner, rows[:1, :shared], n_rows)
        mask = torch.ones_like(rows)
        if split.split:
            feats = runner(input_ids=rows[:, shared:], attention_mask=mask, use_cache=True,
                           **cache).last_hidden_state[:, -n_out:]
        else:
            feats = runner(input_ids=rows[:, shared:], attention_mask=mask, use_cache=True, logits_to_keep=n_out,
                           **cache).logits
        return _head_probs(split, feats, targets)


def _probs_of_ids(split: BodyHead, ids: Any, targets: Any) -> Any:
    import torch

    with torch.no_grad():
        embeds = split.model.get_input_embeddings()(ids)
    return _probs_of(split, embeds, targets)


def _integrated(split: BodyHead, x: Any, xb: Any, targets: Any, n_prompt: int, settings: ShiftSettings,
                notes: list[str], step: Callable[[int, int, str], None],
                token_names: Sequence[str] | None = None) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Integrated gradients on the embedding layer's output for all answer tokens at once: only the prompt
    positions move along the path (the answer positions are the same in input and baseline). Returns scores
    (n_out, n_prompt), p(x) per target, and the completeness error per target (absolute, relative)."""
    attr, p_x, error, rel = integrated_gradients_all_targets(
        split, x, xb, targets, settings.ig_steps, settings.ig_internal_batch, settings.target_chunk, notes, step,
        token_names, batched=use_vmap(settings.backward, x.device))
    return attr[:, :n_prompt], p_x, error, rel


def integrated_gradients_all_targets(split: BodyHead, x: Any, xb: Any, targets: Any, steps: int, internal_batch: int,
                                     chunk: int, notes: list[str] | None = None,
                                     step: Callable[[int, int, str], None] | None = None,
                                     token_names: Sequence[str] | None = None,
                                     batched: bool = True) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Integrated gradients (captum's Gauss-Legendre rule) of every answer token's probability with respect to
    the embedding-layer output `x` (1, L, H) from the baseline `xb`, teacher-forced: target j is predicted at
    position L - n_out + j. Positions where x equals xb get 0. Returns attributions (n_out, L) in float64,
    p(x) per target, and the completeness error per target (absolute, and relative to p(x) - p(baseline))."""
    import torch

    notes = [] if notes is None else notes
    step = step or (lambda *a: None)
    step_sizes, alphas = _gauss_legendre(steps)
    diff = (x - xb)[0]  # (L, H)
    total = torch.zeros((len(targets), *diff.shape), dtype=torch.float64, device=x.device)
    n_batches = -(-len(alphas) // internal_batch)
    n_out = len(targets)
    n_chunks = -(-n_out // chunk)
    for n, s in enumerate(range(0, len(alphas), internal_batch), 1):
        steps_item = f"integration steps {s + 1}–{min(len(alphas), s + internal_batch)} of {len(alphas)}"
        a = torch.tensor(alphas[s:s + internal_batch], dtype=x.dtype, device=x.device).view(-1, 1, 1)
        w = torch.tensor(step_sizes[s:s + internal_batch], dtype=torch.float64, device=x.device).view(1, -1, 1, 1)
        embeds = (xb + a * diff).detach().requires_grad_(True)  # (b, L, H)
        grads, _ = _target_gradients(
            split, embeds, targets, chunk, notes,
            lambda k, a, b, n=n, item=steps_item: step((n - 1) * n_chunks + k, n_batches * n_chunks,
                                                       f"{item} · {_tokens_item(token_names, a, b, n_out)}"),
            batched)
        total += (grads.double() * w).sum(1)
        del grads, embeds
    attr = (total * diff.double()).sum(-1)  # (n_out, L)
    ends = _probs_of(split, torch.cat([x, xb]), targets).double()  # p(x), p(baseline): (2, n_out)
    gap = ends[0] - ends[1]
    error = (attr.sum(-1) - gap).abs()
    rel = error / gap.abs().clamp_min(1e-12)
    return attr, ends[0], error.cpu().numpy(), rel.cpu().numpy()


# ---------------------------------------------------------------------------- the per-token reference path


def attribute_per_token(backend: Any, prompt_ids: Sequence[int], output_ids: Sequence[int], special_mask: Sequence[bool],
              settings: ShiftSettings, methods: Sequence[str] | None = None) -> dict[str, AttributionResult]:
    """The reference path: each output token attributed on its own, with captum, one method at a time.

    Output token j is explained given the prompt and the j tokens generated before it (kept fixed). `attribute`
    computes the same numbers teacher-forced over the whole answer at once; the tests hold the two together.
    About n_outputs times slower (feature ablation) or 2-5 times (gradient methods); kept for the tests and
    bench/bench_shift_analysis.py."""
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
                elif method == "integrated_gradients" and settings.ig_baseline == "pad":
                    attr, delta_abs[j], delta_rel[j] = integrated_gradients(
                        model, layer, ids, base, int(target), settings.ig_steps, settings.ig_internal_batch)
                    row = attr[:n_prompt]
                elif method == "integrated_gradients":
                    with torch.no_grad():
                        x = layer(ids).detach()
                    xb = ig_baseline_embeddings(layer, x, base, special_mask, settings.ig_baseline)
                    attr, delta_abs[j], delta_rel[j] = integrated_gradients_on_embeddings(
                        model, x, xb, int(target), settings.ig_steps, settings.ig_internal_batch)
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
                res.notes.append(BASELINE_NOTES[settings.ig_baseline if method == "integrated_gradients" else "pad"])
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
