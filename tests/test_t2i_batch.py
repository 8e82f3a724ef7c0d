"""Batch mode: JSONL + Parquet + HTML with images, resumable after a killed process, sharded by process index
(checked per rank under torchrun), and clear messages for malformed prompt files and bad settings."""

from __future__ import annotations

import json
import zipfile
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from backends.base import ImageSettings
from workbench.t2i import batch as tb
from workbench.common.refiner import RefineSettings

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


def test_batch_outputs_and_rerun_after_an_in_process_stop(fake_ctx, tmp_path, monkeypatch):
    """Outputs (JSONL, Parquet, HTML) and skipping finished prompts; the real kill is in the next test."""
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
    with zipfile.ZipFile(tmp_path / "out" / first["round_zip"]) as zf:  # the tab's round ZIP, per prompt
        names = set(zf.namelist())
        assert {"00_original.png", "01_candidate.png", "02_candidate.png", "round.json", "prompts.txt"} <= names
        saved = json.loads(zf.read("round.json"))
        assert saved["root_prompt"] == first["prompt"] and saved["round"]["id"] == first["id"]
        assert [im["prompt"] for im in saved["images"][1:]] == [c["text"] for c in first["candidates"]]
        assert saved["images"][1]["provenance"]["model_id"] == first["candidates"][0]["image_provenance"]["model_id"]
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


ROOT = Path(__file__).resolve().parent.parent


def _cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WORKBENCH_MEMORY_BUDGET_GB": "2",
            **extra}


def _complete_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    raw = path.read_text(encoding="utf-8")
    return raw.split("\n")[:-1]  # the text after the last newline is a line still being written


@pytest.mark.slow
def test_batch_cli_resumes_after_sigkill(tmp_path):
    """`python -m workbench.t2i batch` is SIGKILLed mid-run (no cleanup, no exception handler runs), then rerun:
    every prompt ends up in the results exactly once, no line is corrupt, finished prompts are not redone."""
    prompts = [f"a {thing} in the style of plate {k}" for k, thing in
               enumerate(["cat", "fox", "lighthouse", "castle", "bowl of ramen", "red bicycle"] * 10)]
    (tmp_path / "p.txt").write_text("\n".join(prompts) + "\n")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "workbench.t2i", "batch", str(tmp_path / "p.txt"), "--out", str(out),
           "--profile", "fake", "--n", "2", "--steps", "1", "--size", "64"]
    shard_file = out / "shards" / "rank-000.jsonl"
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while len(_complete_lines(shard_file)) < 3:
            assert proc.poll() is None, f"the batch ended before it could be killed: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no records after 240 s"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before = _complete_lines(shard_file)
    assert 3 <= len(before) < len(prompts), "the kill came after the batch finished: it proves nothing"
    assert not (out / "results.jsonl").exists()  # merging happens only at the end

    rerun = subprocess.run(cmd, cwd=ROOT, env=_cli_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["skipped (already done)"] == len(before)
    assert summary["done now (this process)"] == len(prompts) - len(before) and summary["failed"] == 0

    shard_lines = _complete_lines(shard_file)
    shard_rows = []
    for number, line in enumerate(shard_lines):
        try:
            shard_rows.append(json.loads(line))
        except json.JSONDecodeError:
            # Only a line cut short by the kill may be unreadable, and only where the first run stopped.
            assert number == len(before) - 1 or number == len(before), f"corrupt line {number}: {line[:200]}"
    shard_ids = [r["id"] for r in shard_rows]
    assert len(shard_ids) == len(set(shard_ids)) == len(prompts)  # no prompt was processed twice
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in rows] == prompts and [r["index"] for r in rows] == list(range(len(prompts)))
    for row in rows:
        assert "error" not in row and len(row["candidates"]) == 2
        assert all(c["text"].startswith(row["prompt"]) for c in row["candidates"])
        assert (out / row["original"]["image"]).stat().st_size > 0
        assert all((out / c["image"]).stat().st_size > 0 for c in row["candidates"])


@pytest.mark.torchrun
def test_two_processes_shard_and_merge_under_torchrun(tmp_path):
    """The launcher `accelerate launch --multi_gpu` uses (torchrun), with two CPU processes on gloo: each rank's
    own shard file shows it processed a disjoint share, and the shares together cover every prompt once."""
    from tests.app_process import free_port
    from tests.ci_skips import missing_tool

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        missing_tool("torchrun is not installed beside this Python")
    port = free_port()
    texts = ["a cat", "a dog", "a fox", "a castle", "a ramen bowl"]
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(texts) + "\n")
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
         "-m", "workbench.t2i", "batch", str(prompts), "--out", str(tmp_path / "o"), "--profile", "fake",
         "--candidates", "2", "--no-render"],
        cwd=ROOT, env=_cli_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    shards = sorted(p.name for p in (tmp_path / "o" / "shards").iterdir())
    assert shards == ["rank-000.jsonl", "rank-001.jsonl"]
    per_rank = [[json.loads(line)["prompt"] for line in (tmp_path / "o" / "shards" / name).read_text().splitlines()]
                for name in shards]
    assert per_rank == [["a cat", "a fox", "a ramen bowl"], ["a dog", "a castle"]]  # every 2nd prompt, no overlap
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])  # printed by the main process only
    assert summary["prompts"] == 5 and summary["done now (this process)"] == 3
    rows = [json.loads(line) for line in open(tmp_path / "o" / "results.jsonl")]
    assert [r["prompt"] for r in rows] == texts


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"prompt": "a cat"}\n{"prompt": "a dog"\n', r"bad\.jsonl:2 is not valid JSON"),
    ("list.jsonl", '["a cat"]\n', r"list\.jsonl:1 must be a JSON object with a 'prompt' field, got list"),
    ("field.jsonl", '{"text": "a cat"}\n', r"field\.jsonl:1 has neither a 'prompt' nor a 'coarse' field"),
    ("number.jsonl", '{"prompt": 42}\n', r"number\.jsonl:1: the prompt must be a string, got int"),
    ("empty.txt", "# only a comment\n\n", r"empty\.txt holds no prompts"),
    ("latin1.txt", "a caf\xe9 at night\n".encode("latin-1"), r"latin1\.txt:1 is not UTF-8 text"),
])
def test_malformed_prompt_files_are_refused_with_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message):
        tb.read_prompts(path)


def test_cli_refuses_malformed_files_unknown_devices_and_bad_budgets(tmp_path, capsys, monkeypatch):
    from workbench.t2i.__main__ import main

    good = tmp_path / "p.txt"
    good.write_text("a cat\n")
    monkeypatch.setenv("WORKBENCH_MEMORY_BUDGET_GB", "2")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a cat"\n')
    args = ["--out", str(tmp_path / "o"), "--profile", "fake", "--no-render"]
    assert main(["batch", str(bad), *args]) == 2
    assert "bad.jsonl:1 is not valid JSON" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "missing.txt"), *args]) == 2
    assert "missing.txt' does not exist" in capsys.readouterr().err
    assert main(["batch", str(good), *args, "--device", "gpu"]) == 2
    assert "device must be cpu, cuda, cuda:<index>, mps or auto, got 'gpu'" in capsys.readouterr().err
    for value in ("lots", "0", "-1", "nan", "inf"):
        monkeypatch.setenv("WORKBENCH_MEMORY_BUDGET_GB", value)
        assert main(["batch", str(good), *args]) == 2, value
        assert f"WORKBENCH_MEMORY_BUDGET_GB must be a number of GiB above 0, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "o" / "shards").exists() or not any((tmp_path / "o" / "shards").iterdir())
