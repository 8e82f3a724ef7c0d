"""Text→image prompt refinement tab (UF-FGTG): a coarse prompt becomes N fine-grained candidates, shown
editable with a word diff and a token-limit flag before any render; rendering is a separate click, each image
beside the original prompt's image from the same seed, each with a per-metric score panel; pick one and refine
further, with the tree of rounds visible and navigable. Layout only, drawn by both front ends (pages/_layout.py):
the inputs are declared in workbench.t2i.forms, the actions in workbench.t2i.actions, the flows in
workbench.t2i.flows."""

from __future__ import annotations

from typing import Any

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import Update, box, button, col, fields, gradio_layout, gradio_wire, group, out, row
from pages._layout import streamlit_page
from pages._wiring import gradio_cancel, gradio_view, streamlit_view
from workbench.forms import widgets
from workbench.t2i import actions as A
from workbench.t2i import flows
from workbench.t2i.forms import MAX_CANDIDATES, Candidates, MetricWeights, RenderInputs, RewriterInputs, T2IPage

TITLE = "T2I prompt refinement"
ORDER = 10
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
        box("Full per-metric table", out("table", "table", elem_id="t2i-table"), open=False)),
    row(fields(T2IPage, "pick"), button("further", "Refine further from the pick", elem_id="t2i-further")),
    box("History (tree of rounds)", out("tree", "md", elem_id="t2i-tree"),
        row(fields(T2IPage, "round"), button("back", "Go back to this round", elem_id="t2i-back"))),
]
RESULTS = ["render_status", "download", "grid", "chart", "table", "sort_by"]
ROUND = ["state", "status", "tree", "round", "pick",
         *[n for i in SLOTS for n in (f"slot_{i}", f"cand_{i}", f"diff_{i}", f"flag_{i}")], *RESULTS]


def present_results(results: flows.ResultsView | None) -> dict[str, Any]:
    import pandas as pd

    if results is None:  # a new round: the last render's results no longer apply
        return dict(render_status="", download=None, grid=None, chart=None, table=pd.DataFrame(),
                    sort_by="candidate order")
    return dict(render_status=results.summary, download=results.zip_path, grid=results.grid, chart=results.chart,
                table=pd.DataFrame(results.rows, columns=results.columns), sort_by=results.sort_by)


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
    "render": (A.RENDER, ["state", "rendered", *RESULTS], lambda out: {
        "state": out[0], "rendered": out[1], **present_results(out[2].results)}),
    "sort_by": (A.SORT, RESULTS[1:-1], present_results),
    **{f"regen_{i}": (A.REGENERATE[i], ["state", f"cand_{i}", f"diff_{i}", f"flag_{i}", "status"], present_slot(i))
       for i in SLOTS}}


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, TAB)
    gr.Markdown(INTRO)
    c = gradio_layout(LAYOUT, {"profile": session.profile, "state": gr.State(None), "rendered": gr.State(None)})
    c["edited"] = list(c[Candidates].values())
    start = flows.render_defaults(ctx, ctx.default_profile)  # the starting profile's render settings
    for n in ("steps", "size", "guidance"):
        c[n].value = getattr(start, n)
    # One job at a time: while one runs, the buttons that would start conflicting work are disabled.
    busy = [c[n] for n in ("refine", "further", "back", "render", *[f"regen_{i}" for i in SLOTS])]
    c["grid"].visible = False  # shown only while there are images (an empty gallery is a large blank box)
    for name, (action, outputs, present) in ACTIONS.items():
        event = gradio_wire(ctx, c, action, c[name].input if name == "sort_by" else c[name].click, outputs, present,
                            tab=TAB, **({} if name == "sort_by" else {"busy": busy}))
        if name in ("refine", "further", "back", "render"):
            event.success(lambda shown=name == "render": gr.update(visible=shown), None, c["grid"], queue=False,
                          api_name=False)
    gradio_cancel(ctx, c["cancel"].click, outputs=c["render_status"])
    for i in SLOTS:  # typing in a candidate redraws its diff and flag: a view, not an action (no event per keystroke)
        gradio_view(c[f"cand_{i}"].input, lambda p, s, t: (lambda v: (v.diff, v.flag))(flows.edit(ctx, p, s, t)),
                    [session.profile, c["state"], c[f"cand_{i}"]], [c[f"diff_{i}"], c[f"flag_{i}"]])
    weights = [c[m] for m in widgets(MetricWeights)]
    for m, slider in zip(widgets(MetricWeights), weights):  # a weight only for the metrics the profile scores,
        slider.visible = m in flows.ALWAYS_SCORED  # asked at page load: at build it would import a backend module

    def on_profile(p):
        d, scored = flows.render_defaults(ctx, p), flows.weight_metrics(ctx, p)
        return (d.steps, d.size, d.guidance, *[gr.update(visible=m in scored) for m in widgets(MetricWeights)])

    for event in (session.profile.change, session.demo.load):
        gradio_view(event, on_profile, [session.profile], [c["steps"], c["size"], c["guidance"], *weights])


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, TAB)
    st.caption(INTRO)
    ss = st.session_state
    profile = ss.get("profile", ctx.default_profile)
    if ss.get("t2i_defaults_for") != profile:  # the profile's render settings, as Gradio's profile change does
        ss["t2i_defaults_for"] = profile
        ss.update({f"t2i_img_{n}": getattr(flows.render_defaults(ctx, profile), n) for n in ("steps", "size",
                                                                                               "guidance")})
    shown = ss.setdefault("t2i_shown", {})
    scored = flows.weight_metrics(ctx, profile)  # a weight only for the metrics the profile scores
    shown.update({m: Update(visible=m in scored) for m in widgets(MetricWeights)})
    pending = ss.get("t2i_pending", {})
    for i in SLOTS:  # an edited candidate's diff and flag, redrawn (a view: no event)
        text = pending.get(f"cand_{i}", ss.get(f"t2i_cand_{i}"))
        live = streamlit_view(flows.edit, ctx, profile, shown.get("state"), text) if text and shown.get(
            "state") else None
        if live is not None:
            shown.update({f"diff_{i}": live.diff, f"flag_{i}": live.flag})
    v = {"profile": profile, "state": shown.get("state"), "rendered": shown.get("rendered")}
    streamlit_page(ctx, TAB, LAYOUT, {n: (a, p) for n, (a, _, p) in ACTIONS.items()}, dict, v,
                   values=lambda: {"edited": [v[Candidates][n] for n in widgets(Candidates)]})
