"""Behaviour-shift tab (Wu et al., NAACL'24, "From Language Modeling to Instruction Following"): one prompt,
a base LM and its instruction-tuned sibling side by side and as a difference — attribution (gradient x input,
integrated gradients, feature ablation), importance density, instruction share, position view, attention on
the instruction per layer x head with a head view, and feed-forward concepts. Layout only: inputs and actions are
declared in workbench.shift.forms, the flows are in workbench.shift.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._forms import gradio_field, gradio_fields, streamlit_field, streamlit_fields
from pages._wiring import gradio_bind, gradio_cancel, streamlit_run, streamlit_view
from workbench.shift import flows
from workbench.shift.forms import (ANALYSE, ATTRIBUTE, EXPORT, INTRO, METHOD_CHOICES, UPDATE_VIEWS, AnalysisInputs,
                                   ViewInputs)

TITLE = "Behaviour shift"
ORDER = 30
TAB = "shift"
DOWNLOAD_LABEL = "Download the analysis (ZIP: matrices, figures, settings, provenance)"
# FFN table column widths (Gradio share of the table, Streamlit size): numbers stay on one line, tokens get the room
FFN_WIDTHS = {"layer": ("6%", "small"), "component": ("9%", "small"), "variance (base)": ("10%", "small"),
              "base tokens": ("33%", "large"), "instruct tokens": ("33%", "large"), "layer overlap": ("9%", "small")}
PLOTS = {"Attribution": ("attr_base", "attr_instruct", "attr_difference", "density", "share", "position"),
         "Attention": ("attn_base", "attn_instruct", "attn_difference", "head_view")}
PLOT_LABELS = {"attr_base": "Attribution — base", "attr_instruct": "Attribution — instruct",
               "attr_difference": "Attribution — difference", "density": "Importance density",
               "share": "Instruction share", "position": "By position", "head_view": "Head view",
               "attn_base": "Attention on instruction — base", "attn_instruct": "Attention on instruction — instruct",
               "attn_difference": "Attention on instruction — difference"}
FFN_NOTE = ("Per layer, the top principal components of the feed-forward output vectors, read as the vocabulary "
            "tokens they point to; *layer overlap* is the Jaccard overlap of both models' tokens. An adapter on "
            "attention projections only leaves these weights unchanged (overlap 1).")


def build_gradio(ctx, session) -> None:
    import gradio as gr

    from workbench.shift.figures import FFN_COLUMNS

    gradio_examples(ctx, session, "shift")
    gr.Markdown(INTRO)
    c: dict[str, Any] = {"profile": session.profile, "state": gr.State(None)}
    with gr.Row():
        c["prompt"] = gradio_field(AnalysisInputs, "prompt", scale=3)
        with gr.Column(scale=1):
            c.update(gradio_fields(AnalysisInputs, "system", "use_template"))
    with gr.Row():
        c.update(gradio_fields(AnalysisInputs, "max_new", "ig_steps", "ig_baseline", "methods", "parts"))
    with gr.Row():
        run = gr.Button("Analyse", variant="primary", elem_id="shift-run")
        cancel = gr.Button("Cancel", variant="stop", elem_id="shift-cancel", visible=False)  # only while it runs
    status = gr.Markdown(elem_id="shift-status")
    summary = gr.Markdown(elem_id="shift-summary")
    # enabled once an analysis has been written to a ZIP; disabled while a new one runs
    download = gr.DownloadButton(DOWNLOAD_LABEL, interactive=False, size="md", elem_id="shift-download")
    with gr.Row():
        c.update(gradio_fields(ViewInputs, "method", "page", "page_size", "layers", "heads", "scale"))
        update = gr.Button("Update views", elem_id="shift-update")
    plots: dict[str, Any] = {}
    for tab_name, keys in PLOTS.items():
        with gr.Tab(tab_name):
            plots.update({k: gr.Plot(label=PLOT_LABELS[k]) for k in keys if k != "head_view"})
            if tab_name == "Attention":
                with gr.Row():
                    c.update(gradio_fields(ViewInputs, "hv_side", "hv_layer", "hv_head"))
                plots["head_view"] = gr.Plot(label=PLOT_LABELS["head_view"])
    with gr.Tab("Feed-forward concepts"):
        gr.Markdown(FFN_NOTE)
        plots["ffn"] = gr.Dataframe(headers=FFN_COLUMNS, interactive=False, wrap=True, elem_id="shift-ffn",
                                    column_widths=[FFN_WIDTHS[col][0] for col in FFN_COLUMNS])
    outputs = [summary, *[plots[k] for k in flows.VIEW_KEYS[1:]]]

    def show(out: tuple) -> list[Any]:  # before attribution the menu keeps every method (the next step fills them)
        result, view = out
        return [result, *view.ordered(), gr.Dropdown(choices=view.method_choices or list(METHOD_CHOICES),
                                                     value=view.method_shown)]

    first = gradio_bind(ctx, ANALYSE, run.click, c, [c["state"], *outputs, c["method"]], show, tab=TAB,
                        busy=[download])
    second = gradio_bind(ctx, ATTRIBUTE, first.success, c, [c["state"], *outputs, c["method"]], show, tab=TAB,
                         busy=[download])
    gradio_bind(ctx, EXPORT, second.success, c, download, tab=TAB)  # after a cancel too: it holds what finished
    hide = dict(fn=lambda: gr.update(visible=False), inputs=None, outputs=cancel, queue=False, api_name=False)
    run.click(lambda: gr.update(visible=True), None, cancel, queue=False, api_name=False)
    for done in (first.failure, second.then, second.failure):
        done(**hide)
    gradio_cancel(ctx, cancel.click, api_name="shift_cancel", outputs=status)
    gradio_bind(ctx, UPDATE_VIEWS, update.click, c, outputs, lambda view: view.ordered(), tab=TAB)


def render_streamlit(ctx) -> None:
    import pandas as pd
    import streamlit as st

    from workbench.shift.figures import FFN_COLUMNS

    streamlit_examples(ctx, "shift")
    ss = st.session_state
    partial = ss.pop("shift_attribute_partial", None)
    if partial is not None:  # a click during attribution stopped the run: keep what finished, as Gradio's Cancel
        partial.stopped = partial.stopped or "attribution (stopped by a click on the page)"
        ss["shift_result"] = partial
    v: dict[str, Any] = {"profile": ss.get("profile", ctx.default_profile), "state": ss.get("shift_result")}
    st.caption(INTRO)
    with st.form("shift_form"):
        v.update(streamlit_fields(AnalysisInputs, TAB))
        submitted = st.form_submit_button("Analyse")
    computed = v["state"].methods_done if v["state"] is not None else ()
    v.update(streamlit_fields(ViewInputs, TAB, ("page", "page_size", "layers", "heads"), columns=4))
    cols = st.columns(2)
    v["method"] = streamlit_field(ViewInputs, "method", TAB, cols[0], choices=[
        flows.METHOD_LABELS[m] for m in computed] or None)
    v["scale"] = streamlit_field(ViewInputs, "scale", TAB, cols[1], horizontal=True)
    v.update(streamlit_fields(ViewInputs, TAB, ("hv_side", "hv_layer", "hv_head"), columns=3))
    if submitted:
        ss.pop("shift_attribute_partial", None)
        with st.spinner("Both models answer; attention and feed-forward views..."):
            out = streamlit_run(ctx, ANALYSE, v, tab=TAB)
        if out is not None:
            v["state"], ss["shift_result"], ss["shift_view"] = out[0], *out
            if not out[0].complete:
                early = st.empty()
                with early.container():  # the quick views while attribution runs
                    st.markdown(out[1].get("summary"))
                    st.button("Cancel", key="shift_cancel", help="Stops attribution at its next step; what "
                                                                 "finished is kept.")
                done = streamlit_run(ctx, ATTRIBUTE, v, tab=TAB)
                early.empty()
                if done is not None:
                    v["state"], ss["shift_result"], ss["shift_view"] = done[0], *done
            ss["shift_export"] = streamlit_run(ctx, EXPORT, v, tab=TAB)
    if partial is not None:
        ss["shift_view"] = streamlit_view(flows.build_view, partial, *[v[n] for n in UPDATE_VIEWS.input_names[1:]])
        ss["shift_export"] = streamlit_run(ctx, EXPORT, v, tab=TAB)
    if v["state"] is not None and st.button("Update views", key="shift_update"):
        ss["shift_view"] = streamlit_run(ctx, UPDATE_VIEWS, v, tab=TAB) or ss.get("shift_view")
    view = ss.get("shift_view")
    if view is None:
        return
    st.markdown(view.get("summary"))
    path = ss.get("shift_export")
    if path is not None:
        with open(path, "rb") as fh:
            st.download_button(DOWNLOAD_LABEL, fh.read(), file_name=path.rsplit("/", 1)[-1],
                               mime="application/zip", key="shift_download")
    tabs = st.tabs([*PLOTS, "Feed-forward concepts"])
    for tab, keys in zip(tabs, PLOTS.values()):
        with tab:
            for key in keys:
                if view.get(key) is not None:
                    st.plotly_chart(view.get(key), key=f"shift_{key}")
    with tabs[-1]:
        if view.get("ffn") is not None:
            config = {col: (st.column_config.TextColumn if "tokens" in col else st.column_config.NumberColumn)(
                col, width=FFN_WIDTHS[col][1]) for col in FFN_COLUMNS}
            st.dataframe(pd.DataFrame(view.get("ffn"), columns=FFN_COLUMNS), hide_index=True, column_config=config)
