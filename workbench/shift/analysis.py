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
from workbench.types import Provenance
from workbench.shift import attribution as attr_mod
from workbench.shift.attention import AttentionResult, attention_to_instruction
from workbench.shift.ffn import FFNConcepts, concept_overlap, ffn_concepts
from workbench.shift.limits import LIMITS, METHOD_LABELS, ShiftLimits, ShiftSettings, check_prompt_tokens
from workbench.shift.pairs import SIDES, ModelPair, check_pair, make_pair, use_side
from workbench.gpu import estimate_seconds, run_on_device
from workbench.jobs import Cancelled, Job
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
    complete: bool = True  # False for the partial result of a run still going, deferred or cancelled
    stopped: str = ""  # what was running when the user cancelled ("" = not cancelled)
    parts: tuple[str, ...] = PARTS  # the parts asked for
    inputs: dict[str, Any] = field(default_factory=dict)  # what the user gave: prompt, system, use_chat_template

    @property
    def n_outputs(self) -> int:
        return self.settings.max_new_tokens

    @property
    def methods_done(self) -> list[str]:
        """Attribution methods finished for both sides (a cancelled run may have fewer than asked for)."""
        return [m for m in self.settings.methods if all(m in s.attributions for s in self.sides.values())]

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


def answer_side(backend: Any, side: str, label: str, layout: PromptLayout, settings: ShiftSettings) -> SideResult:
    """One side's greedy answer, with its provenance (the attribution, attention and FFN parts come later)."""
    output_ids = greedy_answer(backend, layout.input_ids, settings.max_new_tokens)
    result = SideResult(
        side=side, label=label, output_ids=output_ids,
        output_tokens=[display_token(backend.tokenizer, t) for t in output_ids],
        output_text=backend.tokenizer.decode(output_ids, skip_special_tokens=False),
        random_weights=bool(backend.random_weights),
    )
    result.provenance = backend.provenance(
        None, side=side, seed=None, decoding="greedy, end-of-sequence suppressed", max_new_tokens=settings.max_new_tokens,
        methods=list(settings.methods), ig_steps=settings.ig_steps, instruction_span=layout.source,
        adapter_enabled=(side == "instruct") if backend.spec.option("adapter") else None,
    )
    return result


def _quick_side(backend: Any, side: str, label: str, layout: PromptLayout, settings: ShiftSettings,
                parts: Sequence[str]) -> SideResult:
    """One side's answer, attention and feed-forward concepts (the parts that take seconds, not minutes)."""
    result = answer_side(backend, side, label, layout, settings)
    if "attention" in parts:
        result.attention = attention_to_instruction(backend, layout.input_ids + result.output_ids, layout.n_tokens,
                                                    layout.instruction_mask)
    if "ffn" in parts:
        result.ffn = ffn_concepts(backend, settings.ffn_components, settings.ffn_top_tokens)
    return result


