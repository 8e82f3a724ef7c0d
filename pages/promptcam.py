"""Prompt-CAM tab (Chowdhury et al., CVPR'25): class-specific prompts on a frozen ViT; per-head trait maps of any
class's prompt ranked by greedy head blurring, beside Grad-CAM and attention rollout. Layout only, drawn by both
front ends (pages/_layout.py): inputs and actions are declared in workbench.promptcam.forms, the flows are in
workbench.promptcam.flows."""

from __future__ import annotations

from functools import partial
from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import Update, button, col, fields, gradio_layout, gradio_value, gradio_wire, out, row
from pages._layout import streamlit_page
from pages._wiring import gradio_view
from workbench.promptcam import flows
from workbench.promptcam import forms as F
from workbench.promptcam.forms import PromptCamPage as P

TITLE = "Prompt-CAM"
ORDER = 40
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


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, TAB)
    gr.Markdown(flows.INTRO)
    c = gradio_layout(LAYOUT, {"profile": session.profile, "state": gr.State(None)})
    c["class_name"].choices = [(x, x) for x in class_choices(ctx, ctx.default_profile).choices]
    gradio_wire(ctx, c, F.ANALYSE, c["run"].click, OUTPUTS, present, tab=TAB)
    gradio_wire(ctx, c, F.RENDER, partial(gr.on, [c["opacity"].release, c["head_rank"].release]), OUTPUTS, present,
                tab=TAB)
    gradio_wire(ctx, c, F.EXPORT, c["export"].click, ["exported"], present, tab=TAB)
    gradio_view(session.profile.change, lambda name: gradio_value(class_choices(ctx, name)), [session.profile],
                c["class_name"])


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, TAB)
    st.markdown(flows.INTRO)
    ss = st.session_state
    profile = ss.get("profile", ctx.default_profile)
    ss.setdefault("promptcam_shown", {})["class_name"] = class_choices(ctx, profile)
    v = {"profile": profile, "state": ss["promptcam_shown"].get("state")}
    streamlit_page(ctx, TAB, LAYOUT, ACTIONS, present, v)
