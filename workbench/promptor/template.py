"""Prompt templates with named placeholders (Promptor's final output, arXiv 2310.08101): the structured fields
the designer gave, assembled into a template by our code (never left to the chat model's memory), parsed and
validated, filled with example values, and checked against the fields.

Placeholder syntax: `{name}` with a Python identifier inside; a literal brace is written `{{` or `}}` (as in
`str.format`). Designer text is escaped when it goes into a template, so a brace a designer types never becomes a
placeholder by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

USER_TEXT = "user_text"  # every template has it: what the user typed
USER_HISTORY = "user_history"  # personalisation data (the user's own past text), when the designer has some
REQUIRED = (USER_TEXT,)
MAX_TEMPLATE_CHARS = 8000  # a template past this is a paste accident, and past a small model's context

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NONE_WORDS = {"none", "no", "n/a", "na", "nothing", "-", "not really", "nope", "no constraints"}


class TemplateError(ValueError):
    """A template that cannot be used: the message says where and what to do."""


def parse_placeholders(template: str) -> list[str]:
    """The placeholder names in order of first appearance. Raises TemplateError on a malformed brace."""
    if not isinstance(template, str):
        raise TemplateError(f"template must be text, got {type(template).__name__}")
    names: list[str] = []
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise TemplateError(f"unmatched '{token}' at character {match.start()}: write '{token * 2}' for a "
                                f"literal brace, or {{name}} for a placeholder")
        name = match.group(1).strip()
        if not _IDENT.match(name):
            raise TemplateError(f"'{token}' at character {match.start()} is not a valid placeholder: use letters, "
                                f"digits and underscores, e.g. {{{USER_TEXT}}}")
        if name not in names:
            names.append(name)
    return names


def validate_template(template: str, required: Iterable[str] = REQUIRED, allowed: Iterable[str] | None = None) -> list[str]:
    """Parse and check a template; returns its placeholders. Missing required or (when `allowed` is given)
    unknown placeholders are errors that name them."""
    if not template or not template.strip():
        raise TemplateError("the template is empty")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"the template is {len(template)} characters long; the limit is {MAX_TEMPLATE_CHARS}")
    names = parse_placeholders(template)
    missing = [r for r in required if r not in names]
    if missing:
        raise TemplateError("the template has no " + ", ".join("{" + m + "}" for m in missing) +
                            " placeholder: the model would never see what the user typed")
    if allowed is not None:
        unknown = [n for n in names if n not in set(allowed)]
        if unknown:
            raise TemplateError("unknown placeholder(s) " + ", ".join("{" + u + "}" for u in unknown) +
                                "; this template may use only " + ", ".join("{" + a + "}" for a in allowed))
    return names


def fill(template: str, values: dict[str, Any], where: str = "") -> str:
    """The template with every placeholder replaced. A placeholder without a value is an error naming it."""
    names = parse_placeholders(template)
    missing = [n for n in names if n not in values or values[n] is None or not str(values[n]).strip()]
    if missing:
        prefix = f"{where}: " if where else ""
        raise TemplateError(prefix + "no value for " + ", ".join("{" + m + "}" for m in missing) +
                            "; every placeholder needs a value in every example")

    def sub(match: re.Match) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return str(values[match.group(1).strip()])

    return _TOKEN.sub(sub, template)


def escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def is_none(value: str) -> bool:
    return not value or value.strip().lower().rstrip(".!") in NONE_WORDS


def placeholders_for(fields: dict[str, str]) -> list[str]:
    """The placeholders a template assembled from these fields has."""
    names = [USER_TEXT]
    if not is_none(fields.get("personalisation", "")):
        names.append(USER_HISTORY)
    return names


def assemble(fields: dict[str, str], extra_rules: Iterable[str] = ()) -> str:
    """The draft template, built from the structured fields by our code (the same on any chat model)."""
    f = {k: escape_braces(str(v).strip().rstrip(".")) for k, v in fields.items()}
    lines = [f"You are the text-entry assistant for {f.get('users') or 'the user'}."]
    if f.get("description"):
        lines.append(f"Feature: {f['description']}.")
    lines.append(f"The user types {f.get('user_input') or 'some text'}.")
    lines.append(f"Your job: {f.get('prediction') or 'predict what the user wants to write'}.")
    lines.append("")
    lines.append("Rules:")
    if not is_none(fields.get("constraints", "")):
        for part in re.split(r"[;\n]+", f["constraints"]):
            if part.strip():
                lines.append(f"- {part.strip()}")
    if not is_none(fields.get("tone", "")):
        lines.append(f"- Tone: {f['tone']}")
    for rule in extra_rules:
        if rule.strip():
            lines.append(f"- {escape_braces(rule.strip())}")
    lines.append("- Answer with the output text only: no explanation, no quotes, no preamble")
    if USER_HISTORY in placeholders_for(fields):
        lines += ["", f"Personalisation data ({f['personalisation']}):", "{" + USER_HISTORY + "}"]
    lines += ["", "The user's text:", "{" + USER_TEXT + "}", "", "Output:"]
    return "\n".join(lines)


def add_rule(template: str, rule: str) -> str:
    """The template with one more rule (the designer's feedback), placed after the last rule line when the
    template has our "Rules:" section, else at the top."""
    rule_line = f"- {escape_braces(rule.strip())}"
    lines = template.split("\n")
    if "Rules:" in lines:
        at = lines.index("Rules:") + 1
        while at < len(lines) and lines[at].startswith("- "):
            at += 1
        # keep "answer with the output only" last: it is the rule small models forget first
        if at > 0 and lines[at - 1].startswith("- Answer with the output text only"):
            at -= 1
        return "\n".join(lines[:at] + [rule_line] + lines[at:])
    return f"Additional rule: {escape_braces(rule.strip())}\n\n{template}"


@dataclass
class Check:
    name: str
    passed: bool
    note: str


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if len(w) > 2}


def evaluate(template: str, fields: dict[str, str]) -> list[Check]:
    """Promptor's "evaluate" step, done the same way every time: does the draft parse, carry every field the
    designer gave, say what to output, and stay short enough for a small model?"""
    checks: list[Check] = []
    try:
        names = validate_template(template)
        checks.append(Check("placeholders", True, ", ".join("{" + n + "}" for n in names)))
    except TemplateError as exc:
        checks.append(Check("placeholders", False, str(exc)))
        names = []
    words = _words(template)
    for key in ("users", "user_input", "prediction", "constraints", "tone"):
        value = fields.get(key, "")
        if is_none(value):
            continue
        wanted = _words(value)
        covered = len(wanted & words) / len(wanted) if wanted else 1.0
        checks.append(Check(f"covers {key}", covered >= 0.5,
                            f"{covered:.0%} of its words appear" + ("" if covered >= 0.5 else ": add it back")))
    if not is_none(fields.get("personalisation", "")):
        checks.append(Check("uses personalisation", USER_HISTORY in names,
                            "{user_history} present" if USER_HISTORY in names else "add {user_history}"))
    says_output = any(w in template.lower() for w in ("output", "answer with", "reply with", "respond with"))
    checks.append(Check("says what to output", says_output, "" if says_output else "say what the answer must be"))
    n_words = len(template.split())
    checks.append(Check("length", n_words <= 250, f"{n_words} words" + ("" if n_words <= 250 else
                                                                        ": long prompts lose small models")))
    return checks


def checks_markdown(checks: list[Check]) -> str:
    return "\n".join(f"- {'✅' if c.passed else '⚠️'} **{c.name}**" + (f": {c.note}" if c.note else "") for c in checks)