def analyse_pair(manager: Any, base_spec: ModelSpec, instruct_spec: ModelSpec, prompt: str, *,
                 use_chat_template: bool = True, system: str = "", settings: ShiftSettings | None = None,
                 parts: Sequence[str] = PARTS, limits: ShiftLimits = LIMITS, job: Job | None = None,
                 defer_attribution: bool = False) -> ShiftResult:
    """Run the behaviour-shift analysis of one prompt on a base/instruct pair (see the module docstring).

    With a `job`, progress is reported at every step (stage, model, method, tokens) and the partial result
    after every finished part; a cancel raises `Cancelled` whose `partial` is the `ShiftResult` so far.
    `defer_attribution=True` returns after the cheap parts (`complete` False); `add_attribution` finishes it."""
    job = job or Job.none()
    settings = (settings or ShiftSettings()).check(limits)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {', '.join(PARTS)}, got {list(parts)}")
    pair: ModelPair = make_pair(base_spec, instruct_spec)
    started = time.perf_counter()
    job.update("loading the pair", 0, 1, pair.label("instruct"))
    check_pair(manager, pair)
    with use_side(manager, pair, "instruct") as backend:  # the instruct side's template is the interface tuned for
        layout = build_layout(backend.tokenizer, prompt, use_chat_template, system)
    check_prompt_tokens(layout.n_tokens, limits)
    result = ShiftResult(pair_kind=pair.kind, layout=layout, settings=settings, sides={}, seconds=0.0, complete=False,
                         parts=tuple(parts), inputs={"prompt": prompt, "system": system,
                                                     "use_chat_template": bool(use_chat_template)})
    stage = "answers"
    try:
        # the cheap parts first, for both sides, so a front end can show them while attribution runs
        for n, side in enumerate(SIDES):
            with use_side(manager, pair, side) as backend:
                stage = f"answer, attention, FFN concepts · {side}"
                job.update(stage, n, len(SIDES), f"{side}: {pair.label(side)}")
                # one GPU call per side for the quick parts, the model already loaded (check_pair) (ZeroGPU)
                result.sides[side] = run_on_device(_quick_side, backend, side, pair.label(side), layout, settings,
                                                   parts, gpu_seconds=estimate_seconds(settings))
            result.seconds = time.perf_counter() - started
            job.update(stage, n + 1, len(SIDES), f"{side}: {pair.label(side)}", partial=result)
    except Cancelled as exc:
        result.seconds, result.stopped = time.perf_counter() - started, stage
        # every view compares the two sides: before both have answered there is nothing to show
        partial = result if len(result.sides) == len(SIDES) else None
        raise Cancelled(f"behaviour-shift analysis stopped during {stage}"
                        + ("; kept what finished" if partial else " (nothing had finished)"), partial=partial) from exc
    if "attribution" not in parts:
        result.complete = True
        return result
    if defer_attribution:
        return result
    return add_attribution(manager, base_spec, instruct_spec, result, job=job)


def add_attribution(manager: Any, base_spec: ModelSpec, instruct_spec: ModelSpec, result: ShiftResult, *,
                    job: Job | None = None) -> ShiftResult:
    """Attribute both sides' answers (every method of `result.settings` not yet done) into `result`, and mark it
    complete. A cancel raises `Cancelled` whose `partial` is `result` with the methods that finished."""
    job = job or Job.none()
    if len(result.sides) != len(SIDES):
        raise ValueError("this result has no answers from both models; run the analysis first")
    pair = make_pair(base_spec, instruct_spec)
    if [pair.label(s) for s in SIDES] != [result.sides[s].label for s in SIDES]:
        raise ValueError("this result was computed with another model pair; run the analysis again")
    layout, settings = result.layout, result.settings
    started, before = time.perf_counter(), result.seconds
    result.complete, result.stopped = False, ""
    stage = "attribution"
    try:
        # method by method, both sides each, so that a cancel keeps whole methods (every view compares sides)
        for method in settings.methods:
            for side in SIDES:
                side_result = result.sides[side]
                if method in side_result.attributions:
                    continue
                stage = f"attribution · {METHOD_LABELS[method]} · {side}"

                def step(_method: str, done: int, total: int, item: str, _stage: str = stage,
                         _side: SideResult = side_result) -> None:
                    job.update(_stage, done, total, f"{_side.label} · {item}")

                job.update(stage, 0, 1, f"{side_result.label} · starting", partial=result)
                with use_side(manager, pair, side) as backend:  # one GPU call per method and side (ZeroGPU)
                    done = run_on_device(attr_mod.attribute, backend, layout.input_ids, side_result.output_ids,
                                         layout.special_mask, settings, [method], on_step=step,
                                         token_names=side_result.output_tokens, gpu_seconds=estimate_seconds(settings))
                side_result.attributions.update(done)
                result.seconds = before + time.perf_counter() - started
                job.update(stage, 1, 1, f"{side_result.label} · done", partial=result)
    except Cancelled as exc:
        result.seconds, result.stopped = before + time.perf_counter() - started, stage
        raise Cancelled(f"behaviour-shift analysis stopped during {stage}; kept what finished", partial=result) from exc
    result.complete = True
    result.seconds = before + time.perf_counter() - started
    return result
