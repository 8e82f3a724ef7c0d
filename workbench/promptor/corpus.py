"""The labelled corpus of designer messages (assets/promptor/corpus.yaml) the offline interpreter's similarity
draws on (train split), and its evaluation on the held-out split: intent accuracy (the predicted intent set equals
the labelled one, and the target stage or field of a move or back matches) and field accuracy (per labelled-or-predicted field, the value overlaps the labelled value with
token F1 >= 0.5; a field predicted but not labelled, or missed, counts as wrong), plus example counts.

`python -m workbench.promptor corpus` prints the table."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.promptor.interpret import INTENTS
from workbench.promptor.tasks import FIELD_NAMES

CORPUS_FILE = Path(__file__).resolve().parents[2] / "assets" / "promptor" / "corpus.yaml"
SPLITS = ("train", "heldout")
STAGES = ("understand", "evaluate", "test", "final")


def load_corpus(path: str | Path = CORPUS_FILE) -> list[dict[str, Any]]:
    """The messages, checked: each has text, a split, a stage, known intents and fields."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    items = data.get("messages") or []
    for number, item in enumerate(items, 1):
        where = f"{path}: message {number}"
        if not isinstance(item, dict) or not str(item.get("text", "")).strip():
            raise ValueError(f"{where}: needs a text")
        item.setdefault("split", "train")
        item.setdefault("stage", "understand")
        item.setdefault("asking", "")
        item.setdefault("fields", {})
        item.setdefault("examples", 0)
        if item["split"] not in SPLITS:
            raise ValueError(f"{where}: split must be one of {SPLITS}, got {item['split']!r}")
        if item["stage"] not in STAGES:
            raise ValueError(f"{where}: stage must be one of {STAGES}, got {item['stage']!r}")
        if item["asking"] and item["asking"] not in FIELD_NAMES:
            raise ValueError(f"{where}: asking must be a field name, got {item['asking']!r}")
        bad = [i for i in item.get("intents") or [] if i not in INTENTS]
        if bad or not item.get("intents"):
            raise ValueError(f"{where}: intents must be a non-empty list from {INTENTS}, got {item.get('intents')}")
        unknown = [f for f in item["fields"] if f not in FIELD_NAMES]
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}")
    return items


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", str(text).lower())


def token_f1(pred: str, gold: str) -> float:
    p, g = _tokens(pred), _tokens(gold)
    if not p or not g:
        return float(p == g)
    common = sum(min(p.count(w), g.count(w)) for w in set(p))
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


@dataclass
class CorpusScore:
    split: str
    interpreter: str
    messages: int
    intent_accuracy: float
    field_accuracy: float
    field_cases: int
    example_accuracy: float  # the number of examples found equals the labelled number
    seconds_per_message: float
    misses: list[str] = field(default_factory=list)


def evaluate(interpreter: Any, items: list[dict[str, Any]], split: str = "heldout") -> CorpusScore:
    chosen = [m for m in items if m["split"] == split]
    if not chosen:
        raise ValueError(f"no messages in split {split!r}")
    intents_right = fields_right = field_cases = examples_right = 0
    misses: list[str] = []
    start = time.perf_counter()
    for item in chosen:
        context = {"stage": item["stage"], "asking": item["asking"] if item["stage"] == "understand" else "",
                   "fields": {}, "has_draft": item["stage"] != "understand", "awaiting": item.get("awaiting"),
                   "last_field": item.get("last_field", "")}
        got = interpreter.interpret(item["text"], context)
        gold_intents = set(item["intents"])
        targets_right = all(not item.get(key) or getattr(got, key) == item[key]
                            for key in ("target_stage", "target_field"))
        if set(got.intents) == gold_intents and targets_right:
            intents_right += 1
        else:
            misses.append(f"intents {sorted(got.intents)} {got.target_stage}/{got.target_field} != "
                          f"{sorted(gold_intents)} {item.get('target_stage', '')}/{item.get('target_field', '')}: "
                          f"{item['text'][:70]}")
        gold = {k: str(v) for k, v in (item.get("fields") or {}).items()}
        pred = dict(got.fields)
        if got.ask:  # a guess the agent would ask about counts as that field
            pred.setdefault(got.ask["field"], got.ask["value"])
        for name in set(gold) | set(pred):
            field_cases += 1
            if name in gold and name in pred and token_f1(pred[name], gold[name]) >= 0.5:
                fields_right += 1
            else:
                misses.append(f"field {name}: {pred.get(name)!r} vs {gold.get(name)!r}: {item['text'][:60]}")
        if len(got.examples) == int(item.get("examples") or 0):
            examples_right += 1
        else:
            misses.append(f"examples {len(got.examples)} != {item.get('examples')}: {item['text'][:60]}")
    seconds = (time.perf_counter() - start) / len(chosen)
    return CorpusScore(split, interpreter.name, len(chosen), intents_right / len(chosen),
                       fields_right / field_cases if field_cases else 1.0, field_cases, examples_right / len(chosen),
                       seconds, misses)


def table(scores: list[CorpusScore]) -> str:
    lines = ["| split | interpreter | messages | intent accuracy | field accuracy (cases) | example count "
             "accuracy | ms per message |", "|---|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {s.split} | {s.interpreter} | {s.messages} | {s.intent_accuracy:.3f} | "
                     f"{s.field_accuracy:.3f} ({s.field_cases}) | {s.example_accuracy:.3f} | "
                     f"{1000 * s.seconds_per_message:.1f} |")
    return "\n".join(lines)
