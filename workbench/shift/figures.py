"""Plotly figures and tables for a behaviour-shift result, shared by the Gradio and Streamlit pages.

Everything here reads a `ShiftResult`; filters (page of output tokens, layer range, heads, layer/head of the
head view) are checked and raise ValueError naming the allowed range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.shift.analysis import ShiftResult
from workbench.shift.limits import LIMITS, METHOD_LABELS, check_page

VIEWS = ("base", "instruct", "difference")


def _labels(tokens: list[str]) -> list[str]:
    return [f"{i}:{t}" for i, t in enumerate(tokens)]  # positions keep repeated tokens apart on plotly axes


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")


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


def attribution_heatmap(result: ShiftResult, method: str, view: str, page: int = 1, page_size: int = 8) -> Any:
    """Output tokens (rows, one page) x prompt tokens (columns). The difference view compares each model's row
    normalised to shares of its absolute mass (raw scales differ between models): instruct minus base."""
    import plotly.graph_objects as go

    _check_view(view)
    _check_method(result, method)
    n_out = result.n_outputs
    check_page(page, page_size, n_out)
    rows = slice((page - 1) * page_size, min(n_out, page * page_size))
    if view == "difference":
        z = (_row_shares(result.sides["instruct"].attributions[method].scores)
             - _row_shares(result.sides["base"].attributions[method].scores))
        title, scale = "instruct − base (rows as shares of |attribution|)", "RdBu"
    else:
        z = result.sides[view].attributions[method].scores
        title, scale = result.sides[view].label, "RdBu"
    z = z[rows]
    bound = float(np.abs(z).max()) or 1.0
    fig = go.Figure(go.Heatmap(z=z, x=_labels(result.layout.tokens), y=output_labels(result, view)[rows],
                               colorscale=scale, zmid=0, zmin=-bound, zmax=bound, reversescale=True))
    fig.update_layout(title=f"{METHOD_LABELS[method]} — {title}", xaxis_title="prompt token",
                      yaxis_title="output token", yaxis_autorange="reversed", height=260 + 22 * (rows.stop - rows.start),
                      margin=dict(l=10, r=10, t=50, b=10))
    _mark_instruction(fig, result)
    return fig


def _mark_instruction(fig: Any, result: ShiftResult) -> None:
    """Shade the instruction span's columns (contiguous runs) on a prompt-token x axis."""
    mask = result.layout.instruction_mask
    start = None
    for i, flag in enumerate(list(mask) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            fig.add_vrect(x0=start - 0.5, x1=i - 0.5, line_width=2, line_color="orange", fillcolor="rgba(0,0,0,0)")
            start = None


def density_figure(result: ShiftResult, method: str = "gradient_x_input") -> Any:
    """The paper's importance density per prompt token (L1/L4 over output tokens), base vs instruct."""
    import plotly.graph_objects as go

    _check_method(result, method)
    x = _labels(result.layout.tokens)
    fig = go.Figure()
    for side in ("base", "instruct"):
        fig.add_bar(x=x, y=result.density(side, method).per_input, name=result.sides[side].label)
    fig.update_layout(barmode="group", title=f"Importance density per prompt token ({METHOD_LABELS[method]}; "
                      f"L={result.settings.density_scale}, b={result.settings.density_threshold}, "
                      f"L1/L{result.settings.density_p})", height=340, margin=dict(l=10, r=10, t=50, b=10))
    _mark_instruction(fig, result)
    return fig


def share_figure(result: ShiftResult, method: str) -> Any:
    """Instruction share of attribution mass per output token, base vs instruct."""
    import plotly.graph_objects as go

    _check_method(result, method)
    fig = go.Figure()
    for side in ("base", "instruct"):
        fig.add_scatter(x=list(range(result.n_outputs)), y=result.instruction_share(side, method), mode="lines+markers",
                        name=result.sides[side].label)
    fig.update_layout(title=f"Share of |attribution| on the instruction span per output token ({METHOD_LABELS[method]})",
                      xaxis_title="output token position", yaxis_title="share", yaxis_range=[0, 1], height=320,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def position_figure(result: ShiftResult, method: str, bins: int = 10) -> Any:
    """Attribution mass by relative prompt position (lost-in-the-middle view), base vs instruct."""
    import plotly.graph_objects as go

    _check_method(result, method)
    if not 2 <= bins <= 50:
        raise ValueError(f"bins must be between 2 and 50, got {bins}")
    centres = [(b + 0.5) / bins for b in range(bins)]
    fig = go.Figure()
    for side in ("base", "instruct"):
        fig.add_scatter(x=centres, y=result.position_profile(side, method, bins), mode="lines+markers",
                        name=result.sides[side].label)
    fig.update_layout(title=f"Share of |attribution| by relative prompt position ({METHOD_LABELS[method]})",
                      xaxis_title="relative position in the prompt (0 = start, 1 = end)", yaxis_title="share",
                      height=320, margin=dict(l=10, r=10, t=50, b=10))
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
                            heads: str = "all") -> Any:
    """Layers x heads: share of attention from the answer's queries to instruction tokens (or its difference)."""
    import plotly.graph_objects as go

    _check_view(view)
    if layer_to is None:
        layer_to = result.sides["base"].attention.shape[0] - 1 if result.sides["base"].attention else 0
    layers, head_list = _layer_head_ranges(result, layer_from, layer_to, heads)
    if view == "difference":
        z = result.sides["instruct"].attention.instruction_share - result.sides["base"].attention.instruction_share
        kw: dict[str, Any] = dict(colorscale="RdBu", zmid=0, reversescale=True)
        title = "instruct − base"
    else:
        z = result.sides[view].attention.instruction_share
        kw = dict(colorscale="Viridis", zmin=0, zmax=1)
        title = result.sides[view].label
    z = z[np.ix_(layers, head_list)]
    fig = go.Figure(go.Heatmap(z=z, x=[f"head {h}" for h in head_list], y=[f"layer {l}" for l in layers], **kw))
    fig.update_layout(title=f"Attention share on instruction tokens — {title}", yaxis_autorange="reversed",
                      height=200 + 18 * len(layers), margin=dict(l=10, r=10, t=50, b=10))
    return fig


def head_view(result: ShiftResult, side: str, layer: int, head: int) -> Any:
    """One head's attention over prompt + answer tokens (rows: queries, columns: keys)."""
    import plotly.graph_objects as go

    if side not in ("base", "instruct"):
        raise ValueError(f"side must be 'base' or 'instruct', got {side!r}")
    attn = result.sides[side].attention
    if attn is None:
        raise ValueError("attention was not computed for this run")
    z = attn.head_view(layer, head)
    labels = _labels(result.layout.tokens + result.sides[side].output_tokens)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=float(z.max()) or 1.0))
    fig.add_hline(y=attn.n_prompt - 0.5, line_color="red", line_dash="dot")
    fig.add_vline(x=attn.n_prompt - 0.5, line_color="red", line_dash="dot")
    _mark_instruction(fig, result)
    fig.update_layout(title=f"Head view — {result.sides[side].label}, layer {layer}, head {head} "
                            "(dotted line: prompt | answer)", yaxis_autorange="reversed",
                      height=max(420, 14 * len(labels)), margin=dict(l=10, r=10, t=50, b=10))
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
    """Answers, instruction span, per-method instruction share and density, IG completeness, limits, warnings."""
    s, lay = result.settings, result.layout
    lines = []
    if result.random_weights:
        lines.append(f"⚠️ **Random weights — outputs are not meaningful**: {', '.join(result.random_weights)}.")
    lines.append(f"**Pair**: {result.pair_kind} — base `{result.sides['base'].label}`, instruct "
                 f"`{result.sides['instruct'].label}`. Analysed in {result.seconds:.1f} s.")
    lines.append(f"**Instruction span** ({lay.source}): {sum(lay.instruction_mask)} of {lay.n_tokens} prompt tokens — "
                 f"`{''.join(lay.instruction_tokens())[:200]}`. Limits: prompt ≤ {LIMITS.max_prompt_tokens} tokens, "
                 f"answer ≤ {LIMITS.max_new_tokens} tokens.")
    lines.append(f"**Answers** (greedy, {s.max_new_tokens} tokens each, end-of-sequence suppressed so they line up):")
    for side in ("base", "instruct"):
        lines.append(f"- {result.sides[side].label}: `{result.sides[side].output_text!r}`")
    if not result.complete and result.stopped:
        lines.append(f"⏹️ **Partial result**: stopped during {result.stopped}; showing what finished before the "
                     "cancel.")
    elif not result.complete:
        lines.append("⏳ **Attribution is running**: answers, attention and feed-forward concepts are shown first.")
    methods = result.methods_done
    if methods:
        lines += ["", "| method | instruction share base | instruction share instruct | Δ | mean density per output "
                  "(base → instruct) | time base / instruct (s) |", "|---|---|---|---|---|---|"]
        for m in methods:
            a, b = result.instruction_share("base", m).mean(), result.instruction_share("instruct", m).mean()
            da, db = result.density("base", m).per_output.mean(), result.density("instruct", m).per_output.mean()
            ta, tb = result.sides["base"].attributions[m].seconds, result.sides["instruct"].attributions[m].seconds
            lines.append(f"| {METHOD_LABELS[m]} | {a:.3f} | {b:.3f} | {b - a:+.3f} | {da:.2f} → {db:.2f} | "
                         f"{ta:.1f} / {tb:.1f} |")
        if "integrated_gradients" in methods:
            lines.append("")
            for side in ("base", "instruct"):
                r = result.sides[side].attributions["integrated_gradients"]
                ok = r.completeness_ok(s.completeness_tolerance)
                lines.append(
                    f"- Integrated gradients completeness ({result.sides[side].label}, {s.ig_steps} steps): max error "
                    f"{r.completeness_rel.max():.2%} of f(x) − f(baseline) (max absolute {r.completeness_abs.max():.2e}); "
                    + ("within" if ok else "**above**") + f" the {s.completeness_tolerance:.0%} tolerance"
                    + ("." if ok else " — raise the integration steps."))
        lines.append("- Shares and position profiles leave out special tokens (BOS). Ablation and integrated-gradients "
                     "baselines replace prompt tokens with the pad token. Attribution target: probability of each "
                     "generated token (the paper's).")
    return "\n".join(lines)
