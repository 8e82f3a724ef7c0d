"""One behaviour-shift analysis end to end (Wu et al., NAACL'24): lay out the prompt and its instruction
span, let both models answer greedily with the same number of tokens, then attribute, read attention on the
instruction and read feed-forward concepts for each side. Usable from Python without a UI:

    result = analyse_pair(manager, profile.spec("lm_base"), profile.spec("lm_instruct"), "List three fruits.")
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from backends.base import ModelSpec
from backends.provenance import Provenance
from workbench.gpu import estimate_seconds, run_on_device
from workbench.shift import attribution as attr_mod
from workbench.shift.attention import AttentionResult, attention_to_instruction
from workbench.shift.ffn import FFNConcepts, concept_overlap, ffn_concepts
from workbench.shift.limits import LIMITS, ShiftLimits, ShiftSettings, check_prompt_tokens
from workbench.shift.pairs import SIDES, ModelPair, check_pair, make_pair, use_side
from workbench.shift.spans import PromptLayout, build_layout, display_token

PARTS = ("attribution", "attention", "ffn")


@dataclass
class SideResult:
    side: str  # "base" | "instruct"
    label: str
    output_ids: list[int]
    output_tokens: list[str]
    output_text: str
    attributions: dict[str, attr_mod.AttributionResult] = field(default_factory=dict)
    attention: AttentionResult | None = None
    ffn: FFNConcepts | None = None
    provenance: Provenance | None = None
    random_weights: bool = False


@dataclass
class ShiftResult:
    pair_kind: str
    layout: PromptLayout
    settings: ShiftSettings
    sides: dict[str, SideResult]
    seconds: float

    @property
    def n_outputs(self) -> int:
        return self.settings.max_new_tokens

    @property
    def random_weights(self) -> list[str]:
        return [s.label for s in self.sides.values() if s.random_weights]

    def density(self, side: str, method: str = "gradient_x_input") -> attr_mod.ImportanceDensity:
        s = self.settings
        return attr_mod.importance_density(self.sides[side].attributions[method].scores, s.density_scale,
                                           s.density_threshold, s.density_p)

    def instruction_share(self, side: str, method: str) -> np.ndarray:
        return attr_mod.instruction_share(self.sides[side].attributions[method].scores,
                                          self.layout.instruction_mask, self.layout.special_mask)

    def position_profile(self, side: str, method: str, bins: int = 10) -> np.ndarray:
        return attr_mod.position_profile(self.sides[side].attributions[method].scores, self.layout.special_mask, bins)

    def ffn_overlap(self) -> list[float]:
        base, inst = self.sides["base"].ffn, self.sides["instruct"].ffn
        if base is None or inst is None:
            raise ValueError("feed-forward concepts were not computed for this run")
        return concept_overlap(base, inst)


def greedy_answer(backend: Any, prompt_ids: Sequence[int], n_tokens: int) -> list[int]:
    """Exactly `n_tokens` greedy tokens (end-of-sequence suppressed), so both answers line up token by token."""
    import torch

    ids = torch.tensor([list(prompt_ids)], device=backend.device)
    pad = backend.tokenizer.pad_token_id
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_tokens, min_new_tokens=n_tokens,
            do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=pad,
        )
    return out[0, len(prompt_ids):].tolist()


def analyse_side(backend: Any, side: str, label: str, layout: PromptLayout, settings: ShiftSettings,
                 parts: Sequence[str]) -> SideResult:
    output_ids = greedy_answer(backend, layout.input_ids, settings.max_new_tokens)
    result = SideResult(
        side=side, label=label, output_ids=output_ids,
        output_tokens=[display_token(backend.tokenizer, t) for t in output_ids],
        output_text=backend.tokenizer.decode(output_ids, skip_special_tokens=False),
        random_weights=bool(backend.random_weights),
    )
    if "attribution" in parts:
        result.attributions = attr_mod.attribute(backend, layout.input_ids, output_ids, layout.special_mask, settings)
    if "attention" in parts:
        result.attention = attention_to_instruction(backend, layout.input_ids + output_ids, layout.n_tokens,
                                                    layout.instruction_mask)
    if "ffn" in parts:
        result.ffn = ffn_concepts(backend, settings.ffn_components, settings.ffn_top_tokens)
    result.provenance = backend.provenance(
        None, side=side, seed=None, decoding="greedy, end-of-sequence suppressed", max_new_tokens=settings.max_new_tokens,
        methods=list(settings.methods), ig_steps=settings.ig_steps, instruction_span=layout.source,
        adapter_enabled=(side == "instruct") if backend.spec.option("adapter") else None,
    )
    return result


def analyse_pair(manager: Any, base_spec: ModelSpec, instruct_spec: ModelSpec, prompt: str, *,
                 use_chat_template: bool = True, system: str = "", settings: ShiftSettings | None = None,
                 parts: Sequence[str] = PARTS, limits: ShiftLimits = LIMITS) -> ShiftResult:
    """Run the behaviour-shift analysis of one prompt on a base/instruct pair (see the module docstring)."""
    settings = (settings or ShiftSettings()).check(limits)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {', '.join(PARTS)}, got {list(parts)}")
    pair: ModelPair = make_pair(base_spec, instruct_spec)
    started = time.perf_counter()
    check_pair(manager, pair)
    with use_side(manager, pair, "instruct") as backend:  # the instruct side's template is the interface tuned for
        layout = build_layout(backend.tokenizer, prompt, use_chat_template, system)
    check_prompt_tokens(layout.n_tokens, limits)
    sides = {}
    for side in SIDES:
        with use_side(manager, pair, side) as backend:
            # One GPU call per side, the model already loaded (check_pair) and sized by the settings (ZeroGPU).
            sides[side] = run_on_device(analyse_side, backend, side, pair.label(side), layout, settings, parts,
                                        gpu_seconds=estimate_seconds(settings))
    return ShiftResult(pair_kind=pair.kind, layout=layout, settings=settings, sides=sides,
                       seconds=time.perf_counter() - started)
