"""The T2I tab's page, declared once for both front ends (drawn by pages/t2i.py): the layout of its inputs
(workbench.t2i.forms) and outputs, the actions its buttons run (workbench.t2i.actions) and the presenters that
map a flow's value onto the outputs."""

from __future__ import annotations

from typing import Any

from workbench.layout import Update, box, button, col, fields, group, out, row
from workbench.t2i import actions as A
from workbench.t2i import flows, heatmaps
from workbench.t2i.forms import (MAX_CANDIDATES, Candidates, HeatmapInputs, MetricWeights, RenderInputs,
                                 RewriterInputs, T2IPage)

TAB = "t2i"
INTRO = ("Type a coarse prompt and get up to eight fine-grained rewrites that fit the image model's text window. "
         "Edit them, compare the word diff, regenerate any one (↻), then **Render** (the expensive step, with "
         "progress and Cancel): the grid shows the original prompt's image first, then each candidate from the same "
         "seed, with one chart of every metric and the full table a click away; sort by any metric and download the "
         "round as a ZIP. Pick one and **Refine further**; the tree of rounds below lets you go back and branch.")
SLOTS = range(MAX_CANDIDATES)


def _slot(i: int):
    regen = button(f"regen_{i}", f"↻ {i + 1}", scale=0, min_width=48, size="sm", elem_id=f"t2i-regen-{i + 1}")
    return group(f"slot_{i}", row(fields(Candidates, f"cand_{i}", scale=6), regen, equal_height=True),
        box("Word diff against the prompt it refines", out(f"diff_{i}", "diff", show_label=False), open=False),
        out(f"flag_{i}", "md"), visible=False)


LAYOUT = [
    row(fields(T2IPage, "prompt", scale=3), col(fields(RewriterInputs, "n", "diversity"), scale=1),
        fields(RewriterInputs, "facets")),
    box("Rewriter", fields(RewriterInputs, "kind"), row(fields(RewriterInputs, "base_url", "model", "adapter")),
        fields(RewriterInputs, "system_template"), row(fields(RewriterInputs, "few_shot", "temperature", "seed")),
        open=False),
    button("refine", "Refine", variant="primary", elem_id="t2i-refine"),
    out("status", "md", elem_id="t2i-status"),
    *[_slot(i) for i in SLOTS],
    box("Render and scores",
        row(fields(RenderInputs, "steps", "size", "seed", "guidance", prefix="t2i_img")),
        box("Metric weights (for the total shown beside the metrics)",
            row(fields(MetricWeights, into=RenderInputs, prefix="t2i_w")), open=False),
        row(button("render", "Render", variant="primary", elem_id="t2i-render"),
            button("cancel", "Cancel", only="gradio", variant="stop", elem_id="t2i-cancel", scale=0, min_width=100)),
        out("render_status", "md", elem_id="t2i-render-status"),
        row(fields(T2IPage, "sort_by", scale=1), out("download", "file", "Download the round (ZIP: images, prompts, "
                                                     "scores, provenance)", elem_id="t2i-download", scale=2)),
        out("grid", "gallery", "Original first, then each candidate (same seed)", columns=5, elem_id="t2i-grid"),
        out("chart", "plot", "Every metric per image", elem_id="t2i-chart"),
        box("Full per-metric table", out("table", "table", elem_id="t2i-table"), open=False),
        box("Token heatmap: where the image model put a word (DAAM cross-attention)",
            row(fields(HeatmapInputs, prefix="t2i_heat"),
                button("heatmap", "Show heatmap", elem_id="t2i-heatmap", scale=0, min_width=140)),
            row(out("heat_view", "image", "Word heatmap over the image", elem_id="t2i-heat-view", scale=1,
                    format="png", st_width=heatmaps.DISPLAY_PX),  # lossless: WebP smears a map's pixels
                col(out("heat_caption", "md", elem_id="t2i-heat-caption"),
                    out("heat_download", "file", "Download the heatmap (PNG with its provenance)",
                        elem_id="t2i-heat-download"), scale=1)), open=False)),
    row(fields(T2IPage, "pick"), button("further", "Refine further from the pick", elem_id="t2i-further")),
    box("History (tree of rounds)", out("tree", "md", elem_id="t2i-tree"),
        row(fields(T2IPage, "round"), button("back", "Go back to this round", elem_id="t2i-back"))),
]
RESULTS = ["render_status", "download", "grid", "chart", "table", "sort_by"]
HEAT = ["heat_view", "heat_caption", "heat_download", "image", "word"]  # cleared or re-offered by a new render
ROUND = ["state", "status", "tree", "round", "pick",
         *[n for i in SLOTS for n in (f"slot_{i}", f"cand_{i}", f"diff_{i}", f"flag_{i}")], *RESULTS, *HEAT]


def present_results(results: flows.ResultsView | None) -> dict[str, Any]:
    import pandas as pd

    heat = dict(heat_view=None, heat_caption="", heat_download=None)  # a heatmap belongs to the last render
    if results is None:  # a new round: the last render's results no longer apply
        return dict(render_status="", download=None, grid=None, chart=None, table=pd.DataFrame(),
                    sort_by="candidate order", image=Update(choices=[], value=None),
                    word=Update(choices=[], value=None), **heat)
    return dict(render_status=results.summary, download=results.zip_path, grid=results.grid, chart=results.chart,
                table=pd.DataFrame(results.rows, columns=results.columns), sort_by=results.sort_by,
                image=Update(choices=results.images, value=results.image),
                word=Update(choices=results.words, value=None),
                **heat)


def present_heatmap(out: tuple) -> dict[str, Any]:
    kept, view = out
    return dict(heat=kept, heat_view=view.image, heat_caption=view.caption, heat_download=view.png,
                image=Update(choices=view.images, value=view.label), word=Update(choices=view.words, value=view.word))


def present_round(out: tuple) -> dict[str, Any]:
    new_state, view = out
    shown = dict(state=new_state, status=view.status, tree=view.tree,
                 round=Update(choices=view.rounds, value=view.current_round),
                 pick=Update(choices=view.picks, value=view.pick))
    for i in SLOTS:
        s = view.slots[i] if i < len(view.slots) else None
        shown.update({f"slot_{i}": Update(visible=s is not None), f"diff_{i}": s.diff if s else [],
                      f"cand_{i}": s.text if s else "",
                      f"flag_{i}": s.caption if s else ""})
    return {**shown, **present_results(view.results)}


def present_slot(i: int):
    return lambda out: {"state": out[0], f"cand_{i}": out[1].text, f"diff_{i}": out[1].diff,
                        f"flag_{i}": out[1].caption, "status": out[2]}


ACTIONS: dict[str, Any] = {
    "refine": (A.REFINE, ROUND, present_round), "further": (A.REFINE_FURTHER, ROUND, present_round),
    "back": (A.GO_BACK, ROUND, present_round),
    "render": (A.RENDER, ["state", "rendered", *RESULTS, *HEAT], lambda out: {
        "state": out[0], "rendered": out[1], **present_results(out[2].results)}),
    "heatmap": (A.HEATMAP, ["heat", *HEAT], present_heatmap),
    "sort_by": (A.SORT, RESULTS[1:-1], present_results),
    **{f"regen_{i}": (A.REGENERATE[i], ["state", f"cand_{i}", f"diff_{i}", f"flag_{i}", "status"], present_slot(i))
       for i in SLOTS}}
