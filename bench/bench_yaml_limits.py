"""Hostile study files ("Check a study file"): the bounded reader (workbench/checked_yaml.py) against the reader
before the limits (its text from git, commit f3dce14), each case in a fresh process.
Prints seconds and the process's resident memory before/after per case, and the time ratio.

    python bench/bench_yaml_limits.py [--levels 6]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "f3dce14"  # the last commit whose read_yaml had no limits

CHILD = r"""
import json, resource, sys, time, types
sys.path.insert(0, sys.argv[1])
def rss_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
which, text = sys.argv[2], sys.stdin.read()
if which == 'baseline':
    mod = types.ModuleType('old_checked_yaml'); sys.modules['old_checked_yaml'] = mod; exec(sys.argv[3], mod.__dict__); read_yaml = mod.read_yaml
else:
    from workbench.checked_yaml import read_yaml
import yaml  # imported before the first reading: only the reading's memory counts
before = rss_mb(); t = time.perf_counter()
try:
    data, _, problems = read_yaml(text, 'bench.yaml'); outcome = problems[0].message[:60] if problems else 'read'
except RecursionError:
    outcome = 'RecursionError'
seconds = time.perf_counter() - t
import gc; gc.collect()
print(json.dumps({'seconds': seconds, 'before': before, 'after': rss_mb(), 'outcome': outcome}))
"""


def alias_bomb(levels: int, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\ncode: BOMB-1\ntitle: *a{levels}\n"


def run(which: str, text: str, old_source: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), which, old_source], input=text, text=True,
                         capture_output=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=6)
    args = parser.parse_args()
    if not 1 <= args.levels <= 7:
        parser.error("--levels must be between 1 and 7 (the unbounded baseline needs 9**levels values)")
    old = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:workbench/checked_yaml.py"], cwd=ROOT, text=True,
                         capture_output=True, check=True).stdout
    cases = {f"alias bomb, {lv} levels": alias_bomb(lv) for lv in range(max(1, args.levels - 2), args.levels + 1)}
    cases["self-referencing alias"] = "code: abc\ntitle: &t [a, *t]\n"
    cases["shipped study"] = (ROOT / "assets" / "studies" / "refiner_ab.yaml").read_text()
    print(f"{'case':<26}{'reader':<10}{'seconds':>10}{'RSS before MB':>15}{'RSS after MB':>14}{'time ratio':>12}  outcome")
    for name, text in cases.items():
        base, new = run("baseline", text, old), run("bounded", text, old)
        for label, r in (("baseline", base), ("bounded", new)):
            ratio = r["seconds"] / base["seconds"] if base["seconds"] else float("nan")
            print(f"{name:<26}{label:<10}{r['seconds']:>10.4f}{r['before']:>15.0f}{r['after']:>14.0f}{ratio:>12.4f}  "
                  f"{r['outcome']}")


if __name__ == "__main__":
    main()
