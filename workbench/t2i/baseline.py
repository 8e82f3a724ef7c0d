"""The keyword-modifier baseline (Promptist / MagicPrompt style: the user's subject followed by style and
quality modifiers), selectable beside the LLM refiner so users can compare what a model adds over keywords.

The modifier groups are the comma-phrases that recur in Lexica-style prompts, written for this project."""

from __future__ import annotations

import random

from workbench.types import Provenance
from workbench.common.choice import BASELINE_ID  # noqa: F401  (one name for the baseline everywhere)
from workbench.common.inputs import check_count, check_prompt

MODIFIER_GROUPS: dict[str, tuple[str, ...]] = {
    "medium": ("digital painting", "oil painting", "35mm photograph", "watercolor", "concept art", "3d render",
               "matte painting", "ink illustration", "studio photograph", "pastel drawing"),
    "lighting": ("soft morning light", "golden hour", "dramatic rim lighting", "volumetric light", "overcast soft light",
                 "neon glow", "candlelight", "studio lighting", "moonlight", "backlit"),
    "composition": ("wide angle", "close-up", "rule of thirds", "shallow depth of field", "symmetrical composition",
                    "aerial view", "low angle", "centered composition", "85mm lens", "panoramic"),
    "quality": ("highly detailed", "sharp focus", "intricate details", "8k", "award winning", "trending on artstation",
                "masterpiece", "high resolution", "crisp textures", "fine detail"),
    "mood": ("cinematic", "serene", "moody atmosphere", "vibrant colors", "muted palette", "whimsical", "epic scale",
             "cozy", "ethereal", "dreamlike"),
}


def keyword_candidates(prompt: str, n: int, seed: int = 0, modifiers_per_group: int = 1) -> list:
    """`n` distinct rewrites: the prompt plus one modifier from each group, chosen by a seeded RNG so a seed
    gives the same candidates on any machine."""
    from workbench.common.refiner import Candidate

    prompt = check_prompt(prompt)
    n = check_count(n, "n")
    modifiers_per_group = check_count(modifiers_per_group, "modifiers_per_group", 1, 3)
    rng = random.Random(f"{seed}|{prompt}")
    subject = prompt.rstrip(" .,;")
    seen: set[str] = set()
    out: list[Candidate] = []
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        chosen = [m for group in MODIFIER_GROUPS.values() for m in rng.sample(group, modifiers_per_group)]
        text = ", ".join([subject, *chosen])
        if text in seen:
            continue
        seen.add(text)
        prov = Provenance(model_id=BASELINE_ID, backend=BASELINE_ID, seed=seed,
                          settings={"groups": list(MODIFIER_GROUPS), "modifiers_per_group": modifiers_per_group,
                                    "index": len(out)})
        out.append(Candidate(text=text, source="baseline", provenance=prov))
    return out
