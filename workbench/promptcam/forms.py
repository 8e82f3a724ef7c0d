"""The Prompt-CAM tab's inputs and actions, declared once for both front ends (workbench.forms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.forms import Action, input_field
from workbench.promptcam import flows


@dataclass
class PromptCamPage:
    upload: Any = input_field(None, "Upload an image (optional)", "file", elem_id="promptcam-upload")
    example: Any = input_field(flows.default_example(), "…or a shipped example", "dropdown",
                               choices=tuple(flows.example_names()), elem_id="promptcam-example")
    checkpoint: str = input_field("", "Checkpoint folder (empty: the profile's)", elem_id="promptcam-checkpoint")
    class_name: Any = input_field("predicted", "Class to explain (predicted, true class, a name, or an index)",
                                  "dropdown", choices=flows.CLASS_CHOICES, custom=True, elem_id="promptcam-class")
    top_k: Any = input_field(3, "Top-k classes", "slider", low=1, high=flows.MAX_TOP_K, step=1, whole=True,
                             elem_id="promptcam-topk")
    top_traits: Any = input_field(4, "Top traits (heads kept)", "slider", low=1, high=16, step=1, whole=True,
                                  elem_id="promptcam-traits")
    opacity: Any = input_field(0.5, "Heatmap opacity", "slider", low=0, high=1, step=0.05,
                               elem_id="promptcam-opacity")
    head_rank: Any = input_field(1, "Before/after: head by rank", "slider", low=1, high=16, step=1, whole=True,
                                 elem_id="promptcam-rank")
    panel: str = input_field(flows.PANELS[0], "Export panel", "dropdown", choices=flows.PANELS,
                             elem_id="promptcam-panel")


def _render(state: dict | None, opacity: Any, head_rank: Any) -> tuple[dict | None, flows.PromptCamView]:
    return state, flows.render(state, opacity, head_rank)


ANALYSE = Action("promptcam_analyse", flows.analyse, ("state", "profile", "upload", "example", "checkpoint",
                                                        "class_name", "top_k", "top_traits", "opacity"),
                 ("state", "view"))
RENDER = Action("promptcam_render", _render, ("state", "opacity", "head_rank"), ("state", "view"), takes_ctx=False)
EXPORT = Action("promptcam_export", flows.export_png, ("state", "panel", "head_rank", "opacity"), ("path",),
                takes_ctx=False)
