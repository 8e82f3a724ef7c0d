"""Deterministic fake backends (lm-evaluation-harness DummyLM style) so pages and the app are testable with
no model at all. Outputs are derived from hashes of the inputs: same input, same output, on any machine.
They are marked random_weights so the UI labels them "not meaningful"."""

from __future__ import annotations

import hashlib
import time
import re
from typing import Any, Iterator, Sequence

from backends.base import (
    Capabilities, Conversation, EmbeddingResult, Generation, GenerationSettings, ImageResult, ImageSettings, ModelSpec,
    VideoResult, VideoSettings, VisionOutput, report_generation,
)
from backends.provenance import Provenance

_MODIFIERS = ("highly detailed", "soft morning light", "wide angle", "oil painting", "cinematic composition",
              "sharp focus", "muted colors", "studio lighting", "35mm photograph", "volumetric fog")


def _digest(*parts: Any) -> int:
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16], 16)


class _FakeBase:
    kinds: tuple[str, ...] = ()

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=cls.kinds)

    def __init__(self, spec: ModelSpec, device: str = "cpu", dtype: str = "float32"):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.random_weights = True
        self.loaded = True

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str = "cpu", dtype: str = "float32"):
        if spec.option("fail_load"):
            raise RuntimeError(f"fake load failure requested for '{spec.model_id}'")
        return cls(spec, device, dtype)

    def unload(self) -> None:
        self.loaded = False

    def memory_bytes(self) -> int:
        return int(self.spec.option("memory_bytes", 1_000_000))

    def _prov(self, seed: int | None = None, /, **settings: Any) -> Provenance:
        return Provenance.of(self, seed=seed, settings=settings)  # random_weights is True on every fake


class FakeChat(_FakeBase):
    """Answers with the last user message plus hash-chosen modifiers (a plausible "rewrite")."""

    kinds = ("chat",)

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=cls.kinds, streaming=True)

    @staticmethod
    def _last_user(conversation: Conversation) -> str:
        if isinstance(conversation, str):
            return conversation
        users = [m["content"] for m in conversation if m.get("role") == "user"]
        return users[-1] if users else ""

    def format_chat(self, conversation: Conversation) -> str:
        if isinstance(conversation, str):
            return conversation
        return "\n".join(f"{m['role']}: {m['content']}" for m in conversation) + "\nassistant:"

    def _answer(self, conversation: Conversation, seed: int, index: int, max_words: int) -> str:
        text = self._last_user(conversation).strip().splitlines()[-1] if self._last_user(conversation).strip() else ""
        h = _digest(text, seed, index)
        picks = [_MODIFIERS[(h >> (4 * k)) % len(_MODIFIERS)] for k in range(3)]
        words = (text.rstrip(".") + ", " + ", ".join(dict.fromkeys(picks))).split()
        return " ".join(words[:max_words])

    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[list[Generation]]:
        settings.check()
        out = []
        for conv in conversations:
            gens = []
            for i in range(settings.num_return_sequences):
                text = self._answer(conv, settings.seed, i, settings.max_new_tokens)
                report_generation(min(len(text.split()), settings.max_new_tokens), settings.max_new_tokens)
                gens.append(Generation(text=text, prompt=self.format_chat(conv), num_tokens=len(text.split()),
                                       finish_reason="stop", provenance=self._prov(settings.seed, **vars(settings))))
            out.append(gens)
        return out

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        settings.check()
        for k, word in enumerate(self._answer(conversation, settings.seed, 0, settings.max_new_tokens).split()):
            yield word if k == 0 else " " + word


class FakeEmbeddings(_FakeBase):
    """Hashed bag of words (64 dims): texts sharing words are similar, so MMR and intent scores behave sensibly."""

    kinds = ("embeddings",)

    dim = 64

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        import numpy as np

        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                vectors[row, _digest(word) % self.dim] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.where(norms > 0, vectors / np.maximum(norms, 1e-9), vectors)
        return EmbeddingResult(vectors=vectors, provenance=self._prov(None, pooling="hashed-bag-of-words"))


def _fake_image(prompt: str, seed: int, width: int, height: int, frame: int = 0):
    from PIL import Image, ImageDraw

    h = _digest(prompt, seed)
    base = ((h >> 8) % 256, (h >> 16) % 256, (h >> 24) % 256)
    image = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(image)
    for k in range(4):
        hk = _digest(prompt, seed, k)
        x, y = (hk % width + frame * 3) % width, (hk >> 12) % height
        r = 4 + (hk >> 24) % max(5, width // 4)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=((hk >> 4) % 256, (hk >> 20) % 256, (hk >> 36) % 256))
    return image


class FakeWindow:
    """A 77-"token" window counting words (two special tokens, as CLIP)."""

    limit = 77

    def split(self, prompt: str) -> tuple[str, str]:
        words = prompt.split()
        return " ".join(words[: self.limit - 2]), " ".join(words[self.limit - 2:])


class FakeTextToImage(_FakeBase):
    kinds = ("t2i",)
    limit = FakeWindow.limit

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=cls.kinds, prompt_window=True)

    @classmethod
    def load_prompt_window(cls, spec: ModelSpec) -> FakeWindow:
        if spec.option("fail_load"):
            raise RuntimeError(f"fake load failure requested for '{spec.model_id}'")
        return FakeWindow()

    def split_at_token_limit(self, prompt: str) -> tuple[str, str]:
        return FakeWindow().split(prompt)

    def token_limit(self) -> int:
        return self.limit

    def generate(self, prompts: Sequence[str], settings: ImageSettings,
                 on_step: Any = None) -> list[ImageResult]:
        settings.check()
        delay = float(self.spec.option("step_seconds", 0))  # tests of progress and cancel set a per-step delay
        for step in range(1, settings.steps + 1):
            if delay:
                time.sleep(delay)
            if on_step is not None:
                on_step(step, settings.steps)
        return [ImageResult(image=_fake_image(p, settings.seed, settings.width, settings.height), prompt=p,
                            provenance=self._prov(settings.seed, **vars(settings)),
                            truncated_tail=self.split_at_token_limit(p)[1]) for p in prompts]


