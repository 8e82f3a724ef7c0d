"""Benchmark: seconds per preview video of the world's text-to-video model (a `train-t2v` pipeline folder at its
preview settings, workbench/world/video.py PREVIEW: 64x64, 8 frames, 8 steps, guidance 3; the offline profile's
preview) side by side with the video model the offline profile had before (the tiny random AnimateDiff pipeline,
tiny:animatediff, at its old preview settings and, for a like-for-like row, at the world's), all through the
project's diffusers-t2v backend, interleaved so load on shared cores falls on each alike. Prints a table with the ratio to the tiny pipeline at the offline preview. Issue
20's bar: a preview video in at most 10 s on 2 cores.

    OMP_NUM_THREADS=2 python -m bench.bench_world_t2v --model FOLDER [--repeats 3] [--steps N] [--guidance G]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse


# the offline profile's T2V preview while its video model was tiny:animatediff (before issue 20's world model)
TINY_OFFLINE_PREVIEW = {"width": 32, "height": 32, "num_frames": 4, "steps": 2, "fps": 4}


def main(argv=None) -> None:
    from workbench.world.video import PREVIEW

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a train-t2v pipeline folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=int(PREVIEW["steps"]))
    parser.add_argument("--guidance", type=float, default=float(PREVIEW["guidance"]))
    args = parser.parse_args(argv)
    if not 1 <= args.repeats <= 100:
        parser.error(f"--repeats must be in [1, 100], got {args.repeats}")

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from backends.base import ModelSpec, VideoSettings
    from backends.diffusers_t2v import DiffusersTextToVideo

    prompt = "a large red star in the top left moving right fast, on a striped blue background"
    tiny = ModelSpec("t2v", "diffusers-t2v", "tiny:animatediff", random_weights=True)
    world_settings = VideoSettings(steps=args.steps, guidance_scale=args.guidance, width=PREVIEW["width"],
                                   height=PREVIEW["height"], num_frames=PREVIEW["num_frames"], fps=PREVIEW["fps"])
    offline_settings = VideoSettings(**TINY_OFFLINE_PREVIEW)
    tiny_model = DiffusersTextToVideo.load(tiny, device="cpu", dtype="float32")
    world_model = DiffusersTextToVideo.load(ModelSpec("t2v", "diffusers-t2v", args.model), device="cpu",
                                            dtype="float32")
    runs = {"tiny:animatediff (random weights), the old offline preview": (tiny_model, offline_settings),
            "tiny:animatediff (random weights), world T2V preview settings": (tiny_model, world_settings),
            "world t2v (train-t2v folder), its preview": (world_model, world_settings)}
    from bench._timing import print_ratio_table, time_interleaved

    def call(model, settings):
        frames = model.generate([prompt], settings)[0].frames
        assert len(frames) == settings.num_frames

    times = time_interleaved({name: (lambda m=model, s=settings: call(m, s)) for name, (model, settings) in runs.items()},
                             args.repeats)
    print_ratio_table(f"one video per call, CPU, {args.repeats} repeats, OMP_NUM_THREADS="
                      f"{os.environ['OMP_NUM_THREADS']}, torch threads {torch.get_num_threads()}",
                      ["size", "frames", "steps", "guidance"],
                      {name: [f"{s.width}x{s.height}", s.num_frames, s.steps, s.guidance_scale]
                       for name, (_, s) in runs.items()}, times, "video", "the first row")

if __name__ == "__main__":
    main()
