"""Train the video-prompt rewriter on exported preference data, as both papers do: SFT on original -> best
(TRL SFTTrainer), then DPO on chosen/rejected (TRL DPOTrainer, beta 0.1), one LoRA adapter (peft) throughout.
DPO keeps training the SFT adapter; its reference is, as TRL does for peft models, the model with the adapter
switched off (the base), which saves a second copy of the model. The adapter folder loads in the tabs through
the chat role's `adapter` option, like the T2I rewriter's.

    python -m workbench.t2v train --profile offline --sft out/sft.jsonl --dpo out/dpo.jsonl --out adapters/t2v
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backends.base import ModelSpec
from workbench.types import Provenance
from workbench.t2v.evolve import EVOLVE_SYSTEM_TEMPLATE


@dataclass
class T2VTrainConfig:
    base: ModelSpec  # a transformers-lm spec (the profile's chat role)
    out_dir: str
    sft_file: str | None = None
    dpo_file: str | None = None
    sft_steps: int = 50  # Prompt-A-Video trains 12 epochs; keep CPU runs short
    dpo_steps: int = 50
    batch_size: int = 2
    sft_learning_rate: float = 2e-4  # the usual LoRA rate
    dpo_learning_rate: float = 5e-5  # DPO wants a smaller step than SFT
    beta: float = 0.1  # both papers' DPO beta
    lora_r: int = 16  # Prompt-A-Video's DPO LoRA rank
    lora_alpha: int = 32
    target_modules: tuple[str, ...] | str = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_length: int = 256
    seed: int = 0
    system_template: str = EVOLVE_SYSTEM_TEMPLATE

    def check(self) -> "T2VTrainConfig":
        if self.base.backend != "transformers-lm":
            raise ValueError(f"the rewriter to train must use the transformers-lm backend, got {self.base.backend!r}")
        if not self.sft_file and not self.dpo_file:
            raise ValueError("nothing to train: give an SFT file, a DPO file, or both")
        for name in ("sft_file", "dpo_file"):
            path = getattr(self, name)
            if path and not Path(path).exists():
                raise ValueError(f"{name} '{path}' does not exist")
        for name, low, high in (("sft_steps", 1, 100_000), ("dpo_steps", 1, 100_000), ("batch_size", 1, 256),
                                ("lora_r", 1, 256), ("lora_alpha", 1, 1024), ("max_length", 16, 8192)):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}")
        if not 0 < self.beta <= 10:
            raise ValueError(f"beta must be above 0 and at most 10, got {self.beta!r}")
        return self


def _rows(path: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [f for f in fields if not isinstance(row.get(f), str)]
            if missing:
                raise ValueError(f"{path}:{lineno} lacks text fields {missing} (TRL format: {', '.join(fields)})")
            rows.append({f: row[f] for f in fields})
    if not rows:
        raise ValueError(f"{path} holds no rows: export pairs with looser thresholds or a smaller margin")
    return rows


def _dataset(backend: Any, rows: list[dict[str, str]], system_template: str, max_length: int) -> Any:
    """TRL's standard (plain text) format, the prompt formatted as the evolution's first turn, so what the
    adapter sees in training is what it sees in use."""
    from datasets import Dataset

    data = {k: [r[k] for r in rows] for k in rows[0]}
    data["prompt"] = [backend.format_chat([{"role": "system", "content": system_template},
                                           {"role": "user", "content": p}]) for p in data["prompt"]]
    lengths = [len(ids) for ids in backend.tokenizer(data["prompt"], add_special_tokens=False)["input_ids"]]
    if min(lengths) >= max_length:
        raise ValueError(f"max_length {max_length} leaves no room for the answer: the formatted prompts are "
                         f"{min(lengths)}-{max(lengths)} tokens; raise max_length or shorten the system template")
    return Dataset.from_dict(data)


def train_rewriter(config: T2VTrainConfig) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from workbench.models import load_standalone

    config.check()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    backend = load_standalone(config.base, dtype="float32")
    device = backend.device
    model, tokenizer = backend.model, backend.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.train()
    out = Path(config.out_dir)
    work = out / "_trainer"
    target = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    peft_config: Any = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                                  target_modules=target, task_type="CAUSAL_LM")
    common = dict(output_dir=str(work), per_device_train_batch_size=config.batch_size, logging_steps=1,
                  save_strategy="no", report_to="none", max_length=config.max_length, seed=config.seed,
                  use_cpu=device == "cpu", bf16=False, fp16=False, dataloader_num_workers=0, disable_tqdm=True,
                  lr_scheduler_type="constant")
    losses: dict[str, list[float]] = {"sft": [], "dpo": []}
    counts = {}
    if config.sft_file:
        rows = _rows(config.sft_file, ("prompt", "completion"))
        counts["sft_rows"] = len(rows)
        trainer = SFTTrainer(model=model, args=SFTConfig(max_steps=config.sft_steps,
                                                         learning_rate=config.sft_learning_rate, **common),
                             train_dataset=_dataset(backend, rows, config.system_template, config.max_length),
                             processing_class=tokenizer,
                             peft_config=peft_config)
        trainer.train()
        model, peft_config = trainer.model, None  # DPO keeps training this adapter
        losses["sft"] = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    if config.dpo_file:
        rows = _rows(config.dpo_file, ("prompt", "chosen", "rejected"))
        counts["dpo_rows"] = len(rows)
        trainer = DPOTrainer(model=model, args=DPOConfig(max_steps=config.dpo_steps, beta=config.beta,
                                                         learning_rate=config.dpo_learning_rate, **common),
                             train_dataset=_dataset(backend, rows, config.system_template, config.max_length),
                             processing_class=tokenizer,
                             peft_config=peft_config)
        trainer.train()
        model = trainer.model
        losses["dpo"] = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    prov = Provenance(model_id=config.base.model_id, backend="peft-lora+trl-sft+trl-dpo", seed=config.seed,
                      settings={**{k: v for k, v in asdict(config).items() if k != "base"}, **counts,
                                "seconds": round(time.perf_counter() - started, 2)},
                      device=device, dtype="float32", random_weights=backend.random_weights)
    (out / "training.json").write_text(json.dumps({"provenance": prov.to_dict(), "losses": losses,
                                                   "how_to_use": "set the chat role's option adapter: <this folder>"},
                                                  indent=2, default=str), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    backend.unload()
    return {"adapter_dir": str(out), "losses": losses, **counts, "provenance": prov.to_dict()}
