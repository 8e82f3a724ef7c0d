"""Text→video prompt refinement tab: Evolve (Prompt-A-Video: a population of rewrites rendered as short previews,
scored per dimension against your ORIGINAL prompt, the rewriter shown the top-k history each round) or
Principles (VPO: harmless / accurate / helpful, with the critique shown and rejected rewrites refined). Then the
chosen prompt renders beside the original (same seed) with MP4/GIF downloads, and the runs export as SFT/DPO
pairs. Layout and wiring only: the flows are in workbench.t2v.flows."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples

from typing import Any

from pages._wiring import gradio_action, gradio_cancel, streamlit_action
from workbench.t2v import flows
from workbench.t2v.flows import MODES, REWRITER_LABELS, EvolveInputs, RewriterInputs, VideoInputs
from workbench.t2v.rewards import DEFAULT_WEIGHTS, METRICS

TITLE = "T2V prompt refinement"
ORDER = 20
TAB = "t2v"


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, "t2v")

    gr.Markdown(
        "Type a video idea. **Evolve** renders a population of rewrites as short low-resolution previews, scores each "
        "against your ORIGINAL idea (alignment, temporal consistency, motion, aesthetic, safety) and shows the "
        "rewriter the best so far each round. **Principles** rewrites it under VPO's harmless / accurate / helpful principles "
        "and shows the critique. Then render the chosen prompt beside your original (same seed) and download it."
    )
    state = gr.State(None)
    with gr.Row():
        prompt = gr.Textbox(label="Video idea", placeholder="a dog running on a beach", lines=2, scale=3,
                            elem_id="t2v-prompt")
        mode = gr.Radio(list(MODES), value=MODES[0], label="Mode", scale=1, elem_id="t2v-mode")
    with gr.Accordion("Rewriter", open=False):
        kind = gr.Radio(list(REWRITER_LABELS.values()), value=REWRITER_LABELS["profile"], label="Rewriter",
                        elem_id="t2v-rewriter")
        with gr.Row():
            base_url = gr.Textbox(label="Server URL (OpenAI-compatible)", placeholder="http://127.0.0.1:8000/v1")
            model_name = gr.Textbox(label="Model name on that server")
            timeout = gr.Number(60, label="Server timeout (s, 1-600)")
    rewriter_inputs = [kind, base_url, model_name, timeout]

    with gr.Group(visible=True) as evolve_group:
        with gr.Row():
            rounds = gr.Slider(1, 12, value=3, step=1, label="Rounds (1-12)", elem_id="t2v-rounds")
            population = gr.Number(0, precision=0, label="Population per round (1-8; 0 = profile default)")
            top_k = gr.Slider(1, 16, value=3, step=1, label="Top-k history shown to the rewriter")
            patience = gr.Slider(1, 12, value=1, step=1, label="Stop after this many rounds without a better best")
        with gr.Row():
            seed = gr.Number(0, precision=0, label="Rewriter seed")
            temperature = gr.Slider(0.05, 2.0, value=0.9, step=0.05, label="Temperature")
            max_tokens = gr.Number(0, precision=0, label="Max new tokens per rewrite (8-1024; 0 = profile default)")
        with gr.Accordion("Preview render (0 = the profile's default)", open=False):
            with gr.Row():
                width = gr.Number(0, precision=0, label="Width (32-1024, multiple of 8)")
                height = gr.Number(0, precision=0, label="Height (32-1024, multiple of 8)")
                frames = gr.Number(0, precision=0, label="Frames (2-129)")
                steps = gr.Number(0, precision=0, label="Steps (1-100)")
                video_seed = gr.Number(0, precision=0, label="Video seed (same for every candidate)")
        with gr.Accordion("Reward weights (the total sits beside the metrics, never instead)", open=False):
            weight_inputs = [gr.Slider(0, 10, value=DEFAULT_WEIGHTS[m], step=0.1, label=f"weight: {m}", info=METRICS[m])
                             for m in METRICS]
        with gr.Row():
            evolve_btn = gr.Button("Evolve", variant="primary", elem_id="t2v-evolve")
            cancel_btn = gr.Button("Cancel (keeps finished rounds)", elem_id="t2v-cancel")
    with gr.Group(visible=False) as principles_group:
        with gr.Row():
            min_similarity = gr.Slider(0, 1, value=0.5, step=0.05, label="Accurate: minimum embedding similarity")
            min_details = gr.Slider(0, 4, value=2, step=1,
                                    label="Helpful: detail kinds needed (camera/light/motion/style)")
            max_refinements = gr.Slider(0, 5, value=2, step=1, label="Refinements of a rejected rewrite")
            vpo_seed = gr.Number(0, precision=0, label="Seed")
        principles_btn = gr.Button("Rewrite with principles", variant="primary", elem_id="t2v-principles")
    cancel_msg = gr.Markdown()
    status = gr.Markdown(elem_id="t2v-status")
    plot = gr.Plot(label="Every metric per round (round mean; 0 = your original prompt)")
    with gr.Accordion("Rounds (tree) and every candidate", open=True):
        tree = gr.Markdown(elem_id="t2v-tree")
        table = gr.Dataframe(headers=["id", "round", "total", "safe", "prompt"], interactive=False, wrap=True)
        with gr.Row():
            choice = gr.Dropdown(choices=[], label="Open a candidate", elem_id="t2v-candidate", scale=3)
            check_btn = gr.Button("Check the principles on the prompt below", scale=1, elem_id="t2v-check")
        with gr.Row():
            orig_preview = gr.Image(label="Original prompt (same seed)", type="filepath", height=200, interactive=False)
            cand_preview = gr.Image(label="Candidate preview", type="filepath", height=200, interactive=False)
        diff_view = gr.HighlightedText(label="Word diff against your idea", combine_adjacent=True,
                                       color_map={"added": "green", "removed": "red"})
        scores_md = gr.Markdown(elem_id="t2v-scores")
    principles_md = gr.Markdown(elem_id="t2v-critique")
    with gr.Accordion("Final render and downloads", open=True):
        chosen = gr.Textbox(label="Chosen prompt (the open candidate or the VPO rewrite; editable)", lines=3,
                            elem_id="t2v-chosen")
        with gr.Row():
            f_width = gr.Number(0, precision=0, label="Width (0 = profile default)")
            f_height = gr.Number(0, precision=0, label="Height")
            f_frames = gr.Number(0, precision=0, label="Frames")
            f_steps = gr.Number(0, precision=0, label="Steps")
            f_seed = gr.Number(0, precision=0, label="Seed (same for both videos)")
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
            thresholds = gr.Textbox(label="Per-metric minimums for a chosen prompt",
                                    placeholder="align_original=0.2,temporal=0.5")
            margin = gr.Number(0.02, label="Minimum total margin chosen − rejected (0-10)")
        export_btn = gr.Button("Export SFT and DPO pairs", elem_id="t2v-export")
        export_md = gr.Markdown(elem_id="t2v-export-status")
        export_files = gr.File(label="sft.jsonl, dpo.jsonl", file_count="multiple", interactive=False)
    with gr.Accordion("Reopen a run (e.g. after closing the page mid-run)", open=False):
        with gr.Row():
            folder = gr.Textbox(label="Run folder (shown in every run's status)", scale=3)
            reopen_btn = gr.Button("Reopen", scale=1)

    outputs = [state, status, plot, tree, choice, table, orig_preview, cand_preview, diff_view, scores_md,
               principles_md, chosen, final_status, final_original, final_chosen, downloads, export_md, export_files,
               evolve_group, principles_group]

    def show(new_state: dict, view: flows.T2VView) -> list[Any]:
        run = (new_state or {}).get("run_dir")
        status_text = view.status + (f"\n\nRun folder: `{run}`" if run else "")
        return [new_state, status_text, view.chart, view.tree, gr.update(choices=view.choices, value=view.selected),
                view.table or None, view.candidate.original_preview, view.candidate.preview, view.candidate.diff,
                view.candidate.scores, view.principles, view.chosen, view.final_status, view.final_original,
                view.final_chosen, view.downloads or None, view.export_status, view.export_files or None,
                gr.update(visible=view.mode == MODES[0]), gr.update(visible=view.mode == MODES[1])]

    def do_mode(profile_name, state_value, mode_value):
        return show(*flows.set_mode(ctx, profile_name, state_value, mode_value))

    def do_evolve(profile_name, prompt_value, r, p, k, pat, sd, temp, mt, w, h, fr, st, vs, kd, url, mdl, to, *weights,
                  job=None):
        return show(*flows.evolve(ctx, profile_name, None, prompt_value,
                                  EvolveInputs(r, p, k, pat, sd, temp, dict(zip(METRICS, weights)), mt),
                                  VideoInputs(w, h, fr, st, vs), RewriterInputs(kd, url, mdl, to), job=job))

    def do_principles(profile_name, state_value, prompt_value, ms, md, mr, sd, kd, url, mdl, to, job=None):
        return show(*flows.principles(ctx, profile_name, state_value, prompt_value, RewriterInputs(kd, url, mdl, to),
                                      ms, md, mr, sd, job=job))

    def do_open(profile_name, state_value, cid):
        return show(*flows.open_candidate(ctx, profile_name, state_value, cid))

    def do_check(profile_name, state_value, text, kd, url, mdl, to):
        return show(*flows.check_candidate(ctx, profile_name, state_value, text, RewriterInputs(kd, url, mdl, to)))

    def do_final(profile_name, state_value, text, w, h, fr, st, sd, job=None):
        return show(*flows.render_final(ctx, profile_name, state_value, text, VideoInputs(w, h, fr, st, sd), job=job))

    def do_export(profile_name, state_value, th, mg):
        return show(*flows.export(ctx, profile_name, state_value, th, mg))

    def do_reopen(profile_name, state_value, path):
        return show(*flows.reopen(ctx, profile_name, state_value, path))

    gradio_action(ctx, mode.change, "t2v_mode", do_mode, [session.profile, state, mode], outputs, tab=TAB)
    gradio_action(ctx, evolve_btn.click, "t2v_evolve", do_evolve,
                  [session.profile, prompt, rounds, population, top_k, patience, seed, temperature, max_tokens, width,
                   height, frames, steps, video_seed, *rewriter_inputs, *weight_inputs], outputs, tab=TAB, job=True)
    gradio_action(ctx, principles_btn.click, "t2v_principles", do_principles,
                  [session.profile, state, prompt, min_similarity, min_details, max_refinements, vpo_seed,
                   *rewriter_inputs], outputs, tab=TAB, job=True)
    gradio_action(ctx, choice.input, "t2v_open", do_open, [session.profile, state, choice], outputs, tab=TAB)
    gradio_action(ctx, check_btn.click, "t2v_check", do_check, [session.profile, state, chosen, *rewriter_inputs],
                  outputs, tab=TAB)
    gradio_action(ctx, final_btn.click, "t2v_render_final", do_final,
                  [session.profile, state, chosen, f_width, f_height, f_frames, f_steps, f_seed], outputs, tab=TAB,
                  job=True)
    gradio_action(ctx, export_btn.click, "t2v_export", do_export, [session.profile, state, thresholds, margin],
                  outputs, tab=TAB)
    gradio_action(ctx, reopen_btn.click, "t2v_reopen", do_reopen, [session.profile, state, folder], outputs, tab=TAB)
    gradio_cancel(ctx, cancel_btn.click, outputs=cancel_msg, api_name="t2v_cancel")
    gradio_cancel(ctx, final_cancel.click, outputs=cancel_msg)


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, "t2v")

    ss = st.session_state
    profile_name = ss.get("profile", ctx.default_profile)
    if "t2v_pending_chosen" in ss:  # a widget's value can only be set before it is drawn
        ss["t2v_chosen"] = ss.pop("t2v_pending_chosen")

    def accept(out: Any) -> None:
        if out is not None:
            ss["t2v_state"], ss["t2v_view"] = out
            if out[1].chosen:
                ss["t2v_pending_chosen"] = out[1].chosen
            st.rerun()

    st.caption("Evolve (Prompt-A-Video) or Principles (VPO); then render the chosen prompt beside your original "
               "(same seed) and download it; export SFT/DPO pairs.")
    prompt = st.text_area("Video idea", key="t2v_prompt", placeholder="a dog running on a beach")
    mode = st.radio("Mode", list(MODES), key="t2v_mode", horizontal=True)
    with st.expander("Rewriter"):
        rw = RewriterInputs(st.radio("Rewriter", list(REWRITER_LABELS.values()), key="t2v_kind"),
                            st.text_input("Server URL (OpenAI-compatible)", key="t2v_url"),
                            st.text_input("Model name on that server", key="t2v_model"),
                            st.number_input("Server timeout (s)", 1, 600, 60, key="t2v_timeout"))
    if mode == MODES[0]:
        c = st.columns(4)
        ev = EvolveInputs(c[0].slider("Rounds", 1, 12, 3, key="t2v_rounds"),
                          c[1].number_input("Population (0 = profile default)", 0, 8, 0, key="t2v_population"),
                          c[2].slider("Top-k history", 1, 16, 3, key="t2v_topk"),
                          c[3].slider("Patience", 1, 12, 1, key="t2v_patience"),
                          st.number_input("Rewriter seed", 0, 2**31 - 1, 0, key="t2v_seed"),
                          st.slider("Temperature", 0.05, 2.0, 0.9, 0.05, key="t2v_temperature"))
        with st.expander("Preview render (0 = profile default) and reward weights"):
            v = st.columns(5)
            video = VideoInputs(v[0].number_input("Width", 0, 1024, 0, key="t2v_w"),
                                v[1].number_input("Height", 0, 1024, 0, key="t2v_h"),
                                v[2].number_input("Frames", 0, 129, 0, key="t2v_frames"),
                                v[3].number_input("Steps", 0, 100, 0, key="t2v_steps"),
                                v[4].number_input("Video seed", 0, 2**31 - 1, 0, key="t2v_vseed"))
            ev.weights = {m: st.slider(f"weight: {m}", 0.0, 10.0, DEFAULT_WEIGHTS[m], 0.1, key=f"t2v_w_{m}",
                                       help=METRICS[m]) for m in METRICS}
        if st.button("Evolve", type="primary", key="t2v_evolve"):
            accept(streamlit_action(ctx, "t2v_evolve", flows.evolve, ctx, profile_name, None, prompt, ev, video, rw,
                                    tab=TAB, job=True))
    else:
        c = st.columns(4)
        ms = c[0].slider("Min similarity", 0.0, 1.0, 0.5, 0.05, key="t2v_ms")
        md = c[1].slider("Detail kinds needed", 0, 4, 2, key="t2v_md")
        mr = c[2].slider("Refinements", 0, 5, 2, key="t2v_mr")
        sd = c[3].number_input("Seed", 0, 2**31 - 1, 0, key="t2v_vpo_seed")
        if st.button("Rewrite with principles", type="primary", key="t2v_principles"):
            accept(streamlit_action(ctx, "t2v_principles", flows.principles, ctx, profile_name, ss.get("t2v_state"),
                                    prompt, rw, ms, md, mr, sd, tab=TAB, job=True))

    state, view = ss.get("t2v_state"), ss.get("t2v_view")
    if view is None:
        return
    st.markdown(view.status)
    if state and state.get("run_dir"):
        st.caption(f"Run folder: {state['run_dir']}")
    if view.chart is not None:
        st.plotly_chart(view.chart, key="t2v_chart")
    if view.tree:
        st.markdown(view.tree)
    if view.choices:
        ids = [cid for _, cid in view.choices]
        labels = dict((cid, label) for label, cid in view.choices)
        pick = st.selectbox("Open a candidate", ids, index=ids.index(view.selected) if view.selected in ids else 0,
                            format_func=labels.get, key="t2v_pick")
        if pick != view.selected:
            accept(streamlit_action(ctx, "t2v_open", flows.open_candidate, ctx, profile_name, state, pick, tab=TAB))
        cols = st.columns(2)
        if view.candidate.original_preview:
            cols[0].image(view.candidate.original_preview, caption="original prompt (same seed)")
        if view.candidate.preview:
            cols[1].image(view.candidate.preview, caption=view.candidate.id)
        st.markdown("Diff: " + view.candidate.diff_markdown)
        st.markdown(view.candidate.scores)
    if view.principles:
        st.markdown(view.principles)
    chosen = st.text_area("Chosen prompt (editable)", key="t2v_chosen")
    c = st.columns(2)
    if c[0].button("Check the principles", key="t2v_check"):
        accept(streamlit_action(ctx, "t2v_check", flows.check_candidate, ctx, profile_name, state, chosen, rw, tab=TAB))
    if c[1].button("Render final", key="t2v_final", type="primary"):
        accept(streamlit_action(ctx, "t2v_render_final", flows.render_final, ctx, profile_name, state, chosen,
                                VideoInputs(), tab=TAB, job=True))
    if view.final_chosen:
        st.markdown(view.final_status)
        v = st.columns(2)
        v[0].video(view.final_original)
        v[1].video(view.final_chosen)
        for path in view.downloads:
            with open(path, "rb") as fh:
                st.download_button(f"Download {path.rsplit('/', 1)[-1]}", fh.read(), file_name=path.rsplit("/", 1)[-1],
                                   key=f"t2v_dl_{path}")
    if view.choices:
        e = st.columns(2)
        th = e[0].text_input("Per-metric minimums (metric=value,...)", key="t2v_thresholds")
        mg = e[1].number_input("Minimum margin", 0.0, 10.0, 0.02, key="t2v_margin")
        if st.button("Export SFT and DPO pairs", key="t2v_export"):
            accept(streamlit_action(ctx, "t2v_export", flows.export, ctx, profile_name, state, th, mg, tab=TAB))
        if view.export_status:
            st.markdown(view.export_status)
