"""Models tab: each role of the chosen profile with its backend, model id, device, dtype, load state,
load time and memory, and a badge where weights are random; load and unload buttons. Layout only, drawn by both
front ends (pages/_layout.py); the actions are declared in workbench.model_table."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import Update, button, fields, gradio_layout, gradio_value, gradio_wire, out, row
from pages._layout import streamlit_page
from pages._wiring import gradio_action
from workbench import model_table as mt

TITLE = "Models"
ORDER = 100
TAB = "models"
INTRO = ("Each role is filled by one model of the chosen profile. Models load on first use and are shared by every "
         "user and tab. **Random weights** means the model was built in code because no real weights are available "
         "here: its outputs are not meaningful.")
# fixed widths: wordy columns wrap, so the state column stays on screen; short ones never break a word ("devi/ce")
WIDTHS = {"role": "120px", "model id": "180px", "adapter": "140px", "weights": "150px", "state": "190px",
          "backend": "150px", "device": "80px", "dtype": "90px", "load s": "70px", "memory MiB": "90px",
          "RSS delta MiB": "90px", "purpose": "200px", "message": "200px"}
LAYOUT = [
    out("summary", "md", elem_id="models-summary"),
    out("table", "table", headers=mt.COLUMNS, elem_id="models-table", column_widths=[WIDTHS[c] for c in mt.COLUMNS]),
    row(fields(mt.ModelsPage, "role"), button("load", "Load", variant="primary", elem_id="models-load"),
        button("unload", "Unload", elem_id="models-unload"), button("refresh", "Refresh", elem_id="models-refresh",
                                                                     only="gradio")),
    out("message", "md", elem_id="models-message"),
]
OUTPUTS = ["table", "summary", "message"]


def present(result: tuple) -> dict[str, Any]:
    return dict(zip(OUTPUTS, result))


def roles(ctx: Any, profile_name: str | None) -> Update:
    names = list(ctx.profile(profile_name).roles)
    return Update(choices=names, value=names[0])


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, TAB)
    gr.Markdown(INTRO)
    c = gradio_layout(LAYOUT, {"profile": session.profile})
    c["role"].choices = [(r, r) for r in ctx.profile(ctx.default_profile).roles]

    def show(profile_name):
        return mt.model_rows(ctx, profile_name), mt.memory_summary(ctx)

    # Filled when each visitor's page loads (a page view, not a user action); opening the tab shows what other
    # tabs loaded since (the behaviour-shift pair, the T2I rewriter).
    for trigger in (session.demo.load, session.tab.select):
        trigger(show, session.profile, [c["table"], c["summary"]], api_name=False)
    gradio_action(ctx, session.profile.change, "models_profile", lambda p: (*show(p), gradio_value(roles(ctx, p))),
                  [session.profile], [c["table"], c["summary"], c["role"]], tab=TAB)
    gradio_action(ctx, c["refresh"].click, "models_table", show, [session.profile], [c["table"], c["summary"]],
                  tab=TAB)
    for action, name in ((mt.LOAD, "load"), (mt.UNLOAD, "unload")):
        gradio_wire(ctx, c, action, c[name].click, OUTPUTS, present, tab=TAB)


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, TAB)
    st.caption(INTRO)
    ss = st.session_state
    profile = ss.get("profile", ctx.default_profile)
    shown = ss.setdefault("models_shown", {})  # the table as it is now (other tabs load models too)
    shown.update(table=mt.model_rows(ctx, profile), summary=mt.memory_summary(ctx), role=Update(
        choices=roles(ctx, profile).choices))
    streamlit_page(ctx, TAB, LAYOUT, {"load": mt.LOAD, "unload": mt.UNLOAD}, present, {"profile": profile})
