"""Plotly figures and tables for a behaviour-shift result, shared by the Gradio and Streamlit pages.

Everything here reads a `ShiftResult`; filters (page of output tokens, layer range, heads, layer/head of the
head view) are checked and raise ValueError naming the allowed range.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import numpy as np

from workbench.shift.analysis import ShiftResult
from workbench.shift.limits import LIMITS, METHOD_LABELS, check_page

VIEWS = ("base", "instruct", "difference")
SIDES = ("base", "instruct")
SCALES = ("shared", "per model")  # colour scale of the base and instruct heatmaps (the difference has its own)
SPAN_COLOUR = "orange"
TICK_FONT = dict(size=9)


def _labels(tokens: list[str]) -> list[str]:
    return [f"{i}:{t}" for i, t in enumerate(tokens)]  # positions keep repeated tokens apart on plotly axes


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"colour scale must be one of {', '.join(SCALES)}, got {scale!r}")


def side_caption(result: ShiftResult, side: str) -> str:
    """The model behind one side in words: its id, and its adapter (folder name) switched on or off."""
    s = result.sides[side]
    if s.provenance is None:
        return s.label
    adapter = s.provenance.settings.get("adapter")
    if not adapter:
        return s.provenance.model_id
    on = s.provenance.settings.get("adapter_enabled")
    return f"{s.provenance.model_id} with adapter {PurePath(str(adapter)).name} {'on' if on else 'off'}"


def pair_caption(result: ShiftResult) -> str:
    return " · ".join(f"{side}: {side_caption(result, side)}" for side in SIDES)


def _title(text: str, subtitle: str) -> dict[str, Any]:
    return dict(text=text, subtitle=dict(text=subtitle, font=dict(size=12)))


def completeness_text(result: ShiftResult, side: str) -> str | None:
    """Integrated gradients' completeness error of one side, max and mean, against the tolerance (None if the
    method has not run)."""
    r = result.sides[side].attributions.get("integrated_gradients")
    if r is None or r.completeness_rel is None:
        return None
    tol = result.settings.completeness_tolerance
    ok = r.completeness_ok(tol)
    return (f"completeness error max {r.completeness_rel.max():.2%}, mean {r.completeness_rel.mean():.2%} of "
            f"|f(x) − f(baseline)| — {'pass' if ok else 'FAIL'} (tolerance {tol:.0%})")


def _every_tick(labels: list[str], angle: int | None = None) -> dict[str, Any]:
    """Axis settings that label every category (plotly thins crowded categorical axes by itself)."""
    axis: dict[str, Any] = dict(tickmode="array", tickvals=labels, ticktext=labels, tickfont=TICK_FONT)
    if angle is not None:
        axis["tickangle"] = angle
    return axis


def _check_method(result: ShiftResult, method: str) -> None:
    have = result.methods_done
    if method not in have:
        raise ValueError(f"method must be one of {', '.join(have) or '(none computed)'}, got {method!r}")


def _row_shares(scores: np.ndarray) -> np.ndarray:
    total = np.abs(scores).sum(axis=1, keepdims=True)
    return np.divide(scores, total, out=np.zeros_like(scores), where=total > 0)


def output_labels(result: ShiftResult, view: str) -> list[str]:
    base, inst = result.sides["base"].output_tokens, result.sides["instruct"].output_tokens
    if view == "base":
        return _labels(base)
    if view == "instruct":
        return _labels(inst)
    return [f"{i}:{a} | {b}" for i, (a, b) in enumerate(zip(base, inst))]


def attribution_heatmap(result: ShiftResult, method: str, view: str, page: int = 1, page_size: int = 8,
                        scale: str = "shared") -> Any:
    """Output tokens (rows, one page) x prompt tokens (columns). The base and instruct views share one colour
    scale (`scale="shared"`, the bound of both on this page) or each have their own ("per model"). The difference
    view compares each model's row normalised to shares of its absolute mass (raw scales differ between models):
    instruct minus base, on its own symmetric scale."""
    import plotly.graph_objects as go

    _check_view(view)
    _check_method(result, method)
    _check_scale(scale)
    n_out = result.n_outputs
    check_page(page, page_size, n_out)
    rows = slice((page - 1) * page_size, min(n_out, page * page_size))
    if view == "difference":
        z = (_row_shares(result.sides["instruct"].attributions[method].scores)
             - _row_shares(result.sides["base"].attributions[method].scores))[rows]
        title, subtitle = "instruct − base (rows as shares of |attribution|)", pair_caption(result)
        bound, colour_title = float(np.abs(z).max()) or 1.0, "Δ share"
    else:
        z = result.sides[view].attributions[method].scores[rows]
        shown = SIDES if scale == "shared" else (view,)
        bound = max(float(np.abs(result.sides[s].attributions[method].scores[rows]).max()) for s in shown) or 1.0
        title, subtitle, colour_title = view, side_caption(result, view), "score"
        if method == "integrated_gradients" and completeness_text(result, view):
            subtitle += "<br>" + completeness_text(result, view)
    x, y = _labels(result.layout.tokens), output_labels(result, view)[rows]
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound, reversescale=True,
                               colorbar=dict(title=dict(text=colour_title))))
    top = 125 if "<br>" in subtitle else 90
    fig.update_layout(title=_title(f"{METHOD_LABELS[method]} — {title}", subtitle),
                      xaxis=dict(title="prompt token", **_every_tick(x, -60)),
                      yaxis=dict(title="output token", autorange="reversed", **_every_tick(y)),
                      height=top + 100 + 22 * (rows.stop - rows.start), margin=dict(l=10, r=10, t=top, b=10))
    _mark_instruction(fig, result)
    return fig


def span_name(result: ShiftResult) -> str:
    """What the orange box marks, in the user's words."""
    where = "the user message" if result.layout.source == "chat template" else "marked with [[...]]"
    return f"instruction span ({where})"


