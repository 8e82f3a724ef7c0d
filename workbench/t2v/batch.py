"""Evolve every prompt of a file and write the preference pairs: resumable (finished prompts are skipped on a
rerun with the same output folder), with a progress bar, and sharded under `accelerate launch` (each process
takes every k-th prompt; the main process merges and exports). Reads prompt files, shards and resumes exactly
as the T2I batch does (workbench.t2i.batch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from backends.base import VideoSettings
from workbench.safety import checker, refuse_unsafe
from workbench.common.shards import partial_state, process_shard, read_prompts, read_records, shard
from workbench.common.inputs import check_prompt
from workbench.common.scores import check_weights
from workbench.t2v.service import RewriterChoice
from workbench.t2v import service
from workbench.t2v.evolve import VIDEO_HINT, EvolveResult, EvolveSettings, evolve_prompts
from workbench.t2v.media import save_gif
from workbench.t2v.pairs import PairFilter, export_pairs
from workbench.t2v.rewards import DEFAULT_WEIGHTS, METRICS, RewardSettings


@dataclass
class T2VBatchConfig:
    prompts_file: str
    out_dir: str
    profile: str | None = None
    # the tab's default: the profile's video rewriter role (settings.t2v_refine), never its T2I rewriter
    rewriter: RewriterChoice = field(default_factory=RewriterChoice)
    evolve: EvolveSettings = field(default_factory=EvolveSettings)
    video: VideoSettings | None = None  # None: the profile's preview defaults
    weights: dict[str, float] | None = None
    pair_filter: PairFilter = field(default_factory=PairFilter)
    save_previews: bool = True  # a GIF per candidate under out_dir/previews
    limit: int | None = None

    def check(self) -> "T2VBatchConfig":
        if not Path(self.prompts_file).is_file():
            raise ValueError(f"prompts file '{self.prompts_file}' does not exist")
        self.rewriter.check()
        self.evolve.check()
        if self.video is not None:
            self.video.check()
        self.weights = check_weights(self.weights, METRICS, DEFAULT_WEIGHTS)
        self.pair_filter.check()
        return self


def process_prompt(ctx: Any, config: T2VBatchConfig, item: Any, out_dir: Path, job: Any = None) -> dict[str, Any]:
    record: dict[str, Any] = {"id": item.id, "index": item.index, "prompt": item.prompt}
    try:
        prompt = check_prompt(item.prompt, "video idea", VIDEO_HINT)
        refuse_unsafe(ctx, prompt, config.profile, "video idea")
    except ValueError as exc:
        return {**record, "error": str(exc)}
    safety = checker(ctx, config.profile)
    t2v, scorer = service.models(ctx, config.profile)
    video = config.video or service.video_settings(**service.render_defaults(t2v.spec), seed=0)
    propose = service.proposer(ctx, config.profile, config.rewriter, config.evolve)
    result = evolve_prompts(prompt, propose, service.renderer(t2v, video),
                            service.scorer_fn(scorer, config.weights, RewardSettings(), safety=safety),
                            config.evolve, job, safety=safety)
    if propose.unsafe:
        result.notes.append(propose.note())
    if config.save_previews:
        for c in ([result.baseline] if result.baseline else []) + result.candidates():
            if c.frames:
                gif = save_gif(c.frames, out_dir / "previews" / item.id / f"{c.id}.gif", video.fps)
                c.preview = str(gif.relative_to(out_dir))
    return {**record, "result": result.to_dict(), "video": asdict(video)}


@dataclass
class T2VBatchSummary:
    total: int
    skipped: int
    done: int
    failed: int
    outputs: dict[str, Any]


def run_batch(ctx: Any, config: T2VBatchConfig, state: Any | None = None, progress: bool = True,
              on_done: Callable[[dict[str, Any]], None] | None = None) -> T2VBatchSummary:
    from tqdm.auto import tqdm

    config.check()
    state = state or partial_state()
    out_dir = Path(config.out_dir)
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    items = read_prompts(config.prompts_file)
    finished = set(read_records(out_dir))
    all_mine = shard(items, state.process_index, state.num_processes)
    mine = [it for it in all_mine if it.id not in finished]
    skipped = len(all_mine) - len(mine)
    if config.limit is not None:
        mine = mine[: int(config.limit)]
    shard_file = out_dir / "shards" / f"rank-{state.process_index:03d}.jsonl"
    if shard_file.exists() and shard_file.stat().st_size and not shard_file.read_bytes().endswith(b"\n"):
        with open(shard_file, "a", encoding="utf-8") as fh:  # an interrupted write left half a line
            fh.write("\n")
    bar = tqdm(mine, desc=f"t2v evolve [{state.process_index + 1}/{state.num_processes}]", unit="prompt",
               disable=not progress, position=state.process_index)
    done, failed = process_shard(bar, shard_file, lambda item: process_prompt(ctx, config, item, out_dir), on_done,
                                 errors=(ValueError, RuntimeError, TimeoutError, ConnectionError))
    state.wait_for_everyone()
    outputs: dict[str, Any] = {}
    if state.is_main_process:
        outputs = export_from_records(out_dir, config.pair_filter, safety=checker(ctx, config.profile))
    return T2VBatchSummary(total=len(items), skipped=skipped, done=done, failed=failed, outputs=outputs)


def load_results(out_dir: str | Path) -> list[EvolveResult]:
    records = sorted(read_records(out_dir).values(), key=lambda r: r["index"])
    return [EvolveResult.from_dict(r["result"]) for r in records if "result" in r]


def export_from_records(out_dir: str | Path, pair_filter: PairFilter | None = None,
                        safety: Any = None) -> dict[str, Any]:
    """sft.jsonl and dpo.jsonl from every finished record of every shard (rerun with other filters at will);
    rows holding an unsafe prompt (`safety`, else the keyword rule) are dropped."""
    return export_pairs(load_results(out_dir), out_dir, pair_filter, safety=safety)
