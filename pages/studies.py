"""Studies tab: participants join with a study code and do their assigned steps (tasks, blinded comparisons,
questionnaires); researchers log in with a token for progress, charts and exports. Layout only, drawn by both front
ends (pages/_layout.py): inputs and actions are declared in workbench.studies.forms, the flows are in
workbench.studies.flows; every action is recorded by the study recorder through the wiring layer's events."""

from __future__ import annotations

from typing import Any

from pages._layout import Update, box, button, col, fields, gradio_layout, gradio_wire, out, row
from pages._layout import streamlit_page
from workbench.forms import widgets
from workbench.studies import flows
from workbench.studies import forms as R
from workbench.studies.definition import MAX_ITEMS, MAX_QUESTIONS
from workbench.studies.forms import ParticipantInputs as P
from workbench.studies.forms import Questions, ResearcherInputs
from workbench.text import escape_markdown

TITLE = "Studies"
ORDER = 90
TAB = "studies"

INTRO = ("**Taking part in a study?** Type the code the researcher gave you. You will see a consent text, then "
         "your steps one at a time. **Researchers**: open the dashboard at the bottom and log in with the token "
         "set in `WORKBENCH_RESEARCHER_TOKEN`.")
LETTERS = [chr(65 + i) for i in range(MAX_ITEMS)]

PARTICIPANT = [
    row(fields(P, "code", scale=3), button("join", "Join", variant="primary", scale=1, elem_id="study-join")),
    out("heading", "md", value="### Join a study", elem_id="study-heading"),
    out("progress", "md", elem_id="study-progress"),
    out("body", "md", elem_id="study-body"),
    row(fields(P, "agreed"), button("start", "Start", variant="primary", elem_id="study-start"), name="consent_row",
        visible=False),
    out("prompt", "text", "Starting prompt", visible=False, elem_id="study-prompt"),
    out("image", "image", "Starting image", visible=False, type="filepath", height=256),
    col(fields(P, "answer"), button("submit_task", "Submit result", variant="primary", elem_id="study-submit-task"),
        name="task_col", visible=False),
    col(out("texts", "md", elem_id="study-options"),
        row(*[out(f"img_{x}", "image", x, visible=False, type="filepath", height=220) for x in LETTERS]),
        row(*[out(f"vid_{x}", "video", x, visible=False, height=220) for x in LETTERS]),
        fields(P, "chosen", "worst"),
        button("submit_choice", "Submit choice", variant="primary", elem_id="study-submit-choice"),
        name="cmp_col", visible=False),
    col(fields(Questions), button("submit_q", "Submit answers", variant="primary", elem_id="study-submit-q"),
        name="q_col", visible=False),
    out("message", "md", elem_id="study-message"),
    button("current", "Show my current step", size="sm", elem_id="study-current"),
]
PARTICIPANT_OUTPUTS = ["state", "heading", "progress", "body", "consent_row", "prompt", "image", "task_col", "answer",
                       "cmp_col", "texts", *[f"img_{x}" for x in LETTERS], *[f"vid_{x}" for x in LETTERS], "chosen",
                       "worst", "q_col", *widgets(Questions), "message"]
PARTICIPANT_ACTIONS = {"join": R.JOIN, "start": R.CONSENT, "current": R.CURRENT, "submit_task": R.TASK,
                       "submit_choice": R.CHOICE, "submit_q": R.QUESTIONNAIRE}


def options_markdown(view: flows.ParticipantView) -> str:
    if view.media != "text":
        return ""
    return "\n\n".join(f"**{label}**: {escape_markdown(text)}" for label, text in view.options)  # stimuli shown literally


