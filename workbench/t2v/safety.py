"""Moved to `workbench.safety` (the profile's safety role + the keyword rule, workbench/safety/rules.py). This name
stays for callers of the old keyword check: `check_safety(text)` is the keyword rule alone, as a SafetyVerdict."""

from __future__ import annotations

from workbench.safety import SafetyVerdict, check_text


def check_safety(text: str) -> SafetyVerdict:
    return check_text(None, text)
