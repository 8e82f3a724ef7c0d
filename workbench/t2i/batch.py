"""Batch refinement: refine every prompt of a file, render, score, and write JSONL, Parquet and a static HTML
report with the images. Resumable (prompts already in the output are skipped) and sharded across processes
under `accelerate launch` (PartialState's process index picks every k-th prompt; the main process merges)."""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from backends.base import ImageSettings
from workbench.common import diff as wdiff
from workbench.safety import refuse_unsafe
from workbench.common.inputs import check_prompt
from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE, RefineSettings
from workbench.t2i.scoring import METRICS, RANDOM_NOTE, check_weights, score_rows
from workbench.common.shards import (
    MAX_BATCH_PROMPTS, PromptItem, partial_state, process_shard, read_prompts, read_records, shard,
)
from workbench.t2i.results import write_round_zip
from workbench.t2i.service import RewriterChoice, refine, render_round


@dataclass
class BatchConfig:
    prompts_file: str
    out_dir: str
    profile: str | None = None
    rewriter: RewriterChoice = field(default_factory=RewriterChoice)
    refine: RefineSettings = field(default_factory=RefineSettings)
    image: ImageSettings = field(default_factory=ImageSettings)
    weights: dict[str, float] | None = None
    system_template: str = DEFAULT_SYSTEM_TEMPLATE
    render: bool = True  # False: refine and flag only (rendering is the expensive step)
    limit: int | None = None  # at most this many new prompts in this run (all when None)

    def check(self) -> "BatchConfig":
        if not Path(self.prompts_file).is_file():
            raise ValueError(f"prompts file '{self.prompts_file}' does not exist")
        self.rewriter.check()
        self.refine.check()
        self.image.check()
        self.weights = check_weights(self.weights)
        if self.limit is not None and not 1 <= int(self.limit) <= MAX_BATCH_PROMPTS:
            raise ValueError(f"limit must be between 1 and {MAX_BATCH_PROMPTS}, got {self.limit!r}")
        return self


