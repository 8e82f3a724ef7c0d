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


def test_refine_through_openai_compatible_server(fake_ctx, server, make_spec):
    """The same settings through the server give the same candidates as the tiny model called in-process."""
    from workbench.models import ManagedModel
    from workbench.common.refiner import refine_candidates

    # the guard off: the tiny random model writes no English word, so the invented-word guard would leave nothing
    # on either path (this test is about the transport, not the guard)
    settings = service.RefineSettings(n=2, max_new_tokens=10, few_shot=1, guard=False)
    choice = service.RewriterChoice(kind="openai", base_url=server.url, model="tiny-rewriter")
    result = service.refine(fake_ctx, "fake", "a cat on a sofa", choice, settings)
    local = refine_candidates(ManagedModel(fake_ctx.manager, make_spec("chat", "transformers-lm", "tiny:causal-lm")),
                              ManagedModel(fake_ctx.manager, fake_ctx.profile("fake").spec("embeddings")),
                              "a cat on a sofa", settings,
                              window=service.prompt_window(fake_ctx, "fake"))  # the budget the tab derives
    assert len(result.candidates) == 2
    assert [c.text for c in result.candidates] == [c.text for c in local.candidates]
    prov = result.candidates[0].provenance
    assert prov.backend == "openai-chat" and prov.settings["base_url"] == server.url
    assert prov.model_id == "tiny-rewriter"


def test_server_streams_exactly_the_non_streamed_text_and_lists_models(server):
    from backends.openai_chat import OpenAIChat

    client = OpenAIChat.load(ModelSpec(role="chat", backend="openai-chat", model_id="tiny-rewriter",
                                       options=(("base_url", server.url),)))
    greedy = GenerationSettings(max_new_tokens=6, do_sample=False)
    for content in ("a cat", "a lighthouse at dusk, oil painting"):
        conv = [{"role": "user", "content": content}]
        pieces = list(client.stream(conv, greedy))
        full = client.generate([conv], greedy)[0][0]
        assert len(pieces) >= 2  # streamed in pieces, not one block
        assert "".join(pieces) == full.text and full.text  # exactly, not after strip()
    client.unload()
    models = httpx.get(server.url + "/models").json()
    assert models["data"][0]["id"] == "tiny-rewriter"
    bad = httpx.post(server.url + "/chat/completions", json={"messages": []})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "'messages' must be a non-empty list of {role, content} objects"


@pytest.mark.parametrize("pieces, joined", [
    ([" a", " cat", " ", " on", "\n"], "a cat  on"),
    (["\n\n", "  ", "x"], "x"),
    (["a ", "", " b  ", "\n"], "a  b"),
    ([" ", "\n"], ""),
])
def test_trim_stream_joins_to_the_stripped_text(pieces, joined):
    from workbench.openai_server import trim_stream

    assert "".join(trim_stream(iter(pieces))) == joined == "".join(pieces).strip()
