"""Profiles: which model fills which role (assets/profiles.yaml), and which profile this machine gets.

Choice order: an explicit `--profile` / `profile=` argument, then WORKBENCH_PROFILE, then `offline` when
HF_HUB_OFFLINE=1 or the hub cannot be reached, else `gpu` with CUDA and `cpu` without.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.base import ModelSpec

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PROFILES_FILE = ASSETS / "profiles.yaml"

ROLE_DESCRIPTIONS = {
    "chat": "rewriter / agent LLM",
    "t2i_rewriter": "text-to-image prompt rewriter",
    "lm_base": "behaviour shift: base LM",
    "lm_instruct": "behaviour shift: instruction-tuned LM",
    "embeddings": "sentence embeddings",
    "t2i": "text-to-image",
    "t2v": "text-to-video",
    "image_text": "image-text scorer (CLIP) + aesthetics",
    "vit": "plain ViT backbone for scripts and tests; no tab uses it (Prompt-CAM runs on the promptcam role)",
    "promptcam": "Prompt-CAM: frozen ViT backbone + class prompts checkpoint",
    "safety": "safety check: is a text safe to render (classifier or guard model + keyword rule)",
}

# Roles that no tab runs (scripts and tests use them): the banner's random-weights warning leaves them out, since
# what a visitor sees never comes from them (Prompt-CAM runs on the `promptcam` role's trained backbone).
ROLES_NO_TAB_USES = frozenset({"vit"})


@dataclass
class Profile:
    name: str
    description: str
    roles: dict[str, ModelSpec] = field(default_factory=dict)
    # Per-tab defaults that fit the profile's hardware, as data (`settings:` in profiles.yaml), e.g.
    # settings["t2i_render"] = {"size": 128, "steps": 4, ...}. Inherited section by section.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory_budget_gb: float | None = None  # ZeroGPU: GiB of weights to keep loaded (the emulated device says nothing)

    def setting(self, section: str, key: str, default: Any = None) -> Any:
        return (self.settings.get(section) or {}).get(key, default)

    def spec(self, role: str) -> ModelSpec:
        if role not in self.roles:
            raise ValueError(
                f"profile '{self.name}' has no model for role '{role}'; it has: {', '.join(sorted(self.roles))}"
            )
        return self.roles[role]

    def with_role(self, role: str, spec: ModelSpec) -> "Profile":
        roles = dict(self.roles)
        roles[role] = spec
        return Profile(self.name, self.description, roles, self.settings, self.memory_budget_gb)


def load_profiles(path: str | Path = PROFILES_FILE) -> dict[str, Profile]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    raw: dict[str, Any] = data.get("profiles") or {}
    if not raw:
        raise ValueError(f"{path} defines no profiles")
    resolved: dict[str, Profile] = {}

    def build(name: str, stack: tuple[str, ...] = ()) -> Profile:
        if name in resolved:
            return resolved[name]
        if name not in raw:
            raise ValueError(f"profile '{name}' is not defined in {path}; known: {', '.join(sorted(raw))}")
        if name in stack:
            raise ValueError(f"profiles inherit in a cycle: {' -> '.join(stack + (name,))}")
        entry = raw[name] or {}
        roles: dict[str, ModelSpec] = {}
        settings: dict[str, dict[str, Any]] = {}
        if entry.get("inherits"):
            parent = build(str(entry["inherits"]), stack + (name,))
            roles.update(parent.roles)
            settings = {k: dict(v) for k, v in parent.settings.items()}
        for role, spec in (entry.get("roles") or {}).items():
            roles[role] = ModelSpec.from_dict(role, spec)
        for section, values in (entry.get("settings") or {}).items():
            if not isinstance(values, dict):
                raise ValueError(f"profile '{name}': settings.{section} must be a mapping, got {values!r}")
            settings.setdefault(section, {}).update(values)
        budget = entry.get("memory_budget_gb")
        if budget is None and entry.get("inherits"):
            budget = build(str(entry["inherits"]), stack + (name,)).memory_budget_gb
        if budget is not None and not (isinstance(budget, (int, float)) and budget > 0):
            raise ValueError(f"profile '{name}': memory_budget_gb must be a number of GiB above 0, got {budget!r}")
        resolved[name] = Profile(name, " ".join(str(entry.get("description", "")).split()), roles, settings,
                                 float(budget) if budget is not None else None)
        return resolved[name]

    for name in raw:
        build(name)
    return resolved


def hub_reachable(timeout: float = 1.5) -> bool:
    """A TCP connect to the hub (HF_ENDPOINT's host) within `timeout`; DNS included, so run in a thread."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def choose_profile(profiles: dict[str, Profile], requested: str | None = None) -> str:
    name = requested or os.environ.get("WORKBENCH_PROFILE")
    if name:
        if name not in profiles:
            raise ValueError(f"unknown profile '{name}'; choose one of: {', '.join(sorted(profiles))}")
        return name
    if not hub_reachable():
        return "offline"
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"
