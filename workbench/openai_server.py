"""A small OpenAI-compatible chat server over any local ChatBackend: POST /v1/chat/completions (plain JSON or
SSE streaming with `"stream": true`) and GET /v1/models. It lets other tools (or another workbench) use a
model this machine loads, and lets tests drive the OpenAI-compatible rewriter path with no internet.

    python -m workbench.openai_server --profile offline --role chat --port 8000

Binds 127.0.0.1 by default; there is no authentication, so do not expose it on a public address.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from backends.base import GenerationSettings, ModelSpec

MAX_BODY_BYTES = 1_000_000  # a chat request is a few KB; refuse anything absurd


def _settings(body: dict[str, Any]) -> GenerationSettings:
    temperature = float(body.get("temperature", 0.7))
    stop = body.get("stop") or ()
    return GenerationSettings(
        max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 128),
        do_sample=temperature > 0, temperature=temperature if temperature > 0 else 0.7,
        top_p=float(body.get("top_p", 1.0)), num_return_sequences=int(body.get("n", 1)),
        seed=int(body.get("seed") or 0), stop=tuple([stop] if isinstance(stop, str) else stop),
        # our OpenAI client sends repetition_penalty r as frequency_penalty 2(r - 1); read it back the same way
        repetition_penalty=round(1.0 + min(2.0, max(0.0, float(body.get("frequency_penalty") or 0.0))) / 2, 3),
    ).check()


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list of {role, content} objects")
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ValueError("each message needs a role of system, user or assistant")
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append({"role": m["role"], "content": str(content or "")})
    return out


def trim_stream(pieces: Iterator[str]) -> Iterator[str]:
    """The pieces of a streamed reply without leading or trailing whitespace, so that the streamed text joins to
    exactly the non-streamed `content` (backends strip their generated text). Trailing whitespace is held back
    until more text follows it."""
    started, held = False, ""
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        text = held + piece
        body = text.rstrip()
        held = text[len(body):]
        if body:
            yield body


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        if self.server.verbose:
            super().log_message(format, *args)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._json(status, {"error": {"message": message, "type": kind}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model",
                                                          "owned_by": "prompt-workbench"}]})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as the next request
            self._error(400, f"request body must be between 1 and {MAX_BODY_BYTES} bytes")
            return
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            messages = _messages(body)
            settings = _settings(body)
            if body.get("stream") and settings.num_return_sequences != 1:
                raise ValueError("streaming supports n=1 only")
        except (ValueError, TypeError) as exc:
            self._error(400, str(exc))
            return
        try:
            if body.get("stream"):
                self._stream(messages, settings)
            else:
                self._complete(messages, settings)
        except Exception as exc:  # the model failed: tell the client, keep serving
            if not self.wfile.closed:
                try:
                    self._error(500, f"{type(exc).__name__}: {exc}", "server_error")
                except OSError:
                    pass

    def _complete(self, messages: list[dict[str, str]], settings: GenerationSettings) -> None:
        gens = self.server.manager.run(self.server.spec, lambda b: b.generate([messages], settings))[0]
        choices = [{"index": i, "message": {"role": "assistant", "content": g.text},
                    "finish_reason": g.finish_reason} for i, g in enumerate(gens)]
        tokens = sum(g.num_tokens for g in gens)
        self._json(200, {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                         "created": int(time.time()), "model": self.server.model_name, "choices": choices,
                         "usage": {"completion_tokens": tokens}})

    def _stream(self, messages: list[dict[str, str]], settings: GenerationSettings) -> None:
        if settings.num_return_sequences != 1:
            raise ValueError("streaming supports n=1 only")
        ident = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": self.server.model_name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        with self.server.manager.use(self.server.spec) as backend:
            pieces = trim_stream(backend.stream(messages, settings))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(chunk({"role": "assistant"}))
            for piece in pieces:
                self.wfile.write(chunk({"content": piece}))
                self.wfile.flush()
        self.wfile.write(chunk({}, "stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], manager: Any, spec: ModelSpec, model_name: str, verbose: bool):
        super().__init__(address, _Handler)
        self.manager, self.spec, self.model_name, self.verbose = manager, spec, model_name, verbose


@dataclass
class ServerHandle:
    server: _Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(manager: Any, spec: ModelSpec, host: str = "127.0.0.1", port: int = 0, model_name: str | None = None,
          verbose: bool = False) -> ServerHandle:
    """Start serving `spec` (through `manager`) in a background thread; port 0 picks a free port."""
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    server = _Server((host, int(port)), manager, spec, model_name or spec.model_id, verbose)
    thread = threading.Thread(target=server.serve_forever, name="openai-server", daemon=True)
    thread.start()
    return ServerHandle(server, thread)


def main(argv: list[str] | None = None) -> None:
    from workbench.context import build_context

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--role", default="chat", help="which role of the profile to serve (default chat)")
    parser.add_argument("--adapter", default=None, help="a peft adapter folder to load on top of the model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model-name", default=None, help="the name clients send as 'model' (default: model id)")
    args = parser.parse_args(argv)
    ctx = build_context(profile=args.profile)
    spec = ctx.profile(None).spec(args.role)
    if args.adapter:
        import dataclasses

        spec = dataclasses.replace(spec, options=tuple(sorted({**dict(spec.options), "adapter": args.adapter}.items())))
    ctx.manager.get(spec)  # load before accepting requests; a load failure exits with its message
    handle = serve(ctx.manager, spec, args.host, args.port, args.model_name, verbose=True)
    print(f"serving {spec.model_id} at {handle.url} (Ctrl+C to stop)", flush=True)
    try:
        handle.thread.join()
    except KeyboardInterrupt:
        handle.close()


if __name__ == "__main__":
    main()