def _mark_instruction(fig: Any, result: ShiftResult) -> None:
    """Box the instruction span's columns (contiguous runs) on a prompt-token x axis, and say what the box is."""
    mask = result.layout.instruction_mask
    start, first = None, True
    for i, flag in enumerate(list(mask) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            fig.add_vrect(x0=start - 0.5, x1=i - 0.5, line_width=2, line_color=SPAN_COLOUR,
                          fillcolor="rgba(0,0,0,0)")
            if first:
                fig.add_annotation(x=start - 0.5, y=1, xref="x", yref="paper", xanchor="left", yanchor="bottom",
                                   text=f"▭ {span_name(result)}", showarrow=False,
                                   font=dict(color=SPAN_COLOUR, size=12))
                first = False
            start = None


def density_explanation(result: ShiftResult) -> str:
    """The paper's importance density in plain words, with this run's L, b and p."""
    st = result.settings
    return (f"For each output token: negative scores set to 0, scores divided by their largest, scaled to "
            f"0..L={st.density_scale} and rounded up; values ≤ b={st.density_threshold} dropped.<br>"
            f"Density of a prompt token = L1/L{st.density_p} norm of what is left over the output tokens: higher "
            "= important for more output tokens (0 = never among any output token's most important).")


def density_figure(result: ShiftResult, method: str = "gradient_x_input") -> Any:
    """The paper's importance density per prompt token (L1/L4 over output tokens), base vs instruct."""
    import plotly.graph_objects as go

    _check_method(result, method)
    x = _labels(result.layout.tokens)
    fig = go.Figure()
    for side in SIDES:
        fig.add_bar(x=x, y=result.density(side, method).per_input, name=side)
    fig.update_layout(barmode="group",
                      title=_title(f"Importance density per prompt token ({METHOD_LABELS[method]})",
                                   density_explanation(result) + "<br>" + pair_caption(result)),
                      xaxis=dict(title="prompt token", **_every_tick(x, -60)),
                      yaxis=dict(title=f"importance density (L1/L{result.settings.density_p})"),
                      legend=dict(title=dict(text="model")), height=490, margin=dict(l=10, r=10, t=160, b=10))
    _mark_instruction(fig, result)
    return fig


def share_figure(result: ShiftResult, method: str) -> Any:
    """Instruction share of attribution mass per output token, base vs instruct; one tick per output token,
    labelled with both models' tokens."""
    import plotly.graph_objects as go

    _check_method(result, method)
    fig = go.Figure()
    positions = list(range(result.n_outputs))
    for side in SIDES:
        fig.add_scatter(x=positions, y=result.instruction_share(side, method), mode="lines+markers", name=side)
    fig.update_layout(title=_title(f"Share of |attribution| on the instruction span per output token "
                                   f"({METHOD_LABELS[method]})", pair_caption(result)),
                      xaxis=dict(title="output token (position: base | instruct)", tickmode="array",
                                 tickvals=positions, ticktext=output_labels(result, "difference"), tickfont=TICK_FONT,
                                 tickangle=-45),
                      yaxis_title="share of |attribution|", yaxis_range=[0, 1], legend=dict(title=dict(text="model")),
                      height=380, margin=dict(l=10, r=10, t=80, b=10))
    return fig


def position_figure(result: ShiftResult, method: str, bins: int = 10) -> Any:
    """Attribution mass by relative prompt position (lost-in-the-middle view), base vs instruct."""
    import plotly.graph_objects as go

    _check_method(result, method)
    if not 2 <= bins <= 50:
        raise ValueError(f"bins must be between 2 and 50, got {bins}")
    centres = [(b + 0.5) / bins for b in range(bins)]
    fig = go.Figure()
    for side in SIDES:
        fig.add_scatter(x=centres, y=result.position_profile(side, method, bins), mode="lines+markers", name=side)
    fig.update_layout(title=_title(f"Share of |attribution| by relative prompt position ({METHOD_LABELS[method]})",
                                   pair_caption(result)),
                      xaxis_title="relative position in the prompt (0 = start, 1 = end)",
                      yaxis_title="share of |attribution|", legend=dict(title=dict(text="model")),
                      height=340, margin=dict(l=10, r=10, t=80, b=10))
    return fig


def _layer_head_ranges(result: ShiftResult, layer_from: int, layer_to: int, heads: str) -> tuple[list[int], list[int]]:
    attn = result.sides["base"].attention
    if attn is None:
        raise ValueError("attention was not computed for this run")
    n_layers, n_heads = attn.shape
    if not (0 <= layer_from <= layer_to <= n_layers - 1):
        raise ValueError(f"layer range must satisfy 0 <= from <= to <= {n_layers - 1}, got {layer_from}..{layer_to}")
    if heads.strip() in ("", "all"):
        head_list = list(range(n_heads))
    else:
        try:
            head_list = sorted({int(h) for h in heads.replace(" ", "").split(",") if h})
        except ValueError:
            raise ValueError(f"heads must be 'all' or comma-separated numbers between 0 and {n_heads - 1}, got {heads!r}")
        if not head_list or any(not 0 <= h < n_heads for h in head_list):
            raise ValueError(f"heads must be between 0 and {n_heads - 1}, got {heads!r}")
    return list(range(layer_from, layer_to + 1)), head_list


def attention_share_heatmap(result: ShiftResult, view: str, layer_from: int = 0, layer_to: int | None = None,
                            heads: str = "all", scale: str = "shared") -> Any:
    """Layers x heads: share of attention from the answer's queries to instruction tokens (or its difference).
    Base and instruct share one colour range (both models' min..max over the shown layers and heads) or each
    have their own; the difference has its own symmetric scale."""
    import plotly.graph_objects as go

    _check_view(view)
    _check_scale(scale)
    if layer_to is None:
        layer_to = result.sides["base"].attention.shape[0] - 1 if result.sides["base"].attention else 0
    layers, head_list = _layer_head_ranges(result, layer_from, layer_to, heads)
    cells = np.ix_(layers, head_list)
    if view == "difference":
        z = (result.sides["instruct"].attention.instruction_share - result.sides["base"].attention.instruction_share)
        z = z[cells]
        bound = float(np.abs(z).max()) or 1.0
        kw: dict[str, Any] = dict(colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound, reversescale=True)
        title, subtitle, colour_title = "instruct − base", pair_caption(result), "Δ share"
    else:
        z = result.sides[view].attention.instruction_share[cells]
        shown = [result.sides[s].attention.instruction_share[cells] for s in (SIDES if scale == "shared" else (view,))]
        low, high = min(float(a.min()) for a in shown), max(float(a.max()) for a in shown)
        kw = dict(colorscale="Viridis", zmin=low, zmax=high if high > low else low + 1e-6)
        title, subtitle, colour_title = view, side_caption(result, view), "share"
    fig = go.Figure(go.Heatmap(z=z, x=[f"head {h}" for h in head_list], y=[f"layer {l}" for l in layers],
                               colorbar=dict(title=dict(text=colour_title)), **kw))
    fig.update_layout(title=_title(f"Attention share on instruction tokens — {title}", subtitle),
                      yaxis_autorange="reversed", height=230 + 18 * len(layers), margin=dict(l=10, r=10, t=80, b=10))
    return fig


def head_view(result: ShiftResult, side: str, layer: int, head: int, scale: str = "shared") -> Any:
    """One head's attention over prompt + answer tokens (rows: queries, columns: keys); every token labelled.
    With the shared scale, the colour range is that of both models' maps of this layer and head."""
    import plotly.graph_objects as go

    if side not in SIDES:
        raise ValueError(f"side must be 'base' or 'instruct', got {side!r}")
    _check_scale(scale)
    attn = result.sides[side].attention
    if attn is None:
        raise ValueError("attention was not computed for this run")
    z = attn.head_view(layer, head)
    top = max(float(result.sides[s].attention.head_view(layer, head).max())
              for s in (SIDES if scale == "shared" else (side,))) or 1.0
    labels = _labels(result.layout.tokens + result.sides[side].output_tokens)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=top,
                               colorbar=dict(title=dict(text="attention"))))
    fig.add_hline(y=attn.n_prompt - 0.5, line_color="red", line_dash="dot")
    fig.add_vline(x=attn.n_prompt - 0.5, line_color="red", line_dash="dot")
    _mark_instruction(fig, result)
    fig.update_layout(title=_title(f"Head view — {side}, layer {layer}, head {head} (dotted line: prompt | answer)",
                                   side_caption(result, side)),
                      xaxis=dict(title="key (attended-to token)", **_every_tick(labels, -90)),
                      yaxis=dict(title="query token", autorange="reversed", **_every_tick(labels)),
                      height=max(460, 120 + 14 * len(labels)), margin=dict(l=10, r=10, t=90, b=10))
    return fig


