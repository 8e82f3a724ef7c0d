"""Promptor tab (arXiv 2310.08101): a chat in which the Promptor agent interviews a designer about a text-entry
feature, drafts a prompt template, tests it on the designer's examples, compares drafts blind and refines it into
a final template with placeholders. A side panel shows the stage, the structured fields (editable) and the current
draft. Layout only, drawn by both front ends (pages/_layout.py; the chat box and its streaming are per front end):
inputs and actions are declared in workbench.promptor.forms, the flows are in workbench.promptor.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import Update, box, button, col, fields, gradio_layout, gradio_value, gradio_wire, keep, only, out
from pages._layout import row
from pages._layout import streamlit_page
from pages._wiring import gradio_action, gradio_bind, streamlit_run
from workbench.forms import widget, widgets
from workbench.promptor import forms as F
from workbench.promptor.forms import BackendInputs, LearnedFields, PromptorPage as P, blind_markdown, stage_markdown

TITLE = "Promptor (prompt generation chat)"
ORDER = 30
TAB = "promptor"
BACKEND_ROWS = (("agent_kind", "agent_url", "agent_model"), ("target_kind", "target_url", "target_model"),
                ("polish", "temperature", "seed"))

LAYOUT = [
    row(col(out("chat", "chat", "Promptor", height=520, elem_id="promptor-chat", sanitize_html=True),
            only("gradio", row(fields(P, "message", scale=5),
                               col(button("send", "Send", variant="primary", elem_id="promptor-send"),
                                   button("retry", "Retry", elem_id="promptor-retry"), scale=1, min_width=120))),
            box("Chat backends and parent prompt", *[row(fields(BackendInputs, *names)) for names in BACKEND_ROWS],
                fields(P, "parent_prompt"), button("parent_btn", "Save parent prompt"), open=False), scale=3),
        col(out("stage", "md", elem_id="promptor-stage"),
            box("What Promptor has learned (editable)", fields(LearnedFields, prefix="promptor_field"),
                button("fields_btn", "Save fields")),
            fields(P, "draft"), button("draft_btn", "Save draft as a new version"), out("checks", "md"),
            row(fields(P, "jump_to"), button("jump_btn", "Jump back")),
            button("final_btn", "Make the current draft final", variant="primary"),
            button("export_btn", "Export template (txt, json) and transcript (jsonl)"),
            out("files", "file", "Downloads", file_count="multiple", elem_id="promptor-files"),
            box("Sessions", fields(P, "code"), button("resume_btn", "Resume"), fields(P, "starter"),
                button("new_btn", "New session"), open=False), scale=2)),
    box("Test rounds", out("header", "md"), fields(P, "examples"),
        row(button("examples_btn", "Save examples"), fields(P, "versions", scale=2),
            button("test_round_btn", "Run test round", variant="primary", elem_id="promptor-run")),
        out("rounds", "md", elem_id="promptor-rounds")),
    box("Blinded comparison", row(fields(P, "blind_seed"), button("blind_start_btn", "Start blinded comparison of "
                                                                  "the last round")),
        out("blind", "md", elem_id="promptor-blind"),
        row(fields(P, "example", "best", "worst"), button("blind_mark_btn", "Record"))),
]
OUTPUTS = ["state", "saved_code", "chat", "stage", *widgets(LearnedFields), "draft", "checks", "header", "examples",
           "rounds", "blind", "retry", "parent_prompt"]
BUTTONS = ("PARENT", "FIELDS", "DRAFT", "JUMP", "FINAL", "RESUME", "NEW", "EXAMPLES", "TEST_ROUND", "BLIND_START",
           "BLIND_MARK")
ACTIONS: dict[str, Any] = {f"{n.lower()}_btn": getattr(F, n) for n in BUTTONS}


def present(result: tuple) -> dict[str, Any]:
    state, view = result
    return dict({f: view.fields.get(f, "") for f in widgets(LearnedFields)}, state=state, saved_code=state["code"],
                chat=view.chat, stage=stage_markdown(view), draft=view.draft, checks=view.draft_checks,
                header=f"Columns: `{view.examples_header}`", examples=view.examples, rounds=view.rounds,
                blind=blind_markdown(view), retry=Update(interactive=view.can_retry), parent_prompt=view.parent_prompt)


def present_files(paths: dict[str, str]) -> dict[str, Any]:
    return {"files": list(paths.values())}


def build_gradio(ctx, session) -> None:
    import gradio as gr
    from gradio.context import Context

    gradio_examples(ctx, session, TAB)
    svc = F.service(ctx)
    tab = getattr(session, "tab", None) or (Context.block if isinstance(Context.block, gr.Tab) else None)
    gr.Markdown(F.INTRO)
    c = gradio_layout(LAYOUT, {"state": gr.State(None), "profile": session.profile,
                               "saved_code": gr.BrowserState("", storage_key="promptor_resume_code")})  # only the code

    def on_restore(state_value, code):
        """The conversation this browser had (its code from localStorage), else the one on screen, else new."""
        if code and not (state_value and state_value.get("code") == code):
            try:
                return svc.resume(code)
            except ValueError:  # a stale code in this browser: carry on rather than fail the page
                pass
        return svc.current(state_value) if state_value else svc.new()

    view_outputs = [c[n] for n in OUTPUTS]
    # Gradio mounts a tab's components, and reads BrowserState from localStorage, when the tab is first shown: a
    # page-load event would see no code yet and its new session's code would overwrite the saved one. So the
    # session is restored (or started) when the tab opens; on page load only when there is no tab to open.
    def show(result: tuple) -> list[Any]:  # one presenter call per streamed chunk
        shown = present(result)
        return [gradio_value(shown[n]) for n in OUTPUTS]

    gradio_action(ctx, tab.select if tab is not None else session.demo.load, "promptor_restore", on_restore,
                  [c["state"], c["saved_code"]], view_outputs, input_names=["state", "code"], api_name=False, tab=TAB,
                  present=show)
    # A message sent while a reply streams waits its turn (always_last), and the box is cleared only when its own
    # reply starts, so nothing typed is lost.
    chat = dict(present=lambda r: [*show(r), gr.update()], present_first=lambda r: [*show(r), ""],
                trigger_mode="always_last", tab=TAB)
    gradio_bind(ctx, F.SEND, c["send"].click, c, view_outputs + [c["message"]], **chat)
    gradio_bind(ctx, F.SEND, c["message"].submit, c, view_outputs + [c["message"]], api_name=False, **chat)
    gradio_wire(ctx, c, F.RETRY, c["retry"].click, OUTPUTS, present, tab=TAB)
    for name, action in ACTIONS.items():
        gradio_wire(ctx, c, action, c[name].click, OUTPUTS, present, tab=TAB)
    gradio_wire(ctx, c, F.EXPORT, c["export_btn"].click, ["files"], present_files, tab=TAB)


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, TAB)
    st.caption(F.INTRO)
    ss = st.session_state
    if ss.get("promptor_state") is None:
        ss["promptor_state"] = F.service(ctx).new()[0]
    if "promptor_shown" not in ss:  # widget values are set from a view only after an action, never on a redraw
        keep(TAB, LAYOUT, present((ss["promptor_state"], F.service(ctx).view(ss["promptor_state"]))))
    v: dict[Any, Any] = {"state": ss["promptor_state"], "profile": ss.get("profile", ctx.default_profile)}
    result = streamlit_page(ctx, TAB, LAYOUT, {**ACTIONS, "export_btn": (F.EXPORT, present_files)}, _present_kept,
                            v)
    if result is not None:
        return
    chat = st.container()  # inline, not pinned to the page's bottom (that takes the page out of its main block)
    if ss["promptor_shown"]["retry"].interactive and chat.button("Retry the interrupted reply", key="promptor_retry"):
        _stream(ctx, F.RETRY, v)
    v["message"] = chat.chat_input(widget(P, "message").label, key="promptor_message")
    if v["message"] is not None:
        _stream(ctx, F.SEND, v)


def _present_kept(result: tuple) -> dict[str, Any]:
    import streamlit as st

    st.session_state["promptor_state"] = result[0]
    return present(result)


def _stream(ctx, action, values) -> None:
    """Stream a reply into the chat, then keep the new state."""
    import streamlit as st

    last = None
    with st.chat_message("assistant"):
        box_ = st.empty()
        for last in streamlit_run(ctx, action, values, tab=TAB):
            box_.markdown(last[1].chat[-1]["content"] or "…")
    if last is not None:
        keep(TAB, LAYOUT, _present_kept(last))
        st.rerun()
