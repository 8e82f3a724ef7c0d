"""Which chat model a tab talks to: a role of the user's profile, or an OpenAI-compatible server given by URL and
model name (vLLM, TGI, Ollama, llama.cpp, a hosted API, or `python -m workbench.openai_server`). One place builds
the ModelSpec, so every tab that offers "any chat backend" checks and describes it the same way.
(The T2I rewriter's `RewriterChoice` predates this and adds the keyword baseline and LoRA adapters.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends.base import ModelSpec
from workbench.t2i.inputs import check_base_url

CHAT_KINDS = ("profile", "openai")


@dataclass(frozen=True)
class ChatChoice:
    kind: str = "profile"  # profile | openai
    role: str = "chat"  # the profile role when kind == "profile"
    base_url: str = ""
    model: str = ""
    timeout: float = 60.0  # seconds to wait for a remote server

    def check(self) -> "ChatChoice":
        if self.kind not in CHAT_KINDS:
            raise ValueError(f"chat backend must be one of {', '.join(CHAT_KINDS)}, got {self.kind!r}")
        if self.kind == "openai":
            check_base_url(self.base_url)
            if not self.model.strip():
                raise ValueError("model name for the OpenAI-compatible server is empty (the name the server lists "
                                 "under /v1/models)")
            if not 1 <= float(self.timeout) <= 600:
                raise ValueError(f"timeout must be between 1 and 600 seconds, got {self.timeout!r}")
        elif not self.role.strip():
            raise ValueError("profile role is empty (e.g. 'chat')")
        return self

    def spec(self, profile: Any) -> ModelSpec:
        self.check()
        if self.kind == "openai":
            return ModelSpec(role="chat", backend="openai-chat", model_id=self.model.strip(),
                             options=(("base_url", check_base_url(self.base_url)), ("timeout", float(self.timeout))))
        return profile.spec(self.role)

    def describe(self, profile: Any) -> str:
        spec = self.spec(profile)
        where = f" at {spec.option('base_url')}" if spec.backend == "openai-chat" else ""
        return f"{spec.backend}:{spec.model_id}{where}"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))
