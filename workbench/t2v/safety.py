"""The safety rule shared by the video rewards' safety flag and VPO's harmless principle: a documented
keyword list per category, matched on whole words (lower case, simple plural/-ing forms). It is a rule, not
a classifier: it catches the obvious requests and says which word matched, so a user can see why."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Category -> words. Kept short and explicit on purpose; extend in one place. Multi-word terms match as phrases.
UNSAFE_TERMS: dict[str, tuple[str, ...]] = {
    "violence": ("gore", "gory", "behead", "decapitate", "dismember", "massacre", "torture", "mutilate",
                 "slaughter", "murder", "bloodbath", "shoot people", "stab", "stabbing"),
    "sexual": ("nude", "naked", "nsfw", "porn", "pornographic", "sex", "sexual", "explicit", "topless"),
    "minors": ("child abuse", "underage"),
    "self-harm": ("suicide", "self-harm", "self harm", "cutting myself", "overdose"),
    "hate": ("nazi", "swastika", "racial slur", "ethnic cleansing", "lynching"),
    "weapons and crime": ("bomb making", "make a bomb", "build a bomb", "school shooting", "terrorist attack",
                          "meth lab"),
}
RULE_ID = "keyword-rule-v1"  # bump when the list changes: provenance records which rule judged a prompt


def _forms(word: str) -> str:
    """A regex for a term and its simple inflections (s/es/ed/ing), on word boundaries."""
    parts = [re.escape(p) for p in word.split()]
    parts[-1] += r"(?:s|es|d|ed|ing)?"
    return r"\b" + r"[\s-]+".join(parts) + r"\b"


_PATTERNS = [(cat, term, re.compile(_forms(term), re.I)) for cat, terms in UNSAFE_TERMS.items() for term in terms]


@dataclass
class SafetyVerdict:
    safe: bool
    matches: list[tuple[str, str]] = field(default_factory=list)  # (category, matched text)
    rule: str = RULE_ID

    @property
    def reason(self) -> str:
        if self.safe:
            return "no unsafe term found (keyword rule)"
        found = ", ".join(f"“{text}” ({cat})" for cat, text in self.matches)
        return f"unsafe content by the keyword rule: {found}"

    def to_dict(self) -> dict:
        return {"safe": self.safe, "matches": [list(m) for m in self.matches], "rule": self.rule,
                "reason": self.reason}


def check_safety(text: str) -> SafetyVerdict:
    matches = []
    for cat, _term, pattern in _PATTERNS:
        for m in pattern.finditer(text or ""):
            matches.append((cat, m.group(0)))
    return SafetyVerdict(safe=not matches, matches=matches)
