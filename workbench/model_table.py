"""The Models tab's content as data (both front ends render it): one row per role of a profile."""

from __future__ import annotations

from typing import Any

from workbench.context import AppContext
from workbench.profiles import ROLE_DESCRIPTIONS

RANDOM_BADGE = "RANDOM WEIGHTS: outputs are not meaningful"
COLUMNS = ["role", "purpose", "backend", "model id", "device", "dtype", "state", "load s", "memory MiB",
           "RSS delta MiB", "weights", "message"]


def model_rows(ctx: AppContext, profile_name: str | None) -> list[list[Any]]:
    profile = ctx.profile(profile_name)
    rows = []
    for role, spec in profile.roles.items():
        status = ctx.manager.status(spec)
        random = status.random_weights or spec.random_weights or spec.model_id.startswith("tiny:") \
            or spec.backend.startswith("fake")
        rows.append([
            role, ROLE_DESCRIPTIONS.get(role, ""), spec.backend, spec.model_id, status.device, status.dtype,
            status.state,
            round(status.load_seconds, 2) if status.load_seconds is not None else "",
            round(status.memory_bytes / 2**20, 1) if status.state == "loaded" else "",
            round(status.rss_delta_bytes / 2**20, 1) if status.rss_delta_bytes is not None and status.state == "loaded" else "",
            RANDOM_BADGE if random else "pretrained",
            status.error,
        ])
    return rows


def random_roles(ctx: AppContext, profile_name: str | None) -> list[str]:
    return [row[0] for row in model_rows(ctx, profile_name) if row[10] == RANDOM_BADGE]


def memory_summary(ctx: AppContext) -> str:
    m = ctx.manager
    return (f"Loaded: {len(m.loaded())} model(s), {m.resident_bytes() / 2**30:.2f} GiB of a "
            f"{m.budget_bytes / 2**30:.1f} GiB budget on {m.device}. Least recently used idle models are "
            f"unloaded when a new load would exceed the budget.")


def load_role(ctx: AppContext, profile_name: str | None, role: str) -> str:
    """Load one role's model; returns a message for the user (never raises for model failures)."""
    from workbench.models import ModelLoadError

    spec = ctx.profile(profile_name).spec(role)
    try:
        ctx.manager.get(spec)
    except ModelLoadError as exc:
        return f"Failed: {exc}"
    status = ctx.manager.status(spec)
    note = f" ({RANDOM_BADGE})" if status.random_weights else ""
    return f"Loaded {role}: {spec.model_id} in {status.load_seconds:.1f} s, {status.memory_bytes / 2**20:.0f} MiB{note}."


def unload_role(ctx: AppContext, profile_name: str | None, role: str) -> str:
    spec = ctx.profile(profile_name).spec(role)
    try:
        done = ctx.manager.unload(spec)
    except RuntimeError as exc:
        return f"Not unloaded: {exc}"
    return f"Unloaded {role}: {spec.model_id}." if done else f"{role} ({spec.model_id}) was not loaded."
