"""Word-level diff of a refined prompt against the user's original, so additions and losses are visible
before anything is rendered (users ask to see and edit the rewrite first: Wan2GP #2300)."""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

from workbench.text import escape_markdown

_TOKEN = re.compile(r"[\w'’-]+|[^\w\s]")


@dataclass(frozen=True)
class DiffPiece:
    text: str
    op: str  # "equal" | "insert" | "delete"


def _spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _TOKEN.finditer(text)]


def _slice(text: str, spans: list[tuple[int, int]], i: int, j: int) -> str:
    """The user's own text for tokens i..j, spacing and punctuation as written."""
    return text[spans[i][0]:spans[j - 1][1]]


def word_diff(original: str, candidate: str) -> list[DiffPiece]:
    """Pieces in reading order: words kept, added (insert) and dropped from the original (delete).
    Matching ignores case, so "Cat" -> "cat" is not reported as a change."""
    sa, sb = _spans(original), _spans(candidate)
    a = [original[x:y].lower() for x, y in sa]
    b = [candidate[x:y].lower() for x, y in sb]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    pieces: list[DiffPiece] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(DiffPiece(_slice(candidate, sb, j1, j2), "equal"))
        else:
            if i2 > i1:
                pieces.append(DiffPiece(_slice(original, sa, i1, i2), "delete"))
            if j2 > j1:
                pieces.append(DiffPiece(_slice(candidate, sb, j1, j2), "insert"))
    return pieces


def diff_summary(pieces: list[DiffPiece]) -> dict[str, int]:
    count = {"equal": 0, "insert": 0, "delete": 0}
    for piece in pieces:
        count[piece.op] += len(piece.text.split())
    return count


LABELS = {"equal": None, "insert": "added", "delete": "removed"}  # a piece's label in gr.HighlightedText
MARKDOWN = {"equal": "{}", "insert": "**+{}+**", "delete": "~~{}~~"}  # and its Markdown form


def highlighted(pieces: list[DiffPiece]) -> list[tuple[str, str | None]]:
    """For gr.HighlightedText: (text, label) with label None for unchanged words."""
    return [(p.text + " ", LABELS[p.op]) for p in pieces]


def to_html(pieces: list[DiffPiece]) -> str:
    out = []
    for p in pieces:
        text = html.escape(p.text)
        if p.op == "insert":
            out.append(f'<ins style="background:#d4f7d4;text-decoration:none">{text}</ins>')
        elif p.op == "delete":
            out.append(f'<del style="background:#f9d0d0">{text}</del>')
        else:
            out.append(text)
    return " ".join(out)


def to_markdown(pieces: list[DiffPiece]) -> str:
    """Markdown form for Streamlit and the examples: **+added+** and ~~removed~~, every piece's own text shown
    literally (a prompt's `**`, `<img …>` or `[x](javascript:…)` is text, not markup)."""
    return " ".join(MARKDOWN[p.op].format(escape_markdown(p.text)) for p in pieces)


def highlighted_markdown(pairs: list[tuple[str, str | None]]) -> str:
    """`to_markdown` of what `highlighted` gave (the pairs a page holds for its diff component)."""
    ops = {label: op for op, label in LABELS.items()}
    return " ".join(MARKDOWN[ops[label]].format(escape_markdown(text.strip())) for text, label in pairs)
