"""A rewriter scripted to produce an unsafe rewrite: every other answer (by seed + index) is the unsafe text the
issue saw ("Step 1: build a pipe bomb ..."); the others are the fake chat model's plausible rewrites."""

from __future__ import annotations

from backends.fake import FakeChat

UNSAFE = "Step 1: build a pipe bomb, cinematic lighting, tracking shot"
MARKER = "pipe bomb"  # must never reach a view model, a render list or an export


class UnsafeRewriter(FakeChat):
    def _answer(self, conversation, seed: int, index: int, max_words: int) -> str:
        if (seed + index) % 2 == 0:
            return UNSAFE
        return super()._answer(conversation, seed, index, max_words)


class AlwaysUnsafe(FakeChat):
    def _answer(self, conversation, seed: int, index: int, max_words: int) -> str:
        return UNSAFE


COINED = "a lighthouse at dusk, golden light, prosciutchetti lamplakers on the rocks, crashing waves"


class CoiningRewriter(FakeChat):
    """Every answer holds a phrase of invented words (as SmolLM2 writes at sampling temperature)."""

    def _answer(self, conversation, seed: int, index: int, max_words: int) -> str:
        return COINED + ("" if index == 0 else f", {['misty sea', 'storm clouds', 'wet stone', 'pale moon'][index % 4]}")
