"""The "Cached examples" panel every tab puts at its top (widgets only; the content is workbench.examples).
It opens by itself when the GPU is unavailable (ZeroGPU quota used up, CPU hardware); picking an example shows
its precomputed results and how they were made."""

from __future__ import annotations

from typing import Any

from pages._wiring import gradio_action, streamlit_action
from workbench import examples as ex
from workbench.text import escape_markdown


def gradio_examples(ctx: Any, session: Any, tab: str) -> None:
    import gradio as gr

    start = ex.panel(tab)
    with gr.Accordion("Cached examples", open=start.open, elem_id=f"{tab}-examples") as accordion:
        note = gr.Markdown(start.note, elem_id=f"{tab}-examples-note")
        choice = gr.Dropdown(choices=start.titles, value=None, label="Example", elem_id=f"{tab}-example-choice")
        body = gr.Markdown(elem_id=f"{tab}-example-body")
        gallery = gr.Gallery(label="Example images", columns=5, height="fit-content", visible=False,
                             elem_id=f"{tab}-example-images")

    def on_load():  # each visit: open the panel if the GPU became unavailable since start-up
        view = ex.panel(tab)
        return gr.Accordion(open=view.open), view.note

    def on_pick(title):
        view = ex.show_example(tab, title)
        return view.markdown, gr.Gallery(value=view.images or None, visible=bool(view.images))

    session.demo.load(on_load, None, [accordion, note], api_name=False)  # page view, not a user action
    gradio_action(ctx, choice.change, f"{tab}_example", on_pick, [choice], [body, gallery], tab=tab)


def streamlit_examples(ctx: Any, tab: str) -> None:
    import streamlit as st

    view = ex.panel(tab)
    with st.expander("Cached examples", expanded=view.open):
        st.markdown(view.note)
        title = st.selectbox("Example", [""] + view.titles, key=f"{tab}-example-choice")
        if title:
            shown = streamlit_action(ctx, f"{tab}_example", ex.show_example, tab, title, tab=tab)
            if shown is not None:
                st.markdown(shown.markdown)
                if shown.images:
                    st.image([i for i, _ in shown.images], caption=[escape_markdown(c) for _, c in shown.images],
                             width=160)
