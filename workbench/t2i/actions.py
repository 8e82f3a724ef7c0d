"""The T2I tab's user actions, declared once (event name, flow, named inputs, outputs); pages/_wiring.py binds
each in Gradio and Streamlit, so both record the same events with the same named inputs."""

from __future__ import annotations

from typing import Any

from workbench.forms import Action
from workbench.t2i import flows
from workbench.t2i.forms import MAX_CANDIDATES, HeatmapInputs, RenderInputs, RewriterInputs

ROUND = ("state", "view")  # what the round-changing flows return

REFINE = Action("t2i_refine", flows.refine, ("profile", "prompt", RewriterInputs), ROUND)
REFINE_FURTHER = Action("t2i_refine_further", flows.refine_further,
                        ("profile", "state", "pick", "edited", RewriterInputs), ROUND)
GO_BACK = Action("t2i_go_back", flows.go_back, ("profile", "state", "round"), ROUND)
RENDER = Action("t2i_render", flows.render, ("profile", "state", "edited", RenderInputs),
                ("state", "rendered", "view"), job=True)
HEATMAP = Action("t2i_heatmap", flows.heatmap, ("profile", "rendered", "heat", HeatmapInputs), ("heat", "view"),
                 job=True)
SORT = Action("t2i_sort", flows.sort_results, ("state", "rendered", "sort_by"), ("results",), takes_ctx=False)


def _regenerate(slot: int):
    def regenerate(ctx: Any, profile_name: str, state: Any, edited: Any, rewriter_inputs: RewriterInputs):
        return flows.regenerate(ctx, profile_name, state, slot, edited, rewriter_inputs)

    return regenerate


# one per candidate slot: the event names the slot (t2i_regenerate_2), as the button does
REGENERATE = [Action(f"t2i_regenerate_{i + 1}", _regenerate(i), ("profile", "state", "edited", RewriterInputs),
                     ("state", "slot", "message")) for i in range(MAX_CANDIDATES)]
