"""The T2I tab's inputs, declared once for both front ends (workbench.forms): labels, defaults, ranges and help
live here; the flows parse these dataclasses and pages/_forms.py draws them in Gradio and Streamlit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.common import facets as wfacets
from workbench.forms import Widget, group_form, input_field, input_group
from workbench.common.inputs import MAX_CANDIDATES
from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE
from workbench.t2i.defaults import FACET_DEFAULTS, t2i_refine_settings
from workbench.t2i.scoring import DEFAULT_WEIGHTS, METRICS

REWRITER_LABELS = {
    "profile": "profile rewriter (its default: the trained T2I rewriter where the profile names one, else the chat model)",
    "profile:chat": "profile chat model",
    "profile:t2i_rewriter": "profile T2I rewriter role (e.g. Promptist in the paper profile)",
    "baseline": "keyword baseline (Promptist/MagicPrompt style)",
    "openai": "OpenAI-compatible server",
}
_KIND_BY_LABEL = {v: k for k, v in REWRITER_LABELS.items()}


def _whole(value: Any, name: str) -> int:
    if value is None or (isinstance(value, float) and value != int(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


@dataclass
class T2IPage:
    """The tab's own inputs outside the rewriter and render forms."""

    prompt: str = input_field("", "Coarse prompt", "textarea", placeholder="a cat on a sofa", lines=2,
                              elem_id="t2i-prompt")
    pick: Any = input_field(None, "Pick a candidate", "dropdown", elem_id="t2i-pick")
    round: Any = input_field(None, "Round", "dropdown", elem_id="t2i-round")
    sort_by: str = input_field("candidate order", "Sort by", "dropdown", elem_id="t2i-sort",
                               choices=("candidate order", "weighted total", *METRICS))


@dataclass
class RewriterInputs:
    """The tab's rewriter and refinement fields, as the widgets hold them (checked by `parse`)."""

    kind: str = input_field(REWRITER_LABELS["profile"], "Rewriter", "radio", choices=tuple(REWRITER_LABELS.values()),
                            elem_id="t2i-rewriter")
    base_url: str = input_field("", "Server URL (OpenAI-compatible)", placeholder="http://127.0.0.1:8000/v1")
    model: str = input_field("", "Model name on that server")
    adapter: str = input_field("", "LoRA adapter folder (profile model only)",
                               placeholder="a folder written by python -m workbench.t2i train")
    system_template: str = input_field(DEFAULT_SYSTEM_TEMPLATE, "System template (editable)", "textarea", lines=4)
    n: Any = input_field(4, "Candidates (N)", "slider", low=1, high=MAX_CANDIDATES, step=1, whole=True,
                         elem_id="t2i-n")
    diversity: Any = input_field(FACET_DEFAULTS["diversity"], "Diversity (0 = closest to your prompt, 1 = most varied)",
                                 "slider", low=0, high=1, step=0.05)
    few_shot: Any = input_field(3, "Few-shot examples (retrieved)", "slider", low=0, high=8, step=1, whole=True)
    temperature: Any = input_field(FACET_DEFAULTS["temperature"], "Temperature", "slider", low=0.1, high=2.0,
                                   step=0.05)
    seed: Any = input_field(0, "Rewriter seed", "number", low=0, high=2**31 - 1, whole=True)
    # facet-directed candidates (assets/t2i_facets.yaml): every facet ticked by default (the T2I default,
    # workbench/t2i/defaults.py; measured in the README's eval table)
    facets: list = input_field(list(wfacets.facet_names()), "Facets: each candidate emphasises one (none ticked: "
                               "undirected rewrites)", "multi", elem_id="t2i-facets",
                               choices=tuple((f.label, name) for name, f in wfacets.load_facets().items()))

    @classmethod
    def of(cls, values) -> "RewriterInputs":
        return cls(*values)

    def parse(self):
        from workbench.t2i.service import RewriterChoice

        kind, _, role = _KIND_BY_LABEL.get(self.kind, self.kind).partition(":")
        adapter = (self.adapter or "").strip()
        if adapter and kind == "profile":  # typed in the page: the server reads it, so only from its data folders
            from workbench.user_paths import confined_folder

            adapter = str(confined_folder(adapter, "adapter folder"))
        rewriter = RewriterChoice(kind=kind, role=role, base_url=self.base_url or "",
                                  model=self.model or "", adapter=adapter).check()
        settings = t2i_refine_settings(n=_whole(self.n, "n"), diversity=float(self.diversity),
                                       few_shot=_whole(self.few_shot, "few-shot examples"),
                                       temperature=float(self.temperature), seed=_whole(self.seed, "seed"),
                                       facets=wfacets.check_facets(list(self.facets or ())))
        return rewriter, settings, self.system_template or DEFAULT_SYSTEM_TEMPLATE


# One weight per metric, each with the metric's description as help (the metrics are data: scoring.METRICS).
MetricWeights = group_form("MetricWeights", {
    m: (Widget(f"weight: {m}", "slider", low=0, high=10, step=0.25, help=METRICS[m]), DEFAULT_WEIGHTS[m])
    for m in METRICS})


@dataclass
class RenderInputs:
    """Render settings (their defaults follow the profile: flows.render_defaults) and the metric weights."""

    steps: Any = input_field(20, "Steps", "slider", low=1, high=150, step=1, whole=True)
    size: Any = input_field(512, "Size (px)", "slider", low=64, high=1024, step=8, whole=True)
    seed: Any = input_field(0, "Image seed (same for every image)", "number", low=0, high=2**32 - 1, whole=True)
    guidance: Any = input_field(7.5, "Guidance", "slider", low=0, high=20, step=0.5)
    weights: dict[str, Any] = input_group(MetricWeights)

    @classmethod
    def of(cls, values) -> "RenderInputs":
        steps, size, seed, guidance, *weights = values
        return cls(steps, size, seed, guidance, dict(zip(METRICS, weights)))

    def parse(self):
        from workbench.types import ImageSettings

        for name, value in (("steps", self.steps), ("size", self.size), ("image seed", self.seed)):
            if value is None or float(value) != int(float(value)):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        settings = ImageSettings(steps=int(self.steps), width=int(self.size), height=int(self.size),
                                 seed=int(self.seed), guidance_scale=float(self.guidance)).check()
        weights = {m: float(w) for m, w in self.weights.items()}
        return settings, weights


# The candidate boxes, one per slot (the page shows as many as the round has): their texts are the flows' `edited`.
Candidates = group_form("Candidates", {f"cand_{i}": (Widget(f"Candidate {i + 1}", "textarea", lines=2,
                                                            elem_id=f"t2i-cand-{i + 1}"), "")
                                       for i in range(MAX_CANDIDATES)})


@dataclass
class HeatmapInputs:
    """Which rendered image and which word of its prompt the token heatmap shows, and how strongly."""

    image: Any = input_field(None, "Image (as the grid names it)", "dropdown", elem_id="t2i-heat-image")
    word: Any = input_field(None, "Word of its prompt", "dropdown", custom=True, elem_id="t2i-heat-word")
    opacity: Any = input_field(0.6, "Heatmap opacity", "slider", low=0, high=1, step=0.05, elem_id="t2i-heat-opacity")

