"""The Prompt-CAM tab's page, declared once for both front ends (drawn by pages/promptcam.py): the layout of its
inputs (workbench.promptcam.forms) and outputs, the actions, the presenter, and the class menu's choices."""

from __future__ import annotations

from typing import Any

from workbench.layout import Update, button, col, fields, out, row
from workbench.promptcam import flows
from workbench.promptcam import forms as F
from workbench.promptcam.forms import PromptCamPage as P

TAB = "promptcam"
LAYOUT = [
    row(col(fields(P, "upload", "example", "checkpoint", "class_name"), row(fields(P, "top_k", "top_traits")),
            button("run", "Explain", variant="primary", elem_id="promptcam-run"), scale=1),
        col(out("summary", "md", elem_id="promptcam-summary"),
            out("table", "table", headers=["rank", "class", "probability"], elem_id="promptcam-topk-table"),
            scale=2)),
    row(fields(P, "opacity", "head_rank")),
    row(out("heads", "gallery", "Per-head maps of the class's prompt, ranked", elem_id="promptcam-heads"),
        out("before_after", "slider", "Before / after (ranked head)", type="pil", elem_id="promptcam-slider")),
    row(out("traits", "gallery", "Top traits (crops round each head's peak)", elem_id="promptcam-crops", st_width=128),
        out("grad_cam", "image", "Grad-CAM", type="pil", elem_id="promptcam-gradcam-image"),
        out("rollout", "image", "Attention rollout (class-agnostic)", type="pil", elem_id="promptcam-rollout")),
    row(fields(P, "panel"), button("export", "Export PNG with caption", elem_id="promptcam-export"),
        out("exported", "file", "PNG", elem_id="promptcam-file")),
]
OUTPUTS = ["state", "summary", "table", "heads", "before_after", "traits", "grad_cam", "rollout"]
ACTIONS = {"run": F.ANALYSE, "opacity": F.RENDER, "head_rank": F.RENDER, "export": F.EXPORT}


def present(result: Any) -> dict[str, Any]:
    if isinstance(result, str):  # the exported PNG's path
        return {"exported": result}
    state, view = result
    return dict(state=state, summary=view.summary, table=view.top_classes, heads=view.heads,
                before_after=view.before_after, traits=view.traits, grad_cam=view.grad_cam, rollout=view.rollout)


def class_choices(ctx: Any, profile_name: str | None) -> Update:
    try:
        return Update(choices=list(flows.CLASS_CHOICES) + flows.checkpoint_classes(ctx, profile_name))
    except ValueError:
        return Update(choices=list(flows.CLASS_CHOICES))
