"""A safety classifier of our own with the encoder fine-tuned end to end: all-MiniLM-L6-v2's six transformer layers,
trained together with a linear head on the mean-pooled output (a softmax over "safe" and the seven categories),
as workbench/safety/finetune.py trains them on the labelled set's training split. A text is unsafe when
P(unsafe) = 1 - P(safe) reaches the threshold of its most probable category (config.json "thresholds", chosen on the
seen sets fresh3 + fresh4, never trained on); it is flagged under that category.

What ships (assets/safety/encoder/): `encoder.safetensors`, the six fine-tuned layers in float16 plus the head (the
token embeddings were frozen, so the base model's are used as they are: about 21 MB instead of 90), and
`config.json` (classes, thresholds, `weak_rule_threshold`, the base model, the version). The base weights come from
the spec's model (the offline package's copy of all-MiniLM-L6-v2); nothing is unpickled.

Options: `weights` (the folder). A tiny model without weights gets a random head, so the contract test runs with
nothing downloaded (marked random_weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from backends.base import SAFETY_CATEGORIES, Capabilities, ModelSpec, SafetyResult, free_accelerator_memory, \
    module_bytes
from backends.devices import torch_dtype
from backends.provenance import Provenance
from backends.sources import resolve_source

WEIGHTS_FILE, CONFIG_FILE = "encoder.safetensors", "config.json"
HEAD_PREFIX = "head."  # the head's tensors in WEIGHTS_FILE; every other tensor is a parameter of the encoder


def build_classifier(encoder: Any, n_classes: int, dropout: float = 0.1) -> Any:
    """The encoder, mean pooling over real tokens, dropout and a linear head: the module trained and served."""
    import torch

    class EncoderClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(int(encoder.config.hidden_size), n_classes)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(self.dropout(pooled.float()))

    return EncoderClassifier()


def trainable_state(model: Any) -> dict[str, Any]:
    """The tensors that ship: the encoder's parameters that were trained (requires_grad) and the head."""
    out = {}
    for name, param in model.encoder.named_parameters():
        if param.requires_grad:
            out[name] = param.detach()
    for name, param in model.head.named_parameters():
        out[HEAD_PREFIX + name] = param.detach()
    return out


def save_classifier(folder: str | Path, model: Any, config: dict[str, Any], dtype: str = "float16") -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = torch_dtype(dtype)
    tensors = {k: (v.to(store) if not k.startswith(HEAD_PREFIX) else v.float()).contiguous().cpu()
               for k, v in trainable_state(model).items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"version": str(config.get("version", ""))})
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_classifier(folder: str | Path, base: Any, dropout: float = 0.1) -> tuple[Any, dict[str, Any]]:
    """The classifier on `base` (a transformers encoder, modified in place) with the shipped tensors; every shipped
    tensor must name a parameter of the base with the same shape (a mismatch is an error, never ignored)."""
    import torch
    from safetensors.torch import load_file

    from backends.sources import shipped_folder

    folder = shipped_folder(folder, (WEIGHTS_FILE, CONFIG_FILE), "safety encoder",
                            "train one with `python -m workbench.safety finetune`")
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    model = build_classifier(base, len(config["classes"]), dropout)
    tensors = load_file(str(folder / WEIGHTS_FILE))
    params = dict(model.encoder.named_parameters())
    head = {k[len(HEAD_PREFIX):]: v for k, v in tensors.items() if k.startswith(HEAD_PREFIX)}
    unknown = [k for k in tensors if not k.startswith(HEAD_PREFIX) and k not in params]
    if unknown or set(head) != {"weight", "bias"}:
        raise ValueError(f"'{folder / WEIGHTS_FILE}' does not fit the base model: unknown tensors {unknown[:3]}, "
                         f"head tensors {sorted(head)}")
    with torch.no_grad():
        for name, value in tensors.items():
            if name.startswith(HEAD_PREFIX):
                continue
            if tuple(params[name].shape) != tuple(value.shape):
                raise ValueError(f"tensor {name} has shape {tuple(value.shape)}, the base model's "
                                 f"{tuple(params[name].shape)}")
            params[name].copy_(value.to(params[name].dtype))
        model.head.load_state_dict({k: v.float() for k, v in head.items()})
    if int(config.get("shipped_tensors", len(tensors))) != len(tensors):
        raise ValueError(f"'{folder / WEIGHTS_FILE}' holds {len(tensors)} tensors, config.json says "
                         f"{config['shipped_tensors']}")
    return model.eval(), config


