"""Text→video prompt refinement tab: Evolve (Prompt-A-Video: a population of rewrites rendered as short previews,
scored per dimension against your ORIGINAL prompt, the rewriter shown the top-k history each round) or
Principles (VPO: harmless / accurate / helpful, with the critique shown and rejected rewrites refined). Then the
chosen prompt renders beside the original (same seed) with MP4/GIF downloads, and the runs export as SFT/DPO
pairs. The page is declared once in workbench.t2v.page (inputs and actions in workbench.t2v.forms, the flows in
workbench.t2v.flows); this module draws it and binds Gradio's Cancel buttons."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import gradio_layout, gradio_wire, streamlit_page
from pages._wiring import gradio_cancel
from workbench.t2v import forms as F
from workbench.t2v.forms import VideoInputs
from workbench.t2v.page import ACTIONS, LAYOUT, OUTPUTS, TAB, present

TITLE = "T2V prompt refinement"
ORDER = 20


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, TAB)
    gr.Markdown(F.INTRO)
    c = gradio_layout(LAYOUT, {"profile": session.profile, "state": gr.State(None)})
    for name, action in ACTIONS.items():
        trigger = getattr(c[name], "input" if name == "candidate" else "change" if name == "mode" else "click")
        inputs = {**c, VideoInputs: c["final_video"]} if name == "final" else c
        gradio_wire(ctx, inputs, action, trigger, OUTPUTS, present, tab=TAB)
    gradio_cancel(ctx, c["cancel"].click, outputs=c["cancel_msg"], api_name="t2v_cancel")
    gradio_cancel(ctx, c["final_cancel"].click, outputs=c["cancel_msg"])


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, TAB)
    st.caption(F.INTRO)
    ss = st.session_state
    v = {"profile": ss.get("profile", ctx.default_profile), "state": ss.get("t2v_shown", {}).get("state")}
    streamlit_page(ctx, TAB, LAYOUT, ACTIONS, present, v, remap={"final": {VideoInputs: "final_video"}})
