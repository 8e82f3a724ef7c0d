"""Token grounding for the world's T2I UNet (`train-t2i --grounding-weight W`), after TokenCompose (Wang et al., CVPR
2024): while the UNet learns to denoise, each object's colour word and shape word should draw its cross-attention
where that object is in the training image. The DAAM heatmap the T2I tab shows for a word, and the pointing game of
`python -m workbench.world eval`, read exactly these attention maps.

Why it is needed here: the world's text encoder is causal (CLIP's), so "red" and "star" in "a large red star in the
top left" are encoded before the place is said; the UNet can render the scene by attending only to the phrase's last
token, which has read the whole object, and then a word's heatmap is diffuse (pointing game 0.21 on held-out scenes
at step 1,200 of a run without it, chance 0.11). The loss asks each such token's attention mass, summed over the
latent positions, to lie in the object's grid cell (the generator's ground truth; a cell box, the region the
pointing game scores): (1 - mass inside / mass)^2, averaged over the words of the batch and over every
cross-attention layer. Held-out scenes are never trained on, so the eval's pointing game stays a held-out figure.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from workbench.world.data import label_names
from workbench.world.vocabulary import load_vocabulary

MAX_WORDS = 6  # colour + shape words of up to 3 objects
GRID = 3


class GroundingAttnProcessor:
    """diffusers' classic attention (explicit softmax) for a UNet's cross-attention layers, keeping each call's
    probabilities (batch * heads, positions, tokens) in `store`, with their gradient, for `grounding_loss`."""

    def __init__(self, store: list):
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args,
                 **kwargs):
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, None)
        self.store.append((probs, attn.heads))
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        return attn.to_out[1](attn.to_out[0](out))


def attach(unet, store: list) -> int:
    """Give `unet`'s cross-attention layers (attn2) a GroundingAttnProcessor writing into `store`; the others keep
    theirs. Returns how many layers record."""
    procs = {name: (GroundingAttnProcessor(store) if name.endswith("attn2.processor") else proc)
             for name, proc in unet.attn_processors.items()}
    recording = sum(isinstance(p, GroundingAttnProcessor) for p in procs.values())
    unet.set_attn_processor(procs)  # (empties the dict it is given)
    return recording


def word_ids(tok) -> tuple[dict[int, int], dict[int, int]]:
    """Token id -> colour index and token id -> shape index (each world word is one token of the world's
    tokenizer)."""
    names = label_names(load_vocabulary())
    colour_of, shape_of = {}, {}
    for table, words in ((colour_of, names["colour"]), (shape_of, names["shape"][:-1])):
        for i, word in enumerate(words):
            ids = tok(word).input_ids
            if len(ids) != 3:
                raise ValueError(f"the world's tokenizer must spell {word!r} as one token, got {ids!r}")
            table[ids[1]] = i
    return colour_of, shape_of


def word_cells(ids: torch.Tensor, colour_labels: np.ndarray, colour_of: dict[int, int],
               shape_of: dict[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """For token ids (N, L) of captions and their scenes' per-cell colour labels (N, 9): (N, MAX_WORDS) token
    positions of the objects' colour and shape words and (N, MAX_WORDS) row-major cells of their objects, -1 where
    unused. An object's colour word is the first colour word of its phrase (colours are distinct in a scene, the
    background's included, so the colour finds the cell); its shape word is the next shape word after it. The
    background's colour word (after the objects) has no object cell and is skipped."""
    pos = torch.full((len(ids), MAX_WORDS), -1, dtype=torch.long)
    cell = torch.full((len(ids), MAX_WORDS), -1, dtype=torch.long)
    for n, row in enumerate(ids.tolist()):
        k = 0
        for i, t in enumerate(row):
            if t not in colour_of or k >= MAX_WORDS:
                continue
            cells = np.flatnonzero(np.asarray(colour_labels[n]) == colour_of[t])
            if len(cells) != 1:
                continue  # the background's colour
            shape_at = next((j for j in range(i + 1, len(row)) if row[j] in shape_of), None)
            pos[n, k], cell[n, k] = i, int(cells[0])
            k += 1
            if shape_at is not None and k < MAX_WORDS:
                pos[n, k], cell[n, k] = shape_at, int(cells[0])
                k += 1
    return pos, cell


@lru_cache(maxsize=8)
def cell_masks(side: int) -> torch.Tensor:
    """(9, side * side): the share of each latent position's area inside each grid cell (row-major). Cached: the
    loss asks for it at every cross-attention layer of every step (callers must not modify it)."""
    edges = np.linspace(0, 1, GRID + 1)
    lo, hi = np.arange(side) / side, (np.arange(side) + 1) / side
    share = np.stack([np.clip(np.minimum(hi, edges[c + 1]) - np.maximum(lo, edges[c]), 0, None) * side
                      for c in range(GRID)])  # (3, side): share of each row (column) in band c
    m = np.einsum("ry,cx->rcyx", share, share).reshape(GRID * GRID, side * side)
    return torch.as_tensor(m, dtype=torch.float32)


def grounding_loss(store: Sequence, pos: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Mean over the recorded cross-attention calls of the mean over valid words (pos >= 0) of (1 - the share of
    the word's attention mass, head-averaged, inside its object's cell)^2. 0 when nothing is recorded or valid."""
    valid = pos >= 0
    if not store or not bool(valid.any()):
        return torch.zeros(())
    total = torch.zeros(())
    for probs, heads in store:
        b = pos.shape[0]
        p = probs.reshape(b, heads, probs.shape[1], probs.shape[2]).mean(1)  # (B, HW, L)
        side = int(round(p.shape[1] ** 0.5))
        masks = cell_masks(side)[cell.clamp(min=0)]  # (B, W, HW)
        a = torch.gather(p, 2, pos.clamp(min=0)[:, None, :].expand(-1, p.shape[1], -1)).transpose(1, 2)
        inside = (a * masks).sum(-1) / a.sum(-1).clamp(min=1e-8)
        total = total + (((1 - inside) ** 2) * valid).sum() / valid.sum()
    return total / len(store)
