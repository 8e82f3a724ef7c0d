"""Text→image prompt refinement tab (UF-FGTG): a coarse prompt becomes N fine-grained candidates, shown
editable with a word diff and a token-limit flag before any render; rendering is a separate click, each image
beside the original prompt's image from the same seed, each with a per-metric score panel; pick one and refine
further, with the tree of rounds visible and navigable. Layout and wiring only: the flows are in
workbench.t2i.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._wiring import gradio_action, gradio_cancel, streamlit_action
from workbench.t2i import flows
from workbench.t2i import results as results_mod
from workbench.t2i.flows import MAX_CANDIDATES, REWRITER_LABELS, RenderInputs, RewriterInputs
from workbench.t2i.refiner import DEFAULT_SYSTEM_TEMPLATE, RefineSettings
from workbench.t2i.scoring import DEFAULT_WEIGHTS, METRICS

TITLE = "T2I prompt refinement"
ORDER = 10
TAB = "t2i"


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    import gradio as gr
    import pandas as pd

    gradio_examples(ctx, session, "t2i")

    gr.Markdown(
        "Type a coarse prompt and get up to eight fine-grained rewrites that fit the image model's text window. "
        "Edit them, compare the word diff, regenerate any one (↻), then **Render** (the expensive step, with "
        "progress and Cancel): the grid shows the original prompt's image first, then each candidate from the same "
        "seed, with one chart of every metric and the full table a click away; sort by any metric and download the "
        "round as a ZIP. Pick one and **Refine further**; the tree of rounds below lets you go back and branch."
    )
    state = gr.State(None)
    with gr.Row():
        prompt = gr.Textbox(label="Coarse prompt", placeholder="a cat on a sofa", lines=2, scale=3, elem_id="t2i-prompt")
        with gr.Column(scale=1):
            n = gr.Slider(1, MAX_CANDIDATES, value=4, step=1, label="Candidates (N)", elem_id="t2i-n")
            diversity = gr.Slider(0, 1, value=0.5, step=0.05, label="Diversity (MMR: 0 = closest, 1 = most varied)")
    facets = gr.CheckboxGroup(flows.facet_choices(), value=list(RefineSettings().facets), elem_id="t2i-facets",
                              label="Facets: each candidate emphasises one (none ticked: undirected rewrites)")
    with gr.Accordion("Rewriter", open=False):
        kind = gr.Radio(list(REWRITER_LABELS.values()), value=REWRITER_LABELS["profile"], label="Rewriter",
                        elem_id="t2i-rewriter")
        with gr.Row():
            base_url = gr.Textbox(label="Server URL (OpenAI-compatible)", placeholder="http://127.0.0.1:8000/v1")
            model_name = gr.Textbox(label="Model name on that server")
            adapter = gr.Textbox(label="LoRA adapter folder (profile model only)",
                                 placeholder="a folder written by python -m workbench.t2i train")
        system_template = gr.Textbox(DEFAULT_SYSTEM_TEMPLATE, label="System template (editable)", lines=4)
        with gr.Row():
            few_shot = gr.Slider(0, 8, value=3, step=1, label="Few-shot examples (retrieved)")
            temperature = gr.Slider(0.1, 2.0, value=0.9, step=0.05, label="Temperature")
            seed = gr.Number(0, precision=0, label="Rewriter seed")
    refine_btn = gr.Button("Refine", variant="primary", elem_id="t2i-refine")
    status = gr.Markdown(elem_id="t2i-status")

    slots = []
    for i in range(MAX_CANDIDATES):
        with gr.Group(visible=False) as group:
            with gr.Row(equal_height=True):
                text = gr.Textbox(label=f"Candidate {i + 1}", lines=2, scale=6, interactive=True,
                                  elem_id=f"t2i-cand-{i + 1}")
                regen = gr.Button(f"↻ {i + 1}", scale=0, min_width=48, size="sm", variant="secondary",
                                  elem_id=f"t2i-regen-{i + 1}")
            with gr.Accordion("Word diff against the prompt it refines", open=False):
                diff_view = gr.HighlightedText(show_label=False, combine_adjacent=True,
                                               color_map={"added": "green", "removed": "red"})
            flag = gr.Markdown()
        slots.append(dict(group=group, text=text, regen=regen, diff=diff_view, flag=flag))
    texts = [s["text"] for s in slots]

    defaults = flows.render_defaults(ctx, ctx.default_profile)
    with gr.Accordion("Render and scores", open=True):
        with gr.Row():
            steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Steps")
            size = gr.Slider(64, 1024, value=defaults.size, step=8, label="Size (px)")
            image_seed = gr.Number(0, precision=0, label="Image seed (same for every image)")
            guidance = gr.Slider(0, 20, value=defaults.guidance, step=0.5, label="Guidance")
        with gr.Accordion("Metric weights (for the total shown beside the metrics)", open=False):
            with gr.Row():
                weight_inputs = [gr.Slider(0, 10, value=DEFAULT_WEIGHTS[m], step=0.25, label=f"weight: {m}",
                                           info=METRICS[m]) for m in METRICS]
        with gr.Row():
            render_btn = gr.Button("Render", variant="primary", elem_id="t2i-render")
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="t2i-cancel", scale=0, min_width=100)
        render_status = gr.Markdown(elem_id="t2i-render-status")
        rendered_state = gr.State(None)
        with gr.Row():
            sort_by = gr.Dropdown(list(results_mod.SORT_KEYS), value="candidate order", label="Sort by",
                                  elem_id="t2i-sort", scale=1)
            download = gr.File(label="Download the round (ZIP: images, prompts, scores, provenance)",
                               elem_id="t2i-download", scale=2)
        grid = gr.Gallery(label="Original first, then each candidate (same seed)", columns=5, height="auto",
                          object_fit="contain", elem_id="t2i-grid")
        chart = gr.Plot(label="Every metric per image", elem_id="t2i-chart")
        with gr.Accordion("Full per-metric table", open=False):
            table = gr.Dataframe(interactive=False, wrap=True, elem_id="t2i-table")
    with gr.Row():
        pick = gr.Dropdown(choices=[], label="Pick a candidate", elem_id="t2i-pick")
        further_btn = gr.Button("Refine further from the pick", elem_id="t2i-further")
    with gr.Accordion("History (tree of rounds)", open=True):
        tree = gr.Markdown(elem_id="t2i-tree")
        with gr.Row():
            round_choice = gr.Dropdown(choices=[], label="Round", elem_id="t2i-round")
            back_btn = gr.Button("Go back to this round")

    rewriter_inputs = [kind, base_url, model_name, adapter, system_template, n, diversity, few_shot, temperature, seed,
                       facets]

    def results_outputs(results: flows.ResultsView | None) -> list[Any]:
        if results is None:  # a new round: the last render's results no longer apply
            return ["", None, None, None, pd.DataFrame(), "candidate order"]
        return [results.summary, results.zip_path, results.grid, results.chart,
                pd.DataFrame(results.rows, columns=results.columns), results.sort_by]

    def view_outputs(new_state: dict, view: flows.T2IView) -> list[Any]:
        out: list[Any] = [new_state, view.status, view.tree, gr.update(choices=view.rounds, value=view.current_round),
                          gr.update(choices=view.picks, value=view.pick)]
        for i in range(MAX_CANDIDATES):
            if i < len(view.slots):
                s = view.slots[i]
                out += [gr.update(visible=True), s.text, s.diff, s.caption]
            else:
                out += [gr.update(visible=False), "", [], ""]
        return out + results_outputs(view.results)

    def do_refine(profile_name, prompt_text, *rw):
        return view_outputs(*flows.refine(ctx, profile_name, prompt_text, RewriterInputs.of(rw)))

    def do_further(profile_name, state_value, pick_value, *values):
        edited, rw = values[:MAX_CANDIDATES], values[MAX_CANDIDATES:]
        return view_outputs(*flows.refine_further(ctx, profile_name, state_value, pick_value, edited,
                                                  RewriterInputs.of(rw)))

    def do_back(profile_name, state_value, round_value):
        return view_outputs(*flows.go_back(ctx, profile_name, state_value, round_value))

    def make_regen(slot: int):
        def do_regen(profile_name, state_value, *values):
            edited, rw = values[:MAX_CANDIDATES], values[MAX_CANDIDATES:]
            new_state, view, message = flows.regenerate(ctx, profile_name, state_value, slot, edited,
                                                        RewriterInputs.of(rw))
            return [new_state, view.text, view.diff, view.caption, message]

        return do_regen

    def do_render(profile_name, state_value, *values, job=None):
        edited, render_values = values[:MAX_CANDIDATES], values[MAX_CANDIDATES:]
        new_state, rendered, view = flows.render(ctx, profile_name, state_value, edited,
                                                 RenderInputs.of(render_values), job=job)
        return [new_state, rendered, *results_outputs(view.results)]

    def do_sort(state_value, rendered, key):
        return results_outputs(flows.sort_results(state_value, rendered, key))[1:-1]

    def on_profile(profile_name):
        d = flows.render_defaults(ctx, profile_name)
        return d.steps, d.size, d.guidance

    def on_edit(profile_name, state_value, text_value):
        view = flows.edit(ctx, profile_name, state_value, text_value)
        return view.diff, view.flag

    slot_outputs = [c for s in slots for c in (s["group"], s["text"], s["diff"], s["flag"])]
    head_outputs = [state, status, tree, round_choice, pick]
    results_components = [render_status, download, grid, chart, table, sort_by]
    # One job at a time: while one runs, the buttons that would start conflicting work are disabled.
    buttons = [refine_btn, further_btn, back_btn, render_btn, *[s["regen"] for s in slots]]
    gradio_action(ctx, refine_btn.click, "t2i_refine", do_refine, [session.profile, prompt, *rewriter_inputs],
                  head_outputs + slot_outputs + results_components, tab=TAB, busy=buttons)
    gradio_action(ctx, further_btn.click, "t2i_refine_further", do_further,
                  [session.profile, state, pick, *texts, *rewriter_inputs],
                  head_outputs + slot_outputs + results_components, tab=TAB, busy=buttons)
    gradio_action(ctx, back_btn.click, "t2i_go_back", do_back, [session.profile, state, round_choice],
                  head_outputs + slot_outputs + results_components, tab=TAB, busy=buttons)
    gradio_action(ctx, render_btn.click, "t2i_render", do_render,
                  [session.profile, state, *texts, steps, size, image_seed, guidance, *weight_inputs],
                  [state, rendered_state, *results_components], tab=TAB, job=True, busy=buttons)
    gradio_cancel(ctx, cancel_btn.click, outputs=render_status)
    gradio_action(ctx, sort_by.input, "t2i_sort", do_sort, [state, rendered_state, sort_by],
                  [download, grid, chart, table], tab=TAB)
    gradio_action(ctx, session.profile.change, "t2i_render_defaults", on_profile, [session.profile],
                  [steps, size, guidance], tab=TAB, api_name=False)
    for i, s in enumerate(slots):
        gradio_action(ctx, s["regen"].click, f"t2i_regenerate_{i + 1}", make_regen(i),
                      [session.profile, state, *texts, *rewriter_inputs],
                      [state, s["text"], s["diff"], s["flag"], status], tab=TAB, busy=buttons)
        gradio_action(ctx, s["text"].input, f"t2i_edit_{i + 1}", on_edit, [session.profile, state, s["text"]],
                      [s["diff"], s["flag"]], tab=TAB, api_name=False)


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, "t2i")

    ss = st.session_state
    profile_name = ss.get("profile", ctx.default_profile)
    # Values of widgets that already exist can only be set before they are drawn: apply pending ones first.
    for i, text in ss.pop("t2i_pending", {}).items():
        ss[f"t2i_cand_{i}"] = text

    def accept(new_state: dict, view: flows.T2IView) -> None:
        ss["t2i_state"], ss["t2i_view"] = new_state, view
        ss["t2i_pending"] = {i: s.text for i, s in enumerate(view.slots)}
        st.rerun()

    st.caption("Type a coarse prompt, get fine-grained candidates; edit, diff and regenerate them before rendering. "
               "Rendering is a separate click. Pick one and refine further; the history tree lets you go back.")
    prompt = st.text_area("Coarse prompt", key="t2i_prompt", placeholder="a cat on a sofa")
    cols = st.columns(3)
    n = cols[0].slider("Candidates (N)", 1, MAX_CANDIDATES, 4, key="t2i_n")
    diversity = cols[1].slider("Diversity (MMR)", 0.0, 1.0, 0.5, 0.05, key="t2i_diversity")
    seed = cols[2].number_input("Rewriter seed", 0, 2**31, 0, key="t2i_seed")
    with st.expander("Rewriter"):
        kind = st.radio("Rewriter", list(REWRITER_LABELS.values()), key="t2i_kind")
        base_url = st.text_input("Server URL (OpenAI-compatible)", key="t2i_base_url")
        model_name = st.text_input("Model name on that server", key="t2i_model")
        adapter = st.text_input("LoRA adapter folder (profile model only)", key="t2i_adapter")
        template = st.text_area("System template", DEFAULT_SYSTEM_TEMPLATE, key="t2i_template")
        few_shot = st.slider("Few-shot examples", 0, 8, 3, key="t2i_few_shot")
        temperature = st.slider("Temperature", 0.1, 2.0, 0.9, 0.05, key="t2i_temperature")
    labels = dict(flows.facet_choices())
    facets = st.multiselect("Facets: each candidate emphasises one (none: undirected rewrites)", list(labels),
                            default=[lb for lb, name in labels.items() if name in RefineSettings().facets],
                            key="t2i_facets")
    rewriter_inputs = RewriterInputs(kind, base_url, model_name, adapter, template, n, diversity, few_shot,
                                     temperature, seed, [labels[lb] for lb in facets])

    if st.button("Refine", key="t2i_refine", type="primary"):
        with st.spinner("Rewriting..."):
            out = streamlit_action(ctx, "t2i_refine", flows.refine, ctx, profile_name, prompt, rewriter_inputs,
                                   tab=TAB)
        if out is not None:
            accept(*out)

    state, view = ss.get("t2i_state"), ss.get("t2i_view")
    if not state or view is None:
        return
    st.markdown(view.status)
    edited = [ss.get(f"t2i_cand_{i}", s.text) for i, s in enumerate(view.slots)]
    for i, slot in enumerate(view.slots):
        st.subheader(slot.title(i))
        text = st.text_area(f"Candidate {i + 1}", key=f"t2i_cand_{i}", label_visibility="collapsed")
        live = flows.edit(ctx, profile_name, state, text)
        st.markdown("Diff: " + live.diff_markdown)
        st.caption(live.flag)
        if st.button(f"Regenerate {i + 1}", key=f"t2i_regen_{i}"):
            out = streamlit_action(ctx, f"t2i_regenerate_{i + 1}", flows.regenerate, ctx, profile_name, state, i,
                                   edited, rewriter_inputs, tab=TAB)
            if out is not None:
                new_state, new_slot, message = out
                view.slots[i] = new_slot
                ss["t2i_state"], ss["t2i_view"] = new_state, view
                ss["t2i_pending"] = {i: new_slot.text}
                st.toast(message)
                st.rerun()

    defaults = flows.render_defaults(ctx, profile_name)
    with st.expander("Render settings and weights"):
        rc = st.columns(4)
        steps = rc[0].slider("Steps", 1, 150, int(defaults.steps), key="t2i_steps")
        size = rc[1].select_slider("Size", options=list(range(64, 1025, 64)), value=int(defaults.size), key="t2i_size")
        image_seed = rc[2].number_input("Image seed", 0, 2**31, 0, key="t2i_image_seed")
        guidance = rc[3].slider("Guidance", 0.0, 20.0, float(defaults.guidance), 0.5, key="t2i_guidance")
        weights = {m: st.slider(f"weight: {m}", 0.0, 10.0, DEFAULT_WEIGHTS[m], 0.25, key=f"t2i_w_{m}", help=METRICS[m])
                   for m in METRICS}
    st.caption("While a render runs, a click anywhere stops it at the next denoising step; finished images are kept.")
    if st.button("Render", key="t2i_render", type="primary"):
        out = streamlit_action(ctx, "t2i_render", flows.render, ctx, profile_name, state, edited,
                               RenderInputs(steps, size, image_seed, guidance, weights), tab=TAB, job=True)
        if out is not None:
            new_state, rendered, new_view = out
            new_view.status = view.status
            ss["t2i_rendered"] = rendered
            accept(new_state, new_view)
    results = view.results
    if results is not None:
        st.markdown(results.summary)
        sort_by = st.selectbox("Sort by", list(results_mod.SORT_KEYS), key="t2i_sort")
        if sort_by != results.sort_by:
            resorted = streamlit_action(ctx, "t2i_sort", flows.sort_results, state, ss.get("t2i_rendered"), sort_by,
                                        tab=TAB)
            if resorted is not None:
                view.results = results = resorted
        cols = st.columns(min(5, len(results.grid)))
        for k, (image, caption) in enumerate(results.grid):
            cols[k % len(cols)].image(image, caption=caption)
        st.plotly_chart(results.chart, key="t2i_chart")
        with st.expander("Full per-metric table"):
            import pandas as pd

            st.dataframe(pd.DataFrame(results.rows, columns=results.columns), hide_index=True)
        with open(results.zip_path, "rb") as fh:
            st.download_button("Download the round (ZIP)", fh.read(), file_name="t2i_round.zip",
                               mime="application/zip", key="t2i_download")

    pc = st.columns(2)
    pick = pc[0].selectbox("Pick a candidate", [p for _, p in view.picks], key="t2i_pick")
    if pc[1].button("Refine further from the pick", key="t2i_further"):
        out = streamlit_action(ctx, "t2i_refine_further", flows.refine_further, ctx, profile_name, state, pick, edited,
                               rewriter_inputs, tab=TAB)
        if out is not None:
            accept(*out)
    st.markdown("**History (tree of rounds)**")
    st.markdown(view.tree)
    bc = st.columns(2)
    target = bc[0].selectbox("Round", [rid for _, rid in view.rounds], index=view.current_round, key="t2i_round")
    if bc[1].button("Go back to this round", key="t2i_back"):
        out = streamlit_action(ctx, "t2i_go_back", flows.go_back, ctx, profile_name, state, target, tab=TAB)
        if out is not None:
            accept(*out)
