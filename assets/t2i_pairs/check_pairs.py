#!/usr/bin/env python3
"""Validate assets/t2i_pairs/pairs.jsonl (stdlib only).

Usage:
    python check_pairs.py [path/to/pairs.jsonl]

Checks every line and exits non-zero if any check fails:
  * each non-empty line is a JSON object with exactly the fields
    id, coarse, fine, bucket, category (all non-empty strings);
  * ids are unique and look like p0001;
  * coarse prompts are unique (case- and whitespace-insensitive);
  * bucket is one of 1-5 / 6-10 / 11-15 and matches the real
    whitespace-separated word count of `coarse`;
  * category is one of the allowed categories;
  * `fine` has more words than `coarse` and is 20-90 words long.

It also prints counts per bucket and per category, and how many `fine`
prompts are over 60 words (these are the intentional long cases that
should trip the app's CLIP 77-token flag).
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

FIELDS = {"id", "coarse", "fine", "bucket", "category"}
BUCKETS = {"1-5": (1, 5), "6-10": (6, 10), "11-15": (11, 15)}
CATEGORIES = [
    "animals", "people", "landscapes", "architecture", "food", "vehicles",
    "fantasy", "sci-fi", "still-life", "interiors", "fashion", "abstract",
    "nature-closeup", "sports", "events",
]
ID_RE = re.compile(r"^p\d{4,}$")
FINE_MIN_WORDS = 20
FINE_MAX_WORDS = 90
LONG_WORDS = 60
MIN_PAIRS = 330


def bucket_for(n_words):
    for name, (lo, hi) in BUCKETS.items():
        if lo <= n_words <= hi:
            return name
    return None


def check(path):
    errors = []
    ids = set()
    coarse_seen = {}
    buckets = Counter()
    categories = Counter()
    long_fine = 0
    n = 0

    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            where = f"line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: invalid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                errors.append(f"{where}: not a JSON object")
                continue
            n += 1
            keys = set(obj)
            if keys != FIELDS:
                errors.append(
                    f"{where}: fields {sorted(keys)} != {sorted(FIELDS)}")
            if not all(isinstance(obj.get(k), str) and obj.get(k).strip()
                       for k in FIELDS):
                errors.append(f"{where}: every field must be a non-empty string")
                continue

            pid = obj["id"]
            where = f"line {lineno} ({pid})"
            if not ID_RE.match(pid):
                errors.append(f"{where}: id should look like p0001")
            if pid in ids:
                errors.append(f"{where}: duplicate id")
            ids.add(pid)

            coarse, fine = obj["coarse"], obj["fine"]
            key = " ".join(coarse.lower().split())
            if key in coarse_seen:
                errors.append(
                    f"{where}: duplicate coarse prompt (first at {coarse_seen[key]})")
            else:
                coarse_seen[key] = pid

            cw = len(coarse.split())
            fw = len(fine.split())
            expected = bucket_for(cw)
            if obj["bucket"] not in BUCKETS:
                errors.append(f"{where}: unknown bucket {obj['bucket']!r}")
            elif expected is None:
                errors.append(f"{where}: coarse has {cw} words, outside 1-15")
            elif obj["bucket"] != expected:
                errors.append(
                    f"{where}: bucket {obj['bucket']} but coarse has {cw} words ({expected})")

            if obj["category"] not in CATEGORIES:
                errors.append(f"{where}: unknown category {obj['category']!r}")

            if fw <= cw or len(fine) <= len(coarse):
                errors.append(f"{where}: fine is not longer than coarse")
            if not FINE_MIN_WORDS <= fw <= FINE_MAX_WORDS:
                errors.append(
                    f"{where}: fine has {fw} words, expected {FINE_MIN_WORDS}-{FINE_MAX_WORDS}")
            if fw > LONG_WORDS:
                long_fine += 1

            buckets[obj["bucket"]] += 1
            categories[obj["category"]] += 1

    if n < MIN_PAIRS:
        errors.append(f"only {n} pairs, expected at least {MIN_PAIRS}")
    missing = [c for c in CATEGORIES if categories[c] == 0]
    if missing:
        errors.append(f"categories with no pairs: {', '.join(missing)}")

    print(f"{path}: {n} pairs")
    print("per bucket:")
    for name in BUCKETS:
        print(f"  {name:>6}: {buckets[name]}")
    print("per category:")
    for name in CATEGORIES:
        print(f"  {name:>15}: {categories[name]}")
    print(f"fine prompts over {LONG_WORDS} words (intentional long cases): "
          f"{long_fine} ({100.0 * long_fine / max(n, 1):.1f}%)")

    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)", file=sys.stderr)
        for err in errors:
            print(f"  {err}", file=sys.stderr)
        return 1
    print("OK")
    return 0


def main(argv):
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("pairs.jsonl")
    return check(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
