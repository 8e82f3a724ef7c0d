"""A safety classifier of our own: mean-pooled sentence embeddings (all-MiniLM-L6-v2) and a small trained head
(one hidden layer, a softmax over "safe" and the categories). A text is unsafe when P(not safe) = 1 - P(safe)
reaches the threshold of its most probable category (head.json "thresholds", one per category, chosen out of fold
at training; a head with one "threshold" uses it for all); it is flagged under that category. The head ships as
safetensors plus a JSON of classes and thresholds (assets/safety/head/, trained by `python -m workbench.safety train`).

The embedder is the one head.json names: `embedder_backend` "sentence-embeddings" (the default: MiniLM's
normalised sentence embeddings) or "lm-layer-embeddings" (a causal LM's hidden states after decoder layer
`embedder_layer`, mean-pooled: backends/lm_embeddings.py), in both cases of the spec's model. A head.json with
"standardize" true holds the training vectors' mean and standard deviation in bank.safetensors: each vector is
standardised with them and L2-normalised before the head and the vote see it (a language model's residual stream has
a few dimensions thousands of times larger than the rest).

Options: `head` (the folder with head.safetensors + head.json). A tiny embedder without a head gets a head with
random weights, so the contract test runs with nothing downloaded (marked random_weights)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from backends.base import SAFETY_CATEGORIES, Capabilities, ModelSpec, SafetyResult, module_bytes
from backends.provenance import Provenance
from backends.sentence_embeddings import SentenceEmbeddings

HEAD_FILE, CONFIG_FILE, BANK_FILE = "head.safetensors", "head.json", "bank.safetensors"


def knn_probs(query: Any, bank: Any, bank_labels: Any, n_classes: int, k: int, temperature: float) -> Any:
    """(n, n_classes) class shares among each query's k most similar bank texts (cosine of embeddings, weighted by
    exp(cosine / temperature)): the training prompts next to a text vote on it. numpy in, numpy out."""
    import numpy as np

    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    sim = q @ b.T
    k = min(k, b.shape[0])
    idx = np.argsort(-sim, axis=1)[:, :k]
    near = np.take_along_axis(sim, idx, axis=1)
    weights = np.exp((near - near[:, :1]) / temperature)  # shifted by the row's best: same shares, no overflow
    out = np.zeros((len(q), n_classes), dtype="float64")
    np.add.at(out, (np.repeat(np.arange(len(q)), k), bank_labels[idx].ravel()), weights.ravel())
    return (out / out.sum(axis=1, keepdims=True)).astype("float32")


def mix_probs(head_probs: Any, knn: Any | None, knn_weight: float) -> Any:
    return head_probs if knn is None or knn_weight <= 0 else (1 - knn_weight) * head_probs + knn_weight * knn


def build_head(dim: int, hidden: int, n_out: int) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out))


def save_head(folder: str | Path, head: Any, config: dict[str, Any], bank: dict[str, Any] | None = None) -> Path:
    """head.safetensors + head.json, and (with `bank`: {"vectors": (m, dim) float32, "labels": (m,) int64}, the
    training prompts' embeddings and classes, for the k-nearest-neighbour vote) bank.safetensors."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, str(folder / HEAD_FILE))
    if bank is not None:
        save_file({k: torch.as_tensor(v).contiguous() for k, v in bank.items()}, str(folder / BANK_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_head(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """The head and its config; a relative folder is tried from the working directory, then the repository."""
    from safetensors.torch import load_file

    from backends.sources import shipped_folder

    folder = shipped_folder(folder, (HEAD_FILE, CONFIG_FILE), "safety head",
                            "train one with `python -m workbench.safety train`")
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    head = build_head(int(config["dim"]), int(config["hidden"]), len(config["classes"]))
    head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    bank = load_file(str(folder / BANK_FILE)) if (folder / BANK_FILE).is_file() else {}
    if config.get("knn"):
        if not bank:
            raise FileNotFoundError(f"safety head '{folder}' votes with its nearest training prompts but has no "
                                    f"{BANK_FILE}; retrain it with `python -m workbench.safety train`")
        config = {**config, "_bank": (bank["vectors"].float().numpy(), bank["labels"].long().numpy())}
    if config.get("standardize"):
        stats = bank
        if "mean" not in stats or "std" not in stats:
            raise FileNotFoundError(f"safety head '{folder}' standardises its embeddings but {BANK_FILE} has no "
                                    f"mean and std; retrain it with `python -m workbench.safety train`")
        config = {**config, "_standardize": (stats["mean"].float().numpy(), stats["std"].float().numpy())}
    return head.eval(), config


def standardized(raw: Any, stats: tuple[Any, Any] | None) -> Any:
    """Vectors as the head was trained on them: with `stats` (mean, std) standardised and L2-normalised, else as
    given (float32 numpy)."""
    import numpy as np

    x = np.asarray(raw, dtype=np.float32)
    if stats is None:
        return x
    x = (x - stats[0]) / stats[1]
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


EMBEDDER_BACKENDS = ("sentence-embeddings", "lm-layer-embeddings")


def embedder_spec(spec: ModelSpec, config: dict[str, Any]) -> ModelSpec:
    """The spec of the embedder a head was trained on (head.json "embedder_backend", "embedder_layer"), for the
    safety role's model; the trainer (workbench/safety/train.py) builds its embedder with it too."""
    backend = config.get("embedder_backend", "sentence-embeddings")
    if backend not in EMBEDDER_BACKENDS:
        raise ValueError(f"embedder_backend must be one of {', '.join(EMBEDDER_BACKENDS)}, got {backend!r}")
    if backend == "lm-layer-embeddings":
        return dataclasses.replace(spec, backend=backend, options=(("layer", int(config.get("embedder_layer") or 0)),))
    return dataclasses.replace(spec.without_option("head"), backend=backend)


def load_embedder(spec: ModelSpec, config: dict[str, Any], device: str, dtype: str) -> Any:
    from backends.lm_embeddings import LMLayerEmbeddings

    emb_spec = embedder_spec(spec, config)
    cls = LMLayerEmbeddings if emb_spec.backend == "lm-layer-embeddings" else SentenceEmbeddings
    return cls.load(emb_spec, device=device, dtype=dtype)


def embedding_size(embedder: Any) -> int:
    return int(getattr(embedder, "hidden_size", 0) or embedder.model.config.hidden_size)


class SafetyHead:
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("safety",), embedded_input=True)

    def __init__(self, spec: ModelSpec, embedder: SentenceEmbeddings | None, head: Any, config: dict[str, Any],
                 random_weights: bool, device: str = "cpu", dtype: str = "float32"):
        """`embedder` None: loaded on the first `classify(texts)`; `classify_embedded` never needs it (the
        workbench passes the embeddings role's vectors when that role holds the same model)."""
        self.spec = spec
        self.device, self.dtype = (embedder.device, embedder.dtype) if embedder is not None else (device, dtype)
        self.embedder, self.head, self.config = embedder, head, config
        self.random_weights = random_weights
        self.classes: tuple[str, ...] = tuple(config["classes"])  # "safe" first, then the categories
        if self.classes[0] != "safe":
            raise ValueError(f"a safety head's first class must be 'safe', got {self.classes[0]!r}")
        self.threshold = float(config["threshold"])
        self.thresholds = {c: float(config.get("thresholds", {}).get(c, self.threshold)) for c in self.classes[1:]}

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "SafetyHead":
        import torch

        folder = spec.option("head")
        if folder:  # the embedder waits for the first classify(texts): a shared one may serve instead
            head, config = load_head(folder)
            head.to(device=device)
            for param in head.parameters():
                param.requires_grad_(False)
            return cls(spec, None, head, config, bool(spec.random_weights), device, dtype)
        embedder = SentenceEmbeddings.load(spec.without_option("head"), device=device, dtype=dtype)
        if embedder.random_weights:
            dim = int(embedder.model.config.hidden_size)
            with torch.random.fork_rng():
                torch.manual_seed(0)
                head = build_head(dim, 16, len(SAFETY_CATEGORIES) + 1).eval()
            config = {"classes": ["safe", *SAFETY_CATEGORIES], "dim": dim, "hidden": 16, "threshold": 0.5,
                      "version": "random"}
            random_weights = True
        else:
            raise ValueError(f"safety role '{spec.model_id}' needs options.head: a folder with {HEAD_FILE} and "
                             f"{CONFIG_FILE} (the shipped one is assets/safety/head)")
        if int(config["dim"]) != int(embedder.model.config.hidden_size):
            raise ValueError(f"the safety head expects {config['dim']}-dim embeddings but '{spec.model_id}' gives "
                             f"{embedder.model.config.hidden_size}; train the head on this embedder")
        head.to(device=device)
        for param in head.parameters():
            param.requires_grad_(False)
        return cls(spec, embedder, head, config, random_weights)

    def unload(self) -> None:
        if self.embedder is not None:
            self.embedder.unload()
        self.head = None

    def memory_bytes(self) -> int:
        return (self.embedder.memory_bytes() if self.embedder is not None else 0) + module_bytes(self.head)

    def _own_embedder(self) -> Any:
        if self.embedder is None:
            self.embedder = load_embedder(self.spec, self.config, self.device, self.dtype)
            self.random_weights = self.random_weights or self.embedder.random_weights
            if int(self.config["dim"]) != embedding_size(self.embedder):
                raise ValueError(f"the safety head expects {self.config['dim']}-dim embeddings but "
                                 f"'{self.spec.model_id}' gives {embedding_size(self.embedder)}; train the "
                                 f"head on this embedder")
        return self.embedder

    def probabilities(self, texts: Sequence[str]) -> Any:
        """(n, classes) probabilities (numpy); column 0 is "safe": the head's softmax, mixed (head.json "knn") with
        the vote of the text's nearest training prompts."""
        return self.probabilities_embedded(self._own_embedder().embed(list(texts)).vectors)

    def probabilities_embedded(self, raw: Any) -> Any:
        """The same from embeddings (n, dim) of this head's embedder."""
        import torch

        if getattr(raw, "ndim", 0) != 2 or int(raw.shape[1]) != int(self.config["dim"]):
            raise ValueError(f"vectors must be (texts, {self.config['dim']}) embeddings of '{self.spec.model_id}', "
                             f"got shape {tuple(getattr(raw, 'shape', ()))}")
        raw = standardized(raw, self.config.get("_standardize"))
        vectors = torch.as_tensor(raw, device=self.device)
        with torch.inference_mode():
            probs = torch.softmax(self.head(vectors.float()), dim=-1).cpu().numpy()
        knn = self.config.get("knn")
        if not knn:
            return probs
        bank, labels = self.config["_bank"]
        votes = knn_probs(raw.astype("float32"), bank, labels, len(self.classes), int(knn["k"]),
                          float(knn["temperature"]))
        return mix_probs(probs, votes, float(knn["weight"]))

    def classify(self, texts: Sequence[str]) -> list[SafetyResult]:
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not a single string")
        if not texts:
            return []
        return self._results(self.probabilities(texts))

    def classify_embedded(self, texts: Sequence[str], vectors: Any) -> list[SafetyResult]:
        """`classify` on embeddings the caller computed with the same model (the embeddings role's copy)."""
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not a single string")
        if len(vectors) != len(texts):
            raise ValueError(f"vectors must have one row per text: {len(texts)} texts, {len(vectors)} rows")
        return self._results(self.probabilities_embedded(vectors)) if len(texts) else []

    def _results(self, probs: Any) -> list[SafetyResult]:
        prov = Provenance.of(self, settings={"head": str(self.spec.option("head") or "random"),
                                             "head_version": self.config.get("version"),
                                             "embedder": {"backend": self.config.get("embedder_backend",
                                                                                     "sentence-embeddings"),
                                                          "layer": self.config.get("embedder_layer")},
                                             "knn": self.config.get("knn"),
                                             "thresholds": self.thresholds,
                                             "weak_rule_threshold": self.config.get("weak_rule_threshold")})
        return threshold_verdicts(probs, self.classes, self.thresholds, prov)


def threshold_verdicts(probs: Any, classes: Sequence[str], thresholds: dict[str, float],
                       prov: Provenance) -> list[SafetyResult]:
    """SafetyResults from (n, classes) probabilities (column 0 "safe"): unsafe when P(unsafe) reaches the threshold
    of the text's most probable category. Shared by the safety classifiers (this head, the fine-tuned encoder)."""
    out = []
    for row in probs:
        scores = {c: float(p) for c, p in zip(classes[1:], row[1:])}
        unsafe = 1.0 - float(row[0])
        top = max(scores, key=scores.get)
        limit = thresholds[top]
        if unsafe >= limit:
            reason = (f"P(unsafe) = {unsafe:.2f} ≥ {limit:.2f} (the threshold of {top}, its most likely category, "
                      f"{scores[top]:.2f})")
            out.append(SafetyResult(False, (top,), scores, (reason,), prov))
        else:
            out.append(SafetyResult(True, (), scores, (f"P(unsafe) = {unsafe:.2f} < {limit:.2f} (the threshold of "
                                                       f"{top}, its most likely category)",), prov))
    return out
