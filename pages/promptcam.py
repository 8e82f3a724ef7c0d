"""Prompt-CAM tab (Chowdhury et al., CVPR'25): class-specific prompts on a frozen ViT; per-head trait maps of any
class's prompt ranked by greedy head blurring, beside Grad-CAM and attention rollout. Widgets and wiring only: every
flow lives in `workbench.promptcam.flows`."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples

from functools import partial
from typing import Any

from workbench.promptcam import flows

TITLE = "Prompt-CAM"
ORDER = 40
TAB = "promptcam"


def _class_choices(ctx: Any, profile_name: str | None) -> list[str]:
    try:
        return list(flows.CLASS_CHOICES) + flows.checkpoint_classes(ctx, profile_name)
    except ValueError:
        return list(flows.CLASS_CHOICES)


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, "promptcam")

    from pages._wiring import gradio_action

    examples = flows.example_names()
    gr.Markdown(flows.INTRO)
    state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Upload an image (optional)", file_types=["image"], type="filepath",
                             elem_id="promptcam-upload")
            example = gr.Dropdown(examples, value=flows.default_example(), label="…or a shipped example",
                                  elem_id="promptcam-example")
            checkpoint = gr.Textbox(label="Checkpoint folder (empty: the profile's)", elem_id="promptcam-checkpoint")
            class_choice = gr.Dropdown(_class_choices(ctx, ctx.default_profile), value="predicted",
                                       allow_custom_value=True, elem_id="promptcam-class",
                                       label="Class to explain (predicted, true class, a name, or an index)")
            with gr.Row():
                top_k = gr.Slider(1, flows.MAX_TOP_K, value=3, step=1, label="Top-k classes", elem_id="promptcam-topk")
                top_traits = gr.Slider(1, 16, value=4, step=1, label="Top traits (heads kept)",
                                       elem_id="promptcam-traits")
            run = gr.Button("Explain", variant="primary", elem_id="promptcam-run")
        with gr.Column(scale=2):
            summary = gr.Markdown(elem_id="promptcam-summary")
            table = gr.Dataframe(headers=["rank", "class", "probability"], interactive=False, elem_id="promptcam-topk-table")
    with gr.Row():
        opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Heatmap opacity", elem_id="promptcam-opacity")
        head_rank = gr.Slider(1, 16, value=1, step=1, label="Before/after: head by rank", elem_id="promptcam-rank")
    with gr.Row():
        heads = gr.Gallery(label="Per-head maps of the class's prompt, ranked", columns=4, height="fit-content",
                           object_fit="contain", elem_id="promptcam-heads")
        before_after = gr.ImageSlider(label="Before / after (ranked head)", type="pil", elem_id="promptcam-slider")
    with gr.Row():
        traits = gr.Gallery(label="Top traits (crops round each head's peak)", columns=4, height="fit-content",
                            object_fit="contain", elem_id="promptcam-crops")
        gc_image = gr.Image(label="Grad-CAM", type="pil", elem_id="promptcam-gradcam-image")
        ro_image = gr.Image(label="Attention rollout (class-agnostic)", type="pil", elem_id="promptcam-rollout")
    with gr.Row():
        panel = gr.Dropdown(list(flows.PANELS), value=flows.PANELS[0], label="Export panel", elem_id="promptcam-panel")
        export = gr.Button("Export PNG with caption", elem_id="promptcam-export")
        exported = gr.File(label="PNG", elem_id="promptcam-file")

    def analyse(st, profile, up, ex, ckpt, cls, k, t, op):
        new_state, view = flows.analyse(ctx, st, profile, up, ex, ckpt, cls, k, t, op)
        return _outputs(new_state, view)

    def redraw(st, op, rank):
        return _outputs(st, flows.render(st, op, rank))

    def _outputs(st, view):
        return (st, view.summary, view.top_classes, view.heads, view.before_after, view.traits, view.grad_cam,
                view.rollout)

    outputs = [state, summary, table, heads, before_after, traits, gc_image, ro_image]
    gradio_action(ctx, run.click, "promptcam_analyse", analyse,
                  inputs=[state, session.profile, upload, example, checkpoint, class_choice, top_k, top_traits,
                          opacity], outputs=outputs, tab=TAB,
                  input_names=["state", "profile", "upload", "example", "checkpoint", "class", "top_k", "top_traits",
                               "opacity"])
    gradio_action(ctx, partial(gr.on, [opacity.release, head_rank.release]), "promptcam_render", redraw,
                  inputs=[state, opacity, head_rank], outputs=outputs, tab=TAB,
                  input_names=["state", "opacity", "head_rank"])
    gradio_action(ctx, export.click, "promptcam_export", flows.export_png, inputs=[state, panel, head_rank, opacity],
                  outputs=exported, tab=TAB, input_names=["state", "panel", "head_rank", "opacity"])
    session.profile.change(lambda name: gr.Dropdown(choices=_class_choices(ctx, name), value="predicted"),
                           session.profile, class_choice, api_name=False)


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, "promptcam")

    from pages._wiring import streamlit_action

    profile_name = st.session_state.get("profile", ctx.default_profile)
    st.markdown(flows.INTRO)
    examples = flows.example_names()
    with st.form("promptcam_form"):
        upload = st.file_uploader("Upload an image (optional)", key="promptcam_upload")
        default = flows.default_example()
        example = st.selectbox("…or a shipped example", examples, key="promptcam_example",
                               index=examples.index(default) if default in examples else 0)
        checkpoint = st.text_input("Checkpoint folder (empty: the profile's)", key="promptcam_checkpoint")
        class_choice = st.text_input("Class to explain (predicted, true class, a name, or an index)", "predicted",
                                     key="promptcam_class", help="Classes: " + ", ".join(_class_choices(ctx, profile_name)))
        cols = st.columns(2)
        top_k = cols[0].slider("Top-k classes", 1, flows.MAX_TOP_K, 3, key="promptcam_topk")
        top_traits = cols[1].slider("Top traits (heads kept)", 1, 16, 4, key="promptcam_traits")
        submitted = st.form_submit_button("Explain")
    cols = st.columns(2)
    opacity = cols[0].slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="promptcam_opacity")
    head_rank = cols[1].slider("Before/after: head by rank", 1, 16, 1, key="promptcam_rank")
    ss = st.session_state
    if submitted:
        data = upload.getvalue() if upload is not None else None
        result = streamlit_action(ctx, "promptcam_analyse", partial(flows.analyse, ctx), ss.get(
            "promptcam_state"), profile_name, data, example, checkpoint, class_choice, top_k, top_traits, opacity,
            tab=TAB, input_names=["state", "profile", "upload", "example", "checkpoint", "class", "top_k",
                                  "top_traits", "opacity"])
        if result is not None:
            ss["promptcam_state"], ss["promptcam_view"] = result
            ss["promptcam_drawn"] = (opacity, 1)
            ss.pop("promptcam_png", None)
    state = ss.get("promptcam_state")
    if state is None:
        return
    rank = min(head_rank, len(state["ranking"]))
    if ss.get("promptcam_drawn") != (opacity, rank):  # the user moved a slider: Gradio's release action
        view = streamlit_action(ctx, "promptcam_render", flows.render, state, opacity, rank, tab=TAB,
                                input_names=["state", "opacity", "head_rank"])
        if view is not None:
            ss["promptcam_view"], ss["promptcam_drawn"] = view, (opacity, rank)
    view = ss["promptcam_view"]
    st.markdown(view.summary)
    st.dataframe([{"rank": r, "class": c, "probability": p} for r, c, p in view.top_classes], hide_index=True)
    st.subheader("Per-head maps of the class's prompt, ranked")
    st.image([im for im, _ in view.heads], caption=[c for _, c in view.heads], width=180)
    left, right = st.columns(2)
    left.image(view.before_after[0], caption="before", width=256)
    right.image(view.before_after[1], caption="after (ranked head)", width=256)
    st.subheader("Top traits")
    st.image([im for im, _ in view.traits], caption=[c for _, c in view.traits], width=128)
    left, right = st.columns(2)
    left.image(view.grad_cam, caption=view.grad_cam_caption, width=256)
    right.image(view.rollout, caption=view.rollout_caption, width=256)
    panel = st.selectbox("Export panel", list(flows.PANELS), key="promptcam_panel")
    if st.button("Export PNG with caption", key="promptcam_export"):  # a click, as in Gradio: not every rerun
        ss["promptcam_png"] = streamlit_action(ctx, "promptcam_export", flows.export_png, state, panel, rank, opacity,
                                               tab=TAB, input_names=["state", "panel", "head_rank", "opacity"])
    path = ss.get("promptcam_png")
    if path:
        with open(path, "rb") as fh:
            st.download_button("Download PNG with caption", fh.read(), file_name=path.rsplit("/", 1)[-1],
                               mime="image/png", key="promptcam_download")