def _save(image: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return str(path)


def process_prompt(ctx: Any, config: BatchConfig, item: PromptItem, out_dir: Path) -> dict[str, Any]:
    """One record: the refinement, the images (paths relative to out_dir) and the scores."""
    started = time.perf_counter()
    record: dict[str, Any] = {"id": item.id, "index": item.index, "prompt": item.prompt}
    try:
        prompt = check_prompt(item.prompt)
        refuse_unsafe(ctx, prompt, config.profile, "prompt")
    except ValueError as exc:
        return {**record, "error": str(exc)}
    result = refine(ctx, config.profile, prompt, config.rewriter, config.refine, config.system_template)
    texts = [c.text for c in result.candidates]
    candidates = [{**c.to_dict(), "index": k, "diff": wdiff.to_markdown(wdiff.word_diff(prompt, c.text))}
                  for k, c in enumerate(result.candidates)]
    record.update(rewriter=result.settings.get("rewriter"), examples=result.examples, notes=result.notes,
                  safety={"source": result.settings.get("safety"),
                          "dropped_unsafe": result.settings.get("dropped_unsafe", 0)},
                  pool_size=len(result.pool), text_diversity=result.diversity.mean)
    if config.render:
        rendered = render_round(ctx, config.profile, prompt, texts, config.image, config.weights)
        folder = out_dir / "images" / item.id
        record["original"] = {"image": os.path.relpath(_save(rendered.original.image, folder / "original.png"), out_dir),
                              "scores": rendered.original_scores.to_dict(),
                              "image_provenance": rendered.original.provenance.to_dict()}
        for k, (cand, img, scores, flag) in enumerate(zip(candidates, rendered.images, rendered.scores, rendered.flags)):
            cand["image"] = os.path.relpath(_save(img.image, folder / f"candidate-{k + 1}.png"), out_dir)
            cand["image_provenance"] = img.provenance.to_dict()
            cand["scores"] = scores.to_dict()
            cand["token_limit"], cand["truncated_tail"] = flag.limit, flag.tail
        record["image_diversity"] = rendered.round_diversity
        record["warnings"] = rendered.warnings
        # the same ZIP as the tab's "Download the round": PNGs with provenance, round.json, prompts.txt
        zipped = write_round_zip(rendered, prompt, {"id": item.id, "index": item.index, "profile": config.profile,
                                                    "rewriter": result.settings.get("rewriter")}, folder=folder)
        record["round_zip"] = os.path.relpath(zipped, out_dir)
    else:
        from workbench.t2i.service import check_token_limits

        for cand, flag in zip(candidates, check_token_limits(ctx, config.profile, texts)):
            cand["token_limit"], cand["truncated_tail"] = flag.limit, flag.tail
    record["candidates"] = candidates
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


@dataclass
class BatchSummary:
    total: int
    skipped: int  # already finished in an earlier run
    done: int  # finished in this run by this process
    failed: int  # records with an error message
    outputs: dict[str, str]


def run_batch(ctx: Any, config: BatchConfig, state: Any | None = None,
              on_done: Callable[[dict[str, Any]], None] | None = None, progress: bool = True) -> BatchSummary:
    from tqdm.auto import tqdm

    config.check()
    state = state or partial_state()
    out_dir = Path(config.out_dir)
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    items = read_prompts(config.prompts_file)
    finished = set(read_records(out_dir))
    mine = [it for it in shard(items, state.process_index, state.num_processes) if it.id not in finished]
    skipped = len(shard(items, state.process_index, state.num_processes)) - len(mine)
    if config.limit is not None:
        mine = mine[: int(config.limit)]
    shard_file = out_dir / "shards" / f"rank-{state.process_index:03d}.jsonl"
    bar = tqdm(mine, desc=f"t2i batch [{state.process_index + 1}/{state.num_processes}]", unit="prompt",
               disable=not progress, position=state.process_index)
    if shard_file.exists() and shard_file.stat().st_size:
        with open(shard_file, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            cut_short = fh.read(1) != b"\n"
        if cut_short:  # an interrupted write left half a line: start ours on a fresh one
            with open(shard_file, "a", encoding="utf-8") as fh:
                fh.write("\n")
    done, failed = process_shard(bar, shard_file, lambda item: process_prompt(ctx, config, item, out_dir), on_done)
    state.wait_for_everyone()
    outputs: dict[str, str] = {}
    if state.is_main_process:
        outputs = merge_outputs(out_dir, items, config)
    return BatchSummary(total=len(items), skipped=skipped, done=done, failed=failed, outputs=outputs)


# --------------------------------------------------------------------------- merged outputs


def flat_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per candidate (or one per failed prompt) for Parquet."""
    rows = []
    for rec in records:
        base = {"id": rec["id"], "index": rec["index"], "prompt": rec["prompt"], "error": rec.get("error", ""),
                "rewriter": rec.get("rewriter", ""), "text_diversity": rec.get("text_diversity"),
                "image_diversity": rec.get("image_diversity")}
        if not rec.get("candidates"):
            rows.append({**base, "candidate": None})
            continue
        for cand in rec["candidates"]:
            row = {**base, "candidate": cand["index"] + 1, "text": cand["text"], "source": cand["source"],
                   "relevance": cand.get("relevance"), "truncated_tail": cand.get("truncated_tail", ""),
                   "image": cand.get("image", ""), "rewriter_provenance": json.dumps(cand["provenance"])}
            scores = (cand.get("scores") or {}).get("scores") or {}
            random = False
            for metric in METRICS:
                s = scores.get(metric) or {}
                row[metric] = s.get("value")
                random = random or bool(s.get("random_weights"))
            row["weighted_total"] = ((cand.get("scores") or {}).get("total") or {}).get("value")
            row["scores_random_weights"] = random
            row["score_provenance"] = json.dumps({m: (scores.get(m) or {}).get("provenance") for m in METRICS})
            rows.append(row)
    return rows


def merge_outputs(out_dir: Path, items: list[PromptItem], config: BatchConfig) -> dict[str, str]:
    import pandas as pd

    records = read_records(out_dir)
    ordered = [records[it.id] for it in items if it.id in records]
    jsonl = out_dir / "results.jsonl"
    tmp = jsonl.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in ordered:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(jsonl)
    parquet = out_dir / "results.parquet"
    pd.DataFrame(flat_rows(ordered)).to_parquet(parquet, index=False)
    report = out_dir / "report.html"
    report.write_text(render_html(ordered, len(items), config), encoding="utf-8")
    return {"jsonl": str(jsonl), "parquet": str(parquet), "html": str(report)}


def render_html(records: list[dict[str, Any]], total: int, config: BatchConfig) -> str:
    esc = html.escape
    random = any(s.get("random_weights") for r in records for c in r.get("candidates", [])
                 for s in ((c.get("scores") or {}).get("scores") or {}).values())
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Prompt Workbench: T2I batch report</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}img{width:192px;image-rendering:pixelated}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
        ".warn{background:#fff3cd;padding:.5em}.tail{color:#b00}.cand{display:inline-block;vertical-align:top;"
        "width:260px;margin:4px;padding:4px;border:1px solid #ddd}</style></head><body>",
        f"<h1>T2I prompt refinement: {len(records)} of {total} prompts</h1>",
        f"<p>profile {esc(str(config.profile))}; rewriter {esc(config.rewriter.kind)}; n={config.refine.n}; "
        f"steps={config.image.steps}; size={config.image.width}x{config.image.height}; seed={config.image.seed}; "
        f"weights {esc(json.dumps(config.weights))}. The weighted total is shown beside the separate metrics.</p>",
    ]
    if random:
        parts.append(f"<p class='warn'>⚠️ Some models have <b>{RANDOM_NOTE}</b>.</p>")
    for rec in records:
        parts.append(f"<h2 id='{esc(rec['id'])}'>{esc(rec['prompt'])}</h2>")
        if rec.get("error"):
            parts.append(f"<p class='warn'>error: {esc(rec['error'])}</p>")
            continue
        for note in rec.get("notes", []) + rec.get("warnings", []):
            parts.append(f"<p class='warn'>{esc(note)}</p>")
        if rec.get("original"):
            parts.append(f"<div class='cand'><b>original</b> (same seed)<br><img src='{esc(rec['original']['image'])}' "
                         f"alt='{esc(rec['prompt'])}'></div>")
        for cand in rec["candidates"]:
            block = [f"<div class='cand'><b>candidate {cand['index'] + 1}</b><br>"]
            if cand.get("image"):
                block.append(f"<img src='{esc(cand['image'])}' alt='{esc(cand['text'])}'><br>")
            block.append(f"<small>{esc(cand['text'])}</small>")
            if cand.get("truncated_tail"):
                block.append(f"<br><small class='tail'>over the {cand.get('token_limit')}-token limit; never seen: "
                             f"“{esc(cand['truncated_tail'])}”</small>")
            rows = score_rows(cand.get("scores") or {})
            if rows:
                block.append("<table><tr><th>metric</th><th>value</th><th>model</th></tr>")
                for row in rows:
                    name = f"<i>{esc(row['metric'])}</i>" if row["total"] else esc(row["metric"])
                    title = esc(METRICS.get(row["metric"], row["note"]))
                    block.append(f"<tr><td title='{title}'>{name}</td><td>{row['value']}</td>"
                                 f"<td>{esc(row['model'])}</td></tr>")
                block.append("</table>")
            block.append("</div>")
            parts.append("".join(block))
    parts.append("</body></html>")
    return "\n".join(parts)
