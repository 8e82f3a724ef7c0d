"""Scripted designers (assets/promptor/designers.yaml) run through the same `PromptorService` both front ends call,
on a profile (offline: rules + MiniLM, the agent's own sentences, SmolLM2 as the test-round target) and on a
"capable" agent: `capable_fake.CapableFakeChat` behind `workbench.openai_server`, reached over HTTP as an
OpenAI-compatible server. `python -m workbench.promptor scripts` prints the table."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.promptor import speech

DESIGNERS_FILE = Path(__file__).resolve().parents[2] / "assets" / "promptor" / "designers.yaml"


def load_designers(path: str | Path = DESIGNERS_FILE) -> list[dict[str, Any]]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        items = (yaml.safe_load(fh) or {}).get("designers") or []
    for number, item in enumerate(items, 1):
        expect = item.get("expect") or {}
        if not item.get("name") or not item.get("turns") or not expect.get("placeholders") \
                or not isinstance(expect.get("max_turns"), int):
            raise ValueError(f"{path}: designer {number} needs name, turns and expect (placeholders, max_turns)")
        item.setdefault("tuning", True)
        expect.setdefault("constraints", [])
    return items


@dataclass
class ScriptResult:
    name: str
    backend: str
    tuning: bool
    reached_final: bool
    turns: int
    max_turns: int
    placeholders_right: bool
    constraints_kept: str  # "2/2"
    seconds_per_turn: float
    replaced: int  # model replies the check replaced by the agent's own sentence
    fallbacks: int  # messages the local interpreter read because the LLM's extraction was invalid
    model_text_failing: int  # replies shown with model text that fails the check (must be 0)
    final: str = ""
    placeholders: list[str] = field(default_factory=list)
    state: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        kept, total = self.constraints_kept.split("/")
        return self.reached_final and self.turns <= self.max_turns and self.placeholders_right and kept == total \
            and self.model_text_failing == 0


def shown_failures(state: dict[str, Any]) -> int:
    """Agent replies whose shown model text fails the reply check."""
    bad = 0
    for i, msg in enumerate(state["messages"]):
        if msg["role"] != "agent" or not (msg.get("model_text") or "").strip():
            continue
        before = {**state, "messages": state["messages"][:i]}
        step = msg.get("step_text") or ((msg.get("appendix") or "") + "\n" + "\n".join(
            m["content"] for m in state["messages"][max(0, i - 1):i] if m["role"] == "designer"))
        conversation = speech.conversation_text(before) + "\n" + state.get("parent_prompt", "")
        if speech.check_reply(msg["model_text"], step, conversation) is not None:
            bad += 1
    return bad


def run_script(svc: Any, script: dict[str, Any], profile: str, backend: str, **kwargs: Any) -> ScriptResult:
    state, view = svc.new()
    start = time.perf_counter()
    turns = 0
    for text in script["turns"]:
        for state, view in svc.send(state, text, profile, **kwargs):
            pass
        turns += 1
        if state["stage"] == "final" and text is script["turns"][-1]:
            break
    seconds = (time.perf_counter() - start) / max(turns, 1)
    expect = script["expect"]
    final = (state.get("final") or {}).get("template", "")
    names = (state.get("final") or {}).get("placeholders", [])
    kept = [c for c in expect.get("constraints", []) if c.lower() in final.lower()]
    designer_msgs = [m for m in state["messages"] if m["role"] == "designer"]
    return ScriptResult(
        name=script["name"], backend=backend, tuning=bool(script.get("tuning", True)),
        reached_final=state["stage"] == "final", turns=turns, max_turns=expect["max_turns"],
        placeholders_right=sorted(names) == sorted(expect["placeholders"]),
        constraints_kept=f"{len(kept)}/{len(expect.get('constraints', []))}", seconds_per_turn=seconds,
        replaced=sum(1 for m in state["messages"] if m.get("replaced")),
        fallbacks=sum(1 for m in designer_msgs if "(fallback)" in (m.get("interpretation") or {}).get("source", "")),
        model_text_failing=shown_failures(state), final=final, placeholders=names, state=state)


def capable_server(ctx: Any):
    """The capable stand-in served over the OpenAI-compatible API (a manager of its own registry)."""
    from workbench.models import ModelManager, registry_with
    from workbench.openai_server import serve
    from workbench.promptor.capable_fake import BACKEND_NAME, TARGET
    from workbench.types import ModelSpec

    registry = registry_with({BACKEND_NAME: TARGET})
    manager = ModelManager(budget_bytes=1024**3, device="cpu", registry=registry)
    spec = ModelSpec(role="chat", backend=BACKEND_NAME, model_id="capable-fake", random_weights=True)
    return serve(manager, spec, model_name="capable-fake")


def run_all(ctx: Any, profile: str = "offline", capable: bool = True, names: list[str] | None = None,
            target_profile_chat: bool = True) -> list[ScriptResult]:
    """Every script on `profile`, then (capable=True) with the capable stand-in as the agent over HTTP."""
    from workbench.common.choice import ChatChoice
    from workbench.promptor.flows import PromptorService, PromptorSettings
    from workbench.promptor.store import SessionStore

    scripts = [s for s in load_designers() if not names or s["name"] in names]
    folder = tempfile.mkdtemp(prefix="promptor-scripts-")
    svc = PromptorService(ctx, SessionStore(Path(folder) / "sessions"))
    settings = PromptorSettings(target_tokens=24)  # test rounds: short outputs, 2 CPU cores
    results = [run_script(svc, s, profile, profile, settings=settings) for s in scripts]
    if capable:
        handle = capable_server(ctx)
        try:
            choice = ChatChoice(kind="openai", base_url=handle.url, model="capable-fake")
            results += [run_script(svc, s, profile, "capable (OpenAI API, scripted)", agent_choice=choice,
                                   settings=settings) for s in scripts]
        finally:
            handle.close()
    return results


def table(results: list[ScriptResult]) -> str:
    lines = ["| script | kept out of tuning | agent | reached final | turns (max) | placeholders right | constraints "
             "kept | s per turn | replies replaced | LLM fallbacks | shown model text failing the check |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {'yes' if not r.tuning else 'no'} | {r.backend} | "
                     f"{'yes' if r.reached_final else 'NO'} | {r.turns} ({r.max_turns}) | "
                     f"{'yes' if r.placeholders_right else 'NO'} | {r.constraints_kept} | {r.seconds_per_turn:.2f} | "
                     f"{r.replaced} | {r.fallbacks} | {r.model_text_failing} |")
    return "\n".join(lines)
