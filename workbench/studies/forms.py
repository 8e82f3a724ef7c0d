"""The Studies tab's researcher inputs and actions, declared once for both front ends (workbench.forms)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.forms import Action, input_field
from workbench.studies import flows


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
