"""Prompt-CAM tab (Chowdhury et al., CVPR'25): class-specific prompts on a frozen ViT; per-head trait maps of any
class's prompt ranked by greedy head blurring, beside Grad-CAM and attention rollout. The page is declared once
in workbench.promptcam.page (inputs and actions in workbench.promptcam.forms, the flows in
workbench.promptcam.flows); this module draws it."""

from __future__ import annotations

from functools import partial

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import gradio_layout, gradio_value, gradio_wire, streamlit_page
from pages._wiring import gradio_view
from workbench.promptcam import flows
from workbench.promptcam import forms as F
from workbench.promptcam.page import ACTIONS, LAYOUT, OUTPUTS, TAB, class_choices, present

TITLE = "Prompt-CAM"
ORDER = 40


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
