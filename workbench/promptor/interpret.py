"""What a designer's message means to Promptor: a typed `Interpretation` (intents, the fields it answers, test
examples, feedback, where it asks to go), made by one of two interpreters behind one interface:

- `LocalInterpreter` (`workbench.promptor.rules`): rules plus MiniLM similarity to a labelled corpus, no LLM;
- `LLMInterpreter` (here): a capable chat model extracts into a JSON schema; its output is validated and, when it
  is not valid, the local interpreter's answer is used instead (the reason is kept on the result).

The stage machine (`agent`) only ever sees an `Interpretation`, so both front ends and both interpreters drive
the same conversation. `choose_interpreter` decides which one runs: an OpenAI-compatible server, or a profile chat
model marked `capable` in assets/profiles.yaml (`settings: promptor: {capable: true}`), gets the LLM one."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from workbench.promptor.tasks import FIELD_NAMES

INTENTS = (
    "answer",  # gives a value for one or more fields
    "accept",  # "ok": keep the suggestion / the draft
    "examples",  # test examples (inputs with reference outputs)
    "feedback",  # feedback on outputs or on the draft
    "move",  # asks for a later step now: target_stage draft | test | final
    "back",  # asks to go back: target_stage understand (target_field may name a field) | evaluate | test
    "question",  # a question to the agent
    "correction",  # "no, I meant ...": the named field is overwritten
    "confirm",  # "yes" to a question the agent asked (a low-confidence guess)
    "deny",  # "no" to it
    "off_topic",
    "injection",  # an attempt to reveal or drop the agent's instructions
)
MOVE_TARGETS = ("draft", "test", "final")
BACK_TARGETS = ("understand", "evaluate", "test")
ASK_BELOW = 0.55  # a field guess under this confidence is asked about, not filled


@dataclass
class Interpretation:
    intents: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)  # {"input": ..., "reference": ...}
    feedback: str = ""
    target_stage: str = ""  # for move / back
    target_field: str = ""  # back (or correction) to a named field
    question: str = ""
    confidence: dict[str, float] = field(default_factory=dict)  # per field in `fields`
    ask: dict[str, str] = field(default_factory=dict)  # {"field", "value"}: a guess to confirm before filling
    source: str = "local"
    notes: list[str] = field(default_factory=list)

    def has(self, intent: str) -> bool:
        return intent in self.intents

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Interpreter(Protocol):
    name: str

    def interpret(self, message: str, context: dict[str, Any]) -> Interpretation:
        """`context`: {"stage", "asking" (the field asked now, or ""), "fields" (answered so far),
        "has_draft", "awaiting" (the guess the agent asked about, or None)}."""


def context_of(state: dict[str, Any]) -> dict[str, Any]:
    """What an interpreter may know about the conversation (never the parent prompt)."""
    asking = ""
    if state["stage"] == "understand":
        from workbench.promptor.tasks import FIELDS

        asking = FIELDS[state["field_index"]].name
    return {"stage": state["stage"], "asking": asking, "fields": dict(state["fields"]),
            "has_draft": bool(state["drafts"]), "awaiting": state.get("awaiting")}


# --------------------------------------------------------------------------- validating an extraction

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["intents"],
    "properties": {
        "intents": {"type": "array", "items": {"enum": list(INTENTS)}},
        "fields": {"type": "object", "properties": {n: {"type": "string"} for n in FIELD_NAMES},
                   "additionalProperties": False},
        "examples": {"type": "array", "items": {"type": "object", "required": ["input", "reference"],
                                                 "properties": {"input": {"type": "string"},
                                                                "reference": {"type": "string"}}}},
        "feedback": {"type": "string"},
        "target_stage": {"enum": ["", *MOVE_TARGETS, *BACK_TARGETS]},
        "target_field": {"enum": ["", *FIELD_NAMES]},
        "question": {"type": "string"},
    },
}


class ExtractionError(ValueError):
    """A chat model's extraction that does not match the schema (the message says which part)."""


def parse_json_object(text: str) -> dict[str, Any]:
    """The one JSON object in a model's answer (a ```json fence or prose around it is allowed)."""
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.S)
    body = fenced.group(1) if fenced else text[text.find("{"): text.rfind("}") + 1] if "{" in text else ""
    if not body:
        raise ExtractionError("no JSON object in the answer")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ExtractionError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ExtractionError("the JSON is not an object")
    return data


