"""Benchmark: seconds per image of the world's text-to-image model (a `train-t2i` pipeline folder, 64x64, the
default steps and guidance of workbench/world/diffusion.py) side by side with today's offline image model (the tiny random SD pipeline,
tiny:sd, at the offline profile's settings: 128x128, 4 steps), both through the project's diffusers-t2i backend,
interleaved so load on shared cores falls on both alike. Prints a table with the ratio to the tiny pipeline.

    OMP_NUM_THREADS=2 python -m bench.bench_world_t2i [--repeats 5] [--steps N] [--guidance G]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse


def main() -> None:
    from workbench.profiles import load_profiles
    from workbench.world.diffusion import DEFAULT_GUIDANCE, DEFAULT_STEPS, IMAGE_SIZE

    offline = load_profiles()["offline"].settings["t2i_render"]
    world = {"steps": DEFAULT_STEPS, "guidance": DEFAULT_GUIDANCE, "size": IMAGE_SIZE}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/world/t2i")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=int(world["steps"]))
    parser.add_argument("--guidance", type=float, default=float(world["guidance"]))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from backends.base import ImageSettings, ModelSpec
    from backends.diffusers_t2i import DiffusersTextToImage

    prompt = "a large red star in the top left, on a striped blue background"
    runs = {}
    for name, spec, settings in (
            ("tiny:sd (random weights, offline profile)", ModelSpec("t2i", "diffusers-t2i", "tiny:sd", random_weights=True),
             ImageSettings(steps=int(offline["steps"]), width=int(offline["size"]), height=int(offline["size"]),
                           guidance_scale=float(offline["guidance"]), seed=0)),
            ("world t2i (train-t2i folder)", ModelSpec("t2i", "diffusers-t2i", args.model),
             ImageSettings(steps=args.steps, width=int(world["size"]), height=int(world["size"]),
                           guidance_scale=args.guidance, seed=0))):
        model = DiffusersTextToImage.load(spec, device="cpu", dtype="float32")
        runs[name] = (model, settings)
    from bench._timing import print_ratio_table, time_interleaved

    times = time_interleaved({name: (lambda m=model, s=settings: m.generate([prompt], s))
                              for name, (model, settings) in runs.items()}, args.repeats)
    print_ratio_table(f"one image per call, CPU, {args.repeats} repeats, OMP_NUM_THREADS="
                      f"{os.environ['OMP_NUM_THREADS']}, torch threads {torch.get_num_threads()}",
                      ["size", "steps", "guidance"],
                      {name: [f"{s.width}x{s.height}", s.steps, s.guidance_scale] for name, (_, s) in runs.items()},
                      times, "image", "tiny:sd")

if __name__ == "__main__":
    main()
