"""The behaviour-shift tab's inputs and actions, declared once for both front ends (workbench.forms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.forms import Action, input_field
from workbench.shift import flows
from workbench.shift.limits import IG_BASELINE_LABELS, LIMITS, METHOD_LABELS, METHODS

INTRO = (
    "Compare a **base** language model with its **instruction-tuned** sibling (two models of one tokenizer, or one "
    "model with a LoRA adapter switched off and on) on one prompt. The instruction span comes from the chat "
    "template (the user message), or mark part of the prompt with `[[...]]`. Both models answer greedily with the "
    f"same number of tokens. Limits: prompt ≤ {LIMITS.max_prompt_tokens} tokens after the template, answer ≤ "
    f"{LIMITS.max_new_tokens} tokens, integrated-gradients steps ≤ {LIMITS.max_ig_steps}. The answers, attention "
    "and feed-forward views appear first; attribution follows with a progress bar and can be cancelled (what "
    "finished is kept). Attribution is teacher-forced over the whole answer: feature ablation costs one forward "
    "pass per prompt token (sharing the prompt prefix), gradient × input and integrated gradients one forward pass "
    "(per step) and one backward pass per answer token. On the offline Gemma pair, a 64-token prompt and 8 answer "
    "tokens, the default methods (gradient × input, feature ablation) take about 45 s of one CPU thread in all; "
    "integrated gradients adds about 32 s per model at 16 steps and four times that at its default 64 steps, which "
    "it needs: the model's probability jumps within a short stretch of the path, and the completeness error "
    "(shown beside each IG plot) about halves with each doubling of the steps."
)
METHOD_CHOICES = tuple(METHOD_LABELS[m] for m in METHODS)
METHODS_INFO = ("gradient × input and feature ablation are exact and quick; integrated gradients needs many steps on "
                "real models (64 by default, about four times their cost together) and shows its completeness error")
IG_BASELINE_INFO = ("where the integration path starts; its completeness error (shown beside each IG plot) says how "
                    "well the steps resolve the path: on Gemma-3-270M the zero embedding converges fastest")


@dataclass
class AnalysisInputs:
    """What the Analyse button reads (the integrated-gradients baseline comes last in its event, after the views)."""

    prompt: str = input_field(flows.EXAMPLE, "Prompt (mark the instruction with [[...]] if you like)", "textarea",
                              lines=3, elem_id="shift-prompt")
    system: str = input_field("", "System message (optional)", elem_id="shift-system")
    use_template: bool = input_field(True, "Use the chat template", "checkbox", elem_id="shift-template")
    max_new: Any = input_field(8, "Answer tokens (both models)", "slider", low=1, high=LIMITS.max_new_tokens, step=1,
                               whole=True, elem_id="shift-max-new")
    ig_steps: Any = input_field(flows.DEFAULTS.ig_steps, "Integrated-gradients steps", "slider", low=2,
                                high=LIMITS.max_ig_steps, step=1, whole=True, elem_id="shift-ig-steps")
    methods: list = input_field([METHOD_LABELS[m] for m in flows.DEFAULTS.methods], "Attribution methods", "multi",
                                choices=METHOD_CHOICES, help=METHODS_INFO, elem_id="shift-methods")
    parts: list = input_field(list(flows.PARTS), "Views", "multi", choices=flows.PARTS, elem_id="shift-parts")
    ig_baseline: str = input_field(IG_BASELINE_LABELS[flows.DEFAULTS.ig_baseline], "Integrated-gradients baseline",
                                   "dropdown", choices=tuple(flows.IG_BASELINE_CHOICES), help=IG_BASELINE_INFO,
                                   elem_id="shift-ig-baseline")


@dataclass
class ViewInputs:
    """The filters of the figures (Update views redraws them; Analyse uses them for its first view)."""

    method: str = input_field(METHOD_LABELS["gradient_x_input"], "Method shown", "dropdown", choices=METHOD_CHOICES,
                              elem_id="shift-method")
    page: Any = input_field(1, "Page of output tokens", "number", low=1, whole=True, elem_id="shift-page")
    page_size: Any = input_field(8, f"Tokens per page (≤ {LIMITS.max_page_size})", "number", low=1, whole=True,
                                 elem_id="shift-page-size")
    layers: str = input_field("all", "Layers (all, 3, 2-5)", elem_id="shift-layers")
    heads: str = input_field("all", "Heads (all, 0,2)", elem_id="shift-heads")
    hv_side: str = input_field("instruct", "Head view model", "radio", choices=("base", "instruct"),
                               elem_id="shift-hv-side")
    hv_layer: Any = input_field(0, "Head-view layer", "number", low=0, whole=True, elem_id="shift-hv-layer")
    hv_head: Any = input_field(0, "Head-view head", "number", low=0, whole=True, elem_id="shift-hv-head")
    scale: str = input_field("shared", "Colour scale, base vs instruct", "radio", choices=("shared", "per model"),
                             help="shared: one scale for both models, so their colours compare; the difference keeps "
                                  "its own", elem_id="shift-scale")


ANALYSIS = ("prompt", "system", "use_template", "max_new", "ig_steps", "methods", "parts")
VIEWS = tuple(ViewInputs.__dataclass_fields__)
# Analyse is two steps: the quick views, then attribution as a cancellable job; then the ZIP is written.
ANALYSE = Action("shift_analyse", flows.analyse, ("profile", *ANALYSIS, *VIEWS, "ig_baseline"), ("result", "view"))
ATTRIBUTE = Action("shift_attribute", flows.attribute, ("profile", "state", *VIEWS), ("result", "view"), job=True)
EXPORT = Action("shift_export", flows.export, ("state",), ("zip",), takes_ctx=False)
UPDATE_VIEWS = Action("shift_views", flows.build_view, ("state", *VIEWS), ("view",), takes_ctx=False)
