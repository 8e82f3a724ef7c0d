"""Promptor tab (arXiv 2310.08101): a chat in which the Promptor agent interviews a designer about a text-entry
feature, drafts a prompt template, tests it on the designer's examples, compares drafts blind and refines it into
a final template with placeholders. A side panel shows the stage, the structured fields (editable) and the current
draft. The page is declared once in workbench.promptor.page (inputs and actions in workbench.promptor.forms, the flows
in workbench.promptor.flows); this module draws it, with the chat box and its streaming per front end."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import gradio_layout, gradio_presenter, gradio_wire, keep, streamlit_page
from pages._wiring import gradio_action, streamlit_run
from workbench.forms import widget
from workbench.promptor import forms as F
from workbench.promptor.forms import PromptorPage as P
from workbench.promptor.page import ACTIONS, LAYOUT, OUTPUTS, TAB, present, present_files

TITLE = "Promptor (prompt generation chat)"
ORDER = 30
CLEAR_MESSAGE = """(...values) => { const box = document.querySelector('#promptor-message textarea');
  if (box) { box.value = ''; box.dispatchEvent(new Event('input', {bubbles: true})); } return values; }"""


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

    # Gradio mounts a tab's components, and reads BrowserState from localStorage, when the tab is first shown: a
    # page-load event would see no code yet and its new session's code would overwrite the saved one. So the
    # session is restored (or started) when the tab opens; on page load only when there is no tab to open.
    gradio_action(ctx, tab.select if tab is not None else session.demo.load, "promptor_restore", on_restore,
                  [c["state"], c["saved_code"]], [c[n] for n in OUTPUTS], input_names=["state", "code"],
                  api_name=False, tab=TAB, present=gradio_presenter(present, OUTPUTS))
    # Send takes the box's text and, in the browser before the request leaves (`js`), empties the box: nothing
    # typed after the click is wiped by a reply. A message sent while a reply streams is sent too ("multiple"):
    # the service answers it when that reply ends, from the conversation as the reply saved it.
    for trigger, api in ((c["send"].click, None), (c["message"].submit, False)):
        gradio_wire(ctx, c, F.SEND, trigger, OUTPUTS, present, trigger_mode="multiple", tab=TAB, api_name=api,
                    js=CLEAR_MESSAGE)
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
