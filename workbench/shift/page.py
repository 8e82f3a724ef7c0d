"""The behaviour-shift tab's page, declared once for both front ends (drawn by pages/shift.py): the layout of its
inputs (workbench.shift.forms), plots and tables, and the presenters of the analysis and its views."""

from __future__ import annotations

from typing import Any

from workbench.layout import Update, button, col, fields, out, row, tabs
from workbench.shift import flows
from workbench.shift.figures import FFN_COLUMNS
from workbench.shift.forms import METHOD_CHOICES, AnalysisInputs, ViewInputs

TAB = "shift"
PLOTS = {"attr_base": "Attribution — base", "attr_instruct": "Attribution — instruct",
         "attr_difference": "Attribution — difference", "density": "Importance density",
         "share": "Instruction share", "position": "By position", "attn_base": "Attention on instruction — base",
         "attn_instruct": "Attention on instruction — instruct",
         "attn_difference": "Attention on instruction — difference"}
DOWNLOAD_LABEL = "Download the analysis (ZIP: matrices, figures, settings, provenance)"
FFN_NOTE = ("Per layer, the top principal components of the feed-forward output vectors, read as the vocabulary "
            "tokens they point to; *layer overlap* is the Jaccard overlap of both models' tokens. An adapter on "
            "attention projections only leaves these weights unchanged (overlap 1).")
# FFN table column widths: numbers stay on one line, tokens get the room
FFN_WIDTHS = {"layer": "6%", "component": "9%", "variance (base)": "10%", "base tokens": "33%",
              "instruct tokens": "33%", "layer overlap": "9%"}

LAYOUT = [
    row(fields(AnalysisInputs, "prompt", scale=3), col(fields(AnalysisInputs, "system", "use_template"), scale=1)),
    row(fields(AnalysisInputs, "max_new", "ig_steps", "ig_baseline", "methods", "parts")),
    row(button("run", "Analyse", variant="primary", elem_id="shift-run"),
        button("cancel", "Cancel", only="gradio", variant="stop", elem_id="shift-cancel", visible=False)),
    out("status", "md", elem_id="shift-status"),
    out("summary", "md", elem_id="shift-summary"),
    # enabled once an analysis has been written to a ZIP; disabled while a new one runs
    out("download", "download", DOWNLOAD_LABEL, interactive=False, size="md", elem_id="shift-download",
        st_key="shift_download"),
    row(fields(ViewInputs, "method", "page", "page_size", "layers", "heads"), fields(ViewInputs, "scale",
                                                                                   horizontal=True),
        button("update", "Update views", elem_id="shift-update")),
    tabs(("Attribution", [out(k, "plot", PLOTS[k]) for k in list(PLOTS)[:6]]),
         ("Attention", [*[out(k, "plot", PLOTS[k]) for k in list(PLOTS)[6:]],
                        row(fields(ViewInputs, "hv_side", "hv_layer", "hv_head")),
                        out("head_view", "plot", "Head view")]),
         ("Feed-forward concepts", [out("ffn_note", "md", value=FFN_NOTE),
                                    out("ffn", "table", headers=FFN_COLUMNS, elem_id="shift-ffn",
                                        column_widths=[FFN_WIDTHS[c] for c in FFN_COLUMNS])])),
]
VIEW = list(flows.VIEW_KEYS)


def present_view(view: Any) -> dict[str, Any]:
    return dict(zip(VIEW, view.ordered()))


def present(out: tuple) -> dict[str, Any]:  # before attribution the menu keeps every method (the next step fills it)
    result, view = out
    return dict(present_view(view), state=result, method=Update(choices=view.method_choices or list(METHOD_CHOICES),
                                                                value=view.method_shown))
