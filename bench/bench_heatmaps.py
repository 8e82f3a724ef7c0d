"""Benchmark: seconds of a token-heatmap render (`attend`: the UNet's cross-attention
recorded, DAAM) against the plain render (`generate`) of the same prompt and settings, side by side in one run,
interleaved. The offline profile's image model (the tiny SD pipeline) by default; `--model` takes any diffusers
text-to-image id the machine has (e.g. stable-diffusion-v1-5 on a GPU). Prints a table with the ratio.

    OMP_NUM_THREADS=2 python -m bench.bench_heatmaps [--repeats 5] [--steps 20] [--size 64]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny:sd")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    from backends.base import ImageSettings, ModelSpec
    from backends.diffusers_t2i import DiffusersTextToImage

    spec = ModelSpec(role="t2i", backend="diffusers-t2i", model_id=args.model, random_weights=args.model.startswith(
        "tiny:"), options=(("pipeline_class", "StableDiffusionPipeline"),) if not args.model.startswith("tiny:") else ())
    model = DiffusersTextToImage.load(spec, device=args.device, dtype="float32" if args.device == "cpu" else "float16")
    prompt = "a red fox in the snow, golden hour light, wide shot, watercolor"
    settings = ImageSettings(steps=args.steps, width=args.size, height=args.size, seed=0)
    runs = {"plain render (generate)": lambda: model.generate([prompt], settings),
            "render + heatmaps (attend)": lambda: model.attend(prompt, settings)}
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():  # interleaved, so load on shared cores falls on both alike
            started = time.perf_counter()
            out = run()
            times[name].append(time.perf_counter() - started)
    maps = out[1].maps  # what a user's kept heatmaps hold
    base = statistics.mean(times["plain render (generate)"])
    print(f"{args.model} on {args.device}, {args.size}x{args.size}, {args.steps} steps, {args.repeats} repeats, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print("| run | mean s | max s | ratio to plain |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.mean(ts):.3f} | {max(ts):.3f} | {statistics.mean(ts) / base:.2f} |")
    print(f"kept maps per attended image: {tuple(maps.shape)} float32, {maps.nbytes / 2**20:.2f} MB")


if __name__ == "__main__":
    main()
