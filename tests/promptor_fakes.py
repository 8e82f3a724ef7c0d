"""A scripted chat backend for the Promptor tests: predictable replies, a valid (or broken) polish of a draft,
outputs that differ per draft in test rounds, and a switch that makes it fail mid-reply."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator, Sequence

from backends.base import Capabilities, Conversation, Generation, GenerationSettings, ModelSpec
from backends.provenance import Provenance


class ScriptedChat:
    fail_after: int | None = None  # pieces streamed before a ConnectionError (None: never fail)
    polish_mode = "good"  # good | drop (drops {user_text}) | unknown (adds {secret})
    json_mode = "good"  # good (a valid extraction) | bad (prose: the local interpreter takes over)
    phrase_mode = "echo"  # echo (acknowledges the designer's words) | nonsense (fails the reply check)
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
        if "Return only one JSON object" in text:  # the LLM interpreter: the capable stand-in's extraction
            from workbench.promptor.capable_fake import CapableFakeChat

            return json.dumps(CapableFakeChat._extract(text)) if self.json_mode == "good" else "Sure, noted!"
        if "TEMPLATE:\n" in text:
            template = text.split("TEMPLATE:\n", 1)[1]
            if self.polish_mode == "drop":
                return "Here is the template:\n" + template.replace("{user_text}", "the text")
            if self.polish_mode == "unknown":
                return template + "\nSecret: {secret}"
            return "Here is the rewritten template:\n```\nPlease read carefully.\n" + template + "\n```"
        designer = re.search(r"Designer: (.+?)\n", text)
        if self.phrase_mode == "nonsense":
            return "The design was submitted yesterday, and the festival gallery opened the next day."
        words = " ".join(designer.group(1).split()[:4]) if designer else "that"
        return f"Thanks, noted: {words}."

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
            if "Return only one JSON object" in prompt:
                ScriptedChat.calls.append(conv)
                text = self._reply(conv)
                out.append([Generation(text=text, prompt=prompt, num_tokens=len(text.split()), finish_reason="stop",
                                       provenance=Provenance.of(self, seed=settings.seed, settings=vars(settings)))])
                continue
            rules = sum(1 for line in prompt.splitlines() if line.startswith("- "))
            user = prompt.split("The user's text:\n", 1)[-1].split("\n", 1)[0]
            text = f"{user} and more ({rules} rules)"
            out.append([Generation(text=text, prompt=prompt, num_tokens=len(text.split()), finish_reason="stop",
                                   provenance=Provenance.of(self, seed=settings.seed, settings=vars(settings)))])
        return out
