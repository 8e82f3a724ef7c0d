"""Benchmark: seconds per T2I Refine with the offline default (facet-directed with set selection over 3 rewrites
per facet at temperature 1.1: workbench/t2i/defaults.py) against the facet default before it (MMR over 2 per facet
at 0.9) and the undirected refine, side by side in one run, same rewriter (SmolLM2-135M-Instruct + the shipped T2I
adapter with its 30-word budget), same prompts (the dev split), N = 4. Prints a table with the ratios.

    OMP_NUM_THREADS=2 python -m bench.bench_t2i_facets [--prompts 3] [--n 4] [--split dev]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3, help="validation prompts timed (after one warm-up)")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--split", default="dev", choices=("dev", "validation"))
    args = parser.parse_args()

    from workbench.common.refiner import RefineSettings, heldout_ids, refine_candidates
    from workbench.context import build_context
    from workbench.models import ManagedModel
    from workbench.t2i.defaults import t2i_refine_settings
    from workbench.t2i.evaluate import heldout_prompts, split_ids
    from workbench.t2i.service import prompt_window

    ctx = build_context(profile="offline")
    profile = ctx.profile("offline")
    chat = ManagedModel(ctx.manager, profile.spec("t2i_rewriter"))
    embedder = ManagedModel(ctx.manager, profile.spec("embeddings"))
    window = prompt_window(ctx, "offline")
    exclude = frozenset(heldout_ids() | split_ids("validation"))
    prompts = heldout_prompts(args.prompts + 1, split=args.split)
    systems = {"undirected (the earlier default)": lambda i: RefineSettings(n=args.n, seed=i),
               "facets, MMR over 2 per facet at 0.9 (the third pass's default)": lambda i: t2i_refine_settings(
                   n=args.n, seed=i, selection="mmr", diversity=0.8, overgenerate=2.0, temperature=0.9),
               "facets, set over 3 per facet at 1.1 (the offline default)": lambda i: t2i_refine_settings(
                   n=args.n, seed=i)}
    refine_candidates(chat, embedder, prompts[0], systems["undirected (the earlier default)"](0), window=window,
                      exclude_ids=exclude)  # warm-up: loads the models and embeds the few-shot corpus
    times: dict[str, list[float]] = {name: [] for name in systems}
    for i, prompt in enumerate(prompts[1:]):
        for name, settings in systems.items():  # interleaved, so load on shared cores falls on both alike
            started = time.perf_counter()
            refine_candidates(chat, embedder, prompt, settings(i), window=window, exclude_ids=exclude)
            times[name].append(time.perf_counter() - started)
    base = statistics.mean(times["undirected (the earlier default)"])
    print(f"{len(prompts) - 1} {args.split} prompts, N={args.n}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print("| refine | mean s | max s | ratio to undirected |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.mean(ts):.1f} | {max(ts):.1f} | {statistics.mean(ts) / base:.2f} |")


if __name__ == "__main__":
    main()
