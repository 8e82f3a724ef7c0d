"""Exports: the final template as text and as JSON (with its placeholders, fields, drafts and the last round's
metrics), and the full transcript as JSONL (every message, edit, jump, test round and blind mark, one per line,
then the preference data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.types import package_versions
from workbench.promptor import agent, template as tpl


def _chosen(state: dict) -> tuple[dict[str, Any], str]:
    if state.get("final"):
        return state["final"], "final"
    draft = agent.current_draft(state)
    if draft is None:
        raise ValueError("there is nothing to export yet: answer the questions until the first draft appears")
    return {"template": draft["template"], "placeholders": tpl.parse_placeholders(draft["template"]),
            "version": draft["version"]}, "draft"


def template_text(state: dict) -> str:
    return _chosen(state)[0]["template"] + "\n"


def template_json(state: dict) -> dict[str, Any]:
    chosen, status = _chosen(state)
    last = state["rounds"][-1] if state["rounds"] else None
    return {
        "format": "promptor-template/1",
        "status": status,  # "final", or "draft" when exported before the final step
        "template": chosen["template"],
        "placeholders": chosen["placeholders"],
        "placeholder_syntax": "{name}; literal braces are doubled: {{ }}",
        "version": chosen["version"],
        "starter": state.get("starter"),
        "fields": state["fields"],
        "drafts": state["drafts"],
        "examples": state["examples"],
        "last_round": None if last is None else {k: last[k] for k in ("round", "versions", "metrics", "target",
                                                                      "metric_models")},
        "preferences": state["preferences"],
        "parent_prompt": state["parent_prompt"],
        "versions": package_versions(),
    }


def transcript_jsonl(state: dict) -> str:
    lines = []
    for index, msg in enumerate(state["messages"]):
        record = {"type": "message", "index": index, **msg}
        if msg["role"] == "agent":
            record["content"] = agent.display(msg)
        lines.append(record)
    for rnd in state["rounds"]:
        lines.append({"type": "test_round", **rnd})
    for pref in state["preferences"]:
        lines.append({"type": "preference", **pref})
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)


def preferences_jsonl(state: dict) -> str:
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in state["preferences"])


def write_files(state: dict, folder: str | Path) -> dict[str, Path]:
    """template.txt, template.json, transcript.jsonl in `folder` (for the download buttons)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"promptor-{state['code']}"
    paths = {"text": folder / f"{stem}-template.txt", "json": folder / f"{stem}-template.json",
             "transcript": folder / f"{stem}-transcript.jsonl"}
    paths["text"].write_text(template_text(state), encoding="utf-8")
    paths["json"].write_text(json.dumps(template_json(state), ensure_ascii=False, indent=2), encoding="utf-8")
    paths["transcript"].write_text(transcript_jsonl(state), encoding="utf-8")
    return paths
