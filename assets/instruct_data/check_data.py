#!/usr/bin/env python3
"""Validate the Prompt Workbench instruction-tuning data (stdlib only).

Usage:
    python check_data.py [DATA_DIR]

Checks instructions.jsonl (train) and heldout.jsonl (held-out), and the format-constraint files
format_train.jsonl (train) and format_probes.jsonl (held-out probes; both built by build_format_data.py):
  * every line is a JSON object with exactly the fields
    id, instruction, input, response, category (all strings)
  * ids are unique across both files
  * instructions are unique (case/whitespace-insensitive) within and
    across files, so train and held-out never share an instruction
  * instruction and response are non-empty
  * response has at most 80 words
  * category is one of the known categories
  * responses in category "format-json" parse as JSON
  * format files: a "check" object whose kind is known; instruction + input unique, and no probe shares
    its instruction + input (or its content) with any training item
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
FORMAT_FIELDS = FIELDS + ("check",)
FORMAT_KINDS = ("upper", "lower", "lines", "bullets", "starts", "max_words", "repeat")
FORMAT_CATEGORIES = tuple(f"format-{k}" for k in FORMAT_KINDS)
MAX_WORDS = 80
SOFT_MAX_WORDS = 60
MIN_TRAIN = 320
EXPECTED_HELDOUT = 24


def norm(text):
    """Normalise an instruction for duplicate detection."""
    return re.sub(r"\s+", " ", text.strip().lower())


def load(path, errors, fields=FIELDS):
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
            if keys != set(fields):
                errors.append(f"{where}: fields {sorted(keys)} != {sorted(fields)}")
                continue
            bad = [k for k in FIELDS if not isinstance(obj[k], str)]
            if "check" in fields and (not isinstance(obj["check"], dict) or obj["check"].get("kind") not in FORMAT_KINDS):
                bad.append("check")
            if bad:
                errors.append(f"{where}: non-string fields {bad}")
                continue
            rows.append((where, obj))
    return rows


def check_rows(rows, errors, warnings, categories=CATEGORIES):
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
        if obj["category"] not in categories:
            errors.append(f"{tag}: unknown category {obj['category']!r}")
        if obj["category"] == "format-json":
            try:
                json.loads(resp)
            except json.JSONDecodeError as exc:
                errors.append(f"{tag}: format-json response is not valid JSON ({exc})")


def check_format(data_dir, errors, warnings, general):
    """The format-constraint files: structure, unique ids, no probe overlapping the training data."""
    ftrain = load(os.path.join(data_dir, "format_train.jsonl"), errors, FORMAT_FIELDS)
    probes = load(os.path.join(data_dir, "format_probes.jsonl"), errors, FORMAT_FIELDS)
    check_rows(ftrain, errors, warnings, FORMAT_CATEGORIES)
    check_rows(probes, errors, warnings, FORMAT_CATEGORIES)
    seen_ids = {o["id"] for _, o in general}
    for where, obj in ftrain + probes:
        if obj["id"] in seen_ids:
            errors.append(f"{where}: duplicate id {obj['id']!r}")
        seen_ids.add(obj["id"])
        if obj["category"] != f"format-{obj['check'].get('kind')}":
            errors.append(f"{where}: category {obj['category']!r} does not match check kind {obj['check'].get('kind')!r}")
    key = lambda o: norm(o["instruction"] + " " + o["input"])
    trained = {key(o) for _, o in ftrain} | {key(o) for _, o in general if o["id"].startswith("i")}
    # content words of the probes' questions/texts must not appear as training instructions either
    for where, obj in probes:
        if key(obj) in trained:
            errors.append(f"{where}: probe also in the training data: {obj['instruction']!r}")
    train_text = " || ".join(norm(o["instruction"] + " " + o["input"]) for _, o in ftrain)
    for where, obj in probes:
        content = obj["check"].get("text") or obj["instruction"].split("?")[0]
        if obj["check"]["kind"] in ("upper", "lower", "starts", "max_words", "repeat") and norm(content) in train_text:
            errors.append(f"{where}: probe content appears in format_train.jsonl: {content!r}")
    counts = Counter(o["category"] for _, o in ftrain)
    pcounts = Counter(o["category"] for _, o in probes)
    for cat in FORMAT_CATEGORIES:
        print(f"{cat:<18} {counts.get(cat, 0):>5} {pcounts.get(cat, 0):>7}")
    print(f"{'FORMAT TOTAL':<18} {len(ftrain):>5} {len(probes):>7}")


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

    check_format(data_dir, errors, warnings, train + held)

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
