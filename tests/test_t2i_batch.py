"""Batch mode: JSONL + Parquet + HTML with images, resumable after an interruption, sharded by process index."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from backends.base import ImageSettings
from workbench.t2i import batch as tb
from workbench.t2i.refiner import RefineSettings

PROMPTS = ["a cat on a sofa", "a lighthouse at dusk", "a cat\x01 on a mat", "a bowl of ramen", "a red fox in the snow"]


class FakeState:
    """Stands in for accelerate's PartialState in one process."""

    def __init__(self, index: int = 0, count: int = 1):
        self.process_index, self.num_processes = index, count
        self.is_main_process = index == 0
        self.waited = 0

    def wait_for_everyone(self) -> None:
        self.waited += 1


def _config(tmp_path, **kw) -> tb.BatchConfig:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment line\n" + "\n".join(PROMPTS) + "\n")
    return tb.BatchConfig(prompts_file=str(prompts), out_dir=str(tmp_path / "out"), profile="fake",
                          refine=RefineSettings(n=2), image=ImageSettings(steps=1, width=64, height=64), **kw)


def test_batch_resumes_after_interruption(fake_ctx, tmp_path, monkeypatch):
    config = _config(tmp_path)
    calls: list[str] = []
    real = tb.process_prompt

    def counting(ctx, cfg, item, out_dir):
        calls.append(item.prompt)
        return real(ctx, cfg, item, out_dir)

    monkeypatch.setattr(tb, "process_prompt", counting)

    def interrupt_after_two(record):
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tb.run_batch(fake_ctx, config, FakeState(), on_done=interrupt_after_two, progress=False)
    assert len(tb.read_records(config.out_dir)) == 2
    # Simulate a line cut short by the interruption: it must be ignored, not crash the rerun.
    with open(tmp_path / "out" / "shards" / "rank-000.jsonl", "a") as fh:
        fh.write('{"id": "00004-trunc')
    calls.clear()
    summary = tb.run_batch(fake_ctx, config, FakeState(), progress=False)
    assert summary.total == 5 and summary.skipped == 2 and summary.done == 3
    assert calls == PROMPTS[2:]  # the finished two were skipped
    assert summary.failed == 1  # the control character is recorded with its message
    rows = [json.loads(line) for line in open(summary.outputs["jsonl"])]
    assert [r["prompt"] for r in rows] == PROMPTS
    assert "control character" in rows[2]["error"]
    first = rows[0]
    assert len(first["candidates"]) == 2 and first["original"]["image"].endswith("original.png")
    assert (tmp_path / "out" / first["candidates"][0]["image"]).exists()
    assert first["candidates"][0]["scores"]["scores"]["align_original"]["provenance"]["model_id"] == "fake/scorer"
    table = pd.read_parquet(summary.outputs["parquet"])
    assert len(table) == 4 * 2 + 1 and {"align_original", "align_refined", "weighted_total"} <= set(table.columns)
    assert table["scores_random_weights"].fillna(False).astype(bool).any()
    html = open(summary.outputs["html"]).read()
    assert "<img src='images/" in html and "random weights" in html and "control character" in html
    # A third run has nothing left to do.
    calls.clear()
    again = tb.run_batch(fake_ctx, config, FakeState(), progress=False)
    assert again.done == 0 and again.skipped == 5 and calls == []


def test_sharding_splits_prompts_and_main_process_merges(fake_ctx, tmp_path):
    config = _config(tmp_path, render=False)
    second = tb.run_batch(fake_ctx, config, FakeState(1, 2), progress=False)
    assert second.done == 2 and second.outputs == {}  # only the main process merges
    first = tb.run_batch(fake_ctx, config, FakeState(0, 2), progress=False)
    assert first.done == 3
    rows = [json.loads(line) for line in open(first.outputs["jsonl"])]
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    files = sorted(p.name for p in (tmp_path / "out" / "shards").iterdir())
    assert files == ["rank-000.jsonl", "rank-001.jsonl"]
    assert "truncated_tail" in rows[0]["candidates"][0]


def test_shard_index_is_checked():
    with pytest.raises(ValueError, match="process_index must be between 0 and 1"):
        tb.shard([], 2, 2)


def test_cli_runs_a_batch_and_reports_bad_arguments(tmp_path, capsys, monkeypatch):
    from workbench.t2i.__main__ import main

    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a cat"}\n{"coarse": "a dog on a beach"}\n')
    monkeypatch.setenv("WORKBENCH_MEMORY_BUDGET_GB", "4")
    code = main(["batch", str(prompts), "--out", str(tmp_path / "o"), "--profile", "fake", "--n", "2",
                 "--steps", "1", "--size", "64", "--rewriter", "baseline"])
    assert code == 0
    assert "skipped (already done)" in capsys.readouterr().out
    assert (tmp_path / "o" / "report.html").exists()
    assert main(["batch", str(prompts), "--out", str(tmp_path / "o"), "--profile", "fake", "--n", "9"]) == 2
    assert "n must be between 1 and 8" in capsys.readouterr().err


def test_two_processes_shard_and_merge_under_torchrun(tmp_path):
    """The launcher `accelerate launch --multi_gpu` uses (torchrun), with two CPU processes on gloo."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from tests.app_process import free_port

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    port = free_port()
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(["a cat", "a dog", "a fox", "a castle", "a ramen bowl"]) + "\n")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "WORKBENCH_MEMORY_BUDGET_GB": "2"}
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
         "-m", "workbench.t2i", "batch", str(prompts), "--out", str(tmp_path / "o"), "--profile", "fake",
         "--candidates", "2", "--no-render"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    shards = sorted(p.name for p in (tmp_path / "o" / "shards").iterdir())
    assert shards == ["rank-000.jsonl", "rank-001.jsonl"]
    rows = [json.loads(line) for line in open(tmp_path / "o" / "results.jsonl")]
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    shutil.rmtree(tmp_path / "o")