def validate_extraction(data: dict[str, Any], message: str) -> Interpretation:
    """An Interpretation from a schema-shaped dict; anything outside the schema is an ExtractionError. Field values
    and examples must come from the message (a model that invents them is not trusted)."""
    unknown = set(data) - set(SCHEMA["properties"])
    if unknown:
        raise ExtractionError(f"unknown key(s) {sorted(unknown)}")
    intents = data.get("intents")
    if not isinstance(intents, list) or not intents or any(i not in INTENTS for i in intents):
        raise ExtractionError(f"intents must be a non-empty list drawn from {', '.join(INTENTS)}, got {intents!r}")
    fields = data.get("fields") or {}
    if not isinstance(fields, dict) or any(k not in FIELD_NAMES or not isinstance(v, str) for k, v in fields.items()):
        raise ExtractionError(f"fields must map field names ({', '.join(FIELD_NAMES)}) to text, got {fields!r}")
    lowered = _plain(message)
    for name, value in fields.items():
        words = _content(value)
        if words and len(words & _content(message)) / len(words) < 0.5 and _plain(value) not in lowered:
            raise ExtractionError(f"field {name!r} = {value!r} is not taken from the message")
    examples = data.get("examples") or []
    if not isinstance(examples, list) or any(
            not isinstance(e, dict) or not isinstance(e.get("input"), str) or not isinstance(e.get("reference"), str)
            or not e["input"].strip() for e in examples):
        raise ExtractionError("examples must be a list of {input, reference} texts")
    for e in examples:
        if _plain(e["input"]) not in lowered:
            raise ExtractionError(f"example input {e['input']!r} is not in the message")
    for key in ("feedback", "question"):
        if not isinstance(data.get(key, ""), str):
            raise ExtractionError(f"{key} must be text")
    target_stage = data.get("target_stage", "") or ""
    if target_stage not in ("", *MOVE_TARGETS, *BACK_TARGETS):
        raise ExtractionError(f"target_stage {target_stage!r} is not a stage")
    target_field = data.get("target_field", "") or ""
    if target_field not in ("", *FIELD_NAMES):
        raise ExtractionError(f"target_field {target_field!r} is not a field")
    if "move" in intents and target_stage not in MOVE_TARGETS:
        raise ExtractionError(f"a move intent needs a target_stage from {MOVE_TARGETS}, got {target_stage!r}")
    return Interpretation(
        intents=list(dict.fromkeys(intents)), fields={k: v.strip() for k, v in fields.items() if v.strip()},
        examples=[{"input": e["input"].strip(), "reference": e["reference"].strip()} for e in examples],
        feedback=data.get("feedback", "").strip(), target_stage=target_stage, target_field=target_field,
        question=data.get("question", "").strip(), confidence={k: 0.9 for k, v in fields.items() if v.strip()})


_STOP = frozenset("the a an and or of to in on for with is are be it its this that they them their i we you "
                  "my our your as at by from so but if then than into about should would will can could just "
                  "like also very really some any".split())


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP and len(w) > 1}


# --------------------------------------------------------------------------- the LLM interpreter

EXTRACT_INSTRUCTION = """You read one message from a designer who is writing a prompt template with Promptor.
Return only one JSON object, no prose, with these keys:
- "intents": list, from: {intents}
- "fields": object; keys from: {fields}; each value copied from the message (only fields the message answers)
- "examples": list of {{"input": ..., "reference": ...}} test examples the message gives (input text and the ideal output)
- "feedback": text of feedback on outputs or the draft, else ""
- "target_stage": for "move": draft, test or final; for "back": understand, evaluate or test; else ""
- "target_field": the field the designer wants to go back to or correct, else ""
- "question": the question the designer asks, else ""
Field meanings: description = what the feature does; users = who types; user_input = what they type;
prediction = what the system predicts or rewrites; constraints = limits on the output; tone = style of the output;
personalisation = data about the user the system may use ("none" if they say there is none).
Current step: {stage}. The question being asked: {asking}.
Message:
<<<{message}>>>"""


class LLMInterpreter:
    """A capable chat model extracts the message into `SCHEMA`; invalid output falls back to `fallback`."""

    def __init__(self, generate: Any, fallback: Any, model_name: str):
        self.generate = generate  # callable(conversation) -> text (the caller holds the model)
        self.fallback = fallback
        self.name = f"llm:{model_name}"

    def conversation(self, message: str, context: dict[str, Any]) -> list[dict[str, str]]:
        from workbench.promptor.tasks import FIELD_BY_NAME

        asking = FIELD_BY_NAME[context["asking"]].label if context.get("asking") else "none (not asking a field)"
        text = EXTRACT_INSTRUCTION.format(intents=", ".join(INTENTS), fields=", ".join(FIELD_NAMES),
                                          stage=context.get("stage", ""), asking=asking,
                                          message=message.replace(">>>", "> > >"))
        return [{"role": "system", "content": "You extract structured data as JSON. Answer with JSON only."},
                {"role": "user", "content": text}]

    def interpret(self, message: str, context: dict[str, Any]) -> Interpretation:
        from workbench.promptor.rules import injection

        if injection(message):  # never sent to a model
            return Interpretation(intents=["injection"], source=self.name)
        try:
            raw = self.generate(self.conversation(message, context))
        except ConnectionError as exc:
            result = self.fallback.interpret(message, context)
            result.notes.append(f"the chat model could not interpret this message ({str(exc)[:120]}); "
                                f"the local interpreter did")
            result.source = f"{self.fallback.name} (fallback)"
            return result
        try:
            result = validate_extraction(parse_json_object(raw), message)
        except ExtractionError as exc:
            result = self.fallback.interpret(message, context)
            result.notes.append(f"the chat model's extraction was invalid ({exc}); the local interpreter's is used")
            result.source = f"{self.fallback.name} (fallback)"
            return result
        result.source = self.name
        if "injection" in result.intents:  # the model saw an attack the rules missed: keep the refusal path
            result.intents = ["injection"]
        return result


def is_capable(profile: Any, agent_choice: Any) -> bool:
    """Whether the agent's chat model interprets messages and phrases sentences: any OpenAI-compatible server, or
    a profile chat model marked `capable` as data (a 135M model is not)."""
    if agent_choice is not None and getattr(agent_choice, "kind", "profile") == "openai":
        return True
    return bool(profile.setting("promptor", "capable", False))
