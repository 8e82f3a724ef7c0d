"""Token heatmaps from a diffusion UNet's cross-attention (the DAAM method: Tang et al., "What the DAAM:
Interpreting Stable Diffusion Using Cross Attention", ACL 2023; PromptCharm's word-to-region view).

While a pipeline denoises, a diffusers attention processor on every cross-attention layer of the UNet records the
softmax of query·key (image positions × prompt tokens), averaged over heads, upsampled to the latent grid and summed
over layers and steps. Any `UNet2DConditionModel` pipeline takes it: SD 1.5 on a GPU as well as a tiny one in a
test. Self-attention keeps its own processor (and its speed); a recorded cross-attention layer computes exactly what
diffusers' `AttnProcessor` does, the probabilities kept on the way.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any, Iterator

from backends.base import WORD_PATTERN, WordTokens

def word_tokens(tokenizer: Any, prompt: str) -> list[WordTokens]:
    """Each word of `prompt` with its token positions in the encoder's padded sequence. A CLIP-style tokenizer
    splits on whitespace before BPE, so the pieces' tokens, in order, are the prompt's tokens; a word's tokens are
    those of its piece that its letters produce (a trailing comma's token belongs to no word)."""
    limit = getattr(tokenizer, "model_max_length", None)
    limit = limit if isinstance(limit, int) and 0 < limit < 100_000 else None
    bos = 1 if getattr(tokenizer, "bos_token_id", None) is not None else 0
    last = (limit - 1) if limit else None  # the end token takes the window's last place
    words: list[WordTokens] = []
    position = bos
    for piece in re.finditer(r"\S+", prompt):
        cursor = position
        for match in WORD_PATTERN.finditer(piece.group()):
            before = piece.group()[:match.start()]
            if before:  # punctuation before the word (an opening quote) has its own tokens
                cursor += len(tokenizer(before, add_special_tokens=False)["input_ids"])
            n = len(tokenizer(match.group(), add_special_tokens=False)["input_ids"])
            kept = [p for p in range(cursor, cursor + n) if last is None or p < last]
            words.append(WordTokens(match.group().lower(), piece.start() + match.start(), kept))
            cursor += n
        position += len(tokenizer(piece.group(), add_special_tokens=False)["input_ids"])
    whole = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if position - bos != whole:  # a tokenizer whose pieces depend on their neighbours: positions would be wrong
        raise ValueError(f"{type(tokenizer).__name__} does not tokenize a prompt piece by piece ({position - bos} "
                         f"tokens by pieces, {whole} for the whole prompt): no word positions for heatmaps")
    return words


class CrossAttentionStore:
    """Sums each recorded layer's head-averaged attention over a `height` × `width` latent grid. With
    classifier-free guidance the batch holds the unconditional half first; only the prompt's half is kept."""

    def __init__(self, images: int, height: int, width: int):
        self.images, self.height, self.width = images, height, width
        self.total: Any = None
        self.layers: set[str] = set()
        self.calls = 0

    def add(self, name: str, probs: Any, batch: int, heads: int) -> None:
        import torch.nn.functional as F

        queries, keys = probs.shape[-2], probs.shape[-1]
        p = probs.reshape(batch, heads, queries, keys).float().mean(dim=1)
        if batch == 2 * self.images:
            p = p[self.images:]
        elif batch != self.images:
            raise ValueError(f"cross-attention batch {batch} is neither {self.images} images nor twice that")
        h = max(1, round(math.sqrt(queries * self.height / self.width)))
        w = queries // h
        if h * w != queries:
            raise ValueError(f"cannot lay {queries} image positions on a {self.height}×{self.width} grid")
        grid = p.permute(0, 2, 1).reshape(self.images, keys, h, w)
        if (h, w) != (self.height, self.width):
            grid = F.interpolate(grid, size=(self.height, self.width), mode="bilinear", align_corners=False)
        self.total = grid if self.total is None else self.total + grid
        self.layers.add(name)
        self.calls += 1


class RecordingCrossAttnProcessor:
    """diffusers' `AttnProcessor` computation for one cross-attention layer, with its probabilities recorded."""

    def __init__(self, store: CrossAttentionStore, name: str):
        self.store, self.name = store, name

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (hidden_states.shape if encoder_hidden_states is None
                                          else encoder_hidden_states.shape)
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        query, key, value = (attn.head_to_batch_dim(t) for t in (query, key, value))
        probs = attn.get_attention_scores(query, key, attention_mask)
        self.store.add(self.name, probs.detach(), batch_size, attn.heads)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def cross_attention_layers(unet: Any) -> list[str]:
    """The processor names of the UNet's cross-attention layers (`...attn2.processor` in SD)."""
    names = []
    for name in unet.attn_processors:
        module = unet.get_submodule(name.rsplit(".processor", 1)[0])
        if getattr(module, "is_cross_attention", False):
            names.append(name)
    return names


@contextlib.contextmanager
def recording(unet: Any, images: int, height: int, width: int) -> Iterator[CrossAttentionStore]:
    """Record the UNet's cross-attention for `images` images on a `height` × `width` latent grid while the block
    runs; the UNet's own processors come back after, whatever happens."""
    store = CrossAttentionStore(images, height, width)
    original = dict(unet.attn_processors)
    crossed = set(cross_attention_layers(unet))
    if not crossed:
        raise ValueError(f"{type(unet).__name__} has no cross-attention layers: no token heatmaps")
    unet.set_attn_processor({n: RecordingCrossAttnProcessor(store, n) if n in crossed else p
                             for n, p in original.items()})
    try:
        yield store
    finally:
        unet.set_attn_processor(original)
