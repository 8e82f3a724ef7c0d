"""The studies tab's flows, shared by both front ends: a participant joins with a study code, reads the
consent text, then does only their assigned steps in order; a researcher logs in with a token to see
progress, charts and exports.

Participant flows take the participant's state (a small JSON-able dict that only ever holds the study code,
the participant's random id and the step they were shown; everything else is read from the database) and
return the new state and a `ParticipantView`. The state dict is what the recorder spots in the join
action's outputs to map the browser session to the participant.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import tempfile
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from workbench.studies.assignment import assign_conditions, blind, plan_steps
from workbench.studies.definition import MAX_ITEMS, MAX_QUESTIONS, find_study
from workbench.studies.recorder import STATE_KIND

MAX_ANSWER = 20000  # characters of a task answer


class AccessDenied(ValueError):
    """A researcher action without the right token (a ValueError, so the wiring layer shows its message)."""


@dataclass
class ParticipantView:
    stage: str  # start | consent | task | comparison | questionnaire | done
    heading: str = ""
    body: str = ""  # Markdown written by the researcher (instructions, consent)
    progress: str = ""  # "Step 2 of 5"
    prompt: str = ""  # a task's starting prompt, or a comparison's prompt
    image: str = ""  # a task's starting image (path)
    tab: str = ""  # the tab to work in for this task, if any
    answer: bool = False  # whether a task asks for a text answer
    mode: str = ""  # pairwise | best_worst
    media: str = ""  # text | image | video
    options: list[tuple[str, str]] = field(default_factory=list)  # (label, text or file path), blinded
    questions: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


def services(ctx):
    """The app's StudyService (attached on first use when the context was built without one, as in tests)."""
    if getattr(ctx, "studies", None) is None:
        from workbench.studies.recorder import attach

        attach(ctx)
    return ctx.studies


def new_state() -> dict[str, Any]:
    return {"kind": STATE_KIND, "study": "", "participant_id": "", "step": ""}


def start_view() -> ParticipantView:
    return ParticipantView("start", "Join a study", "Type the study code the researcher gave you, then press Join.")


# --------------------------------------------------------------------------- participants


RESUME_RE = re.compile(r"^[0-9a-f]{32}$")


def open_study(ctx, code: str) -> tuple[dict[str, Any], ParticipantView]:
    """Find the study by its code and show its consent text (nobody is assigned until they agree). A resume
    code (shown to participants once they start) continues where that participant stopped instead."""
    code = (code or "").strip()
    if RESUME_RE.match(code.lower()):
        return resume(ctx, code.lower())
    study = find_study(code)
    services(ctx).store.register_study(study)
    services(ctx).remember(study)
    state = new_state() | {"study": study.code}
    body = (study.description + "\n\n" if study.description else "") + study.consent
    return state, ParticipantView("consent", f"{study.title}: consent", body,
                                  message="Tick the box if you agree to take part, then press Start.")


def resume(ctx, resume_code: str) -> tuple[dict[str, Any], ParticipantView]:
    """Continue as the participant whose resume code this is (after a reload or on another device)."""
    participant = services(ctx).store.participant(resume_code)
    if participant is None:
        raise ValueError("That resume code is not known here. Check it, or join with the study code to start anew.")
    state, view = view_current(ctx, new_state() | {"study": participant["study_code"], "participant_id": resume_code})
    view.message = "Welcome back: you continue where you stopped."
    return state, view


def give_consent(ctx, state: dict[str, Any] | None, agreed: bool) -> tuple[dict[str, Any], ParticipantView]:
    """Assign the participant (condition order from the study's seed and their join number) and show step 1."""
    state = state or new_state()
    if not state.get("study"):
        raise ValueError("Join a study first: type its code and press Join.")
    if state.get("participant_id"):
        return view_current(ctx, state)
    if not agreed:
        raise ValueError("To take part, tick 'I agree' after reading the consent text. If you do not agree, "
                         "close this page; nothing has been recorded.")
    study = services(ctx).study(state["study"])
    participant = services(ctx).store.add_participant(study, lambda number: assign_conditions(study, number))
    state, view = view_current(ctx, state | {"participant_id": participant["id"]})
    view.message = (f"Your resume code is `{participant['id']}`: type it in the study code box to continue after a "
                    f"reload or on another device. Keep it to yourself; it gives access to your answers.")
    return state, view


