"""A behaviour-shift analysis of the offline pair (Gemma-3-270M base, adapter off/on), per-token attribution
(the reference path, `attribute_per_token`) against the teacher-forced batched path (`attribute`), side by side
in one run: per stage and in total, on a 64-token prompt with 8 and with 32 answer tokens, three methods and
16 integration steps, both models. Then the default analysis end to end (`analyse_pair`, 8 answer tokens).

    OMP_NUM_THREADS=1 python -m bench.bench_shift_analysis                      # the full comparison (long)
    OMP_NUM_THREADS=1 python -m bench.bench_shift_analysis --cost-sample 4 16   # old path: every 4th / 16th token
    OMP_NUM_THREADS=1 python -m bench.bench_shift_analysis --model tiny --outputs 4 8   # a smoke run

`--cost-sample K` attributes only every K-th answer token on the per-token path (prefixes spread over the whole
answer) and scales its time by K: its old-path times are then estimates, and the table says so. The new path
always runs in full. `--step-scale K` measures integrated gradients with steps/K on both paths and scales by K
(its cost is linear in the steps). Times are process CPU seconds of one thread by default (`--clock wall` for
wall-clock): on shared cores wall time mostly measures the neighbours. Each cell also checks that the two paths
agree on the tokens both computed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPT = "List three animals that live on a farm and say what each one gives us."
FILLER = ("The farm sits at the end of a long road between two green hills, next to a small river where ducks swim "
          "in the morning and cows drink in the afternoon.")
METHOD_NAMES = {"gradient_x_input": "gradient × input", "integrated_gradients": "integrated gradients",
                "feature_ablation": "feature ablation"}


def pair_specs(model: str):
    from backends.base import ModelSpec
    from workbench.profiles import load_profiles

    if model == "tiny":
        return (ModelSpec.from_dict("lm_base", {"backend": "transformers-lm", "model": "tiny:causal-lm?seed=0"}),
                ModelSpec.from_dict("lm_instruct", {"backend": "transformers-lm", "model": "tiny:causal-lm?seed=1"}))
    offline = load_profiles()["offline"]
    return offline.spec("lm_base"), offline.spec("lm_instruct")


def layout_of(tokenizer, prompt_tokens: int):
    from workbench.shift.spans import build_layout

    return build_layout(tokenizer, _user_prompt(tokenizer, prompt_tokens))


CLOCK = {"kind": "cpu"}


def timed(fn):
    """(result, seconds): process CPU seconds by default (steadier than wall time on shared cores; one thread)."""
    clock = time.process_time if CLOCK["kind"] == "cpu" else time.perf_counter
    t0 = clock()
    out = fn()
    return out, clock() - t0


def compare(manager, base_spec, instruct_spec, prompt_tokens: int, n_out: int, steps: int, sample: int,
            chunk: int, sides=("base", "instruct"), step_scale: int = 1) -> tuple[list[tuple[str, float, float]], dict]:
    """Rows (stage, old seconds, new seconds) for both sides; old = per-token path (sampled when sample > 1)."""
    import numpy as np

    from workbench.shift.analysis import greedy_answer
    from workbench.shift.attention import attention_to_instruction
    from workbench.shift.attribution import attribute, attribute_per_token
    from workbench.shift.ffn import ffn_concepts
    from workbench.shift.limits import ShiftLimits, ShiftSettings
    from workbench.shift.pairs import SIDES, make_pair, use_side

    pair = make_pair(base_spec, instruct_spec)
    settings = ShiftSettings(max_new_tokens=n_out, ig_steps=max(2, steps // step_scale), target_chunk=chunk,
                             ig_internal_batch=16)
    settings.check(ShiftLimits(max_new_tokens=max(n_out, 48)))  # the benchmark may go past the UI limit
    rows: list[tuple[str, float, float]] = []
    info = {"max_rel_diff": 0.0, "ig_completeness_max": 0.0}
    for side in [s for s in SIDES if s in sides]:
        with use_side(manager, pair, side) as backend:
            layout = layout_of(backend.tokenizer, prompt_tokens)
            info["prompt_tokens"] = layout.n_tokens
            out, t = timed(lambda: greedy_answer(backend, layout.input_ids, n_out))
            rows.append((f"{side}: greedy answer ({n_out} tokens)", t, t))
            _, t = timed(lambda: attention_to_instruction(backend, layout.input_ids + out, layout.n_tokens,
                                                          layout.instruction_mask))
            rows.append((f"{side}: attention share", t, t))
            _, t = timed(lambda: ffn_concepts(backend, settings.ffn_components, settings.ffn_top_tokens))
            rows.append((f"{side}: FFN concepts", t, t))
            positions = list(range(0, n_out, sample))
            for method in settings.methods:
                new, t_new = timed(lambda: attribute(backend, layout.input_ids, out, layout.special_mask, settings,
                                                     [method])[method])
                t_old, old_rows = 0.0, []
                for j in positions:  # output token j given the prompt and the j tokens before it
                    res, t = timed(lambda: attribute_per_token(
                        backend, layout.input_ids + out[:j], [out[j]], layout.special_mask + [True] * j, settings,
                        [method])[method])
                    t_old += t
                    old_rows.append(res.scores[0, :layout.n_tokens])
                ref = np.stack(old_rows)
                scale = float(np.abs(ref).max()) or 1.0
                info["max_rel_diff"] = max(info["max_rel_diff"], float(np.abs(new.scores[positions] - ref).max()) / scale)
                if new.completeness_rel is not None:
                    info["ig_completeness_max"] = max(info["ig_completeness_max"], float(new.completeness_rel.max()))
                label = f"{side}: {METHOD_NAMES[method]}"
                scale = 1
                if method == "integrated_gradients" and step_scale > 1:
                    scale = steps / settings.ig_steps
                    label += f" (both: {settings.ig_steps} steps measured, ×{scale:g})"
                if sample > 1:
                    label += f" (old: {len(positions)} of {n_out} tokens, ×{n_out / len(positions):g})"
                rows.append((label, t_old * n_out / len(positions) * scale, t_new * scale))
    return rows, info


def main() -> None:
    import torch

    from workbench.models import ModelManager

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="offline", help="offline (Gemma-3-270M, adapter off/on) or tiny")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--outputs", type=int, nargs="*", default=[8, 32],
                        help="answer lengths to compare (none: only the end-to-end default analysis)")
    parser.add_argument("--steps", type=int, default=16, help="integrated-gradients steps (both paths)")
    parser.add_argument("--target-chunk", type=int, default=8, help="targets per batched backward (new path)")
    parser.add_argument("--cost-sample", type=int, nargs="+", default=[1],
                        help="old path: attribute every K-th answer token only and scale its time (1 = all); "
                             "one value for every --outputs length, or one per length")
    parser.add_argument("--skip-default", action="store_true", help="skip the end-to-end default analysis")
    parser.add_argument("--sides", default="base,instruct", help="which sides to time in the comparison")
    parser.add_argument("--step-scale", type=int, nargs="+", default=[1],
                        help="measure IG with steps/K (both paths) and scale by K (its cost is linear in steps); "
                             "one value, or one per --outputs length")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="process CPU seconds (default; steady on shared cores) or wall-clock seconds")
    args = parser.parse_args()
    manager = ModelManager(budget_bytes=16 * 1024**3, device="cpu")
    base_spec, instruct_spec = pair_specs(args.model)
    _, load_s = timed(lambda: manager.get(instruct_spec))
    if base_spec.key != instruct_spec.key and args.model == "tiny":
        manager.get(base_spec)
    print(f"pair {instruct_spec.model_id} ({args.model}): loaded in {load_s:.0f} s; torch threads "
          f"{torch.get_num_threads()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)

    summary = []
    if len(args.cost_sample) not in (1, len(args.outputs)):
        parser.error("--cost-sample takes one value, or one per --outputs length")
    samples = args.cost_sample * len(args.outputs) if len(args.cost_sample) == 1 else args.cost_sample
    scales = args.step_scale * len(args.outputs) if len(args.step_scale) == 1 else args.step_scale
    CLOCK["kind"] = args.clock
    sides = tuple(s.strip() for s in args.sides.split(","))
    print(f"clock: {'process CPU seconds' if args.clock == 'cpu' else 'wall-clock seconds'}; sides timed: "
          f"{', '.join(sides)}", flush=True)
    for n_out, sample, step_scale in zip(args.outputs, samples, scales):
        sample = max(1, sample)
        rows, info = compare(manager, base_spec, instruct_spec, args.prompt_tokens, n_out, args.steps, sample,
                             args.target_chunk, sides, step_scale)
        print(f"\n### {info['prompt_tokens']}-token prompt, {n_out} answer tokens, {args.steps} IG steps, timed on: {', '.join(sides)}"
              + (f" (old path sampled every {sample}th token and scaled)" if sample > 1 else ""))
        print("\n| stage | per-token (s) | teacher-forced (s) | speed-up |\n|---|---|---|---|")
        for label, old, new in rows:
            print(f"| {label} | {old:.1f} | {new:.1f} | {old / max(new, 1e-9):.1f}× |")
        attr = [(o, n) for label, o, n in rows if any(m in label for m in METHOD_NAMES.values())]
        old_attr, new_attr = sum(o for o, _ in attr), sum(n for _, n in attr)
        old_total, new_total = sum(o for _, o, _ in rows), sum(n for _, _, n in rows)
        print(f"| **attribution, {' + '.join(sides)}** | **{old_attr:.1f}** | **{new_attr:.1f}** | "
              f"**{old_attr / max(new_attr, 1e-9):.1f}×** |")
        print(f"| **analysis total, {' + '.join(sides)}** | **{old_total:.1f}** | **{new_total:.1f}** | "
              f"**{old_total / max(new_total, 1e-9):.1f}×** |")
        print(f"\nmax |teacher-forced − per-token| over the tokens both computed: {info['max_rel_diff']:.2e} of the "
              f"largest |score| (float32); IG completeness error max {info['ig_completeness_max']:.1%}", flush=True)
        summary.append((n_out, old_total, new_total, sample))

    if not args.skip_default:
        from workbench.shift.limits import METHODS, ShiftSettings

        tokenizer = manager.get(instruct_spec).tokenizer
        prompt_text = _user_prompt(tokenizer, args.prompt_tokens)
        configs = [("the tab's defaults", ShiftSettings())]
        if ShiftSettings().methods != METHODS or ShiftSettings().ig_steps != 16:
            configs.append(("three methods, 16 IG steps", ShiftSettings(methods=METHODS, ig_steps=16)))
        for name, settings in configs:
            end_to_end(manager, base_spec, instruct_spec, prompt_text, name, settings)


def end_to_end(manager, base_spec, instruct_spec, prompt_text: str, name: str, settings) -> None:
    """One analysis through `analyse_pair`, timed per stage (the job's progress stages)."""
    from workbench.jobs import Job
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.limits import METHOD_LABELS

    job = Job("bench")
    stages: dict[str, float] = {}
    last = {"stage": None, "at": 0.0}
    now_fn = time.process_time if CLOCK["kind"] == "cpu" else time.perf_counter

    def clock(update):
        now = now_fn()
        if last["stage"] is not None:
            stages[last["stage"]] = stages.get(last["stage"], 0.0) + now - last["at"]
        last["stage"], last["at"] = update.stage, now

    job.listen(clock)
    result, t = timed(lambda: analyse_pair(manager, base_spec, instruct_spec, prompt_text, settings=settings, job=job))
    clock(type("Done", (), {"stage": None})())
    s = result.settings
    print(f"\n### {name} end to end (`analyse_pair`, {result.layout.n_tokens}-token prompt, {result.n_outputs} answer "
          f"tokens, {', '.join(METHOD_LABELS[m] for m in s.methods)}; IG {s.ig_steps} steps from the {s.ig_baseline} "
          f"baseline; both models)\n")
    print("| stage | seconds |\n|---|---|")
    for stage, secs in stages.items():
        print(f"| {stage} | {secs:.1f} |")
    print(f"| **total** | **{t:.1f}** (target < 60 s on two cores) |", flush=True)
    if "integrated_gradients" in s.methods:
        print("\nIG completeness error: " + ", ".join(
            f"{side} max {result.sides[side].attributions['integrated_gradients'].completeness_rel.max():.1%} / median "
            f"{np.median(result.sides[side].attributions['integrated_gradients'].completeness_rel):.1%}"
            for side in ("base", "instruct")), flush=True)


def _user_prompt(tokenizer, prompt_tokens: int) -> str:
    """The user text whose templated layout is the benchmark's prompt (filler + PROMPT)."""
    from workbench.shift.spans import build_layout

    ids = tokenizer((FILLER + " ") * 20, add_special_tokens=False)["input_ids"]
    for cut in range(prompt_tokens, 0, -1):
        text = tokenizer.decode(ids[:cut]).strip() + " " + PROMPT
        if build_layout(tokenizer, text).n_tokens <= prompt_tokens:
            return text
    raise ValueError(f"no prompt fits in {prompt_tokens} tokens")


if __name__ == "__main__":
    main()