class FakeTextToVideo(FakeTextToImage):
    kinds = ("t2v",)

    def generate(self, prompts: Sequence[str], settings: VideoSettings,  # type: ignore[override]
                 on_step: Any = None) -> list[VideoResult]:
        settings.check()
        if on_step is not None:
            for index in range(len(prompts)):
                for step in range(1, settings.steps + 1):
                    on_step(index, step, settings.steps)
        return [VideoResult(frames=[_fake_image(p, settings.seed, settings.width, settings.height, f)
                                    for f in range(settings.num_frames)], fps=settings.fps, prompt=p,
                            provenance=self._prov(settings.seed, **vars(settings)),
                            truncated_tail=self.split_at_token_limit(p)[1]) for p in prompts]


class FakeScorer(_FakeBase):
    """Similarity from the image's hash colour and the text's hashed words: deterministic, in [-1, 1]."""

    kinds = ("image_text",)

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=cls.kinds, aesthetic=True)

    def text_token_limit(self) -> int:
        return FakeWindow.limit

    def image_embeddings(self, images: Sequence[Any]) -> Any:
        import numpy as np

        rows = []
        for image in images:
            small = np.asarray(image.convert("RGB").resize((4, 4)), dtype=np.float32).reshape(-1)[:32]
            small = small - small.mean()
            rows.append(small / (np.linalg.norm(small) + 1e-9))
        return np.stack(rows) if rows else np.zeros((0, 32), dtype=np.float32)

    def text_embeddings(self, texts: Sequence[str]) -> Any:
        import numpy as np

        vec = FakeEmbeddings(self.spec).embed(texts).vectors[:, :32]
        return vec / (np.linalg.norm(vec, axis=1, keepdims=True) + 1e-9)

    def image_text_similarity(self, images: Sequence[Any], texts: Sequence[str]) -> Any:
        if len(images) != len(texts):
            raise ValueError(f"need one text per image, got {len(images)} images and {len(texts)} texts")
        return (self.image_embeddings(images) * self.text_embeddings(texts)).sum(-1)

    def aesthetic(self, images: Sequence[Any]) -> Any:
        import numpy as np

        return np.array([5.0 + (float(e.sum()) % 1.0) for e in self.image_embeddings(images)], dtype=np.float32)


class FakeVisionTransformer(_FakeBase):
    kinds = ("vision",)

    def forward(self, images: Sequence[Any]) -> VisionOutput:
        import torch

        n = len(images)
        g = torch.Generator().manual_seed(_digest(n) % (2**31))
        grid, heads, layers, dim = (4, 4), 4, 2, 32
        tokens = 1 + grid[0] * grid[1]
        attn = tuple(torch.softmax(torch.randn(n, heads, tokens, tokens, generator=g), -1) for _ in range(layers))
        hidden = torch.randn(n, tokens, dim, generator=g)
        return VisionOutput(cls_embedding=hidden[:, 0], patch_tokens=hidden[:, 1:], attentions=attn, grid=grid,
                            provenance=self._prov(None))


class FakeSafety(_FakeBase):
    """A deterministic stand-in for a safety model: flags a text when it contains one of a fixed list of words per
    category (options `flag_words`: {category: [words]} replaces the list). Not a classifier; the keyword rule
    and the real roles do the work in other profiles."""

    kinds = ("safety",)
    FLAG_WORDS: dict[str, tuple[str, ...]] = {"weapons": ("bomb", "grenade"), "violence": ("bloodbath",),
                                              "sexual": ("nude",)}

    def classify(self, texts: Sequence[str]) -> list[Any]:
        from backends.base import SafetyResult

        raw = self.spec.option("flag_words")
        words = {c: tuple(w.lower() for w in ws) for c, ws in (dict(raw) if raw else self.FLAG_WORDS).items()}
        prov = self._prov(None, flag_words={c: list(ws) for c, ws in words.items()})
        out = []
        for text in texts:
            found = set(re.findall(r"[a-z]+", text.lower()))
            flagged = tuple(c for c, ws in words.items() if found & set(ws))
            scores = {c: (1.0 if c in flagged else 0.0) for c in words}
            reasons = tuple(f"fake word list: {', '.join(sorted(found & set(words[c])))} ({c})" for c in flagged)
            out.append(SafetyResult(not flagged, flagged, scores, reasons, prov))
        return out
