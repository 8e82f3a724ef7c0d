"""Behaviour-shift tab (Wu et al., NAACL'24, "From Language Modeling to Instruction Following"): one prompt,
a base LM and its instruction-tuned sibling side by side and as a difference — attribution (gradient x input,
integrated gradients, feature ablation), importance density, instruction share, position view, attention on
the instruction per layer x head with a head view, and feed-forward concepts. Layout and wiring only: the
flows are in workbench.shift.flows."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples
from pages._wiring import gradio_action, gradio_cancel, streamlit_action
from workbench.shift import flows
from workbench.shift.limits import IG_BASELINE_LABELS, LIMITS, METHOD_LABELS, METHODS

TITLE = "Behaviour shift"
ORDER = 30
TAB = "shift"

INTRO = (
    "Compare a **base** language model with its **instruction-tuned** sibling (two models of one tokenizer, or one "
    "model with a LoRA adapter switched off and on) on one prompt. The instruction span comes from the chat "
    "template (the user message), or mark part of the prompt with `[[...]]`. Both models answer greedily with the "
    f"same number of tokens. Limits: prompt ≤ {LIMITS.max_prompt_tokens} tokens after the template, answer ≤ "
    f"{LIMITS.max_new_tokens} tokens, integrated-gradients steps ≤ {LIMITS.max_ig_steps}. The answers, attention "
    "and feed-forward views appear first; attribution follows with a progress bar and can be cancelled (what "
    "finished is kept). Attribution is teacher-forced over the whole answer: feature ablation costs one forward "
    "pass per prompt token (sharing the prompt prefix), gradient × input and integrated gradients one forward pass "
    "(per step) and one backward pass per answer token. On the offline Gemma pair, a 64-token prompt and 8 answer "
    "tokens, the default methods (gradient × input, feature ablation) take about 45 s of one CPU thread in all; "
    "integrated gradients adds about 32 s per model at 16 steps and four times that at its default 64 steps, which "
    "it needs: the model's probability jumps within a short stretch of the path, and the completeness error "
    "(shown beside each IG plot) about halves with each doubling of the steps."
)
METHOD_CHOICES = [METHOD_LABELS[m] for m in METHODS]
DEFAULT_METHODS = [METHOD_LABELS[m] for m in flows.DEFAULTS.methods]
METHODS_INFO = ("gradient × input and feature ablation are exact and quick; integrated gradients needs many steps on "
                "real models (64 by default, about four times their cost together) and shows its completeness error")
IG_BASELINE_INFO = ("where the integration path starts; its completeness error (shown beside each IG plot) says how "
                    "well the steps resolve the path: on Gemma-3-270M the zero embedding converges fastest")
SCALE_CHOICES = ["shared", "per model"]  # workbench.shift.figures.SCALES
SCALE_LABEL = "Colour scale, base vs instruct"
SCALE_INFO = "shared: one scale for both models, so their colours compare; the difference keeps its own"
DOWNLOAD_LABEL = "Download the analysis (ZIP: matrices, figures, settings, provenance)"
# FFN table column widths (Gradio share of the table, Streamlit size): numbers stay on one line, tokens get the room
FFN_WIDTHS = {"layer": ("6%", "small"), "component": ("9%", "small"), "variance (base)": ("10%", "small"),
              "base tokens": ("33%", "large"), "instruct tokens": ("33%", "large"), "layer overlap": ("9%", "small")}


def build_gradio(ctx, session) -> None:
    import gradio as gr

    from workbench.shift.figures import FFN_COLUMNS

    gradio_examples(ctx, session, "shift")

    gr.Markdown(INTRO)
    with gr.Row():
        prompt = gr.Textbox(value=flows.EXAMPLE, label="Prompt (mark the instruction with [[...]] if you like)",
                            lines=3, scale=3, elem_id="shift-prompt")
        with gr.Column(scale=1):
            system = gr.Textbox(label="System message (optional)", elem_id="shift-system")
            use_template = gr.Checkbox(value=True, label="Use the chat template", elem_id="shift-template")
    with gr.Row():
        max_new = gr.Slider(1, LIMITS.max_new_tokens, value=8, step=1, label="Answer tokens (both models)",
                            elem_id="shift-max-new")
        ig_steps = gr.Slider(2, LIMITS.max_ig_steps, value=flows.DEFAULTS.ig_steps, step=1, label="Integrated-gradients steps",
                             elem_id="shift-ig-steps")
        ig_baseline = gr.Dropdown(flows.IG_BASELINE_CHOICES, value=IG_BASELINE_LABELS[flows.DEFAULTS.ig_baseline],
                                  label="Integrated-gradients baseline", info=IG_BASELINE_INFO,
                                  elem_id="shift-ig-baseline")
        methods = gr.CheckboxGroup(METHOD_CHOICES, value=DEFAULT_METHODS, label="Attribution methods", info=METHODS_INFO,
                                   elem_id="shift-methods")
        parts = gr.CheckboxGroup(list(flows.PARTS), value=list(flows.PARTS), label="Views", elem_id="shift-parts")
    with gr.Row():
        run = gr.Button("Analyse", variant="primary", elem_id="shift-run")
        cancel = gr.Button("Cancel", variant="stop", elem_id="shift-cancel")
    status = gr.Markdown(elem_id="shift-status")
    state = gr.State(None)
    summary = gr.Markdown(elem_id="shift-summary")
    # enabled once an analysis has been written to a ZIP; disabled while a new one runs
    download = gr.DownloadButton(DOWNLOAD_LABEL, interactive=False, size="md", elem_id="shift-download")
    with gr.Row():
        method = gr.Dropdown(METHOD_CHOICES, value=METHOD_LABELS["gradient_x_input"], label="Method shown",
                             elem_id="shift-method")
        page = gr.Number(value=1, precision=0, label="Page of output tokens", elem_id="shift-page")
        page_size = gr.Number(value=8, precision=0, label=f"Tokens per page (≤ {LIMITS.max_page_size})",
                              elem_id="shift-page-size")
        layers = gr.Textbox(value="all", label="Layers (all, 3, 2-5)", elem_id="shift-layers")
        heads = gr.Textbox(value="all", label="Heads (all, 0,2)", elem_id="shift-heads")
        scale = gr.Radio(SCALE_CHOICES, value="shared", label=SCALE_LABEL, elem_id="shift-scale")
        update = gr.Button("Update views", elem_id="shift-update")
    with gr.Tab("Attribution"):
        attr_plots = [gr.Plot(label=f"Attribution — {v}") for v in ("base", "instruct", "difference")]
        density, share, position = (gr.Plot(label=t) for t in ("Importance density", "Instruction share",
                                                               "By position"))
    with gr.Tab("Attention"):
        attn_plots = [gr.Plot(label=f"Attention on instruction — {v}") for v in ("base", "instruct", "difference")]
        with gr.Row():
            hv_side = gr.Radio(["base", "instruct"], value="instruct", label="Head view model", elem_id="shift-hv-side")
            hv_layer = gr.Number(value=0, precision=0, label="Layer", elem_id="shift-hv-layer")
            hv_head = gr.Number(value=0, precision=0, label="Head", elem_id="shift-hv-head")
        head_plot = gr.Plot(label="Head view")
    with gr.Tab("Feed-forward concepts"):
        gr.Markdown("Per layer, the top principal components of the feed-forward output vectors, read as the "
                    "vocabulary tokens they point to; *layer overlap* is the Jaccard overlap of both models' tokens. "
                    "An adapter on attention projections only leaves these weights unchanged (overlap 1).")
        ffn = gr.Dataframe(headers=FFN_COLUMNS, interactive=False, wrap=True, elem_id="shift-ffn",
                           column_widths=[FFN_WIDTHS[c][0] for c in FFN_COLUMNS])
    outputs = [summary, *attr_plots, density, share, position, *attn_plots, head_plot, ffn]
    view_inputs = [method, page, page_size, layers, heads, hv_side, hv_layer, hv_head, scale]

    def method_menu(view):  # before attribution the menu keeps every method (the next step fills them in)
        return gr.Dropdown(choices=view.method_choices or METHOD_CHOICES, value=view.method_shown)

    def analyse(*values):
        result, view = flows.analyse(ctx, *values)
        return [result, *view.ordered(), method_menu(view)]

    def views(result, *filters):
        return flows.build_view(result, *filters).ordered()


    def attribute(profile_name, result, *filters, job=None):
        result, view = flows.attribute(ctx, profile_name, result, *filters, job=job)
        return [result, *view.ordered(), method_menu(view)]

    # two steps: the quick views show at once, then attribution runs as a job with progress and Cancel; then the
    # download is written (after a cancel too: it holds what finished)
    first = gradio_action(ctx, run.click, "shift_analyse", analyse,
                          [session.profile, prompt, system, use_template, max_new, ig_steps, methods, parts,
                           *view_inputs, ig_baseline], [state, *outputs, method], tab=TAB, busy=[download])
    second = gradio_action(ctx, first.success, "shift_attribute", attribute, [session.profile, state, *view_inputs],
                           [state, *outputs, method], tab=TAB, job=True, busy=[download])
    gradio_action(ctx, second.success, "shift_export", flows.export, [state], download, tab=TAB)
    gradio_cancel(ctx, cancel.click, api_name="shift_cancel", outputs=status)
    gradio_action(ctx, update.click, "shift_views", views, [state, *view_inputs], outputs, tab=TAB)


def render_streamlit(ctx) -> None:
    import pandas as pd
    import streamlit as st

    from workbench.shift.figures import FFN_COLUMNS

    streamlit_examples(ctx, "shift")

    profile_name = st.session_state.get("profile", ctx.default_profile)
    st.caption(INTRO)
    with st.form("shift_form"):
        prompt = st.text_area("Prompt (mark the instruction with [[...]] if you like)", flows.EXAMPLE,
                              key="shift_prompt")
        system = st.text_input("System message (optional)", key="shift_system")
        use_template = st.checkbox("Use the chat template", value=True, key="shift_template")
        max_new = st.slider("Answer tokens (both models)", 1, LIMITS.max_new_tokens, 8, key="shift_max_new")
        ig_steps = st.slider("Integrated-gradients steps", 2, LIMITS.max_ig_steps, flows.DEFAULTS.ig_steps,
                             key="shift_ig_steps")
        ig_baseline = st.selectbox("Integrated-gradients baseline", flows.IG_BASELINE_CHOICES,
                                   index=flows.IG_BASELINE_CHOICES.index(IG_BASELINE_LABELS[flows.DEFAULTS.ig_baseline]),
                                   help=IG_BASELINE_INFO, key="shift_ig_baseline")
        methods = st.multiselect("Attribution methods", METHOD_CHOICES, DEFAULT_METHODS, help=METHODS_INFO,
                                 key="shift_methods")
        parts = st.multiselect("Views", list(flows.PARTS), list(flows.PARTS), key="shift_parts")
        submitted = st.form_submit_button("Analyse")
    if submitted:
        st.session_state.pop("shift_attribute_partial", None)
        with st.spinner("Both models answer; attention and feed-forward views..."):
            result = streamlit_action(ctx, "shift_analyse", flows.run_analysis, ctx, profile_name, prompt, system,
                                      use_template, max_new, ig_steps, methods, parts, defer_attribution=True,
                                      ig_baseline=ig_baseline, tab=TAB)
        if result is not None:
            st.session_state["shift_result"] = result
            if not result.complete:
                early = st.empty()
                with early.container():  # the quick views while attribution runs
                    st.markdown(flows.build_view(result, METHOD_LABELS["gradient_x_input"], 1, 8, "all", "all",
                                                 "instruct", 0, 0).get("summary"))
                    st.button("Cancel", key="shift_cancel", help="Stops attribution at its next step; what "
                                                                 "finished is kept.")
                done = streamlit_action(ctx, "shift_attribute", flows.run_attribution, ctx, profile_name, result,
                                        tab=TAB, job=True)
                early.empty()
                if done is not None:
                    st.session_state["shift_result"] = done
    partial = st.session_state.pop("shift_attribute_partial", None)
    if partial is not None:  # a click during attribution stopped the run: keep what finished
        partial.stopped = partial.stopped or "attribution (stopped by a click on the page)"
        st.session_state["shift_result"] = partial
    result = st.session_state.get("shift_result")
    if result is None:
        return
    cols = st.columns(5)
    computed = [METHOD_LABELS[m] for m in result.methods_done] or [METHOD_LABELS["gradient_x_input"]]
    method = cols[0].selectbox("Method shown", computed, key="shift_method")
    page = cols[1].number_input("Page of output tokens", min_value=1, value=1, step=1, key="shift_page")
    page_size = cols[2].number_input(f"Tokens per page (≤ {LIMITS.max_page_size})", min_value=1, value=8, step=1,
                                     key="shift_page_size")
    layers = cols[3].text_input("Layers (all, 3, 2-5)", "all", key="shift_layers")
    heads = cols[4].text_input("Heads (all, 0,2)", "all", key="shift_heads")
    scale = st.radio(SCALE_LABEL, SCALE_CHOICES, index=0, help=SCALE_INFO, horizontal=True, key="shift_scale")
    hcols = st.columns(3)
    hv_side = hcols[0].radio("Head view model", ["base", "instruct"], index=1, key="shift_hv_side")
    hv_layer = hcols[1].number_input("Head-view layer", min_value=0, value=0, step=1, key="shift_hv_layer")
    hv_head = hcols[2].number_input("Head-view head", min_value=0, value=0, step=1, key="shift_hv_head")
    view = streamlit_action(ctx, "shift_views", flows.build_view, result, method, page, page_size, layers, heads,
                            hv_side, hv_layer, hv_head, scale, tab=TAB)
    if view is None:
        return
    st.markdown(view.get("summary"))
    version = (id(result), result.complete, result.stopped, tuple(result.methods_done))
    if st.session_state.get("shift_export", (None, None))[0] != version:  # one ZIP per state of the result
        st.session_state["shift_export"] = (version, streamlit_action(ctx, "shift_export", flows.export, result,
                                                                      tab=TAB))
    path = st.session_state["shift_export"][1]
    if path is not None:
        with open(path, "rb") as fh:
            st.download_button(DOWNLOAD_LABEL, fh.read(), file_name=path.rsplit("/", 1)[-1],
                               mime="application/zip", key="shift_download")
    tab_attr, tab_attn, tab_ffn = st.tabs(["Attribution", "Attention", "Feed-forward concepts"])
    with tab_attr:
        for key in ("attr_base", "attr_instruct", "attr_difference", "density", "share", "position"):
            if view.get(key) is not None:
                st.plotly_chart(view.get(key), key=f"shift_{key}")
    with tab_attn:
        for key in ("attn_base", "attn_instruct", "attn_difference", "head_view"):
            if view.get(key) is not None:
                st.plotly_chart(view.get(key), key=f"shift_{key}")
    with tab_ffn:
        if view.get("ffn") is not None:
            config = {c: (st.column_config.TextColumn if "tokens" in c else st.column_config.NumberColumn)(
                c, width=FFN_WIDTHS[c][1]) for c in FFN_COLUMNS}
            st.dataframe(pd.DataFrame(view.get("ffn"), columns=FFN_COLUMNS), hide_index=True, column_config=config)
