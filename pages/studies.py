"""Studies tab: participants join with a study code and do their assigned steps (tasks, blinded comparisons,
questionnaires); researchers log in with a token for progress, charts and exports. The pages are declared once in
workbench.studies.page (inputs and actions in workbench.studies.forms, the flows in workbench.studies.flows);
every action is recorded by the study recorder through the wiring layer's events."""

from __future__ import annotations

from typing import Any

from pages._layout import gradio_layout, gradio_wire, streamlit_page
from workbench.forms import widgets
from workbench.studies import flows
from workbench.studies import forms as R
from workbench.studies.forms import Questions
from workbench.studies.page import (INTRO, PARTICIPANT, PARTICIPANT_ACTIONS, PARTICIPANT_OUTPUTS, RESEARCHER,
                                    RESEARCHER_ACTIONS, TAB, present_participant)

TITLE = "Studies"
ORDER = 90


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    build_participant_gradio(ctx, INTRO)
    build_researcher_gradio(ctx)


def build_participant_gradio(ctx, intro: str) -> None:
    """The participant's part: join, consent, steps (also the whole of the participant page, pages/study_pages)."""
    import gradio as gr

    gr.Markdown(intro)
    with gr.Group():
        c = gradio_layout(PARTICIPANT, {"state": gr.State(flows.new_state())})
    c["values"] = list(c[Questions].values())
    for name, action in PARTICIPANT_ACTIONS.items():
        gradio_wire(ctx, c, action, c[name].click, PARTICIPANT_OUTPUTS, present_participant, tab=TAB)
    gradio_wire(ctx, c, R.JOIN, c["code"].submit, PARTICIPANT_OUTPUTS, present_participant, tab=TAB, api_name=False)


def build_researcher_gradio(ctx, standalone: bool = False) -> None:
    """The researcher's dashboard behind the token (an accordion in the tab; the whole researcher page)."""
    import gradio as gr

    with gr.Accordion("Researcher dashboard", open=standalone):
        c = gradio_layout(RESEARCHER)
    for name, (action, outputs, present) in RESEARCHER_ACTIONS.items():
        gradio_wire(ctx, c, action, c[name].click, outputs, present, tab=TAB)


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    st.markdown(INTRO)
    part, research = st.tabs(["Take part", "Researcher dashboard"])
    with part:
        participant_streamlit(ctx)
    with research:
        researcher_streamlit(ctx)


def participant_streamlit(ctx) -> None:
    import streamlit as st

    shown = st.session_state.setdefault("study_shown", {})
    v: dict[Any, Any] = {"state": shown.get("state") or flows.new_state()}
    streamlit_page(ctx, TAB, PARTICIPANT, PARTICIPANT_ACTIONS, present_participant, v, prefix="study",
                   values=lambda: {"values": [v[Questions][n] for n in widgets(Questions)]})


def researcher_streamlit(ctx) -> None:
    """Each action is a click, as in Gradio: a rerun of the page records nothing."""
    streamlit_page(ctx, TAB, RESEARCHER, {n: (a, p) for n, (a, _, p) in RESEARCHER_ACTIONS.items()}, dict, {},
                   prefix="study")