def present_participant(result: tuple) -> dict[str, Any]:
    """A participant flow's (state, view) on the page, the same in both front ends."""
    new_state, view = result
    kind = view.stage
    comparison, questionnaire = kind == "comparison", kind == "questionnaire"
    labels = [label for label, _ in view.options]
    # Animated GIFs (what diffusers' export_to_gif writes) play in an image slot; mp4/webm in a video slot.
    media = [(path, view.media == "image" or path.lower().endswith(".gif")) for _, path in view.options] \
        if comparison and view.media != "text" else []
    shown: dict[str, Any] = {}
    for i, x in enumerate(LETTERS):
        path, still = media[i] if i < len(media) else (None, None)
        shown[f"img_{x}"] = Update(visible=still is True, value=path if still else None, label=x)
        shown[f"vid_{x}"] = Update(visible=still is False, value=path if still is False else None, label=x)
    qs = view.questions if questionnaire else []
    for i in range(MAX_QUESTIONS):
        q = qs[i] if i < len(qs) else {"type": "", "text": "", "required": True}
        shown[f"likert_{i}"] = Update(visible=q["type"] == "likert", value=None, label=q["text"] or "Question",
                                      choices=flows.likert_choices(q) if q["type"] == "likert" else [])
        shown[f"text_{i}"] = Update(visible=q["type"] == "text", value="", label=(q["text"] or "Question") + (
            "" if q["required"] else " (optional)"))
    return dict(shown, state=new_state, heading=f"### {view.heading}", progress=view.progress, body=view.body,
                consent_row=Update(visible=kind == "consent"),
                prompt=Update(visible=bool(view.prompt) and kind in ("task", "comparison"), value=view.prompt),
                image=Update(visible=bool(view.image) and kind == "task", value=view.image or None),
                task_col=Update(visible=kind == "task"), answer=Update(visible=view.answer, value=""),
                cmp_col=Update(visible=comparison), texts=options_markdown(view) if comparison else "",
                chosen=Update(choices=labels, value=None,
                              label="Which is better?" if view.mode == "pairwise" else "Which is best?"),
                worst=Update(choices=labels, value=None, visible=comparison and view.mode == "best_worst"),
                q_col=Update(visible=questionnaire), message=view.message)


RESEARCHER = [
    out("note", "md", value="Only for the researcher: every action here checks the token again."),
    row(fields(ResearcherInputs, "token", scale=3), button("login", "Log in", scale=1, elem_id="study-login")),
    col(row(fields(ResearcherInputs, "study"), button("refresh", "Refresh", elem_id="study-refresh")),
        out("summary", "md", elem_id="study-summary"),
        out("table", "table", headers=flows.PROGRESS_COLUMNS, elem_id="study-progress-table"),
        row(out("choices", "plot", "Choices per condition"), out("likert", "plot", "Likert distributions")),
        out("time_on_task", "plot", "Time on task"),
        out("free_text", "table", "Free-text answers (shown as typed)", headers=flows.FREE_TEXT_COLUMNS,
            datatype="str", elem_id="study-free-text"),
        row(fields(ResearcherInputs, "what"), button("export", "Export", elem_id="study-export")),
        out("export_file", "file", "Export file", elem_id="study-export-file"),
        box("Check a study file", fields(ResearcherInputs, "text"), button("check", "Check", elem_id="study-check"),
            out("check_out", "md", elem_id="study-check-out"), open=False),
        name="dash", visible=False),
]
RESEARCHER_ACTIONS = {
    "login": (R.LOGIN, ["dash", "study"], lambda codes: dict(dash=Update(visible=True), study=Update(
        choices=codes, value=codes[0] if codes else None))),
    "refresh": (R.DASHBOARD, ["summary", "table", "choices", "likert", "time_on_task", "free_text"],
                lambda v: dict(summary=v.summary, table=v.progress, choices=v.choices, likert=v.likert,
                               time_on_task=v.time_on_task, free_text=v.free_text)),
    "export": (R.EXPORT, ["export_file"], lambda path: {"export_file": path}),
    "check": (R.CHECK, ["check_out"], lambda verdict: {"check_out": verdict}),
}


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
