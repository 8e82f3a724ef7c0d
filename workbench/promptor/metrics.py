"""The two measures Promptor's user study reported (arXiv 2310.08101: +35% similarity, +22% coherence), computed
the same way every time so rounds and drafts compare:

- similarity: cosine of the sentence embeddings (the profile's `embeddings` role, L2-normalised, so the dot
  product) of an output and the designer's reference output for that example;
- coherence: perplexity of the output text on its own under a fixed local causal LM, the profile's `lm_base` role
  (a base model scores fluency, not instruction following), through its white-box backend: exp of the mean
  next-token negative log-likelihood over the output's tokens (the tokenizer's special tokens added as it adds
  them). Lower is more coherent. An output of fewer than two tokens has no perplexity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

COHERENCE_ROLE = "lm_base"
SIMILARITY_ROLE = "embeddings"
MAX_PPL_TOKENS = 256  # outputs of a text-entry feature are short; cap the cost of a runaway one


@dataclass
class Scores:
    similarity: list[float | None]  # per example; None where there is no reference or no output
    perplexity: list[float | None]
    mean_similarity: float | None
    mean_perplexity: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def similarity(embedder: Any, outputs: Sequence[str], references: Sequence[str]) -> list[float | None]:
    """Cosine similarity of each output to its reference (None where either is empty)."""
    pairs = [(i, o, r) for i, (o, r) in enumerate(zip(outputs, references)) if o.strip() and r.strip()]
    result: list[float | None] = [None] * len(outputs)
    if not pairs:
        return result
    vectors = embedder.embed([o for _, o, _ in pairs] + [r for _, _, r in pairs]).vectors
    n = len(pairs)
    for k, (i, _, _) in enumerate(pairs):
        a, b = vectors[k], vectors[n + k]
        denom = float((a @ a) ** 0.5 * (b @ b) ** 0.5)
        result[i] = float(a @ b) / denom if denom > 0 else 0.0
    return result


def perplexity(lm: Any, texts: Sequence[str]) -> list[float | None]:
    """Perplexity of each text under a white-box causal LM (`lm.model`, `lm.tokenizer`)."""
    import torch

    out: list[float | None] = []
    for text in texts:
        if not text.strip():
            out.append(None)
            continue
        ids = lm.tokenizer(text, return_tensors="pt", truncation=True, max_length=MAX_PPL_TOKENS)["input_ids"]
        if ids.shape[1] < 2:
            out.append(None)
            continue
        ids = ids.to(getattr(lm, "device", "cpu"))
        with torch.inference_mode():
            logits = lm.model(input_ids=ids).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="mean")
        out.append(float(math.exp(float(nll))))
    return out


def score_outputs(embedder: Any, lm: Any, outputs: Sequence[str], references: Sequence[str]) -> Scores:
    sims = similarity(embedder, outputs, references)
    ppls = perplexity(lm, outputs) if lm is not None else [None] * len(outputs)
    return Scores(sims, ppls, _mean(sims), _mean(ppls))