def view_current(ctx, state: dict[str, Any]) -> tuple[dict[str, Any], ParticipantView]:
    participant, study, plan = _load(ctx, state)
    index = participant["current_step"]
    if index >= len(plan):
        return state | {"step": "finished"}, ParticipantView(
            "done", f"{study.title}: finished", "Thank you: all your answers are saved. You can close this page.",
            progress=f"Step {len(plan)} of {len(plan)}")
    planned = plan[index]
    step = study.step(planned.step_id)
    view = ParticipantView(step.kind, step.title or step.id.replace("_", " ").capitalize(),
                           progress=f"Step {index + 1} of {len(plan)}")
    body = [step.instructions] if step.instructions else []
    if step.kind == "task":
        condition = study.condition(planned.condition) if planned.condition else None
        if condition is not None and condition.instructions:
            body.append(condition.instructions)
        view.tab = (condition.tab if condition is not None and condition.tab else step.tab)
        if view.tab:
            body.append(f"Work in the **{view.tab}** tab of this page (keep this page open), then come back here "
                        f"and submit your result.")
        view.prompt, view.answer = step.prompt, step.answer == "text"
        view.image = str(study.resolve(step.image)) if step.image else ""
    elif step.kind == "comparison":
        view.mode, view.media, view.prompt = step.mode, step.media, step.prompt
        items = {it.id: it for it in step.items}
        for b in blind(study, step, participant["id"]):
            item = items[b.item_id]
            view.options.append((b.label, item.text if step.media == "text" else blinded_file(study.resolve(item.path))))
        body.append(step.question)
        body.append("Pick the better one." if step.mode == "pairwise" else "Pick the best one and the worst one.")
    else:
        view.questions = [dict(id=q.id, type=q.type, text=q.text, scale=q.scale, labels=list(q.labels),
                               required=q.required) for q in step.questions]
    view.body = "\n\n".join(body)
    return state | {"step": planned.key}, view


