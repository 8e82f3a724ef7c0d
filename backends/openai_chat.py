"""OpenAI-compatible HTTP chat backend: a vLLM, TGI, Ollama or llama.cpp server, or a hosted API.

This is how users scale the rewriter past one machine. Options (profile or UI): `base_url`
(e.g. http://127.0.0.1:8000/v1), `api_key_env` (name of the environment variable holding the key;
keys never live in profiles), `timeout` seconds, `max_concurrency` for batched calls.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

from backends.base import Capabilities, Conversation, Generation, GenerationSettings, ModelSpec
from backends.provenance import Provenance


class RemoteModelError(RuntimeError, ConnectionError):
    """The server could not be reached or answered with an error. Also a ConnectionError, so the wiring layer
    shows its message and callers can retry remote failures without catching every RuntimeError."""


class RemoteTimeout(RemoteModelError, TimeoutError):
    """The server did not answer within the timeout."""


class OpenAIChat:
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("chat",), streaming=True)

    def __init__(self, spec: ModelSpec, base_url: str, api_key: str | None, timeout: float, max_concurrency: int):
        self.spec = spec
        self.device, self.dtype = "remote", "remote"
        self.random_weights = spec.random_weights  # whatever the server runs; a profile may say it is random
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        import httpx

        self._client = httpx.Client(timeout=timeout, headers=self._headers)

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str = "remote", dtype: str = "remote") -> "OpenAIChat":
        base_url = spec.option("base_url") or os.environ.get("WORKBENCH_OPENAI_BASE_URL")
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise ValueError(
                f"openai-chat model '{spec.model_id}' needs a base_url starting with http:// or https:// "
                f"(e.g. http://127.0.0.1:8000/v1), got {base_url!r}"
            )
        key_env = spec.option("api_key_env", "OPENAI_API_KEY")
        timeout = float(spec.option("timeout", 120))
        concurrency = int(spec.option("max_concurrency", 8))
        if not 1 <= concurrency <= 64:
            raise ValueError(f"max_concurrency must be between 1 and 64, got {concurrency}")
        return cls(spec, str(base_url), os.environ.get(str(key_env)), timeout, concurrency)

    def unload(self) -> None:
        self._client.close()

    def memory_bytes(self) -> int:
        return 0  # the weights live on the server

    @staticmethod
    def _messages(conversation: Conversation) -> list[dict[str, str]]:
        if isinstance(conversation, str):
            return [{"role": "user", "content": conversation}]
        return [dict(m) for m in conversation]

    def _payload(self, conversation: Conversation, settings: GenerationSettings, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.spec.model_id,
            "messages": self._messages(conversation),
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature if settings.do_sample else 0.0,
            "top_p": settings.top_p if settings.do_sample else 1.0,
            "n": settings.num_return_sequences,
            "seed": settings.seed,
            # OpenAI's closest control to a repetition penalty (vLLM, TGI, llama.cpp accept it too)
            "frequency_penalty": round(min(2.0, max(0.0, (settings.repetition_penalty - 1.0) * 2)), 3),
            "stream": stream,
        }
        if settings.stop:
            payload["stop"] = list(settings.stop)
        return payload

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = f"{self.base_url}/chat/completions"
        try:
            response = self._client.post(url, json=payload)
        except httpx.HTTPError as exc:
            error = RemoteTimeout if isinstance(exc, httpx.TimeoutException) else RemoteModelError
            raise error(
                f"could not reach the rewriter server at {self.base_url} ({type(exc).__name__}: {exc}); "
                f"check that it is running and the base URL is right"
            ) from exc
        if response.status_code != 200:
            raise RemoteModelError(
                f"rewriter server {self.base_url} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        return response.json()

    def provenance(self, settings: GenerationSettings) -> Provenance:
        data = dict(vars(settings))
        data["base_url"] = self.base_url
        return Provenance.of(self, seed=settings.seed, settings=data)  # device and dtype are "remote"

    def _one(self, conversation: Conversation, settings: GenerationSettings) -> list[Generation]:
        data = self._post(self._payload(conversation, settings, stream=False))
        prov = self.provenance(settings)
        prompt = json.dumps(self._messages(conversation), ensure_ascii=False)
        out = []
        for choice in data.get("choices", []):
            text = (choice.get("message") or {}).get("content") or ""
            out.append(Generation(
                text=text.strip(), prompt=prompt,
                num_tokens=int((data.get("usage") or {}).get("completion_tokens", 0)) // max(1, len(data["choices"])),
                finish_reason=choice.get("finish_reason") or "stop", provenance=prov,
            ))
        if len(out) < settings.num_return_sequences:
            # Some servers ignore `n`: ask again for the rest rather than return fewer than asked.
            rest = GenerationSettings(**{**vars(settings), "num_return_sequences": 1})
            for i in range(settings.num_return_sequences - len(out)):
                rest.seed = settings.seed + i + 1
                out.extend(self._one(conversation, rest))
        return out

    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[list[Generation]]:
        settings.check()
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(1, len(conversations)))) as pool:
            return list(pool.map(lambda c: self._one(c, settings), conversations))

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        import httpx

        settings.check()
        payload = self._payload(conversation, settings, stream=True)
        payload["n"] = 1
        try:
            with self._client.stream("POST", f"{self.base_url}/chat/completions", json=payload) as response:
                if response.status_code != 200:
                    raise RemoteModelError(
                        f"rewriter server {self.base_url} answered HTTP {response.status_code}: "
                        f"{response.read().decode(errors='replace')[:300]}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
        except httpx.HTTPError as exc:
            raise RemoteModelError(
                f"could not reach the rewriter server at {self.base_url} ({type(exc).__name__}: {exc})"
            ) from exc
