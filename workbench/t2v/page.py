"""The T2V tab's page, declared once for both front ends (drawn by pages/t2v.py): the layout of its inputs
(workbench.t2v.forms) and outputs, the actions its buttons and menus run, and the presenter that maps a flow's
(state, view) onto the outputs."""

from __future__ import annotations

from typing import Any

from workbench.layout import Update, box, button, fields, group, only, out, row
from workbench.t2v import forms as F
from workbench.t2v.forms import (MODES, EvolveInputs, PrinciplesInputs, RewardWeights, RewriterInputs, T2VPage,
                                 VideoInputs)

TAB = "t2v"
LAYOUT = [
    row(fields(T2VPage, "prompt", scale=3), fields(T2VPage, "mode", scale=1, horizontal=True)),
    box("Rewriter", fields(RewriterInputs, "kind"), row(fields(RewriterInputs, "base_url", "model", "timeout")),
        open=False),
    group("evolve_group", row(fields(EvolveInputs, "rounds", "population", "top_k", "patience")),
          row(fields(EvolveInputs, "seed", "temperature", "max_new_tokens")),
          box("Preview render (empty = the profile's default)", row(fields(VideoInputs, prefix="t2v_video")),
              open=False),
          box("Reward weights (the total sits beside the metrics, never instead)",
              fields(RewardWeights, prefix="t2v_w"), open=False),
          row(button("evolve", "Evolve", variant="primary", elem_id="t2v-evolve"),
              button("cancel", "Cancel (keeps finished rounds)", only="gradio", elem_id="t2v-cancel"))),
    group("principles_group", row(fields(PrinciplesInputs)),
          button("principles", "Rewrite with principles", variant="primary", elem_id="t2v-principles"),
          visible=False),
    out("cancel_msg", "md", only="gradio"),
    out("status", "md", elem_id="t2v-status"),
    out("plot", "plot", "Every metric per round (round mean; 0 = your original prompt)"),
    box("Rounds (tree) and every candidate",
        out("tree", "md", elem_id="t2v-tree"),
        out("table", "table", headers=["id", "round", "total", "safe", "prompt"]),
        row(fields(T2VPage, "candidate", scale=3),
            button("check", "Check the principles on the prompt below", scale=1, elem_id="t2v-check")),
        row(out("orig_preview", "image", "Original prompt (same seed)", type="filepath", height=200),
            out("cand_preview", "image", "Candidate preview", type="filepath", height=200)),
        out("diff", "diff", "Word diff against your idea"),
        out("scores", "md", elem_id="t2v-scores")),
    out("principles_md", "md", elem_id="t2v-critique"),
    box("Final render and downloads",
        fields(T2VPage, "chosen"),
        row(fields(VideoInputs, into="final_video", prefix="t2v_final")),  # the previews' inputs, for the final
        row(button("final", "Render final", variant="primary", elem_id="t2v-final"),
            only("gradio", button("final_cancel", "Cancel render"))),
        out("final_status", "md", elem_id="t2v-final-status"),
        row(out("final_original", "video", "Your original idea"), out("final_chosen", "video", "Chosen prompt")),
        out("downloads", "file", "Downloads: MP4, GIF, provenance JSON", file_count="multiple")),
    box("Preference pairs for SFT / DPO",
        row(fields(T2VPage, "thresholds", "margin")),
        button("export", "Export SFT and DPO pairs", elem_id="t2v-export"),
        out("export_md", "md", elem_id="t2v-export-status"),
        out("export_files", "file", "sft.jsonl, dpo.jsonl", file_count="multiple"), open=False),
    box("Reopen a run (e.g. after closing the page mid-run)",
        row(fields(T2VPage, "folder", scale=3), button("reopen", "Reopen", scale=1)), open=False),
]
OUTPUTS = ["state", "status", "plot", "tree", "candidate", "table", "orig_preview", "cand_preview", "diff", "scores",
           "principles_md", "chosen", "final_status", "final_original", "final_chosen", "downloads", "export_md",
           "export_files", "evolve_group", "principles_group"]
ACTIONS = {"mode": F.MODE, "evolve": F.EVOLVE, "principles": F.PRINCIPLES, "candidate": F.OPEN, "check": F.CHECK,
           "final": F.RENDER_FINAL, "export": F.EXPORT, "reopen": F.REOPEN}


def present(result: tuple) -> dict[str, Any]:
    """A flow's (state, view) on the page, the same in both front ends."""
    new_state, view = result
    run = (new_state or {}).get("run_dir")
    cand = view.candidate
    return dict(state=new_state, status=view.status + (f"\n\nRun folder: `{run}`" if run else ""), plot=view.chart,
                tree=view.tree, candidate=Update(choices=view.choices, value=view.selected), table=view.table or None,
                orig_preview=cand.original_preview, cand_preview=cand.preview, diff=cand.diff, scores=cand.scores,
                principles_md=view.principles, chosen=view.chosen, final_status=view.final_status,
                final_original=view.final_original, final_chosen=view.final_chosen, downloads=view.downloads or None,
                export_md=view.export_status, export_files=view.export_files or None,
                evolve_group=Update(visible=view.mode == MODES[0]),
                principles_group=Update(visible=view.mode == MODES[1]))
