"""Behaviour-shift tab (Wu et al., NAACL'24, "From Language Modeling to Instruction Following"): one prompt,
a base LM and its instruction-tuned sibling side by side and as a difference — attribution (gradient x input,
integrated gradients, feature ablation), importance density, instruction share, position view, attention on
the instruction per layer x head with a head view, and feed-forward concepts."""

from __future__ import annotations

from typing import Any

from workbench.shift.limits import LIMITS, METHOD_LABELS, METHODS, ShiftSettings

TITLE = "Behaviour shift"
ORDER = 30

EXAMPLE = "List three animals that live on a farm."
PARTS = ("attribution", "attention", "ffn")
INTRO = (
    "Compare a **base** language model with its **instruction-tuned** sibling (two models of one tokenizer, or one "
    "model with a LoRA adapter switched off and on) on one prompt. The instruction span comes from the chat "
    "template (the user message), or mark part of the prompt with `[[...]]`. Both models answer greedily with the "
    f"same number of tokens. Limits: prompt ≤ {LIMITS.max_prompt_tokens} tokens after the template, answer ≤ "
    f"{LIMITS.max_new_tokens} tokens, integrated-gradients steps ≤ {LIMITS.max_ig_steps}; attribution costs one "
    "pass per output token and method (about a minute for the offline Gemma pair with 8 tokens)."
)


def parse_range(text: str, n: int, name: str) -> tuple[int, int]:
    """'all', 'a-b' or 'a' -> (from, to) inclusive, checked against 0..n-1."""
    text = (text or "").strip().lower()
    if text in ("", "all"):
        return 0, n - 1
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise ValueError(f"{name} must be 'all', a number or a range like 2-5 between 0 and {n - 1}, got {text!r}")
    if not 0 <= a <= b <= n - 1:
        raise ValueError(f"{name} must lie between 0 and {n - 1} (from <= to), got {text!r}")
    return a, b


def run_analysis(ctx, profile_name: str, prompt: str, system: str, use_template: bool, max_new_tokens: float,
                 ig_steps: float, methods: list[str], parts: list[str]):
    from workbench.shift.analysis import analyse_pair

    profile = ctx.profile(profile_name)
    labels = {v: k for k, v in METHOD_LABELS.items()}
    methods = tuple(labels.get(m, m) for m in (methods or []))
    parts = tuple(parts or ())
    if not methods and "attribution" not in parts:
        methods = METHODS  # not used; keeps the settings valid when attribution is switched off
    settings = ShiftSettings(max_new_tokens=_whole(max_new_tokens, "max_new_tokens"), ig_steps=_whole(ig_steps, "ig_steps"),
                             methods=methods)
    return analyse_pair(ctx.manager, profile.spec("lm_base"), profile.spec("lm_instruct"), prompt,
                        use_chat_template=bool(use_template), system=system or "", settings=settings, parts=parts)


