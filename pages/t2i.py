"""Text→image prompt refinement tab (UF-FGTG): a coarse prompt becomes N fine-grained candidates, shown
editable with a word diff and a token-limit flag before any render; rendering is a separate click, each image
beside the original prompt's image from the same seed, each with a per-metric score panel; pick one and refine
further, with the tree of rounds visible and navigable. The page is declared once in workbench.t2i.page; this
module draws it (pages/_layout.py) and adds what is per front end: the grid's visibility, Cancel, the live diff
while typing, the profile's render settings and metric weights."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples
from pages._layout import gradio_layout, gradio_wire, streamlit_page
from pages._wiring import gradio_cancel, gradio_view, streamlit_view
from workbench.forms import widgets
from workbench.layout import KEEP, Update
from workbench.t2i import flows
from workbench.t2i.forms import Candidates, MetricWeights
from workbench.t2i.page import ACTIONS, INTRO, LAYOUT, SLOTS, TAB

TITLE = "T2I prompt refinement"
ORDER = 10


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, TAB)
    gr.Markdown(INTRO)
    c = gradio_layout(LAYOUT, {"profile": session.profile, "state": gr.State(None), "rendered": gr.State(None),
                               "heat": gr.State(None)})
    c["edited"] = list(c[Candidates].values())
    start = flows.render_defaults(ctx, ctx.default_profile)  # the starting profile's render settings
    for n in ("steps", "size", "guidance"):
        c[n].value = getattr(start, n)
    # One job at a time: while one runs, the buttons that would start conflicting work are disabled.
    busy = [c[n] for n in ("refine", "further", "back", "render", "heatmap", *[f"regen_{i}" for i in SLOTS])]
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
    gradio_view(c["image"].input, lambda r, label: gr.update(choices=flows.heatmap_words(r, label), value=None),
                [c["rendered"], c["image"]], [c["word"]])  # the chosen image's words (a view)
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
    if shown.get("rendered") is not None:  # the chosen image's words (a view)
        shown["word"] = Update(choices=flows.heatmap_words(shown["rendered"], ss.get("t2i_heat_image")), value=KEEP)
    v = {"profile": profile, "state": shown.get("state"), "rendered": shown.get("rendered"), "heat": shown.get("heat")}
    streamlit_page(ctx, TAB, LAYOUT, {n: (a, p) for n, (a, _, p) in ACTIONS.items()}, dict, v,
                   values=lambda: {"edited": [v[Candidates][n] for n in widgets(Candidates)]})
