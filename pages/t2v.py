"""Text→video prompt refinement tab: Evolve (Prompt-A-Video: a population of rewrites rendered as short previews,
scored per dimension against your ORIGINAL prompt, the rewriter shown the top-k history each round) or
Principles (VPO: harmless / accurate / helpful, with the critique shown and rejected rewrites refined). Then the
chosen prompt renders beside the original (same seed) with MP4/GIF downloads, and the runs export as SFT/DPO
pairs. Layout only: inputs and actions are declared in workbench.t2v.forms, the flows are in workbench.t2v.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._forms import gradio_field, gradio_fields, streamlit_field, streamlit_fields
from pages._wiring import gradio_bind, gradio_cancel, streamlit_run
from workbench.forms import widget
from workbench.t2v import flows
from workbench.t2v import forms as F
from workbench.t2v.forms import (MODES, EvolveInputs, PrinciplesInputs, RewardWeights, RewriterInputs, T2VPage,
                                 VideoInputs)

TITLE = "T2V prompt refinement"
ORDER = 20
TAB = "t2v"


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, "t2v")
    gr.Markdown(F.INTRO)
    c: dict[Any, Any] = {"profile": session.profile, "state": gr.State(None)}
    with gr.Row():
        c["prompt"] = gradio_field(T2VPage, "prompt", scale=3)
        c["mode"] = gradio_field(T2VPage, "mode", scale=1)
    with gr.Accordion("Rewriter", open=False):
        rw = c[RewriterInputs] = gradio_fields(RewriterInputs, "kind")
        with gr.Row():
            rw.update(gradio_fields(RewriterInputs, "base_url", "model", "timeout"))
    with gr.Group(visible=True) as evolve_group:
        with gr.Row():
            ev = c[EvolveInputs] = gradio_fields(EvolveInputs, "rounds", "population", "top_k", "patience")
        with gr.Row():
            ev.update(gradio_fields(EvolveInputs, "seed", "temperature", "max_new_tokens"))
        with gr.Accordion("Preview render (empty = the profile's default)", open=False):
            with gr.Row():
                c[VideoInputs] = gradio_fields(VideoInputs)
        with gr.Accordion("Reward weights (the total sits beside the metrics, never instead)", open=False):
            c[RewardWeights] = gradio_fields(RewardWeights)
        with gr.Row():
            evolve_btn = gr.Button("Evolve", variant="primary", elem_id="t2v-evolve")
            cancel_btn = gr.Button("Cancel (keeps finished rounds)", elem_id="t2v-cancel")
    with gr.Group(visible=False) as principles_group:
        with gr.Row():
            c[PrinciplesInputs] = gradio_fields(PrinciplesInputs)
        principles_btn = gr.Button("Rewrite with principles", variant="primary", elem_id="t2v-principles")
    cancel_msg = gr.Markdown()
    status = gr.Markdown(elem_id="t2v-status")
    plot = gr.Plot(label="Every metric per round (round mean; 0 = your original prompt)")
    with gr.Accordion("Rounds (tree) and every candidate", open=True):
        tree = gr.Markdown(elem_id="t2v-tree")
        table = gr.Dataframe(headers=["id", "round", "total", "safe", "prompt"], interactive=False, wrap=True)
        with gr.Row():
            c["candidate"] = gradio_field(T2VPage, "candidate", scale=3)
            check_btn = gr.Button("Check the principles on the prompt below", scale=1, elem_id="t2v-check")
        with gr.Row():
            orig_preview = gr.Image(label="Original prompt (same seed)", type="filepath", height=200, interactive=False)
            cand_preview = gr.Image(label="Candidate preview", type="filepath", height=200, interactive=False)
        diff_view = gr.HighlightedText(label="Word diff against your idea", combine_adjacent=True,
                                       color_map={"added": "green", "removed": "red"})
        scores_md = gr.Markdown(elem_id="t2v-scores")
    principles_md = gr.Markdown(elem_id="t2v-critique")
    with gr.Accordion("Final render and downloads", open=True):
        c["chosen"] = gradio_field(T2VPage, "chosen")
        with gr.Row():
            final_video = gradio_fields(VideoInputs)  # the same inputs as the previews, for the final render
        with gr.Row():
            final_btn = gr.Button("Render final", variant="primary", elem_id="t2v-final")
            final_cancel = gr.Button("Cancel render")
        final_status = gr.Markdown(elem_id="t2v-final-status")
        with gr.Row():
            final_original = gr.Video(label="Your original idea", interactive=False)
            final_chosen = gr.Video(label="Chosen prompt", interactive=False)
        downloads = gr.File(label="Downloads: MP4, GIF, provenance JSON", file_count="multiple", interactive=False)
    with gr.Accordion("Preference pairs for SFT / DPO", open=False):
        with gr.Row():
            c.update(gradio_fields(T2VPage, "thresholds", "margin"))
        export_btn = gr.Button("Export SFT and DPO pairs", elem_id="t2v-export")
        export_md = gr.Markdown(elem_id="t2v-export-status")
        export_files = gr.File(label="sft.jsonl, dpo.jsonl", file_count="multiple", interactive=False)
    with gr.Accordion("Reopen a run (e.g. after closing the page mid-run)", open=False):
        with gr.Row():
            c["folder"] = gradio_field(T2VPage, "folder", scale=3)
            reopen_btn = gr.Button("Reopen", scale=1)

    outputs = [c["state"], status, plot, tree, c["candidate"], table, orig_preview, cand_preview, diff_view, scores_md,
               principles_md, c["chosen"], final_status, final_original, final_chosen, downloads, export_md,
               export_files, evolve_group, principles_group]

    def show(out: tuple) -> list[Any]:
        new_state, view = out
        run = (new_state or {}).get("run_dir")
        status_text = view.status + (f"\n\nRun folder: `{run}`" if run else "")
        return [new_state, status_text, view.chart, view.tree, gr.update(choices=view.choices, value=view.selected),
                view.table or None, view.candidate.original_preview, view.candidate.preview, view.candidate.diff,
                view.candidate.scores, view.principles, view.chosen, view.final_status, view.final_original,
                view.final_chosen, view.downloads or None, view.export_status, view.export_files or None,
                gr.update(visible=view.mode == MODES[0]), gr.update(visible=view.mode == MODES[1])]

    bind = dict(present=show, tab=TAB)
    gradio_bind(ctx, F.MODE, c["mode"].change, c, outputs, **bind)
    gradio_bind(ctx, F.EVOLVE, evolve_btn.click, c, outputs, **bind)
    gradio_bind(ctx, F.PRINCIPLES, principles_btn.click, c, outputs, **bind)
    gradio_bind(ctx, F.OPEN, c["candidate"].input, c, outputs, **bind)
    gradio_bind(ctx, F.CHECK, check_btn.click, c, outputs, **bind)
    gradio_bind(ctx, F.RENDER_FINAL, final_btn.click, {**c, VideoInputs: final_video}, outputs, **bind)
    gradio_bind(ctx, F.EXPORT, export_btn.click, c, outputs, **bind)
    gradio_bind(ctx, F.REOPEN, reopen_btn.click, c, outputs, **bind)
    gradio_cancel(ctx, cancel_btn.click, outputs=cancel_msg, api_name="t2v_cancel")
    gradio_cancel(ctx, final_cancel.click, outputs=cancel_msg)


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, "t2v")
    ss = st.session_state
    if "t2v_pending_chosen" in ss:  # a widget's value can only be set before it is drawn
        ss["t2v_chosen"] = ss.pop("t2v_pending_chosen")
    view = ss.get("t2v_view")
    v: dict[Any, Any] = {"profile": ss.get("profile", ctx.default_profile), "state": ss.get("t2v_state")}

    def run(action) -> None:
        out = streamlit_run(ctx, action, v, tab=TAB)
        if out is not None:
            ss["t2v_state"], ss["t2v_view"] = out
            if out[1].chosen:
                ss["t2v_pending_chosen"] = out[1].chosen
            st.rerun()

    st.caption(F.INTRO)
    v["prompt"] = streamlit_field(T2VPage, "prompt", TAB)
    v["mode"] = streamlit_field(T2VPage, "mode", TAB, horizontal=True)
    if v["mode"] != (view.mode if view is not None else MODES[0]):  # the user switched modes, as Gradio's radio
        run(F.MODE)
    with st.expander("Rewriter"):
        v[RewriterInputs] = streamlit_fields(RewriterInputs, TAB, columns=2)
    if v["mode"] == MODES[0]:
        v[EvolveInputs] = streamlit_fields(EvolveInputs, TAB, columns=4)
        with st.expander("Preview render (empty = profile default) and reward weights"):
            v[VideoInputs] = streamlit_fields(VideoInputs, f"{TAB}_video", columns=5)
            v[RewardWeights] = streamlit_fields(RewardWeights, f"{TAB}_w")
        if st.button("Evolve", type="primary", key="t2v_evolve"):
            run(F.EVOLVE)
    else:
        v[PrinciplesInputs] = streamlit_fields(PrinciplesInputs, TAB, columns=4)
        if st.button("Rewrite with principles", type="primary", key="t2v_principles"):
            run(F.PRINCIPLES)
    with st.expander("Reopen a run (e.g. after closing the page mid-run)"):
        v["folder"] = streamlit_field(T2VPage, "folder", TAB)
        if st.button("Reopen", key="t2v_reopen"):
            run(F.REOPEN)
    if view is None:
        return
    st.markdown(view.status)
    if v["state"] and v["state"].get("run_dir"):
        st.caption(f"Run folder: {v['state']['run_dir']}")
    if view.chart is not None:
        st.plotly_chart(view.chart, key="t2v_chart")
    st.markdown(view.tree)
    if view.choices:
        ids, labels = [cid for _, cid in view.choices], dict((cid, label) for label, cid in view.choices)
        v["candidate"] = st.selectbox(widget(T2VPage, "candidate").label, ids, format_func=labels.get, key="t2v_pick",
                                      index=ids.index(view.selected) if view.selected in ids else 0)
        if v["candidate"] != view.selected:
            run(F.OPEN)
        cols = st.columns(2)
        if view.candidate.original_preview:
            cols[0].image(view.candidate.original_preview, caption="original prompt (same seed)")
        if view.candidate.preview:
            cols[1].image(view.candidate.preview, caption=view.candidate.id)
        st.markdown("Diff: " + view.candidate.diff_markdown)
        st.markdown(view.candidate.scores)
    st.markdown(view.principles)
    v["chosen"] = streamlit_field(T2VPage, "chosen", TAB)
    with st.expander("Final render: size, frames, steps, seed (empty = profile default)"):
        v[VideoInputs] = streamlit_fields(VideoInputs, f"{TAB}_final", columns=5)
    c = st.columns(2)
    if c[0].button("Check the principles", key="t2v_check"):
        run(F.CHECK)
    if c[1].button("Render final", key="t2v_final", type="primary"):
        run(F.RENDER_FINAL)
    if view.final_chosen:
        st.markdown(view.final_status)
        cols = st.columns(2)
        cols[0].video(view.final_original)
        cols[1].video(view.final_chosen)
        for path in view.downloads:
            with open(path, "rb") as fh:
                st.download_button(f"Download {path.rsplit('/', 1)[-1]}", fh.read(), file_name=path.rsplit("/", 1)[-1],
                                   key=f"t2v_dl_{path}")
    if view.choices:
        v.update(streamlit_fields(T2VPage, TAB, ("thresholds", "margin"), columns=2))
        if st.button("Export SFT and DPO pairs", key="t2v_export"):
            run(F.EXPORT)
        st.markdown(view.export_status)
