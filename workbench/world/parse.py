"""Reading captions back: a fine or coarse caption -> the scene attributes it states, and the words of any
prompt that lie outside the world's vocabulary (named, never silently dropped)."""

from __future__ import annotations

import re

from workbench.world.vocabulary import Vocabulary, load_vocabulary

MAX_PROMPT_CHARS = 10_000
_WORD = re.compile(r"[a-z0-9']+")


def _phrases(v: Vocabulary) -> list[tuple[tuple[str, ...], str, object]]:
    table: list[tuple[str, str, object]] = []
    table += [(s, "shape", s) for s in v.shapes]
    table += [(c, "colour", c) for c in v.colours]
    table += [(s, "size", s) for s in v.sizes]
    table += [(p, "position", list(c)) for p, c in v.positions.items()]
    table += [(p, "relation", n) for p, n in v.relations.items()]
    table += [(f, "finish", f) for f in v.finishes]  # striped/dotted also name backgrounds, read by context
    table += [(b, "background", b) for b in v.backgrounds if b not in v.finishes]
    table += [(p, "effect", n) for p, n in v.effects.items()] + [(n, "effect", n) for n in v.effects.values()]
    table += [(s, "style", s) for s in v.styles]
    table += [(p, "direction", d) for p, d in v.directions.items()]
    table += [(w, "speed", s) for w, s in v.speeds.items()]
    table += [(p, "motion", k) for p, k in v.other_motions.items()]
    table += [(w, "word", w) for w in v.function_words]
    out = [(tuple(p.split()), cat, val) for p, cat, val in table]
    out.sort(key=lambda e: -len(e[0]))  # longest phrase first: "in the top left" before "left"
    return out


def _words(text) -> list[str]:
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"text must be at most {MAX_PROMPT_CHARS} characters, got {len(text)}")
    return _WORD.findall(text.lower())


def _tokens(text: str, v: Vocabulary):
    """(category, value, words) for each matched phrase; category "unknown" for a word outside the world."""
    words, table, i, out = _words(text), _phrases(v), 0, []
    while i < len(words):
        for phrase, cat, val in table:
            if tuple(words[i:i + len(phrase)]) == phrase:
                out.append((cat, val, phrase))
                i += len(phrase)
                break
        else:
            out.append(("unknown", words[i], (words[i],)))
            i += 1
    return out


def unknown_words(prompt: str, vocab: Vocabulary | None = None) -> list[str]:
    """The words of `prompt` outside the world's vocabulary, in order of first appearance, each once."""
    seen: list[str] = []
    for cat, val, _ in _tokens(prompt, vocab or load_vocabulary()):
        if cat == "unknown" and val not in seen:
            seen.append(val)
    return seen


def parse_caption(text: str, vocab: Vocabulary | None = None) -> dict:
    """The attributes a caption states, in the form of `Scene.stated(level)`; words outside the vocabulary are
    listed under "unknown_words" (absent when there are none)."""
    v = vocab or load_vocabulary()
    objects: list[dict] = []
    out: dict = {"objects": objects}
    unknown: list[str] = []
    in_background = False
    cur: dict | None = None

    def obj() -> dict:
        nonlocal cur
        if cur is None:
            cur = {}
            objects.append(cur)
        return cur

    for cat, val, phrase in _tokens(text, v):
        if cat == "word":
            if val in ("a", "an") and not in_background:
                cur = None  # the next attribute starts a new object
            elif val == "on":
                in_background = True
        elif cat == "unknown":
            if val not in unknown:
                unknown.append(val)
        elif cat == "colour":
            if in_background:
                out["background_colour"] = val
            else:
                obj()["colour"] = val
        elif cat == "finish":
            if in_background:
                out["background"] = val
            else:
                obj()["finish"] = val
        elif cat == "background":
            in_background = True
            out["background"] = val
        elif cat in ("effect", "style", "relation"):
            out[cat] = val
        elif cat == "direction":
            o = obj()
            o["motion"], o["direction"] = "move", val
        elif cat == "motion":
            obj()["motion"] = val
        else:  # shape, size, position, speed
            obj()[cat] = val
    if unknown:
        out["unknown_words"] = unknown
    return out
