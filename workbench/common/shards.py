"""Prompt files for batch CLIs, shared by the T2I and T2V batches: read a prompt file (one per line or JSONL),
give every prompt a stable id, split the prompts across processes (`accelerate launch` / torchrun) and append each
finished record to a per-process shard file, so that a killed run resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BATCH_PROMPTS = 100_000


@dataclass
class PromptItem:
    index: int
    id: str
    prompt: str


def read_prompts(path: str | Path) -> list[PromptItem]:
    """One prompt per line (.txt; blank lines and lines starting with # are skipped) or JSONL with a
    `prompt` or `coarse` field. Ids are stable: line order plus a hash of the text."""
    path = Path(path)
    texts: list[str] = []
    with open(path, encoding="utf-8") as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip() or (path.suffix != ".jsonl" and line.lstrip().startswith("#")):
                    continue
                if path.suffix == ".jsonl":
                    texts.append(_jsonl_prompt(line, f"{path}:{lineno}"))
                else:
                    texts.append(line.rstrip("\n"))
        except UnicodeDecodeError:
            raise ValueError(f"{path}:{lineno + 1} is not UTF-8 text; save the prompts file as UTF-8") from None
    if not texts:
        raise ValueError(f"{path} holds no prompts (one per line, or JSONL objects with a 'prompt' field)")
    if len(texts) > MAX_BATCH_PROMPTS:
        raise ValueError(f"{path} holds {len(texts)} prompts; the limit is {MAX_BATCH_PROMPTS}")
    return [PromptItem(i, f"{i:05d}-{hashlib.sha1(t.encode()).hexdigest()[:8]}", t) for i, t in enumerate(texts)]


def _jsonl_prompt(line: str, where: str) -> str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where} must be a JSON object with a 'prompt' field, got {type(row).__name__}")
    text = row.get("prompt", row.get("coarse"))
    if text is None:
        raise ValueError(f"{where} has neither a 'prompt' nor a 'coarse' field")
    if not isinstance(text, str):
        raise ValueError(f"{where}: the prompt must be a string, got {type(text).__name__}")
    return text


def shard(items: list[PromptItem], process_index: int, num_processes: int) -> list[PromptItem]:
    if not 0 <= process_index < num_processes:
        raise ValueError(f"process_index must be between 0 and {num_processes - 1}, got {process_index}")
    return items[process_index::num_processes]


def read_records(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Finished records from every shard file (a line cut short by an interruption is ignored)."""
    records: dict[str, dict[str, Any]] = {}
    for file in sorted((Path(out_dir) / "shards").glob("*.jsonl")):
        with open(file, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                records[row["id"]] = row
    return records


class _SingleProcess:
    process_index, num_processes, is_main_process = 0, 1, True

    def wait_for_everyone(self) -> None:
        pass


def partial_state() -> Any:
    """accelerate's PartialState (one per process under `accelerate launch` or torchrun), or a one-process
    stand-in. Without CUDA it asks for the CPU (gloo) backend, so several CPU processes shard too."""
    try:
        import torch
        from accelerate import PartialState
    except ImportError:
        return _SingleProcess()
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") or not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def process_shard(items: Any, shard_file: Path, process: Any, on_done: Any = None,
                  errors: tuple[type[BaseException], ...] = (ValueError, RuntimeError)) -> tuple[int, int]:
    """Run `process(item)` for this process's items, appending each record to the shard file as one flushed JSON
    line (what makes a killed run resumable). A failure in `errors` becomes an error record and the batch goes
    on; a model that cannot load stops it. Returns (records written, of which failed). Shared by the T2I and
    T2V batch CLIs."""
    from workbench.models import ModelLoadError

    done = failed = 0
    with open(shard_file, "a", encoding="utf-8") as fh:
        for item in items:
            try:
                record = process(item)
            except ModelLoadError:
                raise  # no model, no batch: stop with the load message
            except errors as exc:
                record = {"id": item.id, "index": item.index, "prompt": item.prompt, "error": str(exc)}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            done += 1
            failed += int("error" in record)
            if on_done is not None:
                on_done(record)
    return done, failed
