"""Behaviour-shift tab (Wu et al., NAACL'24, "From Language Modeling to Instruction Following"): one prompt,
a base LM and its instruction-tuned sibling side by side and as a difference — attribution (gradient x input,
integrated gradients, feature ablation), importance density, instruction share, position view, attention on
the instruction per layer x head with a head view, and feed-forward concepts. Layout only, drawn by both front ends
(pages/_layout.py): inputs and actions are declared in workbench.shift.forms, the flows are in workbench.shift.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import Update, button, col, fields, gradio_layout, gradio_wire, keep, out, row, streamlit_layout
from pages._layout import tabs
from pages._wiring import gradio_cancel, streamlit_run, streamlit_view
from workbench.shift import flows
from workbench.shift.figures import FFN_COLUMNS
from workbench.shift.forms import (ANALYSE, ATTRIBUTE, EXPORT, INTRO, METHOD_CHOICES, UPDATE_VIEWS, AnalysisInputs,
                                   ViewInputs)

TITLE = "Behaviour shift"
ORDER = 30
TAB = "shift"
PLOTS = {"attr_base": "Attribution — base", "attr_instruct": "Attribution — instruct",
         "attr_difference": "Attribution — difference", "density": "Importance density",
         "share": "Instruction share", "position": "By position", "attn_base": "Attention on instruction — base",
         "attn_instruct": "Attention on instruction — instruct",
         "attn_difference": "Attention on instruction — difference"}
DOWNLOAD_LABEL = "Download the analysis (ZIP: matrices, figures, settings, provenance)"
FFN_NOTE = ("Per layer, the top principal components of the feed-forward output vectors, read as the vocabulary "
            "tokens they point to; *layer overlap* is the Jaccard overlap of both models' tokens. An adapter on "
            "attention projections only leaves these weights unchanged (overlap 1).")
# FFN table column widths: numbers stay on one line, tokens get the room
FFN_WIDTHS = {"layer": "6%", "component": "9%", "variance (base)": "10%", "base tokens": "33%",
              "instruct tokens": "33%", "layer overlap": "9%"}

LAYOUT = [
    row(fields(AnalysisInputs, "prompt", scale=3), col(fields(AnalysisInputs, "system", "use_template"), scale=1)),
    row(fields(AnalysisInputs, "max_new", "ig_steps", "ig_baseline", "methods", "parts")),
    row(button("run", "Analyse", variant="primary", elem_id="shift-run"),
        button("cancel", "Cancel", only="gradio", variant="stop", elem_id="shift-cancel", visible=False)),
    out("status", "md", elem_id="shift-status"),
    out("summary", "md", elem_id="shift-summary"),
    # enabled once an analysis has been written to a ZIP; disabled while a new one runs
    out("download", "download", DOWNLOAD_LABEL, interactive=False, size="md", elem_id="shift-download",
        st_key="shift_download"),
    row(fields(ViewInputs, "method", "page", "page_size", "layers", "heads"), fields(ViewInputs, "scale",
                                                                                   horizontal=True),
        button("update", "Update views", elem_id="shift-update")),
    tabs(("Attribution", [out(k, "plot", PLOTS[k]) for k in list(PLOTS)[:6]]),
         ("Attention", [*[out(k, "plot", PLOTS[k]) for k in list(PLOTS)[6:]],
                        row(fields(ViewInputs, "hv_side", "hv_layer", "hv_head")),
                        out("head_view", "plot", "Head view")]),
         ("Feed-forward concepts", [out("ffn_note", "md", value=FFN_NOTE),
                                    out("ffn", "table", headers=FFN_COLUMNS, elem_id="shift-ffn",
                                        column_widths=[FFN_WIDTHS[c] for c in FFN_COLUMNS])])),
]
VIEW = list(flows.VIEW_KEYS)


def present_view(view: Any) -> dict[str, Any]:
    return dict(zip(VIEW, view.ordered()))


def present(out: tuple) -> dict[str, Any]:  # before attribution the menu keeps every method (the next step fills it)
    result, view = out
    return dict(present_view(view), state=result, method=Update(choices=view.method_choices or list(METHOD_CHOICES),
                                                                value=view.method_shown))


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
            st.button("Cancel", key="shift_cancel", help="Stops attribution at its next step; what finished is kept.")
        done = streamlit_run(ctx, ATTRIBUTE, v, tab=TAB)
        early.empty()
        if done is not None:
            keep(TAB, LAYOUT, present(done))
            v["state"] = done[0]
    shown["download"] = streamlit_run(ctx, EXPORT, v, tab=TAB)
    st.rerun()
