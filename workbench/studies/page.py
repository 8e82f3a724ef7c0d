"""The Studies tab's pages, declared once for both front ends (drawn by pages/studies.py and pages/study_pages.py):
the participant's steps and the researcher's dashboard, their inputs (workbench.studies.forms), actions and
presenters."""

from __future__ import annotations

from typing import Any

from workbench.forms import widgets
from workbench.layout import Update, box, button, col, fields, out, row
from workbench.studies import flows
from workbench.studies import forms as R
from workbench.studies.definition import MAX_ITEMS, MAX_QUESTIONS
from workbench.studies.forms import ParticipantInputs as P
from workbench.studies.forms import Questions, ResearcherInputs
from workbench.text import escape_markdown

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
