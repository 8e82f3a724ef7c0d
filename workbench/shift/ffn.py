"""Feed-forward concepts per layer (Wu et al., NAACL'24 `ffn_explain`): principal components of each
layer's feed-forward output (down-projection) vectors, read as the vocabulary tokens whose output
embeddings they project onto most; compared between the base and the instruct model by token overlap.

The paper labels the components with an LLM over word lists; here the token lists are shown as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

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


def ffn_concepts(backend: Any, components: int = 3, top_tokens: int = 12, layers: list[int] | None = None) -> FFNConcepts:
    """Per layer: SVD of the centred FFN value vectors; each of the top right-singular directions (hidden space)
    is matched to the vocabulary by |cosine| with the normalised output embeddings."""
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
    vocab = (out_embed.weight if out_embed is not None else backend.input_embeddings().weight).detach().float()
    vocab = torch.nn.functional.normalize(vocab, dim=-1)  # (V, hidden)
    result = FFNConcepts()
    with torch.inference_mode():
        for index, module, _ in found:
            vectors = _effective_weight(module, layout)  # (intermediate, hidden)
            centred = vectors - vectors.mean(dim=0, keepdim=True)
            _, s, vh = torch.linalg.svd(centred, full_matrices=False)
            var = s**2
            explained = (var / var.sum()).tolist()
            k = min(components, vh.shape[0])
            scores = (vh[:k] @ vocab.T).abs()  # (k, V)
            top = scores.topk(min(top_tokens, scores.shape[1]), dim=-1).indices.tolist()
            tokens = [[display_token(tokenizer, t) for t in row] for row in top]
            result.layers.append(LayerConcepts(layer=index, tokens=tokens, explained=explained[:k]))
    return result


def concept_overlap(base: FFNConcepts, instruct: FFNConcepts) -> list[float]:
    """Per layer, Jaccard overlap of the token sets (all components together) of the two models."""
    out = []
    for a, b in zip(base.layers, instruct.layers):
        sa = {t for row in a.tokens for t in row}
        sb = {t for row in b.tokens for t in row}
        out.append(len(sa & sb) / max(1, len(sa | sb)))
    return out
