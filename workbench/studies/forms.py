"""The Studies tab's researcher inputs and actions, declared once for both front ends (workbench.forms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.forms import Action, Widget, group_form, input_field
from workbench.studies import flows
from workbench.studies.definition import MAX_QUESTIONS


@dataclass
class ParticipantInputs:
    code: str = input_field("", "Study code", placeholder="e.g. REFINER-AB", elem_id="study-code")
    agreed: bool = input_field(False, "I have read the text above and agree to take part", "checkbox",
                               elem_id="study-agree")
    answer: str = input_field("", "Your result (e.g. your final prompt)", "textarea", lines=4, elem_id="study-answer")
    chosen: Any = input_field(None, "Better / best", "radio", elem_id="study-choice")
    worst: Any = input_field(None, "Worst", "radio", elem_id="study-worst")


# One slot per question of a questionnaire step: a Likert radio and a text box each (the step shows what it asks;
# labels and choices come with the step). Both front ends record the same 2 x MAX_QUESTIONS values.
Questions = group_form("Questions", {
    **{f"likert_{i}": (Widget("Question", "radio", elem_id=f"study-q{i}-likert"), None) for i in range(MAX_QUESTIONS)},
    **{f"text_{i}": (Widget("Question", "textarea", lines=2, elem_id=f"study-q{i}-text"), "")
       for i in range(MAX_QUESTIONS)}})


def submit_questionnaire(ctx: Any, state: dict | None, values: list[Any]):
    """The questionnaire slots (every Likert slot, then every text slot) as one answer per question."""
    n = MAX_QUESTIONS
    return flows.submit_questionnaire(ctx, state, [lk if lk not in (None, "") else tx
                                                   for lk, tx in zip(values[:n], values[n:])])


VIEW = ("state", "view")
JOIN = Action("studies_join", flows.open_study, ("code",), VIEW)
CONSENT = Action("studies_consent", flows.give_consent, ("state", "agreed"), VIEW)
CURRENT = Action("studies_current", flows.view_current, ("state",), VIEW)
TASK = Action("studies_submit_task", flows.submit_task, ("state", "answer"), VIEW)
CHOICE = Action("studies_submit_choice", flows.submit_comparison, ("state", "chosen", "worst"), VIEW)
QUESTIONNAIRE = Action("studies_submit_questionnaire", submit_questionnaire, ("state", "values"), VIEW)


@dataclass
class ResearcherInputs:
    token: str = input_field("", "Researcher token", "password", elem_id="study-token")
    study: str = input_field(None, "Study", "dropdown", custom=True, elem_id="study-pick")
    what: str = input_field(flows.EXPORTS[0], "Export", "dropdown", choices=flows.EXPORTS, elem_id="study-export-what")
    text: str = input_field("", "Study file (YAML)", "code")


LOGIN = Action("studies_login", flows.researcher_login, ("token",), ("codes",))
DASHBOARD = Action("studies_dashboard", flows.dashboard, ("token", "study"), ("dashboard",))
EXPORT = Action("studies_export", flows.export, ("token", "study", "what"), ("path",))
CHECK = Action("studies_check", flows.check_study_text, ("token", "text"), ("verdict",), takes_ctx=False)