def blinded_file(path: Path) -> str:
    """A copy of a stimulus named by its content hash: the browser sees neither the researcher's file name
    (which may say the condition) nor its folder."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:24]
    out = Path(tempfile.gettempdir()) / "workbench-study-media" / f"{digest}{path.suffix.lower()}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + f".{os.getpid()}.part")
        shutil.copyfile(path, tmp)
        os.replace(tmp, out)
    return str(out)


def submit_task(ctx, state: dict[str, Any] | None, answer: str) -> tuple[dict[str, Any], ParticipantView]:
    participant, study, plan, planned, step = _current(ctx, state, "task")
    answer = (answer or "").strip()
    if step.answer == "text" and not answer:
        raise ValueError("Type your result in the answer box before submitting.")
    if len(answer) > MAX_ANSWER:
        raise ValueError(f"The answer is {len(answer)} characters; at most {MAX_ANSWER}.")
    return _save(ctx, state, participant, plan, planned, step, {"answer": answer})


def submit_comparison(ctx, state: dict[str, Any] | None, chosen: str,
                      worst: str | None = None) -> tuple[dict[str, Any], ParticipantView]:
    participant, study, plan, planned, step = _current(ctx, state, "comparison")
    shown = blind(study, step, participant["id"])
    labels = {b.label: b.item_id for b in shown}
    conditions = {it.id: it.condition for it in step.items}
    if chosen not in labels:
        raise ValueError(f"Pick one of {', '.join(labels)} (the {'better' if step.mode == 'pairwise' else 'best'}).")
    payload: dict[str, Any] = {"chosen_label": chosen, "chosen": labels[chosen],
                               "chosen_condition": conditions[labels[chosen]],
                               "order": [b.item_id for b in shown], "labels": labels}
    if step.mode == "pairwise":
        other = next(label for label in labels if label != chosen)
        payload |= {"rejected": labels[other], "rejected_condition": conditions[labels[other]]}
    else:
        if worst not in labels:
            raise ValueError(f"Also pick the worst one: one of {', '.join(labels)}.")
        if worst == chosen:
            raise ValueError(f"The best and the worst must differ; you picked {chosen} for both.")
        payload |= {"worst_label": worst, "worst": labels[worst], "worst_condition": conditions[labels[worst]]}
    return _save(ctx, state, participant, plan, planned, step, payload)


def submit_questionnaire(ctx, state: dict[str, Any] | None, values: list[Any]) -> tuple[dict[str, Any], ParticipantView]:
    """`values`: one per question slot in order (a Likert point's label or number, or text)."""
    participant, study, plan, planned, step = _current(ctx, state, "questionnaire")
    answers: dict[str, Any] = {}
    missing = []
    for q, value in zip(step.questions, list(values) + [None] * len(step.questions)):
        if q.type == "likert":
            point = likert_point(value, q.scale) if value not in (None, "") else None
            if point is None and q.required:
                missing.append(q.text)
            answers[q.id] = point
        else:
            text = (value or "").strip()
            if len(text) > MAX_ANSWER:
                raise ValueError(f"The answer to '{q.text}' is {len(text)} characters; at most {MAX_ANSWER}.")
            if not text and q.required:
                missing.append(q.text)
            answers[q.id] = text
    if missing:
        raise ValueError("Please answer: " + "; ".join(f"'{m}'" for m in missing))
    return _save(ctx, state, participant, plan, planned, step, {"answers": answers})


def likert_point(value: Any, scale: int) -> int:
    """A Likert answer as its point 1..scale: accepts the number or the choice label '3' / '3 - neutral'."""
    text = str(value).strip().split(" ", 1)[0]
    try:
        point = int(float(text))
    except ValueError:
        raise ValueError(f"A rating must be a point from 1 to {scale}; got {value!r}") from None
    if not 1 <= point <= scale:
        raise ValueError(f"A rating must be a point from 1 to {scale}; got {point}")
    return point


def likert_choices(question: dict[str, Any]) -> list[str]:
    """The labels of a Likert question's points: '1 - Strongly disagree', '2', ..., '5 - Strongly agree'."""
    scale, (low, high) = question["scale"], question["labels"]
    return [f"{i} - {low}" if i == 1 else f"{i} - {high}" if i == scale else str(i) for i in range(1, scale + 1)]


def _load(ctx, state: dict[str, Any] | None):
    if not state or not state.get("participant_id"):
        raise ValueError("Join a study first: type its code, press Join and agree to the consent text.")
    participant = services(ctx).store.participant(state["participant_id"])
    if participant is None or participant["study_code"] != state.get("study"):
        raise ValueError("This participant is not known here (the database was reset?). Join the study again.")
    study = services(ctx).study(participant["study_code"])
    return participant, study, plan_steps(study, participant["conditions"])


def _current(ctx, state, kind: str):
    participant, study, plan = _load(ctx, state)
    index = participant["current_step"]
    shown = state.get("step")
    if index >= len(plan):
        raise ValueError("You have finished this study and all your answers are saved; nothing more to submit.")
    planned = plan[index]
    if shown and shown != planned.key:
        if any(p.key == shown for p in plan[:index]):
            raise ValueError(f"You have already submitted '{shown.split('@')[0]}'; it cannot be changed. "
                             f"Press 'Show my current step' to continue.")
        raise ValueError("This page is out of date: press 'Show my current step'.")
    step = study.step(planned.step_id)
    if step.kind != kind:
        raise ValueError(f"The current step is a {step.kind}, not a {kind}: press 'Show my current step'.")
    return participant, study, plan, planned, step


def _save(ctx, state, participant, plan, planned, step, payload):
    index = participant["current_step"]
    services(ctx).store.add_response(participant, index, planned.key, step.id, step.kind, planned.condition, payload,
                                   last=index + 1 == len(plan))
    new_state, view = view_current(ctx, state)
    view.message = f"Saved your answer to step {index + 1}."
    return new_state, view


# --------------------------------------------------------------------------- researcher

TOKEN_ENV = "WORKBENCH_RESEARCHER_TOKEN"


def check_token(token: str | None) -> None:
    """Refuse unless `token` equals the researcher token from the environment (compared in constant time)."""
    expected = os.environ.get(TOKEN_ENV, "")
    if not expected:
        raise AccessDenied(f"The researcher dashboard is off: start the app with {TOKEN_ENV} set to a long random "
                           f"secret (e.g. `export {TOKEN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')`).")
    if not hmac.compare_digest((token or "").encode(), expected.encode()):
        raise AccessDenied("Wrong researcher token.")


@dataclass
class DashboardView:
    study: str
    summary: str  # Markdown
    progress: list[list[Any]]  # rows of PROGRESS_COLUMNS
    choices: Any = None  # plotly figures
    likert: Any = None
    time_on_task: Any = None
    free_text: list[list[str]] = field(default_factory=list)  # rows of FREE_TEXT_COLUMNS, plain text


PROGRESS_COLUMNS = ["condition", "participants", "finished", "answers", "median seconds per step"]
FREE_TEXT_COLUMNS = ["participant", "condition", "step", "question", "answer"]  # = results.FREE_TEXT_COLUMNS


def researcher_login(ctx, token: str) -> list[str]:
    """The codes of studies with data, after checking the token."""
    check_token(token)
    return services(ctx).store.study_codes()


def dashboard(ctx, token: str, code: str) -> DashboardView:
    check_token(token)
    from workbench.studies import results

    code = _known_code(ctx, code)
    data = results.load(services(ctx).store, services(ctx).study(code))
    return DashboardView(code, results.summary_markdown(data), results.progress_rows(data),
                         results.choices_figure(data), results.likert_figure(data), results.time_figure(data),
                         results.free_text_rows(data))


def export(ctx, token: str, code: str, what: str, out_dir: str | None = None) -> str:
    """Write one export file and return its path. `what`: responses.csv|.jsonl|.parquet, events.csv|.jsonl|
    .parquet, or dpo_pairs.jsonl (TRL's prompt/chosen/rejected preference format)."""
    check_token(token)
    from workbench.studies import results

    code = _known_code(ctx, code)
    return str(results.export(services(ctx).store, services(ctx).study(code), what, out_dir))


def check_study_text(token: str, text: str) -> str:
    """The validator's verdict on a study file's text, as Markdown (researchers only)."""
    check_token(token)
    from workbench.studies.definition import StudyError, parse_study

    try:
        study = parse_study(text or "", source="pasted study", check_files=False)
    except StudyError as exc:
        return "**Problems:**\n\n" + "\n".join(f"- {p.describe()}" for p in exc.problems)
    return (f"**OK**: study `{study.code}`, {len(study.conditions)} condition(s), {study.design} subjects "
            f"({study.method}, seed {study.seed}), {len(study.steps)} step(s). Media files were not checked here; "
            f"`python -m workbench.studies check FILE` checks them.")


def _known_code(ctx, code: str) -> str:
    codes = services(ctx).store.study_codes()
    if code not in codes:
        raise ValueError(f"No data for study '{code}' yet; studies with data: {', '.join(codes) or 'none'}.")
    return code


EXPORTS = ("responses.csv", "responses.jsonl", "responses.parquet", "events.csv", "events.jsonl", "events.parquet",
           "dpo_pairs.jsonl")
SLOTS = (MAX_ITEMS, MAX_QUESTIONS)
