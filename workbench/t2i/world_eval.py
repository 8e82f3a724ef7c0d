"""`python -m workbench.t2i eval-world`: rewriters side by side on held-out coarse captions of the miniature world
(assets/world/rewriter_pairs/heldout_ids.txt, seeds never trained on), each refined through this tab's refine flow
(`service.refine`, with the tab's defaults: what Refine does in the T2I tab) and measured against the world
(`workbench.world.rewriter`: in its vocabulary, coarse attributes kept, fine attributes added, diversity)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from workbench.t2i.defaults import t2i_refine_settings
from workbench.t2i.evaluate import ADAPTER_DIR
from workbench.t2i.service import RewriterChoice, default_rewriter_role
from workbench.world.rewriter import Refined, RewriterRow, evaluate_rewriter, heldout_coarse


# row -> (profile, rewriter): the world profile's default (its t2i_rewriter role, the world adapter), the raw chat
# model on the world profile, and the offline profile's default (the T2I adapter, as the offline T2I tab uses it;
# the offline and world profiles differ only in the image-text scorer and this role)
SYSTEMS: dict[str, tuple[str, RewriterChoice]] = {
    "SmolLM2-135M-Instruct": ("world", RewriterChoice(role="chat")),
    "+ offline T2I adapter": ("offline", RewriterChoice()),
    "+ world adapter (world profile default)": ("world", RewriterChoice()),  # WORLD_ADAPTER_ROW
}


def rewriter_provenance(ctx: Any, profile_name: str, choice: RewriterChoice, n: int, seed: int) -> dict[str, Any]:
    profile = ctx.profile(profile_name)
    spec = choice.spec(profile, default_rewriter_role(profile))
    return {"profile": profile_name, "role": choice.role or default_rewriter_role(profile), "model": spec.model_id,
            "adapter": Path(str(spec.option("adapter"))).name if spec.option("adapter") else None,
            "prompt_template": spec.option("prompt_template"), "n": n, "seed": f"{seed} + prompt index",
            "settings": "the T2I tab's refine defaults (workbench/t2i/defaults.py) and the role's options"}


def load_models(ctx: Any, profile_name: str, choice: RewriterChoice) -> None:
    """Load what a Refine uses (the rewriter, the embedder, the safety check) before timing, so that seconds per
    prompt measure refining, not loading."""
    profile = ctx.profile(profile_name)
    ctx.manager.get(choice.spec(profile, default_rewriter_role(profile)))
    for role in ("embeddings", "safety"):
        if role in profile.roles:
            ctx.manager.get(profile.spec(role))


def world_refine(ctx: Any, profile_name: str, choice: RewriterChoice, n: int, seed: int,
                 progress: Callable[[str], None] | None = None, further: bool = False) -> Callable[[str, int], Refined]:
    """`refine(coarse, i)`: the T2I tab's Refine (service.refine, the tab's defaults) with seed `seed + i`; its
    candidates, and how many distinct rewrites the refiner's gate kept and dropped. `further`: the tab's Refine
    further instead (the prompt is a picked candidate)."""
    import time

    from workbench.t2i import service

    def refine(prompt: str, i: int) -> list[str]:
        start = time.perf_counter()
        result = service.refine(ctx, profile_name, prompt, choice, t2i_refine_settings(n=n, seed=seed + i),
                                further=further)
        if progress:
            progress(f"  {prompt!r}: {len(result.candidates)} candidates in {time.perf_counter() - start:.1f} s: "
                     + " || ".join(c.text for c in result.candidates))
        return Refined([c.text for c in result.candidates], int(result.settings["kept_by_gate"]),
                       int(result.settings["dropped_by_gate"]))

    return refine


WORLD_ADAPTER_ROW = "+ world adapter (world profile default)"


def evaluate_world(ctx: Any, systems: Sequence[str] = tuple(SYSTEMS), n: int = 4, limit: int = 10, offset: int = 0,
                   seed: int = 0, progress: Callable[[str], None] | None = None, level: str = "coarse",
                   adapter: str | Path = "") -> list[RewriterRow]:
    """One row per system, on the same held-out prompts, N candidates each. `level` "coarse": coarse captions through
    Refine; "partial": fine captions with some attributes left out (rewriter_pairs), through Refine further, as a
    user refines a picked candidate again: "coarse kept" then means every attribute the prompt stated is kept.
    `adapter`: another LoRA folder for the world adapter's row (e.g. a new training run, before it ships)."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ValueError(f"systems must be among {', '.join(SYSTEMS)}; got {', '.join(unknown) or 'none'}")
    if adapter and not (Path(adapter) / "adapter_config.json").exists():
        raise ValueError(f"adapter must be a LoRA folder with adapter_config.json, got {str(adapter)!r}")
    coarse = heldout_coarse(limit, offset, level=level)
    rows = []
    for name in systems:
        profile_name, choice = SYSTEMS[name]
        if adapter and name == WORLD_ADAPTER_ROW:
            choice = RewriterChoice(adapter=str(adapter))
        load_models(ctx, profile_name, choice)
        refine = world_refine(ctx, profile_name, choice, n, seed, progress, further=level == "partial")
        if progress:
            progress(f"{name}: {len(coarse)} held-out captions")
        rows.append(evaluate_rewriter(name, refine, coarse, rewriter_provenance(ctx, profile_name, choice, n, seed)))
    return rows
