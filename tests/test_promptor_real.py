"""Promptor end to end on real transports: (1) the real packaged SmolLM2-135M-Instruct (offline profile's chat
role) as the agent, from the first message to a final template; (2) an OpenAI-compatible server
(workbench.openai_server over a tiny causal LM) as both the agent and the test-round target."""

from __future__ import annotations

import pytest

from workbench.common.choice import ChatChoice
from workbench.promptor.flows import PromptorService, PromptorSettings
from workbench.promptor.store import SessionStore


def drive(svc, profile_name, messages, **kwargs):
    state, view = svc.new()
    for text in messages:
        for state, view in svc.send(state, text, profile_name, **kwargs):
            pass
    return state, view


@pytest.mark.real_models
@pytest.mark.slow
def test_whole_conversation_with_real_smollm2(real_manager, profiles, tmp_path):
    from workbench.context import AppContext

    ctx = AppContext(manager=real_manager, profiles=profiles, default_profile="offline")
    svc = PromptorService(ctx, SessionStore(tmp_path))
    settings = PromptorSettings(reply_tokens=12, polish_tokens=80, temperature=0.0, history=2)  # 2 shared cores
    state, view = drive(svc, "offline", ["personalised reply suggestion", "ok", "ok", "ok",
                                         "one short sentence; no emojis", "ok", "ok",
                                         "keep replies under ten words", "ok", "final"], settings=settings)
    assert view.stage == "final", view.chat[-1]["content"]
    assert state["final"]["placeholders"] == ["user_history", "user_text"] or \
        sorted(state["final"]["placeholders"]) == ["user_history", "user_text"]
    assert "{user_text}" in view.final and "{user_history}" in view.final
    assert "under ten words" in view.final  # the designer's feedback is a rule of the final template
    spoken = [m for m in state["messages"] if m["role"] == "agent" and (m.get("model_text") or m.get("raw_model_text"))]
    assert len(spoken) >= 5  # the real model phrased the replies
    assert all(m.get("status") == "complete" for m in state["messages"] if m["role"] == "agent")
    assert {d["source"] for d in state["drafts"]} <= {"assembled", "polished", "refined"}


@pytest.fixture()
def server(fake_ctx, make_spec):
    from workbench.openai_server import serve

    handle = serve(fake_ctx.manager, make_spec("chat", "transformers-lm", "tiny:causal-lm"), model_name="tiny-promptor")
    yield handle
    handle.close()


def test_whole_conversation_through_an_openai_compatible_server(fake_ctx, server, tmp_path):
    svc = PromptorService(fake_ctx, SessionStore(tmp_path))
    remote = ChatChoice(kind="openai", base_url=server.url, model="tiny-promptor")
    settings = PromptorSettings(reply_tokens=8, polish_tokens=24, target_tokens=8)
    state, view = drive(svc, "fake", ["sentence completion"] + ["ok"] * 6 + ["shorter please", "run", "final"],
                        agent_choice=remote, target_choice=remote, settings=settings)
    assert view.stage == "final" and "{user_text}" in view.final
    rnd = state["rounds"][-1]
    assert rnd["versions"] == [1, 2] and rnd["target"] == f"openai-chat:tiny-promptor at {server.url}"
    assert rnd["provenance"]["backend"] == "openai-chat" and rnd["provenance"]["settings"]["base_url"] == server.url
    assert len(rnd["outputs"]["2"]) == 3 and all(len(v["perplexity"]) == 3 for v in rnd["metrics"].values())
    assert any(m.get("model_text") for m in state["messages"] if m["role"] == "agent")  # streamed over SSE


def test_unreachable_server_keeps_the_conversation_and_offers_retry(fake_ctx, server, tmp_path):
    from tests.app_process import free_port

    svc = PromptorService(fake_ctx, SessionStore(tmp_path))
    dead = ChatChoice(kind="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="nobody", timeout=2)
    state, view = drive(svc, "fake", ["complete sentences in a notes app"], agent_choice=dead)
    assert view.can_retry and state["messages"][-1]["status"] == "interrupted"
    assert "could not reach" in state["messages"][-1]["error"] and "Step 1/6" in view.chat[-1]["content"]
    live = ChatChoice(kind="openai", base_url=server.url, model="tiny-promptor")
    for state, view in svc.retry(state, "fake", agent_choice=live, settings=PromptorSettings(reply_tokens=6)):
        pass
    assert not view.can_retry and state["messages"][-1]["status"] == "complete"
