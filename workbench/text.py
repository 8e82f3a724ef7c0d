"""Showing user text safely: everything a user typed that is displayed inside Markdown goes through
`escape_markdown`, so `<img src=x>` shows as text, `**bold**` stays literal and `[x](javascript:…)` is not a
link. One helper, used by every tab."""

from __future__ import annotations

import html
import re

# Markdown's punctuation that changes meaning; backslash-escaping each one is valid CommonMark.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def escape_markdown(text: object) -> str:
    """`text` as literal characters inside Markdown: HTML is entity-escaped, Markdown syntax backslash-escaped,
    and newlines become spaces (a prompt shown inline must not start a list or a heading)."""
    value = html.escape(str(text), quote=False)
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return " ".join(value.split())


PREVIEW_CHARS = 60  # enough to recognise what was typed; a message never echoes a whole pasted text


def preview(text: object, limit: int = PREVIEW_CHARS) -> str:
    """`text` on one line, cut to `limit` characters with the full length said ("abc… (10,000 characters)"), for
    error messages that echo what the user typed."""
    value = " ".join(str(text).split())
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(str(text)):,} characters)"


def literal_markdown(text: object) -> str:
    """`text` as literal characters in Markdown, keeping its line breaks (an error that lists problems line by
    line): each line goes through `escape_markdown`."""
    return "  \n".join(escape_markdown(line) for line in str(text).splitlines()) or ""


def code_span(text: object) -> str:
    """`text` shown literally in a Markdown code span (model ids, paths, run folders): inside a code span Markdown
    and HTML are not interpreted, so no escaping is needed, and a backslash escape would show as a backslash
    (`SmolLM2\\-135M`). The fence is one backtick longer than any run of backticks in the text; newlines become
    spaces (a code span is inline)."""
    value = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"
