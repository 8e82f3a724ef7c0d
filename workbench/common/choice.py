"""Which chat model a tab talks to, in one place: a role of the user's profile (optionally with a LoRA adapter
by path), the keyword baseline (no model), or an OpenAI-compatible server given by URL and model name (vLLM,
TGI, Ollama, llama.cpp, a hosted API, or `python -m workbench.openai_server`).

The choice never guesses a tab's default role. An empty `role` means "the caller's default", and each caller
names it: `choice.spec(profile, default_role="chat")`. A tab that always uses one default subclasses
`ModelChoice` and sets `DEFAULT_ROLE` (or overrides `default_role` where the profile names it as data, as T2I
does), so a second tab can never inherit another tab's default (the regression fixed in f3dce14)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from backends.base import ModelSpec
from workbench.common.inputs import check_base_url

MODEL_KINDS = ("profile", "baseline", "openai")
BASELINE_ID = "keyword-baseline"  # what the keyword baseline is called in provenance and status lines


@dataclass(frozen=True)
class ModelChoice:
    kind: str = "profile"  # profile | baseline | openai (a subclass may allow fewer: KINDS)
    role: str = ""  # the profile role; "" = the caller's default role
    base_url: str = ""
    model: str = ""
    adapter: str = ""  # a peft adapter folder (profile models only)
    timeout: float = 60.0  # seconds to wait for a remote server

    KINDS: ClassVar[tuple[str, ...]] = MODEL_KINDS
    LABEL: ClassVar[str] = "rewriter"  # how error messages name the choice
    DEFAULT_ROLE: ClassVar[str] = ""  # a subclass names its tab's default role here

    def check(self) -> "ModelChoice":
        if self.kind not in self.KINDS:
            raise ValueError(f"{self.LABEL} must be one of {', '.join(self.KINDS)}, got {self.kind!r}")
        if self.kind == "openai":
            check_base_url(self.base_url)
            if not self.model.strip():
                raise ValueError("model name for the OpenAI-compatible server is empty (e.g. 'gpt-4o-mini' or the "
                                 "name the server lists under /v1/models)")
            if not 1 <= float(self.timeout) <= 600:
                raise ValueError(f"timeout must be between 1 and 600 seconds, got {self.timeout!r}")
        if self.adapter.strip() and self.kind == "profile":
            folder = Path(self.adapter.strip()).expanduser()
            if not (folder / "adapter_config.json").exists():
                raise ValueError(f"adapter folder '{folder}' has no adapter_config.json; give the folder that "
                                 f"`python -m workbench.t2i train` wrote")
        return self

    def default_role(self, profile: Any) -> str:
        """The role used when `role` is empty: the subclass's `DEFAULT_ROLE`."""
        return self.DEFAULT_ROLE

    def spec(self, profile: Any, default_role: str | None = None) -> ModelSpec | None:
        """The ModelSpec of the chosen model (None for the keyword baseline). `default_role` (else the
        subclass's default) is used when no role was chosen; there is no silent fallback."""
        self.check()
        if self.kind == "baseline":
            return None
        if self.kind == "openai":
            return ModelSpec(role="chat", backend="openai-chat", model_id=self.model.strip(),
                             options=(("base_url", check_base_url(self.base_url)), ("timeout", float(self.timeout))))
        role = self.role.strip() or default_role or self.default_role(profile)
        if not role:
            raise ValueError("profile role is empty and the caller named no default role (e.g. 'chat')")
        spec = profile.spec(role)
        if self.adapter.strip():
            options = dict(spec.options)
            options["adapter"] = str(Path(self.adapter.strip()).expanduser().resolve())
            spec = dataclasses.replace(spec, options=tuple(sorted(options.items())))
        return spec

    def describe(self, profile: Any, default_role: str | None = None) -> str:
        if self.kind == "baseline":
            return BASELINE_ID
        spec = self.spec(profile, default_role)
        where = f" at {spec.option('base_url')}" if spec.backend == "openai-chat" else ""
        text = f"{spec.backend}:{spec.model_id}{where}"
        return text + (f" + adapter {self.adapter}" if self.adapter.strip() else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ChatChoice(ModelChoice):
    """A chat model for a tab that talks to one (Promptor's agent and target): no keyword baseline; the profile's
    `chat` role unless another is named."""

    role: str = "chat"
    KINDS: ClassVar[tuple[str, ...]] = ("profile", "openai")
    LABEL: ClassVar[str] = "chat backend"
    DEFAULT_ROLE: ClassVar[str] = "chat"


CHAT_KINDS = ChatChoice.KINDS
