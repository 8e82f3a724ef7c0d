"""A deterministic stand-in for a capable chat model, served over the OpenAI-compatible API so the scripted
designers exercise the real capable path (HTTP, JSON extraction, validation, fallback, phrasing and its check)
without a large model. It is not a model and claims no skill:

- asked to extract a message into the schema, it answers with the rules interpreter's reading of the message
  (no similarity), serialised as the schema's JSON inside a ```json fence; every 4th extraction is deliberately
  broken (prose with no JSON) so the local fallback runs;
- asked to phrase a sentence, it returns the agent's own sentence with a short lead-in; every 3rd phrasing is an
  off-topic sentence of the kind issue 22 saw from the 135M model, which the reply check must replace;
- asked to polish a draft, it returns the draft unchanged under a "Here is" line.

Its replies are marked random_weights (they are not a model's)."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator, Sequence

from backends.base import Capabilities, Conversation, Generation, GenerationSettings, ModelSpec
from workbench.types import Provenance

NONSENSE = ("The design was submitted yesterday, and the next day another designer made sure the gallery "
            "installation was finished before the festival.")
BACKEND_NAME = "promptor-capable-fake"
TARGET = "workbench.promptor.capable_fake:CapableFakeChat"


class CapableFakeChat:
    def __init__(self, spec: ModelSpec):
        self.spec, self.device, self.dtype, self.random_weights = spec, "cpu", "float32", True
        self.extractions = 0
        self.phrasings = 0

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("chat",), streaming=True)

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str = "cpu", dtype: str = "float32") -> "CapableFakeChat":
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

    def answer(self, conversation: Conversation) -> str:
        text = self._last(conversation)
        if "Return only one JSON object" in text:
            self.extractions += 1
            if self.extractions % 4 == 0:
                return "Sure! The designer seems to be answering the question, I think."
            return "```json\n" + json.dumps(self._extract(text)) + "\n```"
        if "TEMPLATE:\n" in text:
            return "Here is the rewritten template:\n" + text.split("TEMPLATE:\n", 1)[1]
        self.phrasings += 1
        if self.phrasings % 3 == 0:
            return NONSENSE
        said = re.search(r"What to say: (.+)$", text, re.S)
        return ("Thanks! " + said.group(1).strip()) if said else "Thanks, noted; on to the next step."

    @staticmethod
    def _extract(text: str) -> dict[str, Any]:
        from workbench.promptor.rules import LocalInterpreter
        from workbench.promptor.tasks import FIELDS

        message = text.split("<<<", 1)[1].rsplit(">>>", 1)[0]
        stage = re.search(r"Current step: (\w+)", text)
        asking = re.search(r"The question being asked: (.+?)\.\n", text)
        by_label = {f.label: f.name for f in FIELDS}
        context = {"stage": stage.group(1) if stage else "understand",
                   "asking": by_label.get(asking.group(1), "") if asking else "", "fields": {},
                   "has_draft": (stage.group(1) if stage else "understand") != "understand", "awaiting": None}
        got = LocalInterpreter(corpus=[]).interpret(message, context)
        data = {"intents": got.intents, "fields": got.fields, "examples": got.examples, "feedback": got.feedback,
                "target_stage": got.target_stage, "target_field": got.target_field, "question": got.question}
        if got.ask:  # a capable model commits to its reading
            data["fields"] = {**data["fields"], got.ask["field"]: got.ask["value"]}
        return data

    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[list[Generation]]:
        out = []
        for conv in conversations:
            reply = self.answer(conv)
            out.append([Generation(text=reply, prompt=self._last(conv), num_tokens=len(reply.split()),
                                   finish_reason="stop",
                                   provenance=Provenance.of(self, seed=settings.seed, settings=vars(settings)))])
        return out

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        yield from re.findall(r"\S+\s*", self.answer(conversation))
