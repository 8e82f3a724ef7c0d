"""The Promptor tab's inputs and actions, declared once for both front ends (workbench.forms), and the two side
panels' Markdown (the stage line, the blinded comparison) that both front ends show."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workbench.common.choice import ChatChoice
from workbench.forms import Action, Widget, group_form, input_field
from workbench.promptor.agent import JUMP_TARGETS, MAX_MESSAGE_CHARS, STAGE_LABELS
from workbench.promptor.flows import PromptorService, PromptorSettings
from workbench.promptor.store import SessionStore
from workbench.promptor.tasks import FIELDS as TASK_FIELDS
from workbench.promptor.tasks import STARTERS

BACKEND_LABELS = {"profile": "profile chat model", "openai": "OpenAI-compatible server"}
_KIND_BY_LABEL = {v: k for k, v in BACKEND_LABELS.items()}
KINDS = tuple(BACKEND_LABELS.values())
URL_HINT = "http://127.0.0.1:8000/v1"
INTRO = (
    "Promptor interviews you about a text-entry feature (who types, what they type, what the system should predict "
    "or rewrite, constraints, tone, personalisation data), drafts a prompt template, evaluates it, tests it on your "
    "examples side by side, lets you compare drafts blind, and refines it into a **final template with named "
    "placeholders** such as `{user_text}`. The steps and fields are kept by the workbench, not by the chat model, so "
    f"a small local model works too. Messages over {MAX_MESSAGE_CHARS:,} characters are cut with a note."
)



def chat_choice(kind_label: Any, base_url: Any, model: Any) -> ChatChoice:
    kind = _KIND_BY_LABEL.get(kind_label, kind_label or "profile")
    return ChatChoice(kind=kind, base_url=base_url or "", model=model or "").check()


def settings_from(polish: Any, temperature: Any, seed: Any) -> PromptorSettings:
    if seed is None or float(seed) != int(float(seed)):
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    return PromptorSettings(polish=bool(polish), temperature=float(temperature), seed=int(seed)).check()


def versions_from(text: Any) -> list[int] | None:
    typed = text if isinstance(text, str) else ""
    text = typed.replace("v", "").strip()
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(" ", ",").split(",") if part]
    except ValueError:  # echo what was typed (a preview), not the text with its v's removed
        from workbench.text import preview

        raise ValueError(f"drafts to compare must be version numbers like '1, 3', got '{preview(typed)}'") from None


def stage_markdown(view: Any) -> str:
    steps = []
    for name, label in STAGE_LABELS.items():
        mark = "▶" if name == view.stage else "·"
        steps.append(f"{mark} {label}" if name != view.stage else f"**{mark} {label}**")
    return (f"### Step {view.step}: {view.stage_label}\n\n" + " → ".join(steps) +
            f"\n\nResume code: `{view.code}` (reopen this session after a reload or in the other front end)")


def blind_markdown(view: Any) -> str:
    if not view.blind:
        return "No blinded comparison yet (it needs a test round with two or more drafts)."
    from workbench.text import escape_markdown as escape_md

    parts = []
    for number, item in enumerate(view.blind, 1):
        inputs = "; ".join(f"{escape_md(k)}: {escape_md(v)}" for k, v in item["input"].items())
        lines = [f"**Example {number}** ({inputs})"]
        lines += [f"- **{letter}**: {escape_md(text) or '*(empty)*'}" for letter, text in item["options"]]
        if item["best"]:
            lines.append(f"- marked: best **{item['best']}**, worst **{item['worst']}**")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n\n" + view.blind_summary




@dataclass
class BackendInputs:
    """The chat backends and the agent's settings: checked in `parse`, inside the action (so a bad server URL is
    a message in both front ends, not a raw exception)."""

    agent_kind: str = input_field(KINDS[0], "Agent (Promptor) model", "radio", choices=KINDS)
    agent_url: str = input_field("", "Agent server URL", placeholder=URL_HINT)
    agent_model: str = input_field("", "Agent model name on that server")
    target_kind: str = input_field(KINDS[0], "Target model (runs the template in test rounds)", "radio",
                                   choices=KINDS)
    target_url: str = input_field("", "Target server URL", placeholder=URL_HINT)
    target_model: str = input_field("", "Target model name on that server")
    polish: bool = input_field(True, "Let the agent model polish each draft (validated)", "checkbox")
    temperature: Any = input_field(0.7, "Agent temperature", "slider", low=0, high=2, step=0.05)
    seed: Any = input_field(0, "Seed", "number", low=0, high=2**31 - 1, whole=True)

    def parse(self) -> tuple[ChatChoice, ChatChoice, PromptorSettings]:
        return (chat_choice(self.agent_kind, self.agent_url, self.agent_model),
                chat_choice(self.target_kind, self.target_url, self.target_model),
                settings_from(self.polish, self.temperature, self.seed))


# What Promptor has learned: one box per field of the task (workbench.promptor.tasks.FIELDS)
LearnedFields = group_form("LearnedFields", {
    f.name: (Widget(f.label, elem_id=f"promptor-field-{f.name}"), "") for f in TASK_FIELDS})


@dataclass
class PromptorPage:
    message: str = input_field("", "Your message", "textarea", lines=2, placeholder="e.g. sentence completion",
                               elem_id="promptor-message")
    parent_prompt: str = input_field("", "Parent prompt (the agent's instructions; editable)", "textarea", lines=5)
    draft: str = input_field("", "Current draft (editable; placeholders in {braces})", "textarea", lines=12,
                             elem_id="promptor-draft")
    jump_to: str = input_field("understand", "Jump back to", "dropdown",
                              choices=tuple((STAGE_LABELS[s], s) for s in JUMP_TARGETS))
    code: str = input_field("", "Resume code")
    starter: str = input_field("", "Starter task for a new session", "dropdown",
                               choices=(("(none)", ""), *((s.title, s.key) for s in STARTERS.values())))
    examples: str = input_field("", "Examples (one per line, values separated by ' | ')", "textarea", lines=4,
                                elem_id="promptor-example-inputs")
    versions: str = input_field("", "Drafts to compare (e.g. 1, 3; default: the last two)")
    blind_seed: Any = input_field(0, "Shuffle seed", "number", low=0, high=2**31 - 1, whole=True)
    example: Any = input_field(1, "Example", "number", low=1, whole=True)
    best: Any = input_field(None, "Best", "radio", choices=("A", "B", "C", "D"))
    worst: Any = input_field(None, "Worst (optional with two outputs)", "radio", choices=("A", "B", "C", "D"))


def service(ctx: Any) -> PromptorService:
    """The one Promptor service of this app: its session store (which caches sessions in memory) is shared by
    every action and the page's restore, so a reload reads what the last action saved."""
    svc = getattr(ctx, "_promptor_service", None)
    if svc is None:
        svc = PromptorService(ctx, SessionStore())
        setattr(ctx, "_promptor_service", svc)
    return svc


