"""A published guard model through transformers (Llama Guard 3 1B on the GPU profiles): the text goes in as the
user turn of the model's own chat template, which lists the hazard categories, as its model card shows
(meta-llama/Llama-Guard-3-1B: content as [{"type": "text", "text": ...}], greedy, up to 20 new tokens). The
answer is "safe", or "unsafe" and a line of category codes ("S1,S9"), mapped onto our categories by the
profile's `category_map` (data). An answer that reads as neither is unsafe ("other"): the check fails closed.

Options: `category_map` ({code: category}), `max_new_tokens` (default 20, the card's), `batch_size`."""

from __future__ import annotations

import re
from typing import Any, Sequence

from backends.base import Capabilities, ModelSpec, SafetyResult, free_accelerator_memory, module_bytes
from backends.devices import torch_dtype
from backends.provenance import Provenance
from backends.sources import resolve_source

# Llama Guard 3's hazard codes (its model card, MLCommons taxonomy) -> our categories; a profile may override.
LLAMA_GUARD_3: dict[str, str] = {
    "S1": "violence", "S2": "other", "S3": "sexual", "S4": "minors", "S5": "real-person", "S6": "other",
    "S7": "other", "S8": "other", "S9": "weapons", "S10": "hate", "S11": "self-harm", "S12": "sexual",
    "S13": "real-person", "S14": "other",
}


def parse_guard_answer(answer: str, category_map: dict[str, str]) -> tuple[bool, tuple[str, ...], str]:
    """(safe, categories, reason) from a guard model's answer."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    head = lines[0].lower() if lines else ""
    if head == "safe":
        return True, (), "answered safe"
    if head == "unsafe":
        codes = re.findall(r"S\d+", " ".join(lines[1:]))
        cats = tuple(dict.fromkeys(category_map.get(c, "other") for c in codes)) or ("other",)
        return False, cats, f"answered unsafe {','.join(codes) or '(no category)'}"
    return False, ("other",), f"unreadable answer “{answer.strip()[:40]}”: treated as unsafe"


class GuardLM:
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("safety",))

    def __init__(self, spec: ModelSpec, device: str, dtype: str, model: Any, tokenizer: Any, random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.model, self.tokenizer, self.random_weights = model, tokenizer, random_weights
        raw = spec.option("category_map")
        self.category_map: dict[str, str] = dict(raw) if raw else dict(LLAMA_GUARD_3)
        self.max_new_tokens = int(spec.option("max_new_tokens", 20))
        self.batch_size = int(spec.option("batch_size", 8))

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "GuardLM":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = resolve_source(spec.model_id)
        random_weights = spec.random_weights
        if source.kind == "tiny":
            from backends import tiny

            model, tokenizer = tiny.build(source.location, source.params)
            random_weights = True
        else:
            common = spec.hub_kwargs()
            tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
            model = AutoModelForCausalLM.from_pretrained(source.location, dtype=torch_dtype(dtype), **common)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.to(device=device, dtype=torch_dtype(dtype)).eval()
        return cls(spec, device, dtype, model, tokenizer, random_weights)

    def unload(self) -> None:
        self.model = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(self.model)

    def prompt(self, text: str) -> str:
        """The model card's format: the text as the user turn, content as a list of typed parts."""
        conversation = [{"role": "user", "content": [{"type": "text", "text": text}]}]
        return self.tokenizer.apply_chat_template(conversation, tokenize=False)

    def classify(self, texts: Sequence[str]) -> list[SafetyResult]:
        import torch

        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not a single string")
        answers: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            prompts = [self.prompt(t) for t in texts[start:start + self.batch_size]]
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True,
                                   add_special_tokens=False).to(self.device)
            with torch.inference_mode():
                out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
            answers.extend(self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                                       skip_special_tokens=True))
        prov = Provenance.of(self, settings={"max_new_tokens": self.max_new_tokens, "do_sample": False,
                                             "category_map": self.category_map})
        results = []
        for answer in answers:
            safe, cats, reason = parse_guard_answer(answer, self.category_map)
            results.append(SafetyResult(safe, cats, {}, (reason,), prov))
        return results
