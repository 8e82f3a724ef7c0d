"""A scripted chat backend for the Promptor tests: predictable replies, a valid (or broken) polish of a draft,
outputs that differ per draft in test rounds, and a switch that makes it fail mid-reply."""

from __future__ import annotations

import re
from typing import Any, Iterator, Sequence

from backends.base import Capabilities, Conversation, Generation, GenerationSettings, ModelSpec
from backends.provenance import Provenance


class ScriptedChat:
    fail_after: int | None = None  # pieces streamed before a ConnectionError (None: never fail)
    polish_mode = "good"  # good | drop (drops {user_text}) | unknown (adds {secret})
    calls: list[Any] = []  # every conversation streamed, for assertions

    def __init__(self, spec: ModelSpec):
        self.spec, self.device, self.dtype, self.random_weights = spec, "cpu", "float32", True

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("chat",), streaming=True)

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str = "cpu", dtype: str = "float32") -> "ScriptedChat":
        return cls(spec)

    def unload(self) -> None:
        pass

    def memory_bytes(self) -> int:
        return 1000

    @staticmethod
    def _last(conversation: Conversation) -> str:
        if isinstance(conversation, str):
            return conversation
        return [m["content"] for m in conversation if m["role"] == "user"][-1]

    def _reply(self, conversation: Conversation) -> str:
        text = self._last(conversation)
        if "TEMPLATE:\n" in text:
            template = text.split("TEMPLATE:\n", 1)[1]
            if self.polish_mode == "drop":
                return "Here is the template:\n" + template.replace("{user_text}", "the text")
            if self.polish_mode == "unknown":
                return template + "\nSecret: {secret}"
            return "Here is the rewritten template:\n```\nPlease read carefully.\n" + template + "\n```"
        return "Thanks, noted that answer."

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        ScriptedChat.calls.append(conversation)
        for k, piece in enumerate(re.findall(r"\S+\s*", self._reply(conversation))):
            if self.fail_after is not None and k >= self.fail_after:
                raise ConnectionError("scripted backend dropped the connection")
            yield piece

    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[list[Generation]]:
        out = []
        for conv in conversations:
            prompt = self._last(conv)
            rules = sum(1 for line in prompt.splitlines() if line.startswith("- "))
            user = prompt.split("The user's text:\n", 1)[-1].split("\n", 1)[0]
            text = f"{user} and more ({rules} rules)"
            out.append([Generation(text=text, prompt=prompt, num_tokens=len(text.split()), finish_reason="stop",
                                   provenance=Provenance.of(self, seed=settings.seed, settings=vars(settings)))])
        return out
