"""Behaviour-shift tab (Wu et al., NAACL'24, "From Language Modeling to Instruction Following"): one prompt,
a base LM and its instruction-tuned sibling side by side and as a difference — attribution (gradient x input,
integrated gradients, feature ablation), importance density, instruction share, position view, attention on
the instruction per layer x head with a head view, and feed-forward concepts. The page is declared once in
workbench.shift.page (inputs and actions in workbench.shift.forms, the flows in workbench.shift.flows); this module
draws it and chains analysis, attribution and export per front end."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import gradio_layout, gradio_wire, keep, streamlit_layout
from pages._wiring import gradio_cancel, streamlit_run, streamlit_view
from workbench.layout import Update
from workbench.shift import flows
from workbench.shift.forms import ANALYSE, ATTRIBUTE, EXPORT, INTRO, UPDATE_VIEWS
from workbench.shift.page import LAYOUT, TAB, VIEW, present, present_view

TITLE = "Behaviour shift"
ORDER = 30

def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, TAB)
    gr.Markdown(INTRO)
    c = gradio_layout(LAYOUT, {"profile": session.profile, "state": gr.State(None)})
    outputs, cancel = ["state", *VIEW, "method"], c["cancel"]
    first = gradio_wire(ctx, c, ANALYSE, c["run"].click, outputs, present, tab=TAB, busy=[c["download"]])
    second = gradio_wire(ctx, c, ATTRIBUTE, first.success, outputs, present, tab=TAB, busy=[c["download"]])
    gradio_wire(ctx, c, EXPORT, second.success, ["download"], lambda path: {"download": path}, tab=TAB)  # after a
    # cancel too: it holds what finished
    c["run"].click(lambda: gr.update(visible=True), None, cancel, queue=False, api_name=False)  # only while it runs
    for done in (first.failure, second.then, second.failure):
        done(lambda: gr.update(visible=False), None, cancel, queue=False, api_name=False)
    gradio_cancel(ctx, cancel.click, api_name="shift_cancel", outputs=c["status"])
    gradio_wire(ctx, c, UPDATE_VIEWS, c["update"].click, VIEW, present_view, tab=TAB)


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, TAB)
    st.caption(INTRO)
    ss = st.session_state
    shown = ss.setdefault("shift_shown", {})
    partial = ss.pop("shift_attribute_partial", None)
    if partial is not None:  # a click during attribution stopped the run: keep what finished, as Gradio's Cancel
        partial.stopped = partial.stopped or "attribution (stopped by a click on the page)"
        shown["state"] = partial
    for name, value in ss.pop("shift_pending", {}).items():
        ss[f"shift_{name}"] = value
    if shown.get("state") is not None:  # the computed methods only
        shown["method"] = Update(choices=[flows.METHOD_LABELS[m] for m in shown["state"].methods_done] or None)
    v: dict[Any, Any] = {"profile": ss.get("profile", ctx.default_profile), "state": shown.get("state")}
    clicked = streamlit_layout(LAYOUT, TAB, shown, v)
    if partial is not None:
        shown.update(present_view(streamlit_view(flows.build_view, partial, *[v[n] for n in
                                                                              UPDATE_VIEWS.input_names[1:]])))
        shown["download"] = streamlit_run(ctx, EXPORT, v, tab=TAB)
        st.rerun()
    with v.pop("__at", None) or st.container():  # progress, errors and the quick views at the clicked button
        if clicked == "update" and v["state"] is not None:
            view = streamlit_run(ctx, UPDATE_VIEWS, v, tab=TAB)
            if view is not None:
                keep(TAB, LAYOUT, present_view(view))
                st.rerun()
        if clicked != "run":
            return
        with st.spinner("Both models answer; attention and feed-forward views..."):
            out = streamlit_run(ctx, ANALYSE, v, tab=TAB)
        if out is None:
            return
        keep(TAB, LAYOUT, present(out))
        v["state"] = out[0]
        if not out[0].complete:
            early = st.empty()
            with early.container():  # the quick views while attribution runs
                st.markdown(out[1].get("summary"))
                st.button("Cancel", key="shift_cancel", help="Stops attribution at its next step; keeps what finished.")
            done = streamlit_run(ctx, ATTRIBUTE, v, tab=TAB)
            early.empty()
            if done is not None:
                keep(TAB, LAYOUT, present(done))
                v["state"] = done[0]
        shown["download"] = streamlit_run(ctx, EXPORT, v, tab=TAB)
        st.rerun()
