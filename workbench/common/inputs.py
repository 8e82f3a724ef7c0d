"""Checks on what a user gives the refiner, done once up front: each failure is a ValueError that names the
argument and the allowed range (pages turn them into gr.Error / st.error)."""

from __future__ import annotations

import unicodedata

MAX_PROMPT_CHARS = 2000  # far past any text encoder's window; longer input is a paste accident
MIN_CANDIDATES, MAX_CANDIDATES = 1, 8  # the tab shows at most eight candidates side by side
MAX_POOL = 32  # over-generation ceiling: one batched generate call


def check_prompt(prompt: object, name: str = "prompt",
                 hint: str = "type a short description of the image you want") -> str:
    """The prompt, stripped of surrounding whitespace. Newlines and tabs are allowed inside; other control
    characters (often pasted from terminals or PDFs) are refused, not silently removed."""
    if not isinstance(prompt, str):
        raise ValueError(f"{name} must be text, got {type(prompt).__name__}")
    text = prompt.strip()
    if not text:
        raise ValueError(f"{name} is empty: {hint}")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"{name} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS} characters")
    for index, char in enumerate(text):
        if char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cf") and char not in "\u200d":
            raise ValueError(
                f"{name} contains a control character {char!r} (U+{ord(char):04X}) at position {index}; "
                f"remove it and try again"
            )
    return text


def check_count(value: object, name: str = "n", low: int = MIN_CANDIDATES, high: int = MAX_CANDIDATES) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or int(value) != value:
        raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")
    return int(value)


def check_fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return float(value)


def check_base_url(url: object) -> str:
    if not isinstance(url, str) or not url.strip().startswith(("http://", "https://")):
        raise ValueError(f"server URL must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1), got {url!r}")
    return url.strip().rstrip("/")
