"""The study recorder: an event subscriber that writes every user action of every tab to the study database.

The wiring layer emits an `Event` for each action of each tab; the recorder maps the event's session id
(Gradio session hash, Streamlit session id) to a participant when the studies tab reports a join, and from
then on writes every event of that session, one committed record each, with the participant's study, step
and condition at the time. Sessions that never joined a study are not recorded unless
`WORKBENCH_EVENT_LOG=all` (then every session's actions are logged, e.g. for a usage log on a Space).

Nothing heavy is imported until the first join (or the first event in `all` mode).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)

STATE_KIND = "participant_state"  # marks the participant state dict in a studies action's outputs
SECRET_INPUTS = ("token", "password", "api_key", "secret")  # input names whose values are never written
# The researcher's actions: never a participant's event, even when done in a browser session that joined a study
# (a researcher trying the study, then logging in to the dashboard in the same tab).
RESEARCHER_ACTIONS = frozenset({"studies_login", "studies_dashboard", "studies_export", "studies_check"})


def redact(inputs):
    """The inputs with secret values (the researcher token, API keys) replaced by a marker."""
    if not isinstance(inputs, dict):
        return inputs
    return {k: ("<redacted>" if any(s in k.lower() for s in SECRET_INPUTS) and v else v) for k, v in inputs.items()}


def participant_in(outputs: Any) -> dict[str, Any] | None:
    """The participant state a studies action returned (a dict or the first such dict in a list)."""
    if isinstance(outputs, dict):
        if outputs.get("kind") == STATE_KIND and outputs.get("participant_id"):
            return outputs
        return None
    if isinstance(outputs, list):
        for value in outputs[:8]:
            found = participant_in(value)
            if found:
                return found
    return None


class StudyService:
    """The app's study services: the store (opened lazily), the session-to-participant map and the recorder
    callback. One per app, on `ctx.studies`."""

    def __init__(self, url: str | None = None, log_all: bool | None = None):
        self._url = url
        self._store = None
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[str, str]] = {}  # session id -> (participant id, study code)
        self._studies: dict[str, Any] = {}  # study code -> Study parsed from the stored definition
        self.log_all = (os.environ.get("WORKBENCH_EVENT_LOG", "participants") == "all") if log_all is None else log_all
        self.errors = 0  # events that could not be written (logged with their traceback)

    @property
    def store(self):
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from workbench.studies.store import open_store

                    self._store = open_store(self._url)
        return self._store

    def study(self, code: str):
        """The study as participants of `code` saw it: parsed from the definition stored at first join."""
        if code not in self._studies:
            from workbench.studies.definition import find_study, parse_study

            text = self.store.study_text(code)
            if text is None:
                raise ValueError(f"No study with the code '{code}' has started in this database.")
            try:  # media files live next to the study file; the stored text is what participants saw
                folder = find_study(code).folder
            except ValueError:
                folder = "."
            self._studies[code] = parse_study(text, source=f"study {code}", folder=folder, check_files=False)
        return self._studies[code]

    def remember(self, study) -> None:
        """Cache a study just loaded from its file (the same text as stored)."""
        self._studies[study.code] = study

    def map_session(self, session_id: str, participant_id: str, study_code: str, frontend: str) -> None:
        with self._lock:
            known = self._sessions.get(session_id)
            self._sessions[session_id] = (participant_id, study_code)
        if known != (participant_id, study_code):
            self.store.add_session(session_id, participant_id, frontend)

    def participant_of_session(self, session_id: str) -> tuple[str, str] | None:
        return self._sessions.get(session_id)

    def record(self, event) -> None:
        """The subscriber: called by the event bus for every action of every tab."""
        try:
            self._record(event)
        except Exception:
            self.errors += 1
            log.exception("study recorder could not write event %s", getattr(event, "action", "?"))

    def _record(self, event) -> None:
        mapped = self._sessions.get(event.session_id)
        if event.action in RESEARCHER_ACTIONS:
            mapped = None  # not the participant's: written (unattributed) only when every session is logged
        if mapped is None and event.tab == "studies":
            state = participant_in(event.outputs)
            if state is not None:
                self.map_session(event.session_id, state["participant_id"], state["study"], event.frontend)
                mapped = (state["participant_id"], state["study"])
        if mapped is None and not self.log_all:
            return
        participant_id, code = mapped if mapped else (None, None)
        step_key = condition = None
        if participant_id:
            shown = event.inputs.get("state") if isinstance(event.inputs, dict) else None
            shown = shown.get("step") if isinstance(shown, dict) else None  # the step a studies action was about
            step_key, condition = self._where(participant_id, code, shown or None)
        record = event.to_dict()
        record["inputs"] = redact(record.get("inputs"))
        self.store.add_event(record, participant_id=participant_id, study_code=code, step_key=step_key,
                             condition=condition)

    def _where(self, participant_id: str, code: str, shown: str | None) -> tuple[str | None, str | None]:
        """The participant's step and condition for an event: the step a studies action was about, else the
        step they are on (an action in another tab happens while that step is shown)."""
        from workbench.studies.assignment import plan_steps

        participant = self.store.participant(participant_id)
        if participant is None:
            return None, None
        plan = plan_steps(self.study(code), participant["conditions"])
        if shown:
            step = next((p for p in plan if p.key == shown), None)
            return shown, (step.condition or None) if step else None
        if participant["current_step"] >= len(plan):
            return "finished", None
        step = plan[participant["current_step"]]
        return step.key, step.condition or None


def attach(ctx, url: str | None = None, log_all: bool | None = None) -> StudyService:
    """Give `ctx` its study services and subscribe the recorder to its event bus."""
    service = StudyService(url, log_all)
    ctx.studies = service
    ctx.events.subscribe(service.record)
    return service
