"""The world's vocabulary, read from assets/world/vocabulary.yaml (data, not code)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

VOCAB_PATH = Path(__file__).resolve().parent.parent.parent / "assets" / "world" / "vocabulary.yaml"


@dataclass(frozen=True)
class Vocabulary:
    shapes: tuple[str, ...]
    colours: dict[str, tuple[float, float, float]]
    sizes: dict[str, float]
    positions: dict[str, tuple[int, int]]  # phrase -> (column, row)
    relations: dict[str, str]  # phrase -> name
    finishes: tuple[str, ...]
    backgrounds: tuple[str, ...]
    effects: dict[str, str]  # phrase -> name
    styles: tuple[str, ...]
    directions: dict[str, str]  # phrase -> direction
    speeds: dict[str, str]  # word -> speed
    distance: dict[str, float]
    other_motions: dict[str, str]  # phrase -> motion kind
    function_words: tuple[str, ...]
    digest: str

    def position_phrase(self, cell: tuple[int, int]) -> str:
        return next(p for p, c in self.positions.items() if c == tuple(cell))

    def phrase_of(self, table: dict[str, str], name: str) -> str:
        return next(p for p, n in table.items() if n == name)


@lru_cache(maxsize=4)
def load_vocabulary(path: str | None = None) -> Vocabulary:
    p = Path(path) if path else VOCAB_PATH
    text = p.read_text(encoding="utf-8")
    d = yaml.safe_load(text)
    m = d["motions"]
    if max(d["sizes"].values()) >= 1 / 6:
        raise ValueError(f"{p}: sizes must stay below 1/6 of the image so an object fits its grid cell")
    if sorted(tuple(c) for c in d["positions"].values()) != [(c, r) for c in range(3) for r in range(3)]:
        raise ValueError(f"{p}: positions must name each cell of the 3x3 grid once")
    if any(not 0 <= x <= 1 for rgb in d["colours"].values() for x in rgb):
        raise ValueError(f"{p}: colour channels must lie in [0, 1]")
    return Vocabulary(
        shapes=tuple(d["shapes"]), colours={k: tuple(v) for k, v in d["colours"].items()},
        sizes=dict(d["sizes"]), positions={k: tuple(v) for k, v in d["positions"].items()},
        relations=dict(d["relations"]), finishes=tuple(d["finishes"]), backgrounds=tuple(d["backgrounds"]),
        effects=dict(d["effects"]), styles=tuple(d["styles"]), directions=dict(m["directions"]),
        speeds=dict(m["speeds"]), distance=dict(m["distance"]), other_motions=dict(m["others"]),
        function_words=tuple(d["function_words"]), digest=hashlib.sha256(text.encode()).hexdigest()[:12])
