"""The labelled prompt set (assets/safety/prompts.jsonl, built by assets/safety/build_prompts.py) and its
held-out split (assets/safety/heldout_ids.txt): the held-out ids are never trained on nor used to tune the rule."""

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


def load_prompts(folder: str | Path = SAFETY_ASSETS) -> list[LabelledPrompt]:
    path = Path(folder) / "prompts.jsonl"
    return [LabelledPrompt(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def heldout_ids(folder: str | Path = SAFETY_ASSETS) -> set[str]:
    return {line.strip() for line in (Path(folder) / "heldout_ids.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()}


def split(folder: str | Path = SAFETY_ASSETS) -> tuple[list[LabelledPrompt], list[LabelledPrompt]]:
    """(train, held-out)."""
    held = heldout_ids(folder)
    prompts = load_prompts(folder)
    return [p for p in prompts if p.id not in held], [p for p in prompts if p.id in held]
