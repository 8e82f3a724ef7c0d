"""What every page receives: the shared model manager and the profiles. Per-user choices (which profile,
which rewriter) live in the front end's session state, never here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.events import EventBus
from workbench.jobs import JobRegistry
from workbench.models import ModelManager
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


def build_context(profile: str | None = None, device: str | None = None,
                  memory_budget_gb: float | None = None) -> AppContext:
    profiles = load_profiles()
    if memory_budget_gb is not None and memory_budget_gb <= 0:
        raise ValueError(f"memory budget must be above 0 GiB, got {memory_budget_gb}")
    budget = int(memory_budget_gb * 1024**3) if memory_budget_gb else None
    manager = ModelManager(budget_bytes=budget, device=device)
    ctx = AppContext(manager=manager, profiles=profiles, default_profile=choose_profile(profiles, profile))
    from workbench.studies.recorder import attach  # cheap: the database opens on the first join

    attach(ctx)
    return ctx
