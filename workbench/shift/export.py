"""A behaviour-shift analysis (Wu et al., NAACL'24) as one ZIP: its matrices (NPZ and CSV), its figures (HTML),
and a JSON record of settings, prompt, tokens, answers and both sides' provenance. A partial result (a cancelled
run) exports what finished; the record says what is missing. Usable without a UI:

    path = write_export_zip(result)
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workbench.types import package_versions
from workbench.shift.analysis import ShiftResult
from workbench.shift.limits import LIMITS, METHOD_LABELS
from workbench.storage import export_folder

SIDES = ("base", "instruct")
ZIP_NAME = "shift_analysis.zip"
PLOTLY_JS = "plotly.min.js"  # written once into figures/; each HTML file loads it from beside itself (works offline)


def arrays(result: ShiftResult) -> dict[str, np.ndarray]:
    """Every matrix of the result by name (plain numeric/bool dtypes: loads with allow_pickle=False)."""
    lay = result.layout
    out: dict[str, np.ndarray] = {
        "prompt_ids": np.asarray(lay.input_ids, dtype=np.int64),
        "instruction_mask": np.asarray(lay.instruction_mask, dtype=bool),
        "special_mask": np.asarray(lay.special_mask, dtype=bool),
    }
    for side in SIDES:
        s = result.sides[side]
        out[f"output_ids_{side}"] = np.asarray(s.output_ids, dtype=np.int64)
        for m in result.methods_done:
            r = s.attributions[m]
            out[f"attribution_{m}_{side}"] = np.asarray(r.scores, dtype=np.float64)  # (outputs, prompt tokens)
            out[f"target_prob_{m}_{side}"] = np.asarray(r.target_prob, dtype=np.float64)
            out[f"instruction_share_{m}_{side}"] = result.instruction_share(side, m)
            out[f"density_per_prompt_token_{m}_{side}"] = result.density(side, m).per_input
            if r.completeness_rel is not None:
                out[f"completeness_rel_{m}_{side}"] = np.asarray(r.completeness_rel, dtype=np.float64)
            if r.completeness_abs is not None:
                out[f"completeness_abs_{m}_{side}"] = np.asarray(r.completeness_abs, dtype=np.float64)
        if s.attention is not None:
            out[f"attention_share_{side}"] = np.asarray(s.attention.instruction_share, dtype=np.float64)
            out[f"attention_maps_{side}"] = np.asarray(s.attention.maps)  # float16 (layers, heads, query, key)
    return out


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def csv_tables(result: ShiftResult) -> dict[str, str]:
    """CSV files by name: one attribution matrix per method and side (rows: output tokens, columns: prompt
    tokens), one long table per output token, one attention-share table per side, the FFN concepts."""
    from workbench.shift import figures as fg

    lay = result.layout
    prompt_cols = [f"{i}:{t}" for i, t in enumerate(lay.tokens)]
    tables: dict[str, str] = {}
    long_rows = []
    for side in SIDES:
        s = result.sides[side]
        for m in result.methods_done:
            r = s.attributions[m]
            tables[f"attribution_{m}_{side}.csv"] = _csv(
                ["output token", *prompt_cols],
                [[f"{j}:{tok}", *map(float, row)] for j, (tok, row) in enumerate(zip(s.output_tokens, r.scores))])
            share = result.instruction_share(side, m)
            for j, tok in enumerate(s.output_tokens):
                long_rows.append([side, m, j, tok, float(r.target_prob[j]), float(share[j]),
                                  "" if r.completeness_rel is None else float(r.completeness_rel[j]),
                                  "" if r.completeness_abs is None else float(r.completeness_abs[j])])
        if s.attention is not None:
            n_layers, n_heads = s.attention.shape
            tables[f"attention_share_{side}.csv"] = _csv(
                ["layer", *[f"head {h}" for h in range(n_heads)]],
                [[layer, *map(float, s.attention.instruction_share[layer])] for layer in range(n_layers)])
    if long_rows:
        tables["per_output_token.csv"] = _csv(
            ["side", "method", "position", "token", "target_prob", "instruction_share", "completeness_rel",
             "completeness_abs"], long_rows)
    if result.sides["base"].ffn is not None and result.sides["instruct"].ffn is not None:
        tables["ffn_concepts.csv"] = _csv(fg.FFN_COLUMNS, fg.ffn_rows(result))
    return tables


def figures(result: ShiftResult) -> dict[str, Any]:
    """The tab's figures by file stem, with the tab's defaults (shared colour scale, every layer and head):
    per method the three heatmaps (every page of output tokens), density, instruction share and position."""
    from workbench.shift import figures as fg

    out: dict[str, Any] = {}
    page_size = min(result.n_outputs, LIMITS.max_page_size)
    pages = -(-result.n_outputs // page_size)
    for m in result.methods_done:
        for view in fg.VIEWS:
            for page in range(1, pages + 1):
                suffix = f"_page{page}" if pages > 1 else ""
                out[f"attribution_{m}_{view}{suffix}"] = fg.attribution_heatmap(result, m, view, page, page_size)
        out[f"density_{m}"] = fg.density_figure(result, m)
        out[f"instruction_share_{m}"] = fg.share_figure(result, m)
        out[f"position_{m}"] = fg.position_figure(result, m)
    if result.sides["base"].attention is not None:
        for view in fg.VIEWS:
            out[f"attention_share_{view}"] = fg.attention_share_heatmap(result, view)
    return out


def _png_writer() -> str | None:
    """Why PNG figures are left out (None when kaleido is installed and they are written)."""
    if importlib.util.find_spec("kaleido") is None:
        return ("PNG figures are not included: the 'kaleido' package (plotly's static image export) is not "
                "installed here. Open the HTML figures in a browser, or pip install kaleido and export again.")
    return None


def record(result: ShiftResult) -> dict[str, Any]:
    """Everything needed to reread and reproduce the analysis, as JSON."""
    from workbench.shift import figures as fg

    lay = result.layout
    a, b = lay.instruction_chars
    sides = {}
    for side in SIDES:
        s = result.sides[side]
        sides[side] = {
            "label": s.label, "model": fg.side_caption(result, side), "output_ids": list(s.output_ids),
            "output_tokens": list(s.output_tokens), "output_text": s.output_text, "random_weights": s.random_weights,
            "provenance": s.provenance.to_dict() if s.provenance is not None else None,
            "attribution_notes": {m: list(s.attributions[m].notes) for m in result.methods_done},
            "attribution_seconds": {m: s.attributions[m].seconds for m in result.methods_done},
        }
        ig = s.attributions.get("integrated_gradients")
        if ig is not None and ig.completeness_rel is not None and "integrated_gradients" in result.methods_done:
            sides[side]["integrated_gradients_completeness"] = {
                "max_rel": float(ig.completeness_rel.max()), "mean_rel": float(ig.completeness_rel.mean()),
                "tolerance": result.settings.completeness_tolerance,
                "pass": bool(ig.completeness_ok(result.settings.completeness_tolerance))}
    settings = dataclasses.asdict(result.settings)
    return {
        "analysis": "behaviour shift (Wu et al., NAACL'24): base vs instruct on one prompt",
        "pair_kind": result.pair_kind, "complete": result.complete, "stopped": result.stopped,
        "parts": list(result.parts), "methods_asked": list(result.settings.methods),
        "methods_done": result.methods_done,
        "methods_missing": [m for m in result.settings.methods if m not in result.methods_done]
        if "attribution" in result.parts else [],
        "seconds": result.seconds, "settings": settings,
        "inputs": dict(result.inputs),  # as the user typed them (before the chat template)
        "prompt": {"text": lay.text, "instruction": lay.text[a:b], "instruction_chars": [a, b],
                   "instruction_source": lay.source, "tokens": list(lay.tokens), "ids": list(lay.input_ids),
                   "instruction_mask": list(lay.instruction_mask), "special_mask": list(lay.special_mask)},
        "sides": sides,
        "method_labels": {m: METHOD_LABELS[m] for m in result.settings.methods},
        "versions": package_versions("plotly", "kaleido", "gradio", "streamlit"),
    }


def _readme(rec: dict[str, Any], arrays_: dict[str, np.ndarray], tables: dict[str, str], figs: list[str],
            png_note: str | None) -> str:
    state = "complete" if rec["complete"] else (f"PARTIAL: stopped during {rec['stopped']}" if rec["stopped"]
                                                else "PARTIAL: attribution had not finished")
    lines = [
        "Behaviour-shift analysis (Wu et al., NAACL'24): a base LM and its instruction-tuned sibling on one prompt.",
        f"State: {state}. Attribution methods in this archive: {', '.join(rec['methods_done']) or 'none'}"
        + (f"; missing: {', '.join(rec['methods_missing'])}" if rec["methods_missing"] else "") + ".",
        f"base = {rec['sides']['base']['model']}; instruct = {rec['sides']['instruct']['model']}.",
        "",
        "analysis.json  settings, prompt (as the models saw it, with the instruction span), tokens, answers, both",
        "               sides' provenance (model, revision, device, dtype, adapter), IG completeness, package versions.",
        "matrices.npz   numpy arrays (np.load(path, allow_pickle=False)): " + ", ".join(sorted(arrays_)),
        "               attribution_<method>_<side>: (output tokens, prompt tokens); attention_maps_<side>: (layers,",
        "               heads, query, key) over prompt + answer tokens; attention_share_<side>: (layers, heads).",
        "csv/           " + ", ".join(sorted(tables)),
        "figures/       " + (", ".join(f"{f}.html" for f in figs) if figs else "(none)")
        + f"; the HTML files load {PLOTLY_JS} from the same folder (keep them together).",
        "               Heatmaps use the tab's defaults: base and instruct on one shared colour scale.",
    ]
    if png_note:
        lines.append(png_note)
    return "\n".join(lines) + "\n"


def write_export_zip(result: ShiftResult, folder: str | Path | None = None) -> Path:
    """The analysis as `shift_analysis.zip` in `folder` (a new temporary folder by default); returns its path."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    if result is None or len(result.sides) != len(SIDES):
        raise ValueError("there is no analysis to export yet: run the analysis first")
    rec = record(result)
    mats = arrays(result)
    tables = csv_tables(result)
    figs = figures(result)
    png_note = _png_writer()
    folder = Path(folder or export_folder("shift-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ZIP_NAME
    npz = io.BytesIO()
    np.savez_compressed(npz, **mats)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("analysis.json", json.dumps(rec, indent=2, ensure_ascii=False, default=str))
        zf.writestr("matrices.npz", npz.getvalue())
        for name, text in tables.items():
            zf.writestr(f"csv/{name}", text)
        if figs:
            zf.writestr(f"figures/{PLOTLY_JS}", get_plotlyjs())
        for stem, fig in figs.items():
            zf.writestr(f"figures/{stem}.html", pio.to_html(fig, include_plotlyjs="directory", full_html=True))
            if png_note is None:
                try:
                    zf.writestr(f"figures/{stem}.png", fig.to_image(format="png", scale=2))
                except Exception as exc:  # kaleido installed but unusable (kaleido 1.x needs a Chrome): say so
                    png_note = f"PNG figures are not included: plotly's image export failed ({exc})."[:2000]
        zf.writestr("README.txt", _readme(rec, mats, tables, list(figs), png_note))
    return path
