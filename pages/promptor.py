"""Promptor tab (arXiv 2310.08101): a chat in which the Promptor agent interviews a designer about a text-entry
feature, drafts a prompt template, tests it on the designer's examples, compares drafts blind and refines it into
a final template with placeholders. A side panel shows the stage, the structured fields (editable) and the current
draft. Layout only: inputs and actions are declared in workbench.promptor.forms, the flows are in
workbench.promptor.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._forms import gradio_field, gradio_fields, streamlit_field, streamlit_fields
from pages._wiring import gradio_action, gradio_bind, streamlit_run
from workbench.forms import widget, widgets
from workbench.promptor import forms as F
from workbench.promptor.forms import BackendInputs, LearnedFields, PromptorPage, blind_markdown, stage_markdown

TITLE = "Promptor (prompt generation chat)"
ORDER = 30
TAB = "promptor"


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    import gradio as gr
    from gradio.context import Context

    gradio_examples(ctx, session, "promptor")
    svc = F.service(ctx)
    tab = getattr(session, "tab", None) or (Context.block if isinstance(Context.block, gr.Tab) else None)
    gr.Markdown(F.INTRO)
    saved_code = gr.BrowserState("", storage_key="promptor_resume_code")  # only the code reaches the browser
    be: dict[str, Any] = {}
    c: dict[Any, Any] = {"state": gr.State(None), "profile": session.profile, BackendInputs: be}
    buttons: dict[str, Any] = {}
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Promptor", height=520, elem_id="promptor-chat", sanitize_html=True)
            with gr.Row():
                c["message"] = gradio_field(PromptorPage, "message", scale=5)
                with gr.Column(scale=1, min_width=120):
                    send = gr.Button("Send", variant="primary", elem_id="promptor-send")
                    retry = gr.Button("Retry", elem_id="promptor-retry")
            with gr.Accordion("Chat backends and parent prompt", open=False):
                for names in (("agent_kind", "agent_url", "agent_model"), ("target_kind", "target_url", "target_model"),
                              ("polish", "temperature", "seed")):
                    with gr.Row():
                        be.update(gradio_fields(BackendInputs, *names))
                c["parent_prompt"] = gradio_field(PromptorPage, "parent_prompt")
                buttons["PARENT"] = gr.Button("Save parent prompt")
        with gr.Column(scale=2):
            stage_md = gr.Markdown(elem_id="promptor-stage")
            with gr.Accordion("What Promptor has learned (editable)", open=True):
                c[LearnedFields] = gradio_fields(LearnedFields)
                buttons["FIELDS"] = gr.Button("Save fields")
            c["draft"] = gradio_field(PromptorPage, "draft")
            buttons["DRAFT"] = gr.Button("Save draft as a new version")
            checks = gr.Markdown()
            with gr.Row():
                c["jump_to"] = gradio_field(PromptorPage, "jump_to")
                buttons["JUMP"] = gr.Button("Jump back")
            buttons["FINAL"] = gr.Button("Make the current draft final", variant="primary")
            export_btn = gr.Button("Export template (txt, json) and transcript (jsonl)")
            files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="promptor-files")
            with gr.Accordion("Sessions", open=False):
                c["code"] = gradio_field(PromptorPage, "code")
                buttons["RESUME"] = gr.Button("Resume")
                c["starter"] = gradio_field(PromptorPage, "starter")
                buttons["NEW"] = gr.Button("New session")
    with gr.Accordion("Test rounds", open=True):
        header = gr.Markdown()
        c["examples"] = gradio_field(PromptorPage, "examples")
        with gr.Row():
            buttons["EXAMPLES"] = gr.Button("Save examples")
            c["versions"] = gradio_field(PromptorPage, "versions", scale=2)
            buttons["TEST_ROUND"] = gr.Button("Run test round", variant="primary", elem_id="promptor-run")
        rounds = gr.Markdown(elem_id="promptor-rounds")
    with gr.Accordion("Blinded comparison", open=True):
        with gr.Row():
            c["blind_seed"] = gradio_field(PromptorPage, "blind_seed")
            buttons["BLIND_START"] = gr.Button("Start blinded comparison of the last round")
        blind_md = gr.Markdown(elem_id="promptor-blind")
        with gr.Row():
            c.update(gradio_fields(PromptorPage, "example", "best", "worst"))
            buttons["BLIND_MARK"] = gr.Button("Record")

    view_outputs = [c["state"], saved_code, chatbot, stage_md, *c[LearnedFields].values(), c["draft"], checks, header,
                    c["examples"], rounds, blind_md, retry, c["parent_prompt"]]

    def render(result) -> list[Any]:
        st_, view = result
        return [st_, st_["code"], view.chat, stage_markdown(view), *[view.fields.get(f, "") for f in c[LearnedFields]],
                view.draft, view.draft_checks, f"Columns: `{view.examples_header}`", view.examples, view.rounds,
                blind_markdown(view), gr.update(interactive=view.can_retry), view.parent_prompt]

    def on_restore(state_value, code):
        """The conversation this browser had (its code from localStorage), else the one on screen, else new."""
        if code and not (state_value and state_value.get("code") == code):
            try:
                return svc.resume(code)
            except ValueError:  # a stale code in this browser: carry on rather than fail the page
                pass
        return svc.current(state_value) if state_value else svc.new()

    # Gradio mounts a tab's components, and reads BrowserState from localStorage, when the tab is first shown: a
    # page-load event would see no code yet and its new session's code would overwrite the saved one. So the
    # session is restored (or started) when the tab opens; on page load only when there is no tab to open.
    gradio_action(ctx, tab.select if tab is not None else session.demo.load, "promptor_restore", on_restore,
                  [c["state"], saved_code], view_outputs, input_names=["state", "code"], api_name=False, tab=TAB,
                  present=render)
    # A message sent while a reply streams waits its turn (always_last), and the box is cleared only when its own
    # reply starts, so nothing typed is lost.
    chat = dict(present=lambda r: [*render(r), gr.update()], present_first=lambda r: [*render(r), ""],
                trigger_mode="always_last", tab=TAB)
    gradio_bind(ctx, F.SEND, send.click, c, view_outputs + [c["message"]], **chat)
    gradio_bind(ctx, F.SEND, c["message"].submit, c, view_outputs + [c["message"]], api_name=False, **chat)
    gradio_bind(ctx, F.RETRY, retry.click, c, view_outputs, render, tab=TAB)
    for name, button in buttons.items():
        gradio_bind(ctx, getattr(F, name), button.click, c, view_outputs, render, tab=TAB)
    gradio_bind(ctx, F.EXPORT, export_btn.click, c, files, lambda paths: list(paths.values()), tab=TAB)


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, "promptor")
    ss = st.session_state
    svc = F.service(ctx)
    if ss.get("promptor_state") is None:
        ss["promptor_state"] = svc.new()[0]
        ss["promptor_sync"] = True
    view = svc.view(ss["promptor_state"])  # a redraw: nothing is written
    if ss.pop("promptor_sync", False):  # widget values can only be set before the widgets are drawn
        ss.update({f"promptor_field_{f}": view.fields.get(f, "") for f in widgets(LearnedFields)})
        ss.update(promptor_draft=view.draft, promptor_examples=view.examples, promptor_parent_prompt=view.parent_prompt)
    v: dict[Any, Any] = {"state": ss["promptor_state"], "profile": ss.get("profile", ctx.default_profile)}

    def keep(result) -> None:
        if result is not None:
            ss["promptor_state"], ss["promptor_sync"] = result[0], True
            ss.pop("promptor_files", None)
            st.rerun()

    def button(name: str, label: str, where: Any = st, **kw: Any) -> None:
        if where.button(label, key=f"promptor_{name.lower()}_btn", **kw):
            keep(streamlit_run(ctx, getattr(F, name), v, tab=TAB))

    st.caption(F.INTRO)
    with st.expander("Chat backends and parent prompt"):
        v[BackendInputs] = streamlit_fields(BackendInputs, TAB, columns=3)
        v["parent_prompt"] = streamlit_field(PromptorPage, "parent_prompt", TAB)
        button("PARENT", "Save parent prompt")
    left, right = st.columns([3, 2])
    with right:
        st.markdown(stage_markdown(view))
        with st.expander("What Promptor has learned (editable)", expanded=True):
            v[LearnedFields] = streamlit_fields(LearnedFields, f"{TAB}_field")
            button("FIELDS", "Save fields")
        v["draft"] = streamlit_field(PromptorPage, "draft", TAB)
        button("DRAFT", "Save draft as a new version")
        st.markdown(view.draft_checks)
        j_cols = st.columns(2)
        v["jump_to"] = streamlit_field(PromptorPage, "jump_to", TAB, j_cols[0])
        button("JUMP", "Jump back", j_cols[1])
        button("FINAL", "Make the current draft final", type="primary")
        if st.button("Export template (txt, json) and transcript (jsonl)", key="promptor_export_btn"):
            ss["promptor_files"] = streamlit_run(ctx, F.EXPORT, v, tab=TAB)
        for path in (ss.get("promptor_files") or {}).values():
            with open(path, "rb") as fh:
                st.download_button(path.rsplit("/", 1)[-1], fh.read(), path.rsplit("/", 1)[-1], key=f"dl_{path}")
        with st.expander("Sessions"):
            v["code"] = streamlit_field(PromptorPage, "code", TAB)
            button("RESUME", "Resume")
            v["starter"] = streamlit_field(PromptorPage, "starter", TAB)
            button("NEW", "New session")
    st.subheader("Test rounds")
    st.caption(f"Columns: {view.examples_header}")
    v["examples"] = streamlit_field(PromptorPage, "examples", TAB)
    r_cols = st.columns(3)
    button("EXAMPLES", "Save examples", r_cols[0])
    v["versions"] = streamlit_field(PromptorPage, "versions", TAB, r_cols[1])
    button("TEST_ROUND", "Run test round", r_cols[2], type="primary")
    st.markdown(view.rounds)
    st.subheader("Blinded comparison")
    b_cols = st.columns(2)
    v["blind_seed"] = streamlit_field(PromptorPage, "blind_seed", TAB, b_cols[0])
    button("BLIND_START", "Start blinded comparison of the last round", b_cols[1])
    st.markdown(blind_markdown(view))
    if view.blind:
        m_cols = st.columns(4)
        letters = [letter for letter, _ in view.blind[0]["options"]]
        v["example"] = streamlit_field(PromptorPage, "example", TAB, m_cols[0])
        v["best"] = streamlit_field(PromptorPage, "best", TAB, m_cols[1], choices=letters)
        v["worst"] = streamlit_field(PromptorPage, "worst", TAB, m_cols[2], choices=letters)
        button("BLIND_MARK", "Record", m_cols[3])
    with left:  # last: the chat streams with every input above already read
        for msg in view.chat:
            with st.chat_message(msg["role"]):
                st.markdown(msg["content"])
        if view.can_retry and st.button("Retry the interrupted reply", key="promptor_retry"):
            _stream(ctx, st, F.RETRY, v)
        v["message"] = st.chat_input(widget(PromptorPage, "message").label, key="promptor_message")
        if v["message"] is not None:
            _stream(ctx, st, F.SEND, v)


def _stream(ctx, st, action, values) -> None:
    """Stream a reply into the chat, then keep the new state."""
    last = None
    with st.chat_message("assistant"):
        box = st.empty()
        for last in streamlit_run(ctx, action, values, tab=TAB):
            box.markdown(last[1].chat[-1]["content"] or "…")
    if last is not None:
        st.session_state["promptor_state"], st.session_state["promptor_sync"] = last[0], True
        st.rerun()
