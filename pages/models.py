"""Models tab: each role of the chosen profile with its backend, model id, device, dtype, load state,
load time and memory, and a badge where weights are random; load and unload buttons. The page is declared once in
workbench.models_page (the actions in workbench.model_table); this module draws it."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import gradio_layout, gradio_value, gradio_wire, streamlit_page
from pages._wiring import gradio_action
from workbench import model_table as mt
from workbench.layout import Update
from workbench.models_page import INTRO, LAYOUT, OUTPUTS, TAB, present, roles

TITLE = "Models"
ORDER = 100


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, TAB)
    gr.Markdown(INTRO)
    c = gradio_layout(LAYOUT, {"profile": session.profile})
    c["role"].choices = [(r, r) for r in ctx.profile(ctx.default_profile).roles]

    def show(profile_name):
        return mt.model_rows(ctx, profile_name), mt.memory_summary(ctx)

    # Filled when each visitor's page loads (a page view, not a user action); opening the tab shows what other
    # tabs loaded since (the behaviour-shift pair, the T2I rewriter).
    for trigger in (session.demo.load, session.tab.select):
        trigger(show, session.profile, [c["table"], c["summary"]], api_name=False)
    gradio_action(ctx, session.profile.change, "models_profile", lambda p: (*show(p), gradio_value(roles(ctx, p))),
                  [session.profile], [c["table"], c["summary"], c["role"]], tab=TAB)
    gradio_action(ctx, c["refresh"].click, "models_table", show, [session.profile], [c["table"], c["summary"]],
                  tab=TAB)
    for action, name in ((mt.LOAD, "load"), (mt.UNLOAD, "unload")):
        gradio_wire(ctx, c, action, c[name].click, OUTPUTS, present, tab=TAB)


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, TAB)
    st.caption(INTRO)
    ss = st.session_state
    profile = ss.get("profile", ctx.default_profile)
    shown = ss.setdefault("models_shown", {})  # the table as it is now (other tabs load models too)
    shown.update(table=mt.model_rows(ctx, profile), summary=mt.memory_summary(ctx), role=Update(
        choices=roles(ctx, profile).choices))
    streamlit_page(ctx, TAB, LAYOUT, {"load": mt.LOAD, "unload": mt.UNLOAD}, present, {"profile": profile})
