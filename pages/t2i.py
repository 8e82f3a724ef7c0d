"""Text→image prompt refinement tab (UF-FGTG): a coarse prompt becomes N fine-grained candidates, shown
editable with a word diff and a token-limit flag before any render; rendering is a separate click, each image
beside the original prompt's image from the same seed, each with a per-metric score panel; pick one and refine
further, with the tree of rounds visible and navigable. Layout only: the inputs are declared in
workbench.t2i.forms, the actions in workbench.t2i.actions, the flows in workbench.t2i.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._forms import gradio_field, gradio_fields, streamlit_field, streamlit_fields
from pages._wiring import gradio_bind, gradio_cancel, gradio_view, streamlit_run, streamlit_view
from workbench.t2i import actions as A
from workbench.forms import widget, widgets
from workbench.t2i import flows
from workbench.t2i.forms import MAX_CANDIDATES, MetricWeights, RenderInputs, RewriterInputs, T2IPage
from workbench.text import escape_markdown

TITLE = "T2I prompt refinement"
ORDER = 10
TAB = "t2i"
INTRO = ("Type a coarse prompt and get up to eight fine-grained rewrites that fit the image model's text window. "
         "Edit them, compare the word diff, regenerate any one (↻), then **Render** (the expensive step, with "
         "progress and Cancel): the grid shows the original prompt's image first, then each candidate from the same "
         "seed, with one chart of every metric and the full table a click away; sort by any metric and download the "
         "round as a ZIP. Pick one and **Refine further**; the tree of rounds below lets you go back and branch.")


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    import gradio as gr
    import pandas as pd

    gradio_examples(ctx, session, "t2i")
    gr.Markdown(INTRO)
    rw: dict[str, Any] = {}
    c: dict[Any, Any] = {"profile": session.profile, "state": gr.State(None), "rendered": gr.State(None),
                         RewriterInputs: rw}
    with gr.Row():
        c["prompt"] = gradio_field(T2IPage, "prompt", scale=3)
        with gr.Column(scale=1):
            rw.update(gradio_fields(RewriterInputs, "n", "diversity"))
        rw.update(gradio_fields(RewriterInputs, "facets"))
    with gr.Accordion("Rewriter", open=False):
        rw["kind"] = gradio_field(RewriterInputs, "kind")
        with gr.Row():
            rw.update(gradio_fields(RewriterInputs, "base_url", "model", "adapter"))
        rw["system_template"] = gradio_field(RewriterInputs, "system_template")
        with gr.Row():
            rw.update(gradio_fields(RewriterInputs, "few_shot", "temperature", "seed"))
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
    c["edited"] = [s["text"] for s in slots]

    profile_defaults = vars(flows.render_defaults(ctx, ctx.default_profile))  # the starting profile's settings
    with gr.Accordion("Render and scores", open=True):
        with gr.Row():
            ri = c[RenderInputs] = gradio_fields(RenderInputs, "steps", "size", "seed", "guidance",
                                                 values=profile_defaults)
        with gr.Accordion("Metric weights (for the total shown beside the metrics)", open=False):
            with gr.Row():  # a weight only for the metrics the profile scores (flows.weight_metrics, asked when
                # the page loads: at build time it would import the scorer's backend module into the app's start-up)
                weight_sliders = {m: gradio_field(MetricWeights, m, visible=m in flows.ALWAYS_SCORED)
                                  for m in widgets(MetricWeights)}
                ri.update(weight_sliders)
        with gr.Row():
            render_btn = gr.Button("Render", variant="primary", elem_id="t2i-render")
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="t2i-cancel", scale=0, min_width=100)
        render_status = gr.Markdown(elem_id="t2i-render-status")
        with gr.Row():
            c["sort_by"] = gradio_field(T2IPage, "sort_by", scale=1)
            download = gr.File(label="Download the round (ZIP: images, prompts, scores, provenance)",
                               elem_id="t2i-download", scale=2)
        # "fit-content", not "auto": Gradio 6 gives an "auto" gallery a fixed 450 px box, mostly empty
        grid = gr.Gallery(label="Original first, then each candidate (same seed)", columns=5, height="fit-content",
                          object_fit="contain", elem_id="t2i-grid", visible=False)  # shown once there are images
        chart = gr.Plot(label="Every metric per image", elem_id="t2i-chart")
        with gr.Accordion("Full per-metric table", open=False):
            table = gr.Dataframe(interactive=False, wrap=True, elem_id="t2i-table")
    with gr.Row():
        c["pick"] = gradio_field(T2IPage, "pick")
        further_btn = gr.Button("Refine further from the pick", elem_id="t2i-further")
    with gr.Accordion("History (tree of rounds)", open=True):
        tree = gr.Markdown(elem_id="t2i-tree")
        with gr.Row():
            c["round"] = gradio_field(T2IPage, "round")
            back_btn = gr.Button("Go back to this round")

    def results_outputs(results: flows.ResultsView | None) -> list[Any]:
        if results is None:  # a new round: the last render's results no longer apply
            return ["", None, None, None, pd.DataFrame(), "candidate order"]
        return [results.summary, results.zip_path, results.grid, results.chart,
                pd.DataFrame(results.rows, columns=results.columns), results.sort_by]

    def show_round(out: tuple) -> list[Any]:
        new_state, view = out
        shown: list[Any] = [new_state, view.status, view.tree, gr.update(choices=view.rounds, value=view.current_round),
                            gr.update(choices=view.picks, value=view.pick)]
        for i in range(MAX_CANDIDATES):
            s = view.slots[i] if i < len(view.slots) else None
            shown += [gr.update(visible=True), s.text, s.diff, s.caption] if s else [gr.update(visible=False), "", [], ""]
        return shown + results_outputs(view.results)

    slot_outputs = [x for s in slots for x in (s["group"], s["text"], s["diff"], s["flag"])]
    results_components = [render_status, download, grid, chart, table, c["sort_by"]]
    round_outputs = [c["state"], status, tree, c["round"], c["pick"], *slot_outputs, *results_components]
    # One job at a time: while one runs, the buttons that would start conflicting work are disabled.
    busy = dict(tab=TAB, busy=[refine_btn, further_btn, back_btn, render_btn, *[s["regen"] for s in slots]])
    # the grid shows only while there are images (an empty gallery is a large blank box)
    show_grid = dict(inputs=None, outputs=grid, queue=False, api_name=False)
    for action, button in ((A.REFINE, refine_btn), (A.REFINE_FURTHER, further_btn), (A.GO_BACK, back_btn)):
        gradio_bind(ctx, action, button.click, c, round_outputs, show_round, **busy).success(
            lambda: gr.update(visible=False), **show_grid)
    gradio_bind(ctx, A.RENDER, render_btn.click, c, [c["state"], c["rendered"], *results_components],
                lambda out: [out[0], out[1], *results_outputs(out[2].results)], **busy).success(
        lambda: gr.update(visible=True), **show_grid)
    gradio_cancel(ctx, cancel_btn.click, outputs=render_status)
    gradio_bind(ctx, A.SORT, c["sort_by"].input, c, [download, grid, chart, table],
                lambda results: results_outputs(results)[1:-1], tab=TAB)
    for i, s in enumerate(slots):
        gradio_bind(ctx, A.REGENERATE[i], s["regen"].click, c, [c["state"], s["text"], s["diff"], s["flag"], status],
                    lambda out: [out[0], out[1].text, out[1].diff, out[1].caption, out[2]], **busy)
        # typing in a candidate redraws its diff and flag: a view, not an action (no event per keystroke)
        gradio_view(s["text"].input, lambda p, st_, t: (lambda v: (v.diff, v.flag))(flows.edit(ctx, p, st_, t)),
                    [session.profile, c["state"], s["text"]], [s["diff"], s["flag"]])

    def on_profile(profile_name):
        d = flows.render_defaults(ctx, profile_name)
        scored = flows.weight_metrics(ctx, profile_name)
        return (d.steps, d.size, d.guidance, *[gr.update(visible=m in scored) for m in weight_sliders])

    for event in (session.profile.change, session.demo.load):
        gradio_view(event, on_profile, [session.profile],
                    [ri["steps"], ri["size"], ri["guidance"], *weight_sliders.values()])


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, "t2i")
    ss = st.session_state
    profile_name = ss.get("profile", ctx.default_profile)
    # Values of widgets that already exist can only be set before they are drawn: apply pending ones first.
    for i, text in ss.pop("t2i_pending", {}).items():
        ss[f"t2i_cand_{i}"] = text
    defaults = flows.render_defaults(ctx, profile_name)
    if ss.get("t2i_defaults_for") != profile_name:  # the profile's render settings, as Gradio's profile change does
        ss["t2i_defaults_for"] = profile_name
        ss.update({f"t2i_img_{n}": getattr(defaults, n) for n in ("steps", "size", "guidance")})

    def accept(out: Any) -> None:
        if out is not None:
            new_state, view = out
            ss["t2i_state"], ss["t2i_view"] = new_state, view
            ss["t2i_pending"] = {i: s.text for i, s in enumerate(view.slots)}
            st.rerun()

    st.caption(INTRO)
    v: dict[Any, Any] = {"profile": profile_name, "state": ss.get("t2i_state"), "rendered": ss.get("t2i_rendered")}
    v["prompt"] = streamlit_field(T2IPage, "prompt", TAB)
    rw = v[RewriterInputs] = streamlit_fields(RewriterInputs, TAB, ("n", "diversity", "seed"), columns=3)
    with st.expander("Rewriter"):
        rw.update(streamlit_fields(RewriterInputs, TAB, ("kind", "base_url", "model", "adapter", "system_template",
                                                         "few_shot", "temperature")))
    rw.update(streamlit_fields(RewriterInputs, TAB, ("facets",)))
    if st.button("Refine", key="t2i_refine", type="primary"):
        with st.spinner("Rewriting..."):
            accept(streamlit_run(ctx, A.REFINE, v, tab=TAB))

    state, view = v["state"], ss.get("t2i_view")
    if not state or view is None:
        return
    st.markdown(view.status)
    # every slot, the hidden ones empty, as Gradio's eight boxes give them (one recorded input in both)
    v["edited"] = [ss.get(f"t2i_cand_{i}", s.text) for i, s in enumerate(view.slots)]
    v["edited"] += [""] * (MAX_CANDIDATES - len(v["edited"]))
    for i, slot in enumerate(view.slots):
        st.subheader(slot.title(i))
        text = st.text_area(f"Candidate {i + 1}", key=f"t2i_cand_{i}", label_visibility="collapsed")
        live = streamlit_view(flows.edit, ctx, profile_name, state, text)
        if live is not None:
            st.markdown("Diff: " + live.diff_markdown)
            st.caption(live.caption)
        if st.button(f"Regenerate {i + 1}", key=f"t2i_regen_{i}"):
            out = streamlit_run(ctx, A.REGENERATE[i], v, tab=TAB)
            if out is not None:
                new_state, new_slot, message = out
                view.slots[i] = new_slot
                ss["t2i_state"], ss["t2i_view"], ss["t2i_pending"] = new_state, view, {i: new_slot.text}
                st.toast(message)
                st.rerun()

    with st.expander("Render settings and weights"):
        ri = v[RenderInputs] = streamlit_fields(RenderInputs, f"{TAB}_img", ("steps", "size", "seed", "guidance"),
                                                columns=4)
        scored = flows.weight_metrics(ctx, profile_name)  # a weight only for the metrics the profile scores
        ri.update({m: w for m, (_, w) in widgets(MetricWeights).items()})
        if scored:
            ri.update(streamlit_fields(MetricWeights, f"{TAB}_w", scored))
    st.caption("While a render runs, a click anywhere stops it at the next denoising step; finished images are kept.")
    if st.button("Render", key="t2i_render", type="primary"):
        out = streamlit_run(ctx, A.RENDER, v, tab=TAB)
        if out is not None:
            new_state, rendered, new_view = out
            new_view.status = view.status
            ss["t2i_rendered"] = rendered
            accept((new_state, new_view))
    results = view.results
    if results is not None:
        st.markdown(results.summary)
        v["sort_by"] = streamlit_field(T2IPage, "sort_by", TAB)
        if v["sort_by"] != results.sort_by:  # the user picked another order: the same action as Gradio's menu
            resorted = streamlit_run(ctx, A.SORT, v, tab=TAB)
            if resorted is not None:
                view.results = results = resorted
        cols = st.columns(5)
        for k, (image, caption) in enumerate(results.grid):  # Streamlit draws a caption as Markdown: keep it text
            cols[k % 5].image(image, caption=escape_markdown(caption))
        st.plotly_chart(results.chart, key="t2i_chart")
        with st.expander("Full per-metric table"):
            import pandas as pd

            st.dataframe(pd.DataFrame(results.rows, columns=results.columns), hide_index=True)
        with open(results.zip_path, "rb") as fh:
            st.download_button("Download the round (ZIP)", fh.read(), file_name="t2i_round.zip",
                               mime="application/zip", key="t2i_download")

    pc = st.columns(2)
    v["pick"] = pc[0].selectbox(widget(T2IPage, "pick").label, [p for _, p in view.picks], key="t2i_pick",
                                format_func=dict((p, label) for label, p in view.picks).get)
    if pc[1].button("Refine further from the pick", key="t2i_further"):
        accept(streamlit_run(ctx, A.REFINE_FURTHER, v, tab=TAB))
    st.markdown("**History (tree of rounds)**")
    st.markdown(view.tree)
    bc = st.columns(2)
    v["round"] = bc[0].selectbox(widget(T2IPage, "round").label, [rid for _, rid in view.rounds], index=view.current_round, key="t2i_round",
                                 format_func=dict((rid, label) for label, rid in view.rounds).get)
    if bc[1].button("Go back to this round", key="t2i_back"):
        accept(streamlit_run(ctx, A.GO_BACK, v, tab=TAB))
