"""The Models tab's content as data (both front ends render it): one row per role of a profile."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from workbench.context import AppContext
from workbench.profiles import ROLE_DESCRIPTIONS
from workbench.shift.pairs import PAIR_ROLES

RANDOM_BADGE = "RANDOM WEIGHTS: outputs are not meaningful"
COLUMNS = ["role", "model id", "adapter", "weights", "state", "backend", "device", "dtype", "load s", "memory MiB",
           "RSS delta MiB", "purpose", "message"]


# Roles that one loaded copy serves together, as (host, guest): the behaviour-shift tab loads its instruct role
# and switches the adapter off for the base role (workbench.shift.pairs). Other roles load their own copies
# (the T2I rewriter's adapter model does not serve the chat role), so only these pairs can share.
SHARING_ROLES = ((PAIR_ROLES["instruct"], PAIR_ROLES["base"]),)


def adapter_copies(ctx: AppContext, profile_name: str | None) -> dict[str, tuple[str, list[str]]]:
    """Roles one loaded model serves together: of the pairs in SHARING_ROLES, a host role whose model is the
    guest role's model plus a LoRA adapter (`options.adapter`) serves the guest
    with the adapter switched off. {host role: (adapter folder name, [guest roles])}."""
    profile = ctx.profile(profile_name)
    copies: dict[str, tuple[str, list[str]]] = {}
    for host, guest in SHARING_ROLES:
        if host not in profile.roles or guest not in profile.roles:
            continue
        spec = profile.roles[host]
        adapter = spec.option("adapter")
        if not adapter:  # (the pair loader decides from the specs alone, as here: no backend import at start)
            continue
        if profile.roles[guest].key == spec.without_option("adapter").key:
            copies.setdefault(host, (PurePath(str(adapter)).name, []))[1].append(guest)
    return copies


def _adapter_texts(ctx: AppContext, profile_name: str | None) -> dict[str, tuple[str, str | None]]:
    """Per role: the adapter column's text, and the host role whose loaded copy serves it (None if none)."""
    profile = ctx.profile(profile_name)
    texts: dict[str, tuple[str, str | None]] = {}
    for role, spec in profile.roles.items():
        if spec.option("adapter"):
            texts[role] = (f"{PurePath(str(spec.option('adapter'))).name} (on)", None)
    for host, (name, guests) in adapter_copies(ctx, profile_name).items():
        loaded = ctx.manager.status(profile.spec(host)).state == "loaded"
        for guest in guests:
            texts[guest] = (f"{name} (off)", host if loaded else None)
    return texts


def model_records(ctx: AppContext, profile_name: str | None) -> list[dict[str, Any]]:
    profile = ctx.profile(profile_name)
    adapters = _adapter_texts(ctx, profile_name)
    records = []
    for role, spec in profile.roles.items():
        status = ctx.manager.status(spec)
        adapter, host = adapters.get(role, ("", None))
        state = status.state
        if host is not None and state == "not loaded":  # its own copy is not loaded, the host's copy serves it
            state = f"loaded: one copy serves {host} and {role} (adapter off for {role})"
        random = status.random_weights or spec.random_weights or spec.model_id.startswith("tiny:") \
            or spec.backend.startswith("fake")
        loaded = status.state == "loaded"
        records.append({
            "role": role, "model id": spec.model_id, "adapter": adapter,
            "weights": RANDOM_BADGE if random else "pretrained", "state": state, "backend": spec.backend, "device": status.device, "dtype": status.dtype,
            "load s": round(status.load_seconds, 2) if status.load_seconds is not None else "",
            "memory MiB": round(status.memory_bytes / 2**20, 1) if loaded else "",
            "RSS delta MiB": round(status.rss_delta_bytes / 2**20, 1)
            if loaded and status.rss_delta_bytes is not None else "",
            "purpose": ROLE_DESCRIPTIONS.get(role, ""), "message": status.error,
        })
    return records


def model_rows(ctx: AppContext, profile_name: str | None) -> list[list[Any]]:
    return [[record[c] for c in COLUMNS] for record in model_records(ctx, profile_name)]


def random_roles(ctx: AppContext, profile_name: str | None) -> list[str]:
    return [r["role"] for r in model_records(ctx, profile_name) if r["weights"] == RANDOM_BADGE]


def memory_summary(ctx: AppContext) -> str:
    m = ctx.manager
    return (f"Loaded: {len(m.loaded())} model(s), {m.resident_bytes() / 2**30:.2f} GiB of a "
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
    return f"Loaded {role}: {spec.model_id} in {status.load_seconds:.1f} s, {status.memory_bytes / 2**20:.0f} MiB{note}."


def unload_role(ctx: AppContext, profile_name: str | None, role: str) -> str:
    try:
        spec = ctx.profile(profile_name).spec(role)
        done = ctx.manager.unload(spec)
    except (RuntimeError, ValueError) as exc:
        return f"Not unloaded: {exc}"
    return f"Unloaded {role}: {spec.model_id}." if done else f"{role} ({spec.model_id}) was not loaded."


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
