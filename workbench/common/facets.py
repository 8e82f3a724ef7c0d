"""Facets of a text-to-image prompt (lighting, composition or camera, style or medium, setting or mood, subject
detail), read as data from assets/t2i_facets.yaml. A facet-directed refine writes each candidate with one facet's
emphasis, so that MMR chooses among facets rather than among near-copies (UF-FGTG asks its refiner for diverse
fine-grained prompts; this is our way of getting them from a small rewriter).

Here: the facet table, the labelling of a prompt's comma-separated phrases by facet vocabulary, the prefix a
steered rewrite starts with, and the splice a refine-further makes (the picked prompt with one facet's phrases
changed)."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

FACETS_FILE = Path(__file__).resolve().parents[2] / "assets" / "t2i_facets.yaml"
STEERING = ("prefix", "instruction", "examples")  # combinable with "+", e.g. "prefix+examples"

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_CACHE: dict[str, dict[str, "Facet"]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Facet:
    name: str
    label: str
    instruction: str
    openers: tuple[str, ...]
    vocabulary: frozenset[str]

    def opener(self, seed: int) -> str:
        """One of the facet's openers, chosen by `seed` (the same seed gives the same opener)."""
        return random.Random(f"{self.name}:{seed}").choice(self.openers)

    def openers_for(self, seed: int, count: int = 1) -> list[str]:
        """`count` different openers chosen by `seed`, the first being `opener(seed)`."""
        first = self.opener(seed)
        rest = [o for o in self.openers if o != first]
        random.Random(f"{self.name}:{seed}:rest").shuffle(rest)
        return [first] + rest[:max(0, count - 1)]

    def hits(self, phrase: str) -> int:
        return sum(w in self.vocabulary for w in _WORD.findall(phrase.lower()))


def load_facets(path: str | Path = FACETS_FILE) -> dict[str, Facet]:
    """The facet table in file order (read once per path); a malformed entry names the facet and the field."""
    import yaml

    key = str(Path(path).resolve())
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    if not Path(path).exists():
        raise FileNotFoundError(f"facets file '{path}' does not exist")
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    table: dict[str, Facet] = {}
    for name, row in (data.get("facets") or {}).items():
        for field_name in ("label", "instruction", "openers", "vocabulary"):
            if not row or not row.get(field_name):
                raise ValueError(f"{path}: facet '{name}' lacks '{field_name}'")
        table[name] = Facet(name=name, label=str(row["label"]), instruction=str(row["instruction"]),
                            openers=tuple(str(o) for o in row["openers"]),
                            vocabulary=frozenset(str(v).lower() for v in row["vocabulary"]))
    if not table:
        raise ValueError(f"{path} names no facets")
    with _LOCK:
        _CACHE[key] = table
    return table


def facet_names() -> tuple[str, ...]:
    return tuple(load_facets())


def check_facets(facets: Sequence[str] | str, name: str = "facets") -> tuple[str, ...]:
    """Facet names as a tuple (a string may list them separated by '+', ',' or spaces); unknown names are an error
    that lists the known ones. An empty selection means an undirected refine."""
    if isinstance(facets, str):
        facets = [f for f in re.split(r"[+,\s]+", facets) if f]
    if not isinstance(facets, (list, tuple)):
        raise ValueError(f"{name} must be a list of facet names, got {facets!r}")
    known = load_facets()
    unknown = [f for f in facets if f not in known]
    if unknown:
        raise ValueError(f"{name}: unknown facet(s) {unknown}; known: {', '.join(known)}")
    if len(set(facets)) != len(facets):
        raise ValueError(f"{name} lists a facet twice: {list(facets)}")
    return tuple(facets)


def check_steering(steering: str) -> tuple[str, ...]:
    parts = tuple(p for p in str(steering).split("+") if p)
    if not parts or any(p not in STEERING for p in parts):
        raise ValueError(f"facet_steering must be one or more of {', '.join(STEERING)} joined by '+', got "
                         f"{steering!r}")
    return parts


