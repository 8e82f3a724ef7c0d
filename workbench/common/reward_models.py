"""The image reward models of the field (PickScore, ImageReward, HPSv2.1) as the tabs score with them: which
profile role holds each, what each metric means, how it is scaled onto ~0-1 for a weighted total and a chart, and
what a score records of its checkpoint. The T2I panel scores images with them, the T2V rewards score frames."""

from __future__ import annotations

from typing import Any

# metric -> its definition (the score panel's and the chart's help)
REWARD_METRICS: dict[str, str] = {
    "pickscore": "PickScore with the ORIGINAL prompt: logit scale x CLIP-H cosine (~15-25; compare within a prompt)",
    "image_reward": "ImageReward with the ORIGINAL prompt: BLIP + MLP preference, z-scored (~-2 to 2)",
    "hps": "HPSv2.1 with the ORIGINAL prompt: cosine of its CLIP-H embeddings (~0.2-0.35)",
}
# The reward models a profile may name, by metric: the profile role that holds each (assets/profiles.yaml).
REWARD_ROLES = {"pickscore": "pickscore", "image_reward": "image_reward", "hps": "hpsv2"}
# onto a comparable 0-1-ish range for the total and the chart: PickScore (~15-25) by 1/20, ImageReward (~-2..2) by 1/4
REWARD_SCALE = {"pickscore": 0.05, "image_reward": 0.25}


def checkpoint_info(model: Any) -> dict[str, Any]:
    """What a reward score records besides the model id: the checkpoint file and processor the profile names
    (the backend's defaults when it names none)."""
    spec = model.spec
    info = {k: v for k, v in spec.options if k in ("checkpoint", "version", "processor", "med_config", "tokenizer")}
    return {"checkpoint": info, "scorer_backend": spec.backend}


def reward_models(ctx: Any, profile_name: str | None) -> dict[str, Any]:
    """The reward models the profile names, by metric (ManagedModels): a panel shows these metrics and no others."""
    from workbench.models import ManagedModel

    profile = ctx.profile(profile_name)
    return {metric: ManagedModel(ctx.manager, profile.spec(role)) for metric, role in REWARD_ROLES.items()
            if role in profile.roles}