def _send(ctx, state, message, profile_name, backends: BackendInputs):
    yield from service(ctx).send(state, message, profile_name, *backends.parse())


def _retry(ctx, state, profile_name, backends: BackendInputs):
    yield from service(ctx).retry(state, profile_name, *backends.parse())


def _test_round(ctx, state, versions, profile_name, backends: BackendInputs, job=None):
    _, target, settings = backends.parse()
    return service(ctx).run_test_round(state, profile_name, target, versions_from(versions), settings, job=job)


def _method(name: str):
    def call(ctx, *args):
        args = [dataclasses.asdict(a) if dataclasses.is_dataclass(a) else a for a in args]
        return getattr(service(ctx), name)(*args)

    call.__name__ = name
    return call


VIEW = ("state", "view")
SEND = Action("promptor_send", _send, ("state", "message", "profile", BackendInputs), VIEW, stream=True)
RETRY = Action("promptor_retry", _retry, ("state", "profile", BackendInputs), VIEW, stream=True)
TEST_ROUND = Action("promptor_test_round", _test_round, ("state", "versions", "profile", BackendInputs), VIEW,
                    job=True)
PARENT = Action("promptor_parent_prompt", _method("set_parent_prompt"), ("state", "parent_prompt"), VIEW)
FIELDS = Action("promptor_fields", _method("edit_fields"), ("state", LearnedFields), VIEW)
DRAFT = Action("promptor_draft", _method("edit_draft"), ("state", "draft"), VIEW)
JUMP = Action("promptor_jump", _method("jump_back"), ("state", "jump_to"), VIEW)
FINAL = Action("promptor_final", _method("finalise"), ("state",), VIEW)
EXPORT = Action("promptor_export", _method("export_files"), ("state",), ("files",))
RESUME = Action("promptor_resume", _method("resume"), ("code",), VIEW)
NEW = Action("promptor_new", lambda ctx, parent, starter: service(ctx).new(parent or None, starter or None),
             ("parent_prompt", "starter"), VIEW)
EXAMPLES = Action("promptor_examples", _method("set_examples"), ("state", "examples"), VIEW)
BLIND_START = Action("promptor_blind_start", _method("start_blind"), ("state", "blind_seed"), VIEW)
BLIND_MARK = Action("promptor_blind_mark", _method("mark_blind"), ("state", "example", "best", "worst"), VIEW)
