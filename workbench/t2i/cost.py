"""What a render will cost before it starts: seconds per image-step, measured on this machine per model and
size (every finished render records its cost), scaled by pixel count from the nearest measured size, and a
prior from the profile (`settings.t2i_render.seconds_per_image_step_512`) until a first measurement exists.
A render whose estimate is far beyond the profile's `max_seconds` is refused with a message that says how
to go bigger."""

from __future__ import annotations

import os
import threading
from typing import Any

_COSTS: dict[tuple[str, int], float] = {}  # (model id, pixels) -> measured seconds per image-step
_LOCK = threading.Lock()
TOLERANCE = 2.0  # refuse only when the estimate exceeds the allowance by this factor ("far beyond")


def record(model_id: str, width: int, height: int, images: int, steps: int, seconds: float) -> None:
    if images <= 0 or steps <= 0 or seconds <= 0:
        return
    with _LOCK:
        _COSTS[(model_id, width * height)] = seconds / (images * steps)


def per_image_step(model_id: str, width: int, height: int, prior_512: float | None) -> tuple[float, str]:
    """(seconds per image-step, where the figure comes from)."""
    pixels = width * height
    with _LOCK:
        known = {p: s for (m, p), s in _COSTS.items() if m == model_id}
    if pixels in known:
        return known[pixels], "measured on this machine"
    if known:
        nearest = min(known, key=lambda p: abs(p - pixels))
        return known[nearest] * pixels / nearest, f"scaled from a measured {int(nearest ** 0.5)} px render"
    if prior_512:
        return float(prior_512) * pixels / (512 * 512), "the profile's estimate (no render measured yet)"
    return 0.0, "unknown"


def max_seconds(profile: Any) -> float | None:
    env = os.environ.get("WORKBENCH_MAX_RENDER_SECONDS")
    if env:
        value = float(env)
        if value <= 0:
            raise ValueError(f"WORKBENCH_MAX_RENDER_SECONDS must be above 0, got {env}")
        return value
    limit = profile.setting("t2i_render", "max_seconds")
    return float(limit) if limit else None


def check_render_cost(profile: Any, model_id: str, images: int, steps: int, width: int, height: int) -> float:
    """The estimated seconds of a render; raises ValueError when it is far beyond what the profile allows."""
    unit, source = per_image_step(model_id, width, height, profile.setting("t2i_render", "seconds_per_image_step_512"))
    estimate = unit * images * steps
    allowed = max_seconds(profile)
    if allowed and estimate > allowed * TOLERANCE:
        default_size = profile.setting("t2i_render", "size", 512)
        default_steps = profile.setting("t2i_render", "steps", 20)
        raise ValueError(
            f"this render would take about {estimate:.0f} s ({images} images × {steps} steps at {width}×{height} px, "
            f"{unit:.3f} s per image-step: {source}); the '{profile.name}' profile allows {allowed:.0f} s. Lower the "
            f"size (default {default_size} px), the steps (default {default_steps}) or the number of candidates; or, "
            f"to go bigger, use a profile with a GPU or raise the limit with WORKBENCH_MAX_RENDER_SECONDS.")
    return estimate