class SafetyEncoder:
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("safety",))

    def __init__(self, spec: ModelSpec, model: Any, tokenizer: Any, config: dict[str, Any], random_weights: bool,
                 device: str = "cpu", dtype: str = "float32"):
        self.spec, self.model, self.tokenizer, self.config = spec, model, tokenizer, config
        self.device, self.dtype = device, dtype
        self.random_weights = random_weights
        self.classes: tuple[str, ...] = tuple(config["classes"])
        if self.classes[0] != "safe":
            raise ValueError(f"a safety classifier's first class must be 'safe', got {self.classes[0]!r}")
        self.threshold = float(config["threshold"])
        self.thresholds = {c: float(config.get("thresholds", {}).get(c, self.threshold)) for c in self.classes[1:]}
        self.max_length = int(config.get("max_length", 64))
        self.batch_size = int(spec.option("batch_size", 64))

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "SafetyEncoder":
        import torch
        from transformers import AutoModel, AutoTokenizer

        source = resolve_source(spec.model_id)
        folder = spec.option("weights")
        if source.kind == "tiny":
            from backends import tiny

            base, tokenizer = tiny.build(source.location, source.params)
            if folder:
                raise ValueError("a tiny random encoder cannot take trained safety weights (options.weights)")
            with torch.random.fork_rng():
                torch.manual_seed(0)
                model = build_classifier(base, len(SAFETY_CATEGORIES) + 1).eval()
            config = {"classes": ["safe", *SAFETY_CATEGORIES], "threshold": 0.5, "version": "random"}
            random_weights = True
        else:
            if not folder:
                raise ValueError(f"safety role '{spec.model_id}' needs options.weights: a folder with {WEIGHTS_FILE} "
                                 f"and {CONFIG_FILE} (the shipped one is assets/safety/encoder)")
            common = spec.hub_kwargs()
            tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
            base = AutoModel.from_pretrained(source.location, dtype=torch.float32, **common)
            model, config = load_classifier(folder, base)
            random_weights = bool(spec.random_weights)
        model.to(device=device, dtype=torch_dtype(dtype)).eval()
        for param in model.parameters():
            param.requires_grad_(False)
        return cls(spec, model, tokenizer, config, random_weights, device, dtype)

    def unload(self) -> None:
        self.model = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(self.model)

    def probabilities(self, texts: Sequence[str]) -> Any:
        """(n, classes) softmax probabilities (numpy); column 0 is "safe"."""
        import numpy as np
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                logits = self.model(batch["input_ids"], batch["attention_mask"])
                chunks.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.classes)), dtype="float32")

    def classify(self, texts: Sequence[str]) -> list[SafetyResult]:
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not a single string")
        if not texts:
            return []
        return results_of(self, self.probabilities(list(texts)))


def results_of(backend: Any, probs: Any) -> list[SafetyResult]:
    """SafetyResults from (n, classes) probabilities: unsafe when P(unsafe) reaches the threshold of the text's most
    probable category."""
    config = backend.config
    prov = Provenance.of(backend, settings={"weights": str(backend.spec.option("weights") or "random"),
                                            "version": config.get("version"), "thresholds": backend.thresholds,
                                            "weak_rule_threshold": config.get("weak_rule_threshold")})
    from backends.safety_head import threshold_verdicts

    return threshold_verdicts(probs, backend.classes, backend.thresholds, prov)
