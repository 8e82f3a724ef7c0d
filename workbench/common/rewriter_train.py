"""Training recipe for the rewriter: LoRA (peft) fine-tuning of a causal LM on coarse->fine pairs with TRL's
SFTTrainer, plus an optional image-reward step (rejection sampling: for each coarse prompt sample k rewrites,
render and score them, keep the best, train on those), the inference-time stand-in for UF-FGTG's image loss.
Saves a peft adapter folder that the tab loads by path (the chat spec option `adapter`)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backends.base import ImageSettings, ModelSpec
from workbench.types import Provenance
from workbench.lora import save_adapter
from workbench.common.refiner import (
    DEFAULT_SYSTEM_TEMPLATE, HELDOUT_FILE, PAIRS_FILE, apply_prompt_template, build_messages, facet_system_template,
    heldout_ids, load_pairs,
)


@dataclass
class TrainConfig:
    base: ModelSpec  # the rewriter to adapt (a transformers-lm spec)
    out_dir: str
    pairs_file: str = str(PAIRS_FILE)
    max_steps: int = 100  # SFT steps on the corpus (0: skip straight to rejection sampling)
    batch_size: int = 2  # fits Gemma-3-270M on 2 CPU cores in ~3 GB
    learning_rate: float = 2e-4  # the usual LoRA rate
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | str = ("q_proj", "k_proj", "v_proj", "o_proj")  # or "all-linear"
    max_length: int = 256  # system template + coarse + a 60-word fine prompt
    limit_pairs: int | None = None  # train on the first N pairs (after shuffling with seed)
    exclude_heldout: bool = True  # never train on the evaluation's held-out pairs (assets/t2i_pairs/heldout_ids.txt)
    heldout_file: str = str(HELDOUT_FILE)  # the ids file of that split (the T2V corpus has its own)
    # a fixed instruction with {query} sent as the only user turn (the role option `prompt_template` at use, as VPO
    # does); empty: the system template + the prompt as the user turn (the T2I refiner's zero-shot request)
    prompt_template: str = ""
    max_seconds: float = 0  # stop SFT after this much wall-clock (0: no limit): a run sized for loaded shared cores
    max_fine_words: int = 0  # train only on fine prompts of at most this many words (0: all); 55 keeps CLIP's window
    # facet-tagged pairs (assets/t2i_pairs/facet_pairs.jsonl, rows with `source` and `facet`), trained on as well: each
    # asked for with the facet's instruction added to the system template, as the refiner's "instruction" steering asks
    facet_pairs_file: str = ""
    exclude_ids_files: tuple[str, ...] = ()  # more ids files whose pairs are never trained on (the validation split)
    # a peft adapter folder (from an earlier run of this recipe) to go on training instead of a new LoRA: a run
    # stopped by max_seconds continues from its saved adapter (its r, alpha and target modules; lora_* are ignored)
    init_adapter: str = ""
    seed: int = 0
    system_template: str = DEFAULT_SYSTEM_TEMPLATE
    # rejection sampling (image reward); off when rejection_k == 0
    rejection_k: int = 0  # rewrites sampled per coarse prompt
    rejection_prompts: int = 8  # how many coarse prompts to sample for
    rejection_steps: int = 20  # SFT steps on the kept (best) rewrites
    t2i: ModelSpec | None = None
    scorer: ModelSpec | None = None
    embedder: ModelSpec | None = None
    image: ImageSettings = field(default_factory=lambda: ImageSettings(steps=20, width=512, height=512))
    weights: dict[str, float] | None = None
    temperature: float = 0.9
    max_new_tokens: int = 96

    def check(self) -> "TrainConfig":
        if self.base.backend != "transformers-lm":
            raise ValueError(f"the rewriter to train must use the transformers-lm backend, got {self.base.backend!r}")
        ranges = {"max_steps": (self.max_steps, 0, 100_000), "batch_size": (self.batch_size, 1, 256),
                  "lora_r": (self.lora_r, 1, 256), "lora_alpha": (self.lora_alpha, 1, 1024),
                  "max_length": (self.max_length, 16, 8192), "rejection_k": (self.rejection_k, 0, 32),
                  "rejection_prompts": (self.rejection_prompts, 1, 10_000),
                  "rejection_steps": (self.rejection_steps, 1, 100_000)}
        for name, (value, low, high) in ranges.items():
            if not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}")
        if isinstance(self.max_seconds, bool) or not isinstance(self.max_seconds, (int, float)) or not (
                0 <= self.max_seconds <= 7 * 24 * 3600):
            raise ValueError(f"max_seconds must be between 0 (no limit) and 604800, got {self.max_seconds!r}")
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate must be above 0 and at most 1, got {self.learning_rate!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be between 0 and 1, got {self.lora_dropout!r}")
        if self.max_steps == 0 and self.rejection_k == 0:
            raise ValueError("nothing to train: set max_steps above 0 or rejection_k above 0")
        if self.rejection_k == 1:
            raise ValueError("rejection_k must be 0 (off) or at least 2: keeping the best of one sample selects nothing")
        if self.rejection_k and not (self.t2i and self.scorer and self.embedder):
            raise ValueError("rejection sampling needs t2i, scorer and embedder specs (a profile gives them)")
        if self.prompt_template and "{query}" not in self.prompt_template:
            raise ValueError("prompt_template must contain {query} where the user's prompt goes")
        if self.init_adapter and not (Path(self.init_adapter) / "adapter_config.json").is_file():
            raise ValueError(f"init_adapter must be a peft adapter folder (with adapter_config.json), got "
                             f"{self.init_adapter!r}")
        if self.limit_pairs is not None and not 1 <= self.limit_pairs <= 1_000_000:
            raise ValueError(f"limit_pairs must be between 1 and 1000000, got {self.limit_pairs!r}")
        self.image.check()
        return self


@dataclass
class TrainResult:
    adapter_dir: str
    sft_steps: int
    rejection_steps: int
    losses: list[float]
    kept: list[dict[str, Any]]  # rejection sampling: per coarse prompt, the samples, their totals and the best
    provenance: Provenance


def request(coarse: str, system_template: str, prompt_template: str = "") -> list[dict[str, str]]:
    """The rewriter's zero-shot request, as the tabs send it: the role's `prompt_template` as the one user turn
    (refiner._conversation, principles.rewriter_template), else the system template and the prompt."""
    if prompt_template:
        return [{"role": "user", "content": apply_prompt_template(prompt_template, coarse)}]
    return build_messages(coarse, system_template, [])


def _examples(backend: Any, rows: list[tuple[str, str]] | list[tuple[str, str, str | None]], system_template: str,
              max_length: int, prompt_template: str = "") -> Any:
    """Plain prompt/completion text (works with or without a chat template: Gemma base has none), formatted
    exactly as the refiner formats a zero-shot request, so the adapter sees at training what it sees in use. A row's
    third field, when given and not None, is a facet: its request carries the facet's instruction
    (`refiner.facet_system_template`), as the refiner's instruction steering sends it."""
    from datasets import Dataset

    def template(row: tuple) -> str:
        facet = row[2] if len(row) > 2 else None
        return facet_system_template(system_template, facet) if facet else system_template

    prompts = [backend.format_chat(request(row[0], template(row), prompt_template)) for row in rows]
    lengths = [len(ids) for ids in backend.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    if lengths and min(lengths) >= max_length:
        raise ValueError(f"max_length {max_length} leaves no room for the completion: the formatted prompt alone is "
                         f"{min(lengths)}-{max(lengths)} tokens; raise max_length or shorten the system template")
    return Dataset.from_dict({"prompt": prompts, "completion": [row[1] for row in rows]})


def _facet_rows(config: TrainConfig, held: set[str], sources: set[str] | None = None) -> list[tuple[str, str, str]]:
    """(coarse, fine, facet) rows of the facet-tagged pairs file, minus those built from a left-out pair (`held`:
    the held-out and validation ids), those over `max_fine_words`, and (when `sources` is given: `limit_pairs`)
    those built from pairs outside it."""
    from workbench.common.facets import check_facets

    rows = []
    with open(config.facet_pairs_file, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = {k for k in ("source", "facet", "coarse", "fine") if not row.get(k)}
            if missing:
                raise ValueError(f"{config.facet_pairs_file}:{lineno} lacks fields {sorted(missing)}")
            check_facets([row["facet"]], f"{config.facet_pairs_file}:{lineno} facet")
            if row["source"] in held or row.get("id") in held or (sources is not None and row["source"] not in sources):
                continue
            if config.max_fine_words and len(row["fine"].split()) > config.max_fine_words:
                continue
            rows.append((row["coarse"], row["fine"], row["facet"]))
    return rows


def _time_limit(seconds: float) -> Any:
    """A trainer callback that ends training after the step that passes `seconds` of wall-clock (the adapter is then
    saved as usual, and training.json records the steps actually run)."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        started = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.perf_counter() - self.started >= seconds:
                control.should_training_stop = True

    return TimeLimit()


def _sft(model: Any, tokenizer: Any, dataset: Any, config: TrainConfig, steps: int, peft_config: Any, work: Path,
         device: str) -> tuple[Any, list[float]]:
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(work), max_steps=steps, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, logging_steps=1, save_strategy="no", report_to="none",
        max_length=config.max_length, seed=config.seed, use_cpu=device == "cpu", bf16=False, fp16=False,
        dataloader_num_workers=0, disable_tqdm=True, lr_scheduler_type="constant",
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[_time_limit(config.max_seconds)] if config.max_seconds else None)
    trainer.train()
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return trainer.model, losses


def train_rewriter(config: TrainConfig, manager: Any | None = None, progress: bool = False,
                   rejection: Any = None) -> TrainResult:
    """SFT of a LoRA rewriter on a pairs corpus (the T2I and T2V recipes); with `config.rejection_k`, a
    `rejection(sampler, t2i, scorer, embedder, coarse, config, progress)` callable (the T2I tab's image-reward
    rejection sampling, `workbench.t2i.train.rejection_sample`) picks the rewrites to train on further."""
    import torch
    from peft import LoraConfig

    from workbench.models import ModelManager, load_standalone
    from workbench.models import ManagedModel

    config.check()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    backend = load_standalone(config.base, dtype="float32")
    device = backend.device
    model, tokenizer = backend.model, backend.tokenizer
    model.train()
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "_trainer"
    target = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                             target_modules=target, task_type="CAUSAL_LM")
    if config.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
        peft_config = None  # go on training the loaded adapter
    pairs = load_pairs(config.pairs_file)
    held = heldout_ids(config.heldout_file) if config.exclude_heldout else set()
    for ids_file in config.exclude_ids_files:
        if not Path(ids_file).exists():
            raise FileNotFoundError(f"exclude_ids_files: '{ids_file}' does not exist")
        held |= heldout_ids(ids_file)
    pairs = [p for p in pairs if p.id not in held]
    if config.max_fine_words:
        pairs = [p for p in pairs if len(p.fine.split()) <= config.max_fine_words]
    rng = random.Random(config.seed)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    if config.limit_pairs:
        order = order[: config.limit_pairs]
    rows: list[tuple[str, str, str | None]] = [(pairs[i].coarse, pairs[i].fine, None) for i in order]
    if config.facet_pairs_file:
        rows += _facet_rows(config, held, {pairs[i].id for i in order} if config.limit_pairs else None)
        rng.shuffle(rows)
    losses: list[float] = []
    if config.max_steps:
        model, step_losses = _sft(model, tokenizer, _examples(backend, rows, config.system_template, config.max_length,
                                                           config.prompt_template), config,
                                  config.max_steps, peft_config, work, device)
        losses += step_losses
        peft_config = None  # the model is a PeftModel now; later stages keep training the same adapter
    kept: list[dict[str, Any]] = []
    if config.rejection_k:
        from peft import get_peft_model

        if rejection is None:
            raise ValueError("rejection_k needs a rejection sampler (the T2I recipe's rejection_sample)")

        if peft_config is not None:
            model = get_peft_model(model, peft_config)
            peft_config = None
        model.eval()
        sampler = type(backend)(config.base, device, "float32", model, tokenizer, backend.random_weights)
        sampler.has_adapter = True
        mgr = manager or ModelManager(budget_bytes=8 * 1024**3, device=device)
        coarse = [row[0] for row in rows[: config.rejection_prompts]]
        kept = rejection(sampler, ManagedModel(mgr, config.t2i), ManagedModel(mgr, config.scorer),
                                ManagedModel(mgr, config.embedder), coarse, config, progress)
        if not kept:
            raise RuntimeError("rejection sampling kept nothing: every sampled rewrite was empty; train longer on "
                               "the corpus first (max_steps) or raise the temperature")
        model.train()
        model, step_losses = _sft(model, tokenizer, _examples(backend, [(k["coarse"], k["best"]) for k in kept],
                                                              config.system_template, config.max_length,
                                                              config.prompt_template),
                                  config, config.rejection_steps, None, work, device)
        losses += step_losses
    save_adapter(model, out, config.base.model_id)
    prov = Provenance(model_id=config.base.model_id, backend="peft-lora+trl-sft", seed=config.seed,
                      settings={k: v for k, v in asdict(config).items() if k not in ("base", "t2i", "scorer", "embedder")},
                      device=device, dtype="float32", random_weights=backend.random_weights)
    prov.settings.update(t2i=config.t2i.model_id if config.t2i else None,
                         scorer=config.scorer.model_id if config.scorer else None,
                         embedder=config.embedder.model_id if config.embedder else None,
                         pairs_used=len(rows), facet_pairs_used=sum(1 for r in rows if r[2]), seconds=round(time.perf_counter() - started, 2),
                         steps_run=len(losses))
    (out / "training.json").write_text(json.dumps({"provenance": prov.to_dict(), "losses": losses,
                                                   "how_to_use": "set the chat role's option adapter: <this folder>"},
                                                  indent=2), encoding="utf-8")
    if kept:
        with open(out / "rejection_samples.jsonl", "w", encoding="utf-8") as fh:
            for row in kept:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(adapter_dir=str(out), sft_steps=config.max_steps,
                       rejection_steps=config.rejection_steps if config.rejection_k else 0, losses=losses, kept=kept,
                       provenance=prov)
