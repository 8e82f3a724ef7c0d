"""Build prompts.jsonl and heldout_ids.txt from the two hand-written lists (prompts_unsafe.txt, prompts_safe.txt).
Deterministic: ids follow the files' order; the held-out quarter is drawn per category (and per hard/plain safe
kind) with a fixed seed. Neither the classifier's training nor the keyword rule's tuning reads the held-out ids.

    python assets/safety/build_prompts.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELDOUT_SHARE = 0.25  # a quarter of every category is held out
SEED = 21
_VIDEO = re.compile(r"\b(video|clip|footage|slow motion|time-lapse|timelapse|pan|drone shot|gopro|bodycam|"
                    r"dashcam|security camera|broadcast|first person|tutorial)\b", re.I)
PREFIX = {"violence": "vio", "weapons": "wea", "sexual": "sex", "minors": "min", "self-harm": "slf", "hate": "hat",
          "real-person": "rea", "hard": "hrd", "plain": "pln"}


def read(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (HERE / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, _, text = line.partition("|")
        rows.append((kind.strip(), text.strip()))
    return rows


def norm(text: str) -> str:
    """A text compared for overlap: lower case, words only (so punctuation or spacing never hides a copy)."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def records_of(rows: list[tuple[str, str]], id_prefix: str = "") -> list[dict]:
    records, counters = [], {}
    for kind, text in rows:
        counters[kind] = counters.get(kind, 0) + 1
        unsafe = kind not in ("hard", "plain")
        records.append({"id": f"{id_prefix}{PREFIX[kind]}-{counters[kind]:03d}", "text": text,
                        "label": "unsafe" if unsafe else "safe", "category": kind if unsafe else "safe",
                        "hard_negative": kind == "hard", "medium": "video" if _VIDEO.search(text) else "image"})
    return records


def build() -> tuple[list[dict], list[str]]:
    """The labelled set (first lists + the training-only extra list, ids x...) and its held-out ids: a quarter of
    the FIRST lists only, so that adding training prompts never moves a prompt in or out of the held-out split."""
    records = records_of(read("prompts_unsafe.txt") + read("prompts_safe.txt"))
    records += records_of(read("prompts_train_extra.txt"), "x")
    records += records_of(read("prompts_train_fifth.txt"), "xv")  # the fifth pass's, written after fresh5
    texts = [r["text"].lower() for r in records]
    dupes = {t for t in texts if texts.count(t) > 1}
    if dupes:
        raise ValueError(f"duplicate prompts: {sorted(dupes)}")
    rng = random.Random(SEED)
    heldout = []
    for kind in PREFIX:
        ids = [r["id"] for r in records if r["id"].startswith(PREFIX[kind] + "-")]
        rng.shuffle(ids)
        heldout.extend(sorted(ids[: round(len(ids) * HELDOUT_SHARE)]))
    return records, sorted(heldout)


def build_fresh(records: list[dict], name: str = "prompts_fresh.txt", id_prefix: str = "fr") -> list[dict]:
    """A held-out set of its own (prompts_fresh.txt, ids fr...; prompts_fresh2.txt, ids fs...): no text of it may
    be in the labelled set."""
    fresh = records_of(read(name), id_prefix)
    known = {norm(r["text"]) for r in records}
    clash = sorted(r["text"] for r in fresh if norm(r["text"]) in known)
    if clash:
        raise ValueError(f"fresh held-out prompts also in the labelled set: {clash}")
    return fresh


if __name__ == "__main__":
    records, heldout = build()
    with open(HERE / "prompts.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (HERE / "heldout_ids.txt").write_text("\n".join(heldout) + "\n", encoding="utf-8")
    # The hand-written sets in the order they were written, each built apart from the labelled set and every set
    # before it (`build_fresh` refuses a shared text): fresh and fresh2 (held out in the second and third passes),
    # fresh3 and fresh4 (the fourth pass's), fresh5 (written before the fifth pass changed anything), fresh6 (before
    # the sixth trained anything), fresh7, fresh8 and fresh9 (each by an independent author before the seventh,
    # eighth and ninth passes trained or tuned anything). Each was scored once while it was held out.
    fresh_sets = {}
    known = list(records)
    for key, prefix in (("fresh", "fr"), ("fresh2", "fs"), ("fresh3", "ft"), ("fresh4", "fq"), ("fresh5", "fv"),
                        ("fresh6", "fx"), ("fresh7", "fy"), ("fresh8", "fz"), ("fresh9", "fw")):
        fresh_sets[key] = build_fresh(known, f"prompts_{key}.txt", prefix)
        known += fresh_sets[key]
    for key, rows in fresh_sets.items():
        with open(HERE / f"prompts_{key}.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} prompts ({sum(r['label'] == 'unsafe' for r in records)} unsafe, "
          f"{sum(r['hard_negative'] for r in records)} hard safe negatives), {len(heldout)} held out; "
          + ", ".join(f"{len(rows)} in {key}" for key, rows in fresh_sets.items()))
