"""Feed-forward concepts per layer (Wu et al., NAACL'24 `ffn_explain`): principal components of each
layer's feed-forward output (down-projection) vectors, read as the vocabulary tokens whose output
embeddings they project onto most; compared between the base and the instruct model by token overlap.

The paper labels the components with an LLM over word lists; here the token lists are shown as they are.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any


# Per-architecture quirks as data: the down-projection module name and its weight layout.
# "out_in": torch Linear (hidden, intermediate); "in_out": GPT-2 Conv1D (intermediate, hidden).
FFN_OUT = {
    "default": ("mlp.down_proj", "out_in"),
    "gpt2": ("mlp.c_proj", "in_out"),
}


@dataclass
class LayerConcepts:
    layer: int
    tokens: list[list[str]]  # per component, the top vocabulary tokens
    explained: list[float]  # per component, share of the layer's FFN-vector variance


@dataclass
class FFNConcepts:
    layers: list[LayerConcepts] = field(default_factory=list)


def unwrap_peft(model: Any) -> Any:
    """The transformers model inside a peft wrapper (or the model itself)."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def _is_lora(module: Any) -> bool:
    from peft.tuners.lora import LoraLayer

    return isinstance(module, LoraLayer)


def _down_projections(model: Any) -> tuple[list[tuple[int, Any, str]], str]:
    import torch

    inner = unwrap_peft(model)
    name, layout = FFN_OUT.get(getattr(inner.config, "model_type", ""), FFN_OUT["default"])
    found = []
    for full, module in inner.named_modules():
        if full.endswith(name) and (_is_lora(module) or isinstance(getattr(module, "weight", None), torch.Tensor)):
            index = next((int(p) for p in reversed(full.split(".")) if p.isdigit()), None)
            if index is not None:
                found.append((index, module, full))
    if not found:
        raise ValueError(f"no feed-forward output layers named '*.{name}' in this model; add its module name to FFN_OUT")
    return sorted(found, key=lambda t: t[0]), layout


def _effective_weight(module: Any, layout: str) -> Any:
    """The weight the forward pass uses, as (n_vectors, hidden): a LoRA-wrapped layer adds its active delta."""
    import torch

    base = getattr(module, "base_layer", module)
    weight = base.weight.detach().float()
    merged = getattr(module, "merged", False)
    disabled = getattr(module, "disable_adapters", False)
    if _is_lora(module) and not merged and not disabled:
        for name in getattr(module, "active_adapters", []):
            if name in getattr(module, "lora_A", {}):
                weight = weight + module.get_delta_weight(name).detach().float()
    with torch.no_grad():
        return weight.T if layout == "out_in" else weight


# Per-layer results of down-projections whose weights cannot change under the analysis (no LoRA delta active),
# keyed by the module: the base and instruct sides of an adapter pair that leaves the feed-forward layers alone
# share them, and a second analysis of the same model reads them back. Weak keys: an unloaded model drops them.
_LAYER_CACHE: "weakref.WeakKeyDictionary[Any, dict[tuple, LayerConcepts]]" = weakref.WeakKeyDictionary()
_NORM_CACHE: "weakref.WeakKeyDictionary[Any, tuple[tuple, Any]]" = weakref.WeakKeyDictionary()


def _has_active_delta(module: Any) -> bool:
    return (_is_lora(module) and not getattr(module, "merged", False) and not getattr(module, "disable_adapters", False)
            and any(n in getattr(module, "lora_A", {}) for n in getattr(module, "active_adapters", [])))


def _vocab_norms(embedding: Any) -> Any:
    """Row norms of the output embedding (cached per module and weight version)."""
    weight = embedding.weight
    key = (weight.data_ptr(), weight._version, tuple(weight.shape))
    hit = _NORM_CACHE.get(embedding)
    if hit is not None and hit[0] == key:
        return hit[1]
    norms = weight.detach().float().norm(dim=-1).clamp_min(1e-12)
    _NORM_CACHE[embedding] = (key, norms)
    return norms


def ffn_concepts(backend: Any, components: int = 3, top_tokens: int = 12, layers: list[int] | None = None) -> FFNConcepts:
    """Per layer: principal directions of the centred FFN value vectors (the right-singular vectors of the centred
    matrix, as eigenvectors of its hidden x hidden Gram matrix, solved in float64); each of the top directions is matched
    to the vocabulary by |cosine| with the output embeddings."""
    import torch

    from workbench.shift.spans import display_token

    model, tokenizer = backend.model, backend.tokenizer
    found, layout = _down_projections(model)
    if layers is not None:
        bad = [l for l in layers if not 0 <= l < len(found)]
        if bad:
            raise ValueError(f"layers must be between 0 and {len(found) - 1}, got {bad}")
        found = [found[l] for l in layers]
    out_embed = model.get_output_embeddings()  # every transformers causal LM (and peft wrapper) has one
    embedding = out_embed if out_embed is not None else backend.input_embeddings()
    key = (components, top_tokens, id(tokenizer), embedding.weight.data_ptr())
    done: dict[int, LayerConcepts] = {}
    todo: list[tuple[int, Any, tuple, bool, Any, list[float]]] = []  # layers to compute: their top directions
    with torch.inference_mode():
        for n, (index, module, _) in enumerate(found):
            cacheable = not _has_active_delta(module)
            weight = getattr(module, "base_layer", module).weight
            layer_key = (*key, weight.data_ptr(), weight._version)
            hit = _LAYER_CACHE.get(module, {}).get(layer_key) if cacheable else None
            if hit is not None:
                done[n] = hit
                continue
            vectors = _effective_weight(module, layout).contiguous()  # (intermediate, hidden)
            centred = vectors - vectors.mean(dim=0, keepdim=True)
            var, vecs = torch.linalg.eigh((centred.T @ centred).double())  # ascending; squared singular values
            var, vecs = var.flip(0).clamp_min(0), vecs.flip(1)
            explained = (var / var.sum()).tolist()
            k = min(components, vecs.shape[1])
            todo.append((n, module, layer_key, cacheable, vecs[:, :k].T, explained[:k]))
        if todo:
            # every layer's directions against the vocabulary in one product: the (V, hidden) output embedding
            # is read once, not once per layer (a few rows per product leave it memory-bound)
            directions = torch.cat([d for *_, d, _ in todo]).to(embedding.weight.dtype)  # unit rows
            scores = (directions @ embedding.weight.detach().T).float().abs() / _vocab_norms(embedding)  # |cosine|
            top = scores.topk(min(top_tokens, scores.shape[1]), dim=-1).indices.tolist()
            row = 0
            for n, module, layer_key, cacheable, direction, explained in todo:
                tokens = [[display_token(tokenizer, t) for t in ids] for ids in top[row:row + len(direction)]]
                row += len(direction)
                done[n] = LayerConcepts(layer=found[n][0], tokens=tokens, explained=explained)
                if cacheable:
                    _LAYER_CACHE.setdefault(module, {})[layer_key] = done[n]
    result = FFNConcepts()
    for n in range(len(found)):  # copies: a caller editing its result leaves the cache alone
        result.layers.append(LayerConcepts(layer=done[n].layer, tokens=[list(r) for r in done[n].tokens],
                                           explained=list(done[n].explained)))
    return result


def concept_overlap(base: FFNConcepts, instruct: FFNConcepts) -> list[float]:
    """Per layer, Jaccard overlap of the token sets (all components together) of the two models."""
    out = []
    for a, b in zip(base.layers, instruct.layers):
        sa = {t for row in a.tokens for t in row}
        sb = {t for row in b.tokens for t in row}
        out.append(len(sa & sb) / max(1, len(sa | sb)))
    return out