FFN_COLUMNS = ["layer", "component", "variance (base)", "base tokens", "instruct tokens", "layer overlap"]


def ffn_rows(result: ShiftResult, layer_from: int = 0, layer_to: int | None = None) -> list[list[Any]]:
    base, inst = result.sides["base"].ffn, result.sides["instruct"].ffn
    if base is None or inst is None:
        raise ValueError("feed-forward concepts were not computed for this run")
    n = len(base.layers)
    layer_to = n - 1 if layer_to is None else layer_to
    if not 0 <= layer_from <= layer_to <= n - 1:
        raise ValueError(f"layer range must satisfy 0 <= from <= to <= {n - 1}, got {layer_from}..{layer_to}")
    overlap = result.ffn_overlap()
    rows = []
    for i in range(layer_from, layer_to + 1):
        a, b = base.layers[i], inst.layers[i]
        for k, (ta, tb) in enumerate(zip(a.tokens, b.tokens)):
            rows.append([a.layer, k, round(a.explained[k], 4), " ".join(ta), " ".join(tb), round(overlap[i], 3)])
    return rows


def summary_markdown(result: ShiftResult) -> str:
    """Answers, instruction span, per-method instruction share and density, IG completeness per model, the
    methods' notes (baselines), limits, warnings."""
    s, lay = result.settings, result.layout
    lines = []
    random = [side for side in SIDES if result.sides[side].random_weights]
    if random:
        lines.append(f"⚠️ **Random weights — outputs are not meaningful**: {' and '.join(random)}.")
    lines.append(f"**Pair** ({result.pair_kind}): **base** = `{side_caption(result, 'base')}`, **instruct** = "
                 f"`{side_caption(result, 'instruct')}`. Analysed in {result.seconds:.1f} s.")
    lines.append(f"**Instruction span** ({lay.source}; the orange box on the plots): {sum(lay.instruction_mask)} of "
                 f"{lay.n_tokens} prompt tokens — `{''.join(lay.instruction_tokens())[:200]}`. Limits: prompt ≤ "
                 f"{LIMITS.max_prompt_tokens} tokens, answer ≤ {LIMITS.max_new_tokens} tokens.")
    lines.append(f"**Answers** (greedy, {s.max_new_tokens} tokens each, end-of-sequence suppressed so they line up):")
    for side in SIDES:
        lines.append(f"- {side}: `{result.sides[side].output_text!r}`")
    if not result.complete and result.stopped:
        lines.append(f"⏹️ **Partial result**: stopped during {result.stopped}; showing what finished before the "
                     "cancel.")
    elif not result.complete:
        lines.append("⏳ **Attribution is running**: answers, attention and feed-forward concepts are shown first.")
    methods = result.methods_done
    if methods:
        lines += ["", "| method | instruction share, base | instruction share, instruct | Δ (instruct − base) | "
                  "mean density per output token (base → instruct) | seconds (base / instruct) |",
                  "|---|---|---|---|---|---|"]
        for m in methods:
            a, b = result.instruction_share("base", m).mean(), result.instruction_share("instruct", m).mean()
            da, db = result.density("base", m).per_output.mean(), result.density("instruct", m).per_output.mean()
            ta, tb = result.sides["base"].attributions[m].seconds, result.sides["instruct"].attributions[m].seconds
            lines.append(f"| {METHOD_LABELS[m]} | {a:.3f} | {b:.3f} | {b - a:+.3f} | {da:.2f} → {db:.2f} | "
                         f"{ta:.1f} / {tb:.1f} |")
        lines.append("")
        if "integrated_gradients" in methods:
            for side in SIDES:
                r = result.sides[side].attributions["integrated_gradients"]
                ok = r.completeness_ok(s.completeness_tolerance)
                lines.append(
                    f"- Integrated gradients completeness, {side} ({s.ig_steps} steps): error max "
                    f"{r.completeness_rel.max():.2%}, mean {r.completeness_rel.mean():.2%} of |f(x) − f(baseline)| "
                    f"(max absolute {r.completeness_abs.max():.2e}) — "
                    + (f"✓ pass: within the {s.completeness_tolerance:.0%} tolerance." if ok else
                       f"✗ **fail**: above the {s.completeness_tolerance:.0%} tolerance — raise the integration "
                       "steps."))
        for m in methods:
            notes = {side: result.sides[side].attributions[m].notes for side in SIDES}
            if notes["base"] == notes["instruct"]:
                shown = [f"*{METHOD_LABELS[m]}*: {n}" for n in notes["base"]]
            else:
                shown = [f"*{METHOD_LABELS[m]}*, {side}: {n}" for side in SIDES for n in notes[side]]
            lines += [f"- {n}" for n in shown]
        # each method's baseline is in its notes above (the attribution module says which it used)
        lines.append("- Shares and position profiles leave out special tokens (BOS). Attribution target: probability "
                     "of each generated token (the paper's).")
    return "\n".join(lines)
