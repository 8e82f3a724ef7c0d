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
    fresh = build_fresh(records)
    fresh2 = build_fresh(records + fresh, "prompts_fresh2.txt", "fs")
    # fresh3: the held-out set of the fourth pass; none of its texts may be in any text that is trained on
    # (the labelled set, fresh and fresh2, which the fourth pass folds into training)
    fresh3 = build_fresh(records + fresh + fresh2, "prompts_fresh3.txt", "ft")
    # fresh4: written after every change of the fourth pass, scored once; apart from every other set
    fresh4 = build_fresh(records + fresh + fresh2 + fresh3, "prompts_fresh4.txt", "fq")
    # fresh5: written before the fifth pass changed anything, scored once with its final check; apart from every
    # other set
    fresh5 = build_fresh(records + fresh + fresh2 + fresh3 + fresh4, "prompts_fresh5.txt", "fv")
    # fresh6: written before the sixth pass (the fine-tuned encoder) trained anything, scored once with its final
    # check; apart from every other set
    fresh6 = build_fresh(records + fresh + fresh2 + fresh3 + fresh4 + fresh5, "prompts_fresh6.txt", "fx")
    # fresh7: written before the seventh pass trained or tuned anything, scored once with its final check; apart
    # from every other set
    fresh7 = build_fresh(records + fresh + fresh2 + fresh3 + fresh4 + fresh5 + fresh6, "prompts_fresh7.txt",
                         "fy")
    # fresh8: written before the eighth pass trained or tuned anything, scored once with its final check; apart
    # from every other set
    fresh8 = build_fresh(records + fresh + fresh2 + fresh3 + fresh4 + fresh5 + fresh6 + fresh7,
                         "prompts_fresh8.txt", "fz")
    # fresh9: written before the ninth pass trained or tuned anything, to be scored once with its final check; apart
    # from every other set
    fresh9 = build_fresh(records + fresh + fresh2 + fresh3 + fresh4 + fresh5 + fresh6 + fresh7 + fresh8,
                         "prompts_fresh9.txt", "fw")
    for name, rows in (("prompts_fresh.jsonl", fresh), ("prompts_fresh2.jsonl", fresh2),
                       ("prompts_fresh3.jsonl", fresh3), ("prompts_fresh4.jsonl", fresh4),
                       ("prompts_fresh5.jsonl", fresh5), ("prompts_fresh6.jsonl", fresh6),
                       ("prompts_fresh7.jsonl", fresh7), ("prompts_fresh8.jsonl", fresh8),
                       ("prompts_fresh9.jsonl", fresh9)):
        with open(HERE / name, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} prompts ({sum(r['label'] == 'unsafe' for r in records)} unsafe, "
          f"{sum(r['hard_negative'] for r in records)} hard safe negatives), {len(heldout)} held out; "
          f"{len(fresh)} + {len(fresh2)} in the fresh sets (trained on since the fourth pass), {len(fresh3)} in fresh3, "
          f"{len(fresh4)} in fresh4, {len(fresh5)} in fresh5, {len(fresh6)} in fresh6, "
          f"{len(fresh7)} in fresh7, {len(fresh8)} in fresh8, {len(fresh9)} in fresh9")
