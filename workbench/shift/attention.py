"""Attention on instruction tokens, per layer x head (Wu et al., NAACL'24: instruction tuning teaches heads,
mostly in lower and middle layers, to attend to instruction words), plus head-view data for one layer/head.

Attentions are read with eager attention only (transformers 5 returns none under SDPA) and checked non-empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass
class AttentionResult:
    instruction_share: np.ndarray  # (layers, heads): mean attention mass on instruction tokens from output queries
    maps: np.ndarray  # (layers, heads, seq, seq) float16 attention weights over prompt + output tokens
    n_prompt: int

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.instruction_share.shape)  # type: ignore[return-value]

    def head_view(self, layer: int, head: int) -> np.ndarray:
        """(seq, seq) attention of one head: rows are queries, columns keys (causal)."""
        layers, heads = self.shape
        if not 0 <= layer < layers:
            raise ValueError(f"layer must be between 0 and {layers - 1}, got {layer}")
        if not 0 <= head < heads:
            raise ValueError(f"head must be between 0 and {heads - 1}, got {head}")
        return self.maps[layer, head].astype(np.float32)


def read_attentions(backend: Any, token_ids: Sequence[int]) -> list[Any]:
    """One eager forward over the tokens; per layer (heads, seq, seq). Raises when attentions come back empty."""
    import torch

    from workbench.shift.attribution import hooks_removed_on_exit

    ids = torch.tensor([list(token_ids)], device=backend.device)
    with hooks_removed_on_exit(backend.model), backend.eager_attention(), torch.inference_mode():
        out = backend.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True, use_cache=False)
    attentions = getattr(out, "attentions", None)
    if not attentions or any(a is None or a.numel() == 0 for a in attentions):
        raise RuntimeError(
            f"model '{backend.spec.model_id}' returned no attention weights even with eager attention; "
            "the attention view cannot be shown for it")
    return [a[0].float().cpu() for a in attentions]


def attention_to_instruction(backend: Any, token_ids: Sequence[int], n_prompt: int,
                             instruction_mask: Sequence[bool]) -> AttentionResult:
    """Share of attention that the queries predicting output tokens (positions n_prompt-1 ... end-1) give to
    instruction tokens, averaged over those queries, for every layer and head."""
    if len(instruction_mask) != n_prompt:
        raise ValueError(f"instruction_mask has {len(instruction_mask)} entries for {n_prompt} prompt tokens")
    attentions = read_attentions(backend, token_ids)
    maps = np.stack([a.numpy() for a in attentions]).astype(np.float16)  # (L, H, S, S)
    seq = maps.shape[-1]
    queries = np.arange(n_prompt - 1, seq - 1) if seq > n_prompt else np.array([n_prompt - 1])
    keys = np.zeros(seq, dtype=bool)
    keys[:n_prompt] = np.asarray(instruction_mask, dtype=bool)
    weights = np.stack([a.numpy() for a in attentions])[:, :, queries, :]  # (L, H, Q, S)
    share = weights[..., keys].sum(-1).mean(-1)
    if share.size == 0:
        raise RuntimeError("attention to instruction tokens came out empty")
    return AttentionResult(instruction_share=share.astype(np.float64), maps=maps, n_prompt=n_prompt)
