"""The labelled prompt set (assets/safety/prompts.jsonl, built by assets/safety/build_prompts.py), its held-out
split (assets/safety/heldout_ids.txt) and a second, fresh held-out set (assets/safety/prompts_fresh.jsonl, written
after the first split's mistakes had been read once). Neither held-out set is trained on nor used to tune the rule
or the head's threshold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.profiles import ASSETS

SAFETY_ASSETS = ASSETS / "safety"
CATEGORIES = ("violence", "weapons", "sexual", "minors", "self-harm", "hate", "real-person")


@dataclass(frozen=True)
class LabelledPrompt:
    id: str
    text: str
    label: str  # "safe" | "unsafe"
    category: str  # one of CATEGORIES, or "safe"
    hard_negative: bool
    medium: str  # "image" | "video" (ideas that say video, clip, footage ...)

    @property
    def unsafe(self) -> bool:
        return self.label == "unsafe"


def load_prompts(folder: str | Path = SAFETY_ASSETS, name: str = "prompts.jsonl") -> list[LabelledPrompt]:
    path = Path(folder) / name
    return [LabelledPrompt(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def heldout_ids(folder: str | Path = SAFETY_ASSETS) -> set[str]:
    return {line.strip() for line in (Path(folder) / "heldout_ids.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()}


SPLITS = ("fresh2", "fresh", "first")  # the held-out sets `python -m workbench.safety eval` reports on


def fresh_prompts(folder: str | Path = SAFETY_ASSETS) -> list[LabelledPrompt]:
    """The fresh held-out set: written before the second pass changed anything, never trained or tuned on."""
    return load_prompts(folder, "prompts_fresh.jsonl")


def heldout(name: str = "fresh", folder: str | Path = SAFETY_ASSETS) -> list[LabelledPrompt]:
    if name not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
    if name == "fresh2":  # a third set, written after "fresh" had been scored three times (TRAINING.md)
        return load_prompts(folder, "prompts_fresh2.jsonl")
    return fresh_prompts(folder) if name == "fresh" else split(folder)[1]


def split(folder: str | Path = SAFETY_ASSETS) -> tuple[list[LabelledPrompt], list[LabelledPrompt]]:
    """(train, held-out)."""
    held = heldout_ids(folder)
    prompts = load_prompts(folder)
    return [p for p in prompts if p.id not in held], [p for p in prompts if p.id in held]
