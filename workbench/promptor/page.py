"""The Promptor tab's page, declared once for both front ends (drawn by pages/promptor.py, which adds the chat box
and its streaming, per front end): the layout of its inputs (workbench.promptor.forms) and outputs, the actions its
buttons run, and the presenters."""

from __future__ import annotations

from typing import Any

from workbench.forms import widgets
from workbench.layout import Update, box, button, col, fields, only, out, row
from workbench.promptor import forms as F
from workbench.promptor.forms import BackendInputs, LearnedFields, PromptorPage as P, blind_markdown, stage_markdown

TAB = "promptor"
BACKEND_ROWS = (("agent_kind", "agent_url", "agent_model"), ("target_kind", "target_url", "target_model"),
                ("polish", "temperature", "seed"))

LAYOUT = [
    row(col(out("chat", "chat", "Promptor", height=520, elem_id="promptor-chat", sanitize_html=True),
            only("gradio", row(fields(P, "message", scale=5),
                               col(button("send", "Send", variant="primary", elem_id="promptor-send"),
                                   button("retry", "Retry", elem_id="promptor-retry"), scale=1, min_width=120))),
            box("Chat backends and parent prompt", *[row(fields(BackendInputs, *names)) for names in BACKEND_ROWS],
                fields(P, "parent_prompt"), button("parent_btn", "Save parent prompt"), open=False), scale=3),
        col(out("stage", "md", elem_id="promptor-stage"),
            box("What Promptor has learned (editable)", fields(LearnedFields, prefix="promptor_field"),
                button("fields_btn", "Save fields")),
            fields(P, "draft"), button("draft_btn", "Save draft as a new version"), out("checks", "md"),
            row(fields(P, "jump_to"), button("jump_btn", "Jump back")),
            button("final_btn", "Make the current draft final", variant="primary"),
            button("export_btn", "Export template (txt, json) and transcript (jsonl)"),
            out("files", "file", "Downloads", file_count="multiple", elem_id="promptor-files"),
            box("Sessions", fields(P, "code"), button("resume_btn", "Resume"), fields(P, "starter"),
                button("new_btn", "New session"), open=False), scale=2)),
    box("Test rounds", out("header", "md"), fields(P, "examples"),
        row(button("examples_btn", "Save examples"), fields(P, "versions", scale=2),
            button("test_round_btn", "Run test round", variant="primary", elem_id="promptor-run")),
        out("rounds", "md", elem_id="promptor-rounds")),
    box("Blinded comparison", row(fields(P, "blind_seed"), button("blind_start_btn", "Start blinded comparison of "
                                                                  "the last round")),
        out("blind", "md", elem_id="promptor-blind"),
        row(fields(P, "example", "best", "worst"), button("blind_mark_btn", "Record"))),
]
OUTPUTS = ["state", "saved_code", "chat", "stage", *widgets(LearnedFields), "draft", "checks", "header", "examples",
           "rounds", "blind", "retry", "parent_prompt"]
BUTTONS = ("PARENT", "FIELDS", "DRAFT", "JUMP", "FINAL", "RESUME", "NEW", "EXAMPLES", "TEST_ROUND", "BLIND_START",
           "BLIND_MARK")
ACTIONS: dict[str, Any] = {f"{n.lower()}_btn": getattr(F, n) for n in BUTTONS}


def present(result: tuple) -> dict[str, Any]:
    state, view = result
    return dict({f: view.fields.get(f, "") for f in widgets(LearnedFields)}, state=state, saved_code=state["code"],
                chat=view.chat, stage=stage_markdown(view), draft=view.draft, checks=view.draft_checks,
                header=f"Columns: `{view.examples_header}`", examples=view.examples, rounds=view.rounds,
                blind=blind_markdown(view), retry=Update(interactive=view.can_retry), parent_prompt=view.parent_prompt)


def present_files(paths: dict[str, str]) -> dict[str, Any]:
    return {"files": list(paths.values())}
