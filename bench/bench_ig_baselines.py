"""Which integrated-gradients baseline and step count converge on the offline pair: the completeness error
(|sum of attributions - (p(x) - p(baseline))| relative to |p(x) - p(baseline)|) of every answer token, for each
baseline (pad token, zero embedding, vocabulary mean embedding) and step count, on held-out instruction prompts
(assets/instruct_data/heldout.jsonl, never trained on), both models. The tab's default is the cheapest setting
whose errors stay under the 5% tolerance here.

    OMP_NUM_THREADS=1 python -m bench.bench_ig_baselines                        # 4 prompts, 16 and 32 steps
    OMP_NUM_THREADS=1 python -m bench.bench_ig_baselines --prompts 8 --steps 16 32 64 --baselines zero mean
    OMP_NUM_THREADS=1 python -m bench.bench_ig_baselines --model tiny           # a smoke run

Times are process CPU seconds (one thread by default), summed over prompts and both models. Error columns are
over every (prompt, model, answer token): the median, the 90th percentile, the maximum, and the share within 5%.
Answer tokens whose gap |p(x) - p(baseline)| is below 1e-4 are counted apart (a relative error of a vanishing
gap says little); the table gives how many there were.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "assets" / "instruct_data" / "heldout.jsonl"
TINY_GAP = 1e-4


def heldout_prompts(n: int) -> list[str]:
    rows = [json.loads(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    step = max(1, len(rows) // n)  # spread over the categories, which the file groups
    picked = rows[::step][:n]
    return [(r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")).strip() for r in picked]


def main() -> None:
    import numpy as np

    from bench.bench_shift_analysis import pair_specs
    from workbench.models import ModelManager
    from workbench.shift.analysis import greedy_answer
    from workbench.shift.attribution import attribute
    from workbench.shift.limits import IG_BASELINES, ShiftSettings
    from workbench.shift.pairs import SIDES, make_pair, use_side
    from workbench.shift.spans import build_layout

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="offline", help="offline (Gemma-3-270M, adapter off/on) or tiny")
    parser.add_argument("--prompts", type=int, default=4, help="held-out prompts to use")
    parser.add_argument("--outputs", type=int, default=8, help="answer tokens per model")
    parser.add_argument("--steps", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--baselines", nargs="+", default=list(IG_BASELINES), choices=IG_BASELINES)
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()

    manager = ModelManager(budget_bytes=16 * 1024**3, device="cpu")
    base_spec, instruct_spec = pair_specs(args.model)
    pair = make_pair(base_spec, instruct_spec)
    prompts = heldout_prompts(args.prompts)
    errors: dict[tuple[str, int], list[float]] = {}
    tiny: dict[tuple[str, int], int] = {}
    seconds: dict[tuple[str, int], float] = {}
    for p, prompt in enumerate(prompts):
        for side in SIDES:
            with use_side(manager, pair, side) as backend:
                layout = build_layout(backend.tokenizer, prompt)
                out = greedy_answer(backend, layout.input_ids, args.outputs)
                for kind in args.baselines:
                    for steps in args.steps:
                        settings = ShiftSettings(max_new_tokens=args.outputs, ig_steps=steps, ig_baseline=kind,
                                                 methods=("integrated_gradients",))
                        t0 = time.process_time()
                        res = attribute(backend, layout.input_ids, out, layout.special_mask, settings)
                        key = (kind, steps)
                        seconds[key] = seconds.get(key, 0.0) + time.process_time() - t0
                        ig = res["integrated_gradients"]
                        gap = np.abs(ig.completeness_abs / np.maximum(ig.completeness_rel, 1e-300))
                        keep = gap >= TINY_GAP
                        errors.setdefault(key, []).extend(ig.completeness_rel[keep].tolist())
                        tiny[key] = tiny.get(key, 0) + int((~keep).sum())
        print(f"prompt {p + 1}/{len(prompts)} done", flush=True)

    print(f"\n### IG completeness error, {args.model} pair, {len(prompts)} held-out prompts × 2 models × "
          f"{args.outputs} answer tokens\n")
    print(f"| baseline | steps | median | p90 | max | within {args.tolerance:.0%} | tiny gaps left out | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.baselines:
        for steps in args.steps:
            e = np.asarray(errors[(kind, steps)])
            if e.size == 0:
                print(f"| {kind} | {steps} | – | – | – | – | {tiny[(kind, steps)]} | {seconds[(kind, steps)]:.1f} |")
                continue
            print(f"| {kind} | {steps} | {np.median(e):.2%} | {np.percentile(e, 90):.2%} | {e.max():.2%} | "
                  f"{(e <= args.tolerance).mean():.0%} | {tiny[(kind, steps)]} | {seconds[(kind, steps)]:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