def phrases(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def phrase_facet(phrase: str, facets: dict[str, Facet] | None = None) -> str | None:
    """The facet whose vocabulary the phrase holds most (the earlier facet on a tie), or None."""
    facets = load_facets() if facets is None else facets
    best, best_hits = None, 0
    for name, facet in facets.items():
        hits = facet.hits(phrase)
        if hits > best_hits:
            best, best_hits = name, hits
    return best


def facets_present(text: str, skip_first: bool = True) -> list[str]:
    """The facets a prompt's phrases carry, in the order they first appear (the first phrase, the subject, is
    skipped by default)."""
    found: list[str] = []
    for phrase in phrases(text)[1 if skip_first else 0:]:
        name = phrase_facet(phrase)
        if name and name not in found:
            found.append(name)
    return found


def without_facet(text: str, facet: str, keep_words: int) -> str:
    """The prompt's phrases minus those of `facet` (the first phrase, its subject, always stays), cut to at most
    `keep_words` words of whole phrases: the head a refine-further continues from."""
    parts = phrases(text)
    if not parts:
        return ""
    kept, words = [parts[0]], len(parts[0].split())
    for phrase in parts[1:]:
        if phrase_facet(phrase) == facet:
            continue
        if words + len(phrase.split()) > keep_words:
            break
        kept.append(phrase)
        words += len(phrase.split())
    return ", ".join(kept)


def steer_prefix(head: str, facet: Facet, seed: int, openers: int = 1) -> str:
    """The start of a steered answer: the head (the user's prompt, or the picked prompt without this facet's
    phrases) and `openers` of the facet's openers, each its own phrase (so a later refine-further can find and
    change them); the rewriter writes on from there. With `openers` 0 the answer starts with the head alone (the
    facet is then asked for by instruction)."""
    head = head.strip().rstrip(",.;")
    return ", ".join([head, *(facet.openers_for(seed, openers) if openers else [])])


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def focus(texts: Sequence[str], facets: Sequence[str | None], heads: Sequence[str],
          min_words: int | Sequence[int] = 0, overlap: float = 0.5) -> list[str]:
    """The chosen candidates, each kept to its own facet: a phrase after a candidate's head (its subject and the
    opener of its facet: kept whole) is dropped when it is about a facet that another candidate was written for
    (that candidate says it), or when it shares at least `overlap` of its words with a phrase of another candidate
    (the same phrase in every candidate is what makes them alike). Phrases are dropped from the end backwards, and
    never below `min_words` words (one number, or one per candidate). Undirected candidates (facet None) are
    returned as they are."""
    if not (len(texts) == len(facets) == len(heads)):
        raise ValueError(f"texts, facets and heads must have one entry per candidate, got {len(texts)}, "
                         f"{len(facets)} and {len(heads)}")
    table = load_facets()
    floors = [int(min_words)] * len(texts) if isinstance(min_words, int) else [int(m) for m in min_words]
    if len(floors) != len(texts):
        raise ValueError(f"min_words must be one number or one per candidate, got {len(floors)} for {len(texts)}")
    others_of = [{f for j, f in enumerate(facets) if j != i and f} for i in range(len(texts))]
    out = []
    for i, text in enumerate(texts):
        if not facets[i] or not text.startswith(heads[i]):
            out.append(text)
            continue
        parts = phrases(text)
        fixed = len(phrases(heads[i]))  # the head's phrases (the opener's phrase with what the model wrote on it)
        other_phrases = [_words(p) for j, t in enumerate(texts) if j != i for p in phrases(t)[1:]]
        words = len(text.split())
        keep = [True] * len(parts)
        for k in range(len(parts) - 1, fixed - 1, -1):
            phrase = parts[k]
            size = len(phrase.split())
            if words - size < floors[i]:
                continue
            mine = _words(phrase)
            shared = any(len(mine & o) >= overlap * max(1, len(mine)) for o in other_phrases if o)
            if phrase_facet(phrase, table) in others_of[i] or shared:
                keep[k] = False
                words -= size
        out.append(", ".join(p for p, k in zip(parts, keep) if k))
    return out
