"""The OpenAI-compatible rewriter path for real, with no internet: workbench.openai_server serves a local
model on 127.0.0.1 and the refiner talks to it through the openai-chat backend (plain and SSE streaming)."""

from __future__ import annotations

import httpx
import pytest

from backends.base import GenerationSettings, ModelSpec
from workbench.openai_server import serve
from workbench.t2i import service


@pytest.fixture()
def server(fake_ctx, make_spec):
    handle = serve(fake_ctx.manager, make_spec("chat", "transformers-lm", "tiny:causal-lm"), model_name="tiny-rewriter")
    yield handle
    handle.close()


def test_refine_through_openai_compatible_server(fake_ctx, server):
    choice = service.RewriterChoice(kind="openai", base_url=server.url, model="tiny-rewriter")
    result = service.refine(fake_ctx, "fake", "a cat on a sofa", choice,
                            service.RefineSettings(n=2, max_new_tokens=10, few_shot=1))
    assert 1 <= len(result.candidates) <= 2
    prov = result.candidates[0].provenance
    assert prov.backend == "openai-chat" and prov.settings["base_url"] == server.url


def test_server_streams_sse_and_lists_models(server):
    from backends.openai_chat import OpenAIChat

    client = OpenAIChat.load(ModelSpec(role="chat", backend="openai-chat", model_id="tiny-rewriter",
                                       options=(("base_url", server.url),)))
    pieces = list(client.stream([{"role": "user", "content": "a cat"}], GenerationSettings(max_new_tokens=6, seed=1)))
    assert pieces and all(isinstance(p, str) for p in pieces)
    full = client.generate([[{"role": "user", "content": "a cat"}]],
                           GenerationSettings(max_new_tokens=6, seed=1, do_sample=False))[0][0]
    assert full.text.strip()
    client.unload()
    models = httpx.get(server.url + "/models").json()
    assert models["data"][0]["id"] == "tiny-rewriter"
    bad = httpx.post(server.url + "/chat/completions", json={"messages": []})
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
