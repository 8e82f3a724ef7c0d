"""The T2V tab's inputs and actions, declared once for both front ends (workbench.forms). The Evolve, video and
rewriter forms are the flows' own dataclasses (workbench.t2v.flows); this module adds the rest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workbench.forms import Action, Widget, group_form, input_field
from workbench.t2v import flows
from workbench.t2v.flows import MODES, EvolveInputs, RewriterInputs, VideoInputs
from workbench.t2v.rewards import DEFAULT_WEIGHTS, METRICS

INTRO = ("Type a video idea. **Evolve** renders a population of rewrites as short low-resolution previews, scores each "
         "against your ORIGINAL idea (alignment, temporal consistency, motion, aesthetic, safety) and shows the "
         "rewriter the best so far each round. **Principles** rewrites it under VPO's harmless / accurate / helpful "
         "principles and shows the critique. Then render the chosen prompt beside your original (same seed) and "
         "download it; export the runs as SFT/DPO pairs.")

RewardWeights = group_form("RewardWeights", {
    m: (Widget(f"weight: {m}", "slider", low=0, high=10, step=0.1, help=METRICS[m]), DEFAULT_WEIGHTS[m])
    for m in METRICS})


@dataclass
class PrinciplesInputs:
    min_similarity: Any = input_field(0.5, "Accurate: minimum embedding similarity", "slider", low=0, high=1,
                                      step=0.05)
    min_details: Any = input_field(2, "Helpful: detail kinds needed (camera/light/motion/style)", "slider", low=0,
                                   high=4, step=1, whole=True)
    max_refinements: Any = input_field(2, "Refinements of a rejected rewrite", "slider", low=0, high=5, step=1,
                                       whole=True)
    vpo_seed: Any = input_field(0, "Seed", "number", low=0, high=2**31 - 1, whole=True)


@dataclass
class T2VPage:
    prompt: str = input_field("", "Video idea", "textarea", lines=2, placeholder="a dog running on a beach",
                              elem_id="t2v-prompt")
    mode: str = input_field(MODES[0], "Mode", "radio", choices=MODES, elem_id="t2v-mode")
    candidate: Any = input_field(None, "Open a candidate", "dropdown", elem_id="t2v-candidate")
    chosen: str = input_field("", "Chosen prompt (the open candidate or the VPO rewrite; editable)", "textarea",
                              lines=3, elem_id="t2v-chosen")
    thresholds: str = input_field("", "Per-metric minimums for a chosen prompt",
                                  placeholder="align_original=0.2,temporal=0.5")
    margin: Any = input_field(0.02, "Minimum total margin chosen − rejected (0-10)", "number", low=0, high=10)
    folder: str = input_field("", "Run folder (shown in every run's status)")


def _evolve(ctx, profile_name, prompt, evolve: EvolveInputs, video: VideoInputs, rewriter: RewriterInputs,
            weights: Any, job=None):
    evolve.weights = dataclasses.asdict(weights)
    return flows.evolve(ctx, profile_name, None, prompt, evolve, video, rewriter, job=job)


def _principles(ctx, profile_name, state, prompt, p: PrinciplesInputs, rewriter: RewriterInputs, job=None):
    return flows.principles(ctx, profile_name, state, prompt, rewriter, p.min_similarity, p.min_details,
                            p.max_refinements, p.vpo_seed, job=job)


VIEW = ("state", "view")
MODE = Action("t2v_mode", flows.set_mode, ("profile", "state", "mode"), VIEW)
EVOLVE = Action("t2v_evolve", _evolve, ("profile", "prompt", EvolveInputs, VideoInputs, RewriterInputs,
                                        RewardWeights), VIEW, job=True)
PRINCIPLES = Action("t2v_principles", _principles, ("profile", "state", "prompt", PrinciplesInputs, RewriterInputs),
                    VIEW, job=True)
OPEN = Action("t2v_open", flows.open_candidate, ("profile", "state", "candidate"), VIEW)
CHECK = Action("t2v_check", flows.check_candidate, ("profile", "state", "chosen", RewriterInputs), VIEW)
RENDER_FINAL = Action("t2v_render_final", flows.render_final, ("profile", "state", "chosen", VideoInputs), VIEW,
                      job=True)
EXPORT = Action("t2v_export", flows.export, ("profile", "state", "thresholds", "margin"), VIEW)
REOPEN = Action("t2v_reopen", flows.reopen, ("profile", "state", "folder"), VIEW)
