"""Time per Prompt-A-Video evolution round, split into rewrite / render / score, and the speed-up of scoring every
candidate's frames in one batched CLIP call against one call per frame. Both measured side by side in one run.

    OMP_NUM_THREADS=1 python -m bench.bench_t2v_round --profile offline --rounds 2 --population 3
"""

from __future__ import annotations

import argparse
import statistics
import time

from workbench.context import build_context
from workbench.t2v.service import RewriterChoice
from workbench.t2v import service
from workbench.t2v.evolve import EvolveSettings, evolve_prompts
from workbench.t2v.rewards import RewardSettings, score_videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="offline")
    parser.add_argument("--device", default=None)
    parser.add_argument("--prompt", default="a dog running on a beach")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--population", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8, help="frames per preview")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the scoring comparison")
    args = parser.parse_args()

    ctx = build_context(args.profile, args.device)
    t2v, scorer = service.models(ctx, args.profile)
    video = service.video_settings(args.size, args.size, args.frames, args.steps, 0)
    tokens = service.evolve_defaults(t2v.spec).get("max_new_tokens", EvolveSettings().max_new_tokens)
    settings = EvolveSettings(rounds=args.rounds, population=args.population, patience=args.rounds,
                              max_new_tokens=tokens)  # the profile's evolution default, as in the tab
    proposer = service.proposer(ctx, args.profile, RewriterChoice(), settings)
    # warm-up: load every model once so the table times work, not loading
    started = time.perf_counter()
    t2v.generate(["warm up"], service.video_settings(32, 32, 2, 1, 0))
    scorer.image_embeddings([__import__("PIL.Image").Image.new("RGB", (32, 32))])
    proposer.embedder.embed(["warm up"])
    proposer.chat.generate(["warm up"], __import__("backends.base").base.GenerationSettings(max_new_tokens=2))
    print(f"profile {args.profile}: models loaded in {time.perf_counter() - started:.1f} s "
          f"(rewriter {proposer.chat.spec.model_id}, video {t2v.spec.model_id}, scorer {scorer.spec.model_id})")

    result = evolve_prompts(args.prompt, proposer, service.renderer(t2v, video), service.scorer_fn(scorer), settings)
    print(f"\nEvolution, {args.population} candidates per round, rewrites up to {tokens} new tokens "
          f"({args.population + 1} videos in round 1: the original too), {args.frames} frames at {args.size}px, "
          f"{args.steps} steps")
    print(f"{'round':>5} | {'rewrite s':>9} | {'render s':>9} | {'score s':>8} | {'total s':>8} | slowest (share)")
    print("-" * 72)
    for t in result.timings:
        parts = {k: t[k] for k in ("rewrite", "render", "score")}
        total = sum(parts.values())
        slow = max(parts, key=parts.get)
        print(f"{t['round']:>5} | {parts['rewrite']:>9.2f} | {parts['render']:>9.2f} | {parts['score']:>8.3f} | "
              f"{total:>8.2f} | {slow} ({parts[slow] / total:.0%})")

    videos = [c.frames for c in result.candidates() if c.frames] or [result.baseline.frames]
    prompts = [c.prompt for c in result.candidates() if c.frames] or [result.original]
    n_frames = sum(min(len(v), 8) for v in videos)
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for batched in (True, False):  # interleaved, so load on the shared cores hits both alike
            started = time.perf_counter()
            score_videos(scorer, args.prompt, prompts, videos, settings=RewardSettings(frames_sampled=8),
                         batched=batched)
            times[batched].append(time.perf_counter() - started)
    one, per = statistics.median(times[True]), statistics.median(times[False])
    print(f"\nScoring {len(videos)} candidates x up to 8 sampled frames = {n_frames} frames (median of {args.repeats})")
    print(f"{'method':<32} | {'seconds':>8} | {'CLIP image calls':>16} | ratio")
    print("-" * 72)
    print(f"{'one batched call (all frames)':<32} | {one:>8.3f} | {1:>16} | 1.00x")
    print(f"{'one call per frame':<32} | {per:>8.3f} | {n_frames:>16} | {per / one:.2f}x slower")


if __name__ == "__main__":
    main()
