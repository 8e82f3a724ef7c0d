"""The behaviour-shift tab's flows, written once for both front ends: run an analysis from the tab's raw
inputs, and turn a result plus the view filters into a view model (every figure and table the tab shows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.shift.limits import IG_BASELINE_LABELS, IG_BASELINES, METHOD_LABELS, METHODS, ShiftSettings
from workbench.shift.pairs import PAIR_ROLES

EXAMPLE = "List three animals that live on a farm."
PARTS = ("attribution", "attention", "ffn")
VIEW_KEYS = ("summary", "attr_base", "attr_instruct", "attr_difference", "density", "share", "position",
             "attn_base", "attn_instruct", "attn_difference", "head_view", "ffn")
_METHOD_BY_LABEL = {v: k for k, v in METHOD_LABELS.items()}
_BASELINE_BY_LABEL = {v: k for k, v in IG_BASELINE_LABELS.items()}


@dataclass
class ShiftView:
    """What the tab shows for one result and one set of filters (None where that part was not computed)."""

    parts: dict[str, Any] = field(default_factory=dict)  # VIEW_KEYS -> figure / markdown / rows
    method_choices: list[str] = field(default_factory=list)  # labels of the computed attribution methods
    method_shown: str = METHOD_LABELS["gradient_x_input"]

    def get(self, key: str) -> Any:
        return self.parts.get(key)

    def ordered(self) -> list[Any]:
        return [self.parts.get(k) for k in VIEW_KEYS]


def whole(value: Any, name: str) -> int:
    if value is None or float(value) != int(float(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(float(value))


def parse_range(text: str, n: int, name: str) -> tuple[int, int]:
    """'all', 'a-b' or 'a' -> (from, to) inclusive, checked against 0..n-1."""
    text = (text or "").strip().lower()
    if text in ("", "all"):
        return 0, n - 1
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise ValueError(f"{name} must be 'all', a number or a range like 2-5 between 0 and {n - 1}, got {text!r}")
    if not 0 <= a <= b <= n - 1:
        raise ValueError(f"{name} must lie between 0 and {n - 1} (from <= to), got {text!r}")
    return a, b


IG_BASELINE_CHOICES = [IG_BASELINE_LABELS[k] for k in IG_BASELINES]
DEFAULTS = ShiftSettings()  # the widgets' defaults (measured: see limits.py and bench/bench_ig_baselines.py)


def ig_baseline_key(value: Any) -> str:
    """A baseline label (as the widgets show it) or key -> the key; anything else names the choices."""
    key = _BASELINE_BY_LABEL.get(value, value)
    if key not in IG_BASELINES:
        raise ValueError(f"integrated-gradients baseline must be one of {', '.join(IG_BASELINES)}, got {value!r}")
    return key


def run_analysis(ctx: Any, profile_name: str, prompt: str, system: str, use_template: bool, max_new_tokens: Any,
                 ig_steps: Any, methods: list[str] | None, parts: list[str] | None, job: Any = None,
                 defer_attribution: bool = False, ig_baseline: Any = DEFAULTS.ig_baseline):
    from workbench.shift.analysis import analyse_pair

    profile = ctx.profile(profile_name)
    methods = tuple(_METHOD_BY_LABEL.get(m, m) for m in (methods or []))
    parts = tuple(parts or ())
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"views must be among {', '.join(PARTS)}, got {', '.join(map(str, unknown))}")
    if not methods and "attribution" not in parts:
        methods = METHODS  # not used; keeps the settings valid when attribution is switched off
    settings = ShiftSettings(max_new_tokens=whole(max_new_tokens, "max_new_tokens"),
                             ig_steps=whole(ig_steps, "ig_steps"), methods=methods,
                             ig_baseline=ig_baseline_key(ig_baseline))
    return analyse_pair(ctx.manager, profile.spec(PAIR_ROLES["base"]), profile.spec(PAIR_ROLES["instruct"]), prompt,
                        use_chat_template=bool(use_template), system=system or "", settings=settings, parts=parts,
                        job=job, defer_attribution=defer_attribution)


def run_attribution(ctx: Any, profile_name: str, result: Any, job: Any = None):
    """Finish a result whose cheap parts came first: attribute both answers. A cancel returns the result with
    the methods that finished (its summary says where it stopped) instead of raising."""
    from workbench.jobs import Cancelled
    from workbench.shift.analysis import add_attribution

    if result is None:
        raise ValueError("run the analysis first")
    if result.complete or "attribution" not in result.parts:
        return result
    profile = ctx.profile(profile_name)
    try:
        return add_attribution(ctx.manager, profile.spec(PAIR_ROLES["base"]), profile.spec(PAIR_ROLES["instruct"]), result, job=job)
    except Cancelled as exc:
        if exc.partial is None:
            raise
        return exc.partial


def build_view(result: Any, method_label: str, page: Any, page_size: Any, layers: str, heads: str, hv_side: str,
               hv_layer: Any, hv_head: Any, scale: str = "shared") -> ShiftView:
    """Every figure and table of the tab for one set of filters. A method that was not computed falls back to
    the first computed one (the view says which is shown). `scale`: one colour scale for the base and instruct
    heatmaps ("shared", comparable at a glance) or one each ("per model")."""
    from workbench.shift import figures as fg

    if result is None:
        raise ValueError("run the analysis first")
    if scale not in fg.SCALES:
        raise ValueError(f"colour scale must be one of {', '.join(fg.SCALES)}, got {scale!r}")
    view = ShiftView(parts={"summary": fg.summary_markdown(result)})
    attrs = {m: result.sides["base"].attributions[m] for m in result.methods_done}
    view.method_choices = [METHOD_LABELS[m] for m in attrs]
    if attrs:
        method = _METHOD_BY_LABEL.get(method_label, method_label)
        if method not in METHOD_LABELS:
            raise ValueError(f"method must be one of {', '.join(view.method_choices)}, got {method_label!r}")
        if method not in attrs:
            method = next(iter(attrs))
        view.method_shown = METHOD_LABELS[method]
        page, page_size = whole(page, "page"), whole(page_size, "page size")
        for side in fg.VIEWS:
            view.parts[f"attr_{side}"] = fg.attribution_heatmap(result, method, side, page, page_size, scale)
        density_method = "gradient_x_input" if "gradient_x_input" in attrs else method
        view.parts["density"] = fg.density_figure(result, density_method)
        view.parts["share"] = fg.share_figure(result, method)
        view.parts["position"] = fg.position_figure(result, method)
    if result.sides["base"].attention is not None:
        n_layers, _ = result.sides["base"].attention.shape
        lo, hi = parse_range(layers, n_layers, "layers")
        for side in fg.VIEWS:
            view.parts[f"attn_{side}"] = fg.attention_share_heatmap(result, side, lo, hi, heads, scale)
        view.parts["head_view"] = fg.head_view(result, hv_side, whole(hv_layer, "head-view layer"),
                                               whole(hv_head, "head-view head"), scale)
    if result.sides["base"].ffn is not None:
        lo, hi = parse_range(layers, len(result.sides["base"].ffn.layers), "layers")
        view.parts["ffn"] = fg.ffn_rows(result, lo, hi)
    return view


def analyse(ctx: Any, profile_name: str, prompt: str, system: str, use_template: bool, max_new_tokens: Any,
            ig_steps: Any, methods: list[str] | None, parts: list[str] | None, method_label: str, page: Any,
            page_size: Any, layers: str, heads: str, hv_side: str, hv_layer: Any, hv_head: Any,
            scale: str = "shared", ig_baseline: Any = DEFAULTS.ig_baseline,
            job: Any = None) -> tuple[Any, ShiftView]:
    """The Analyse button, first step: both answers, attention and feed-forward concepts (quick), so they show
    while `attribute` (the second step) runs: (result kept in the user's state, the view model)."""
    result = run_analysis(ctx, profile_name, prompt, system, use_template, max_new_tokens, ig_steps, methods, parts,
                          job=job, defer_attribution=True, ig_baseline=ig_baseline)
    return result, build_view(result, method_label, page, page_size, layers, heads, hv_side, hv_layer, hv_head,
                              scale)


def attribute(ctx: Any, profile_name: str, result: Any, method_label: str, page: Any, page_size: Any, layers: str,
              heads: str, hv_side: str, hv_layer: Any, hv_head: Any, scale: str = "shared",
              job: Any = None) -> tuple[Any, ShiftView]:
    """The Analyse button, second step (a cancellable job): attribution for both models; after a cancel the
    view shows what finished."""
    result = run_attribution(ctx, profile_name, result, job=job)
    return result, build_view(result, method_label, page, page_size, layers, heads, hv_side, hv_layer, hv_head,
                              scale)


def export(result: Any) -> str:
    """The Download button: the analysis so far (a partial result exports what finished) as one ZIP; its path."""
    from workbench.shift.export import write_export_zip

    if result is None:
        raise ValueError("run the analysis first")
    return str(write_export_zip(result))
