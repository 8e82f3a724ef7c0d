"""A safety classifier of our own: mean-pooled sentence embeddings (all-MiniLM-L6-v2) and a small trained head
(one hidden layer, a softmax over "safe" and the categories). A text is unsafe when P(not safe) = 1 - P(safe)
reaches the head's threshold; it is flagged under its most probable category. The head ships as safetensors plus
a JSON of classes and threshold (assets/safety/head/, trained by `python -m workbench.safety train`).

Options: `head` (the folder with head.safetensors + head.json). A tiny embedder without a head gets a head with
random weights, so the contract test runs with nothing downloaded (marked random_weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from backends.base import SAFETY_CATEGORIES, Capabilities, ModelSpec, SafetyResult, module_bytes
from backends.provenance import Provenance
from backends.sentence_embeddings import SentenceEmbeddings

HEAD_FILE, CONFIG_FILE = "head.safetensors", "head.json"


def build_head(dim: int, hidden: int, n_out: int) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out))


def save_head(folder: str | Path, head: Any, config: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, str(folder / HEAD_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_head(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """The head and its config; a relative folder is tried from the working directory, then the repository."""
    from safetensors.torch import load_file

    from backends.sources import REPO_ROOT

    folder = Path(folder)
    if not folder.is_absolute() and not folder.exists():
        folder = REPO_ROOT / folder
    if not (folder / HEAD_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"safety head folder '{folder}' needs {HEAD_FILE} and {CONFIG_FILE}; train one with "
                                f"`python -m workbench.safety train`")
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    head = build_head(int(config["dim"]), int(config["hidden"]), len(config["classes"]))
    head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    return head.eval(), config


class SafetyHead:
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("safety",))

    def __init__(self, spec: ModelSpec, embedder: SentenceEmbeddings, head: Any, config: dict[str, Any],
                 random_weights: bool):
        self.spec, self.device, self.dtype = spec, embedder.device, embedder.dtype
        self.embedder, self.head, self.config = embedder, head, config
        self.random_weights = random_weights
        self.classes: tuple[str, ...] = tuple(config["classes"])  # "safe" first, then the categories
        if self.classes[0] != "safe":
            raise ValueError(f"a safety head's first class must be 'safe', got {self.classes[0]!r}")
        self.threshold = float(config["threshold"])

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "SafetyHead":
        import torch

        embedder = SentenceEmbeddings.load(spec.without_option("head"), device=device, dtype=dtype)
        folder = spec.option("head")
        if folder:
            head, config = load_head(folder)
            random_weights = embedder.random_weights
        elif embedder.random_weights:
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
        self.embedder.unload()
        self.head = None

    def memory_bytes(self) -> int:
        return self.embedder.memory_bytes() + module_bytes(self.head)

    def probabilities(self, texts: Sequence[str]) -> Any:
        """(n, classes) softmax probabilities (numpy); column 0 is "safe"."""
        import torch

        vectors = torch.as_tensor(self.embedder.embed(list(texts)).vectors, device=self.device)
        with torch.inference_mode():
            return torch.softmax(self.head(vectors.float()), dim=-1).cpu().numpy()

    def classify(self, texts: Sequence[str]) -> list[SafetyResult]:
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not a single string")
        if not texts:
            return []
        probs = self.probabilities(texts)
        prov = Provenance.of(self, settings={"head": str(self.spec.option("head") or "random"),
                                             "head_version": self.config.get("version"),
                                             "threshold": self.threshold})
        out = []
        for row in probs:
            scores = {c: float(p) for c, p in zip(self.classes[1:], row[1:])}
            unsafe = 1.0 - float(row[0])
            if unsafe >= self.threshold:
                top = max(scores, key=scores.get)
                reason = f"P(unsafe) = {unsafe:.2f} ≥ {self.threshold:.2f}, most likely {top} ({scores[top]:.2f})"
                out.append(SafetyResult(False, (top,), scores, (reason,), prov))
            else:
                out.append(SafetyResult(True, (), scores, (f"P(unsafe) = {unsafe:.2f} < {self.threshold:.2f}",), prov))
        return out
