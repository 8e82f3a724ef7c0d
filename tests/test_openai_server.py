"""workbench.openai_server's failure answers: unknown routes, bodies too large or malformed, streaming with n > 1,
and a model that raises (500, and the server keeps serving the next request)."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from backends.base import ModelSpec
from backends.registry import Registry
from workbench.models import ModelManager
from workbench.openai_server import MAX_BODY_BYTES, serve


class ExplodingChat:
    """A chat backend that raises on the word 'explode' and answers 'fine' otherwise."""

    random_weights = True

    def __init__(self, spec):
        self.spec, self.device, self.dtype = spec, "cpu", "float32"

    @classmethod
    def load(cls, spec, *, device, dtype):
        return cls(spec)

    def unload(self):
        pass

    def memory_bytes(self):
        return 1

    def generate(self, conversations, settings):
        from backends.base import Generation
        from backends.provenance import Provenance

        if any("explode" in m["content"] for conv in conversations for m in conv):
            raise RuntimeError("the model exploded")
        return [[Generation(text="fine", prompt="", num_tokens=1, finish_reason="stop",
                            provenance=Provenance.of(self, seed=settings.seed, settings={}))]
                for _ in conversations]


@pytest.fixture()
def server():
    registry = Registry("backend")
    registry.register("exploding", f"{__name__}:ExplodingChat")
    manager = ModelManager(budget_bytes=2**30, device="cpu", registry=registry)
    handle = serve(manager, ModelSpec.from_dict("chat", {"backend": "exploding", "model": "boom"}), model_name="boom")
    yield handle
    handle.close()
    manager.unload_all()


def chat(server, content: str, **extra):
    return httpx.post(server.url + "/chat/completions", timeout=30,
                      json={"messages": [{"role": "user", "content": content}], **extra})


def test_unknown_routes_answer_404(server):
    for response in (httpx.get(server.url + "/engines"), httpx.post(server.url + "/completions", json={})):
        assert response.status_code == 404
        assert response.json()["error"] == {"message": f"no route /v1/{response.url.path.rsplit('/', 1)[1]}",
                                            "type": "invalid_request_error"}


def test_oversize_and_malformed_bodies_answer_400(server):
    host, port = server.server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as sock:  # announce a body far over the limit
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n{{".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["error"]["message"] == f"request body must be between 1 and {MAX_BODY_BYTES} bytes"
    bad_json = httpx.post(server.url + "/chat/completions", content=b"{not json", timeout=30)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "invalid_request_error"
    not_object = httpx.post(server.url + "/chat/completions", json=["a cat"], timeout=30)
    assert not_object.status_code == 400
    assert not_object.json()["error"]["message"] == "the request body must be a JSON object"
    bad_n = chat(server, "a cat", n=0)
    assert bad_n.status_code == 400 and "num_return_sequences must be between 1 and 32" in bad_n.json()["error"]["message"]


def test_streaming_with_several_choices_is_refused_before_streaming(server):
    response = chat(server, "a cat", stream=True, n=2)
    assert response.status_code == 400 and response.headers["content-type"] == "application/json"
    assert response.json()["error"] == {"message": "streaming supports n=1 only", "type": "invalid_request_error"}


def test_a_failing_model_answers_500_and_the_server_keeps_serving(server):
    failed = chat(server, "please explode")
    assert failed.status_code == 500
    assert failed.json()["error"] == {"message": "RuntimeError: the model exploded", "type": "server_error"}
    results = []

    def ask():  # several clients at once after the failure: every one is answered
        results.append(chat(server, "a cat"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 4
    assert all(r.json()["choices"][0]["message"]["content"] == "fine" for r in results)
