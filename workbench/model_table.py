"""The Models tab's content as data (both front ends render it): one row per base model of a profile, with the
roles it serves and the LoRA adapters loaded on it (the manager loads each base model once)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from workbench.context import AppContext
from workbench.profiles import ROLE_DESCRIPTIONS, ROLES_NO_TAB_USES

RANDOM_BADGE = "RANDOM WEIGHTS: outputs are not meaningful"
COLUMNS = ["role", "model id", "adapter", "weights", "state", "backend", "device", "dtype", "load s", "memory MiB",
           "RSS delta MiB", "purpose", "message"]


def _is_random(ctx: AppContext, spec: Any) -> bool:
    status = ctx.manager.status(spec)
    return bool(status.random_weights or spec.random_weights or spec.model_id.startswith("tiny:")
                or spec.backend.startswith("fake"))


def _groups(ctx: AppContext, profile_name: str | None) -> dict[str, list[str]]:
    """The profile's roles grouped by the base model the manager loads for them (in profile order): roles on one
    base model, with or without an adapter, are one loaded copy."""
    profile = ctx.profile(profile_name)
    groups: dict[str, list[str]] = {}
    for role, spec in profile.roles.items():
        groups.setdefault(ctx.manager.base_spec(spec).key, []).append(role)
    return groups


def _adapter_text(ctx: AppContext, spec: Any, role: str) -> str:
    status = ctx.manager.status(spec)
    name = PurePath(str(spec.option("adapter"))).name
    if status.state == "loaded":
        return f"{name} for {role} (loaded, {status.memory_bytes / 2**20:.1f} MiB)"
    if status.state == "failed":
        return f"{name} for {role} (failed)"
    return f"{name} for {role} ({status.state})"


def model_records(ctx: AppContext, profile_name: str | None) -> list[dict[str, Any]]:
    """One record per base model of the profile: the roles it serves (roles without an adapter get the base with
    adapters off), its adapters with their own state and memory, and the base's state and memory, counted once."""
    profile = ctx.profile(profile_name)
    records = []
    for roles in _groups(ctx, profile_name).values():
        specs = [profile.roles[r] for r in roles]
        base = ctx.manager.base_spec(specs[0])
        status = ctx.manager.status(base)
        with_adapter = [(r, s) for r, s in zip(roles, specs) if s.option("adapter")]
        loaded = status.state == "loaded"
        errors = [status.error] + [ctx.manager.status(s).error for _, s in with_adapter]
        records.append({
            "role": ", ".join(roles), "roles": roles, "model id": specs[0].model_id,
            "adapter": "; ".join(_adapter_text(ctx, s, r) for r, s in with_adapter),
            "weights": RANDOM_BADGE if any(_is_random(ctx, s) for s in specs) else "pretrained",
            "state": status.state, "backend": base.backend, "device": status.device, "dtype": status.dtype,
            "load s": round(status.load_seconds, 2) if status.load_seconds is not None else "",
            "memory MiB": round(status.memory_bytes / 2**20, 1) if loaded else "",
            "RSS delta MiB": round(status.rss_delta_bytes / 2**20, 1)
            if loaded and status.rss_delta_bytes is not None else "",
            "purpose": "; ".join(f"{r}: {ROLE_DESCRIPTIONS[r]}" if len(roles) > 1 else ROLE_DESCRIPTIONS[r]
                                 for r in roles if r in ROLE_DESCRIPTIONS),
            "message": " ".join(e for e in errors if e),
        })
    return records


def model_rows(ctx: AppContext, profile_name: str | None) -> list[list[Any]]:
    return [[record[c] for c in COLUMNS] for record in model_records(ctx, profile_name)]


def random_roles(ctx: AppContext, profile_name: str | None) -> list[str]:
    """Roles with random weights that a tab runs (the banner's warning)."""
    profile = ctx.profile(profile_name)
    return [role for role, spec in profile.roles.items()
            if role not in ROLES_NO_TAB_USES and _is_random(ctx, spec)]


def memory_summary(ctx: AppContext) -> str:
    m = ctx.manager
    bases = m.loaded_bases()
    adapters = sum(len(a) for _, a in bases)
    return (f"Loaded: {len(bases)} model(s) and {adapters} adapter(s) on them (each base model once), "
            f"{m.resident_bytes() / 2**30:.2f} GiB of a "
            f"{m.budget_bytes / 2**30:.1f} GiB budget on {m.device}. Least recently used idle models are "
            f"unloaded when a new load would exceed the budget.")


def load_role(ctx: AppContext, profile_name: str | None, role: str) -> str:
    """Load one role's model; returns a message for the user (never raises for model failures)."""
    from workbench.models import ModelLoadError

    try:
        spec = ctx.profile(profile_name).spec(role)
        ctx.manager.get(spec)
    except (ModelLoadError, ValueError) as exc:
        return f"Failed: {exc}"
    status = ctx.manager.status(spec)
    note = f" ({RANDOM_BADGE})" if status.random_weights else ""
    if spec.option("adapter"):
        base = ctx.manager.status(ctx.manager.base_spec(spec))
        return (f"Loaded {role}: adapter {PurePath(str(spec.option('adapter'))).name} "
                f"({status.memory_bytes / 2**20:.1f} MiB) on the shared {spec.model_id} "
                f"({base.memory_bytes / 2**20:.0f} MiB, loaded once){note}.")
    return f"Loaded {role}: {spec.model_id} in {status.load_seconds:.1f} s, {status.memory_bytes / 2**20:.0f} MiB{note}."


def unload_role(ctx: AppContext, profile_name: str | None, role: str) -> str:
    try:
        spec = ctx.profile(profile_name).spec(role)
        adapters = [] if spec.option("adapter") else [
            PurePath(folder).name for status, on_it in ctx.manager.loaded_bases()
            if status.key == ctx.manager.key_of(spec) for folder, _ in on_it]
        done = ctx.manager.unload(spec)
    except (RuntimeError, ValueError) as exc:
        return f"Not unloaded: {exc}"
    if not done:
        return f"{role} ({spec.model_id}) was not loaded."
    if spec.option("adapter"):
        return f"Unloaded {role}'s adapter {PurePath(str(spec.option('adapter'))).name}; {spec.model_id} stays loaded."
    if adapters:
        return f"Unloaded {role}: {spec.model_id}, with the adapters on it ({', '.join(adapters)})."
    return f"Unloaded {role}: {spec.model_id}."


# The Models tab's actions, declared once for both front ends (workbench.forms; pages/models.py lays them out):
# each gives the message and the table after it.
def _with_table(fn):
    def call(ctx: AppContext, profile_name: str | None, role: str) -> tuple[list[list[Any]], str, str]:
        message = fn(ctx, profile_name, role)
        return model_rows(ctx, profile_name), memory_summary(ctx), message

    call.__name__ = fn.__name__
    return call


def _actions():
    from workbench.forms import Action

    return tuple(Action(name, _with_table(fn), ("profile", "role"), ("rows", "summary", "message"))
                 for name, fn in (("load_model", load_role), ("unload_model", unload_role)))


LOAD, UNLOAD = _actions()


def _page_form():
    from dataclasses import make_dataclass

    from workbench.forms import input_field

    # Custom values allowed: roles differ per profile, and the manager's check names the roles a profile has.
    return make_dataclass("ModelsPage", [("role", str, input_field("chat", "Role", "dropdown", custom=True,
                                                                   elem_id="models-role"))])


ModelsPage = _page_form()