def _whole(value: Any, name: str) -> int:
    if value is None or float(value) != int(float(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(float(value))


def render_views(result, method_label: str, page: float, page_size: float, layers: str, heads: str,
                 hv_side: str, hv_layer: float, hv_head: float) -> dict[str, Any]:
    """Every figure and table of the tab for one set of filters (None where that part was not computed)."""
    from workbench.shift import figures as fg

    if result is None:
        raise ValueError("run the analysis first")
    out: dict[str, Any] = {"summary": fg.summary_markdown(result)}
    attrs = result.sides["base"].attributions
    if attrs:
        method = {v: k for k, v in METHOD_LABELS.items()}.get(method_label, method_label)
        if method not in attrs:
            raise ValueError(f"method must be one of {', '.join(METHOD_LABELS[m] for m in attrs)}, got {method_label!r}")
        page, page_size = _whole(page, "page"), _whole(page_size, "page size")
        for view in fg.VIEWS:
            out[f"attr_{view}"] = fg.attribution_heatmap(result, method, view, page, page_size)
        density_method = "gradient_x_input" if "gradient_x_input" in attrs else method
        out["density"] = fg.density_figure(result, density_method)
        out["share"] = fg.share_figure(result, method)
        out["position"] = fg.position_figure(result, method)
    if result.sides["base"].attention is not None:
        n_layers, n_heads = result.sides["base"].attention.shape
        lo, hi = parse_range(layers, n_layers, "layers")
        for view in fg.VIEWS:
            out[f"attn_{view}"] = fg.attention_share_heatmap(result, view, lo, hi, heads)
        out["head_view"] = fg.head_view(result, hv_side, _whole(hv_layer, "head-view layer"), _whole(hv_head, "head-view head"))
    if result.sides["base"].ffn is not None:
        lo, hi = parse_range(layers, len(result.sides["base"].ffn.layers), "layers")
        out["ffn"] = fg.ffn_rows(result, lo, hi)
    return out


VIEW_KEYS = ("summary", "attr_base", "attr_instruct", "attr_difference", "density", "share", "position",
             "attn_base", "attn_instruct", "attn_difference", "head_view", "ffn")


def build_gradio(ctx, session) -> None:
    import gradio as gr

    from workbench.shift.figures import FFN_COLUMNS

    gr.Markdown(INTRO)
    with gr.Row():
        prompt = gr.Textbox(value=EXAMPLE, label="Prompt (mark the instruction with [[...]] if you like)", lines=3,
                            scale=3, elem_id="shift-prompt")
        with gr.Column(scale=1):
            system = gr.Textbox(label="System message (optional)", elem_id="shift-system")
            use_template = gr.Checkbox(value=True, label="Use the chat template", elem_id="shift-template")
    with gr.Row():
        max_new = gr.Slider(1, LIMITS.max_new_tokens, value=8, step=1, label="Answer tokens (both models)",
                            elem_id="shift-max-new")
        ig_steps = gr.Slider(2, LIMITS.max_ig_steps, value=16, step=1, label="Integrated-gradients steps",
                             elem_id="shift-ig-steps")
        methods = gr.CheckboxGroup([METHOD_LABELS[m] for m in METHODS], value=[METHOD_LABELS[m] for m in METHODS],
                                   label="Attribution methods", elem_id="shift-methods")
        parts = gr.CheckboxGroup(list(PARTS), value=list(PARTS), label="Views", elem_id="shift-parts")
    run = gr.Button("Analyse", variant="primary", elem_id="shift-run")
    state = gr.State(None)
    summary = gr.Markdown(elem_id="shift-summary")
    with gr.Row():
        method = gr.Dropdown([METHOD_LABELS[m] for m in METHODS], value=METHOD_LABELS["gradient_x_input"],
                             label="Method shown", elem_id="shift-method")
        page = gr.Number(value=1, precision=0, label="Page of output tokens", elem_id="shift-page")
        page_size = gr.Number(value=8, precision=0, label=f"Tokens per page (≤ {LIMITS.max_page_size})",
                              elem_id="shift-page-size")
        layers = gr.Textbox(value="all", label="Layers (all, 3, 2-5)", elem_id="shift-layers")
        heads = gr.Textbox(value="all", label="Heads (all, 0,2)", elem_id="shift-heads")
        update = gr.Button("Update views", elem_id="shift-update")
    with gr.Tab("Attribution"):
        attr_plots = {v: gr.Plot(label=f"Attribution — {v}") for v in ("base", "instruct", "difference")}
        density = gr.Plot(label="Importance density")
        share = gr.Plot(label="Instruction share")
        position = gr.Plot(label="By position")
    with gr.Tab("Attention"):
        attn_plots = {v: gr.Plot(label=f"Attention on instruction — {v}") for v in ("base", "instruct", "difference")}
        with gr.Row():
            hv_side = gr.Radio(["base", "instruct"], value="instruct", label="Head view model", elem_id="shift-hv-side")
            hv_layer = gr.Number(value=0, precision=0, label="Layer", elem_id="shift-hv-layer")
            hv_head = gr.Number(value=0, precision=0, label="Head", elem_id="shift-hv-head")
        head_plot = gr.Plot(label="Head view")
    with gr.Tab("Feed-forward concepts"):
        gr.Markdown("Per layer, the top principal components of the feed-forward output vectors, read as the "
                    "vocabulary tokens they point to; *layer overlap* is the Jaccard overlap of both models' tokens. "
                    "An adapter on attention projections only leaves these weights unchanged (overlap 1).")
        ffn = gr.Dataframe(headers=FFN_COLUMNS, interactive=False, wrap=True, elem_id="shift-ffn")
    outputs = [summary, attr_plots["base"], attr_plots["instruct"], attr_plots["difference"], density, share, position,
               attn_plots["base"], attn_plots["instruct"], attn_plots["difference"], head_plot, ffn]
    view_inputs = [method, page, page_size, layers, heads, hv_side, hv_layer, hv_head]

    def views(result, *filters):
        try:
            out = render_views(result, *filters)
        except ValueError as exc:
            raise gr.Error(str(exc))
        return [out.get(k) for k in VIEW_KEYS]

    def analyse(profile_name, prompt_text, system_text, template, n_tokens, steps, method_list, part_list, *filters):
        try:
            result = run_analysis(ctx, profile_name, prompt_text, system_text, template, n_tokens, steps, method_list,
                                  part_list)
        except ValueError as exc:
            raise gr.Error(str(exc))
        shown = filters[0]
        computed = [METHOD_LABELS[m] for m in result.sides["base"].attributions]
        if computed and shown not in computed:
            filters = (computed[0],) + tuple(filters[1:])
        return [result, *views(result, *filters), gr.Dropdown(choices=computed or None, value=filters[0])]

    run.click(analyse, [session.profile, prompt, system, use_template, max_new, ig_steps, methods, parts, *view_inputs],
              [state, *outputs, method], api_name="shift_analyse")
    update.click(views, [state, *view_inputs], outputs, api_name="shift_views")


def render_streamlit(ctx) -> None:
    import pandas as pd
    import streamlit as st

    from workbench.shift.figures import FFN_COLUMNS

    profile_name = st.session_state.get("profile", ctx.default_profile)
    st.caption(INTRO)
    with st.form("shift_form"):
        prompt = st.text_area("Prompt (mark the instruction with [[...]] if you like)", EXAMPLE, key="shift_prompt")
        system = st.text_input("System message (optional)", key="shift_system")
        use_template = st.checkbox("Use the chat template", value=True, key="shift_template")
        max_new = st.slider("Answer tokens (both models)", 1, LIMITS.max_new_tokens, 8, key="shift_max_new")
        ig_steps = st.slider("Integrated-gradients steps", 2, LIMITS.max_ig_steps, 16, key="shift_ig_steps")
        methods = st.multiselect("Attribution methods", [METHOD_LABELS[m] for m in METHODS],
                                 [METHOD_LABELS[m] for m in METHODS], key="shift_methods")
        parts = st.multiselect("Views", list(PARTS), list(PARTS), key="shift_parts")
        submitted = st.form_submit_button("Analyse")
    if submitted:
        try:
            with st.spinner("Both models answer, then attribution, attention and feed-forward views..."):
                st.session_state["shift_result"] = run_analysis(ctx, profile_name, prompt, system, use_template,
                                                                max_new, ig_steps, methods, parts)
        except ValueError as exc:
            st.error(str(exc))
    result = st.session_state.get("shift_result")
    if result is None:
        return
    cols = st.columns(5)
    computed = [METHOD_LABELS[m] for m in result.sides["base"].attributions] or [METHOD_LABELS["gradient_x_input"]]
    method = cols[0].selectbox("Method shown", computed, key="shift_method")
    page = cols[1].number_input("Page of output tokens", min_value=1, value=1, step=1, key="shift_page")
    page_size = cols[2].number_input(f"Tokens per page (≤ {LIMITS.max_page_size})", min_value=1, value=8, step=1,
                                     key="shift_page_size")
    layers = cols[3].text_input("Layers (all, 3, 2-5)", "all", key="shift_layers")
    heads = cols[4].text_input("Heads (all, 0,2)", "all", key="shift_heads")
    hcols = st.columns(3)
    hv_side = hcols[0].radio("Head view model", ["base", "instruct"], index=1, key="shift_hv_side")
    hv_layer = hcols[1].number_input("Head-view layer", min_value=0, value=0, step=1, key="shift_hv_layer")
    hv_head = hcols[2].number_input("Head-view head", min_value=0, value=0, step=1, key="shift_hv_head")
    try:
        out = render_views(result, method, page, page_size, layers, heads, hv_side, hv_layer, hv_head)
    except ValueError as exc:
        st.error(str(exc))
        return
    st.markdown(out["summary"])
    tab_attr, tab_attn, tab_ffn = st.tabs(["Attribution", "Attention", "Feed-forward concepts"])
    with tab_attr:
        for key in ("attr_base", "attr_instruct", "attr_difference", "density", "share", "position"):
            if out.get(key) is not None:
                st.plotly_chart(out[key], key=f"shift_{key}")
    with tab_attn:
        for key in ("attn_base", "attn_instruct", "attn_difference", "head_view"):
            if out.get(key) is not None:
                st.plotly_chart(out[key], key=f"shift_{key}")
    with tab_ffn:
        if out.get("ffn") is not None:
            st.dataframe(pd.DataFrame(out["ffn"], columns=FFN_COLUMNS), hide_index=True)
