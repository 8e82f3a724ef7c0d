"""What every page receives: the shared model manager and the profiles. Per-user choices (which profile,
which rewriter) live in the front end's session state, never here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from workbench.events import EventBus
from workbench.jobs import JobRegistry
from workbench.gpu import zero_gpu_mode
from workbench.models import GIB, ModelManager, ModelStatus, env_budget_bytes
from workbench.profiles import Profile, choose_profile, load_profiles


@dataclass
class AppContext:
    manager: ModelManager
    profiles: dict[str, Profile]
    default_profile: str
    events: EventBus = field(default_factory=EventBus)  # every user action of every tab (the study recorder subscribes)
    jobs: JobRegistry = field(default_factory=JobRegistry)  # each session's running job, so Cancel can reach it
    studies: Any = None  # workbench.studies.recorder.StudyService: the study database and the event recorder

    def profile(self, name: str | None) -> Profile:
        name = name or self.default_profile
        if name not in self.profiles:
            raise ValueError(f"unknown profile '{name}'; choose one of: {', '.join(sorted(self.profiles))}")
        return self.profiles[name]

    def preload(self, roles: list[str] | None = None, profile: str | None = None) -> list[ModelStatus]:
        """Load the profile's models now (ZeroGPU start-up: placed on `cuda` before any GPU call). `roles`: the
        roles to load, else WORKBENCH_PRELOAD (comma-separated), else every role of the profile."""
        prof = self.profile(profile)
        if roles is None:
            roles = preload_roles(prof)
        return self.manager.preload([prof.spec(role) for role in roles])


def preload_roles(profile: Profile) -> list[str]:
    """WORKBENCH_PRELOAD's roles (checked against the profile), else all of the profile's roles."""
    raw = os.environ.get("WORKBENCH_PRELOAD", "").strip()
    if not raw:
        return sorted(profile.roles)
    roles = [r.strip() for r in raw.split(",") if r.strip()]
    unknown = [r for r in roles if r not in profile.roles]
    if unknown:
        raise ValueError(f"WORKBENCH_PRELOAD names roles the profile '{profile.name}' does not have: "
                         f"{', '.join(unknown)}; it has: {', '.join(sorted(profile.roles))}")
    return roles


def build_context(profile: str | None = None, device: str | None = None,
                  memory_budget_gb: float | None = None) -> AppContext:
    profiles = load_profiles()
    if memory_budget_gb is not None and memory_budget_gb <= 0:
        raise ValueError(f"memory budget must be above 0 GiB, got {memory_budget_gb}")
    default = choose_profile(profiles, profile)
    budget = int(memory_budget_gb * GIB) if memory_budget_gb else env_budget_bytes()
    if budget is None and zero_gpu_mode() and profiles[default].memory_budget_gb:
        budget = int(profiles[default].memory_budget_gb * GIB)  # never the emulated device's size
    manager = ModelManager(budget_bytes=budget, device=device)
    # The study recorder is attached by the app (app.attach_services), not here: the core imports no tab package,
    # and a batch CLI or the OpenAI server has no study to record. A studies flow attaches it on first use.
    return AppContext(manager=manager, profiles=profiles, default_profile=default)
