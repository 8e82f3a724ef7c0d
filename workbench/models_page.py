"""The Models tab's page, declared once for both front ends (drawn by pages/models.py): the role table, the
load and unload actions (workbench.model_table) and their presenter."""

from __future__ import annotations

from typing import Any

from workbench import model_table as mt
from workbench.layout import Update, button, fields, out, row

TAB = "models"
INTRO = ("Each role is filled by one model of the chosen profile. Models load on first use and are shared by every "
         "user and tab. **Random weights** means the model was built in code because no real weights are available "
         "here: its outputs are not meaningful.")
# fixed widths: wordy columns wrap, so the state column stays on screen; short ones never break a word ("devi/ce")
WIDTHS = {"role": "120px", "model id": "180px", "adapter": "140px", "weights": "150px", "state": "190px",
          "backend": "150px", "device": "80px", "dtype": "90px", "load s": "70px", "memory MiB": "90px",
          "RSS delta MiB": "90px", "purpose": "200px", "message": "200px"}
LAYOUT = [
    out("summary", "md", elem_id="models-summary"),
    out("table", "table", headers=mt.COLUMNS, elem_id="models-table", column_widths=[WIDTHS[c] for c in mt.COLUMNS]),
    row(fields(mt.ModelsPage, "role"), button("load", "Load", variant="primary", elem_id="models-load"),
        button("unload", "Unload", elem_id="models-unload"), button("refresh", "Refresh", elem_id="models-refresh",
                                                                     only="gradio")),
    out("message", "md", elem_id="models-message"),
]
OUTPUTS = ["table", "summary", "message"]


def present(result: tuple) -> dict[str, Any]:
    return dict(zip(OUTPUTS, result))


def roles(ctx: Any, profile_name: str | None) -> Update:
    names = list(ctx.profile(profile_name).roles)
    return Update(choices=names, value=names[0])
