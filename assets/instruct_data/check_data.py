#!/usr/bin/env python3
"""Validate the Prompt Workbench instruction-tuning data (stdlib only).

Usage:
    python check_data.py [DATA_DIR]

Checks instructions.jsonl (train) and heldout.jsonl (held-out):
  * every line is a JSON object with exactly the fields
    id, instruction, input, response, category (all strings)
  * ids are unique across both files
  * instructions are unique (case/whitespace-insensitive) within and
    across files, so train and held-out never share an instruction
  * instruction and response are non-empty
  * response has at most 80 words
  * category is one of the known categories
  * responses in category "format-json" parse as JSON
Prints counts per category and exits non-zero on any failure.
"""

import json
import os
import re
import sys
from collections import Counter

CATEGORIES = (
    "list", "rewrite", "summarise", "classify", "extract", "qa-fact",
    "format-json", "translate", "count-or-math", "yes-no", "one-word",
    "title", "complete-sentence", "explain-simple", "compare",
)
FIELDS = ("id", "instruction", "input", "response", "category")
MAX_WORDS = 80
SOFT_MAX_WORDS = 60
MIN_TRAIN = 320
EXPECTED_HELDOUT = 24


def norm(text):
    """Normalise an instruction for duplicate detection."""
    return re.sub(r"\s+", " ", text.strip().lower())


def load(path, errors):
    rows = []
    if not os.path.exists(path):
        errors.append(f"{path}: file missing")
        return rows
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            where = f"{os.path.basename(path)}:{lineno}"
            if not line.strip():
                errors.append(f"{where}: blank line")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: invalid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                errors.append(f"{where}: not a JSON object")
                continue
            keys = set(obj)
            if keys != set(FIELDS):
                errors.append(f"{where}: fields {sorted(keys)} != {sorted(FIELDS)}")
                continue
            bad = [k for k in FIELDS if not isinstance(obj[k], str)]
            if bad:
                errors.append(f"{where}: non-string fields {bad}")
                continue
            rows.append((where, obj))
    return rows


def check_rows(rows, errors, warnings):
    for where, obj in rows:
        tag = f"{where} ({obj['id']})"
        if not obj["id"].strip():
            errors.append(f"{tag}: empty id")
        if not obj["instruction"].strip():
            errors.append(f"{tag}: empty instruction")
        resp = obj["response"].strip()
        if not resp:
            errors.append(f"{tag}: empty response")
        n_words = len(resp.split())
        if n_words > MAX_WORDS:
            errors.append(f"{tag}: response has {n_words} words (> {MAX_WORDS})")
        elif n_words > SOFT_MAX_WORDS:
            warnings.append(f"{tag}: response has {n_words} words (> {SOFT_MAX_WORDS})")
        if obj["category"] not in CATEGORIES:
            errors.append(f"{tag}: unknown category {obj['category']!r}")
        if obj["category"] == "format-json":
            try:
                json.loads(resp)
            except json.JSONDecodeError as exc:
                errors.append(f"{tag}: format-json response is not valid JSON ({exc})")


def main(argv):
    data_dir = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    train_path = os.path.join(data_dir, "instructions.jsonl")
    held_path = os.path.join(data_dir, "heldout.jsonl")
    errors, warnings = [], []

    train = load(train_path, errors)
    held = load(held_path, errors)
    check_rows(train, errors, warnings)
    check_rows(held, errors, warnings)

    # Unique ids across both files.
    seen_ids = {}
    for where, obj in train + held:
        if obj["id"] in seen_ids:
            errors.append(f"{where}: duplicate id {obj['id']!r} (first at {seen_ids[obj['id']]})")
        else:
            seen_ids[obj["id"]] = where

    # Unique instructions within each file.
    for rows in (train, held):
        seen = {}
        for where, obj in rows:
            key = norm(obj["instruction"])
            if key in seen:
                errors.append(f"{where}: duplicate instruction (first at {seen[key]}): {obj['instruction']!r}")
            else:
                seen[key] = where

    # No overlap between train and held-out instructions.
    train_instr = {norm(o["instruction"]): w for w, o in train}
    for where, obj in held:
        key = norm(obj["instruction"])
        if key in train_instr:
            errors.append(f"{where}: held-out instruction also in train ({train_instr[key]}): {obj['instruction']!r}")

    if len(train) < MIN_TRAIN:
        errors.append(f"instructions.jsonl: {len(train)} valid items (< {MIN_TRAIN})")
    if len(held) != EXPECTED_HELDOUT:
        warnings.append(f"heldout.jsonl: {len(held)} items (expected {EXPECTED_HELDOUT})")

    # Report.
    train_counts = Counter(o["category"] for _, o in train)
    held_counts = Counter(o["category"] for _, o in held)
    print(f"{'category':<18} {'train':>5} {'heldout':>7}")
    for cat in CATEGORIES:
        print(f"{cat:<18} {train_counts.get(cat, 0):>5} {held_counts.get(cat, 0):>7}")
    print(f"{'TOTAL':<18} {len(train):>5} {len(held):>7}")
    for cat in CATEGORIES:
        if train_counts.get(cat, 0) == 0:
            warnings.append(f"category {cat!r} has no training items")
    if train:
        with_input = sum(1 for _, o in train if o["input"].strip())
        words = sorted(len(o["response"].split()) for _, o in train)
        under35 = sum(1 for w in words if w <= 35)
        print(f"train items with input: {with_input} ({100 * with_input / len(train):.0f}%)")
        print(f"train response words: median {words[len(words) // 2]}, max {words[-1]}, "
              f"<=35 words: {100 * under35 / len(words):.0f}%")

    for w in warnings:
        print(f"WARNING: {w}")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    if errors:
        print(f"FAILED with {len(errors)} error(s)", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
