"""The app's static routes served once: what makes many arrivals at once cheap (pages/_serving.py has the
Gradio side: the lean Blocks class and the shared session configs).

Why arrivals timed out: a gradio_client session (and a browser page load) starts with GET /config and GET
/gradio_api/info. Gradio rebuilds both on every request: a deep copy of the whole config plus a root-URL rewrite
for /config, a fresh JSON encoding of the (cached) API description for /info, and both again inlined into the
HTML page. For the workbench that was 0.6 MB + 0.66 MB of Python-level work per arrival, serialised by the GIL,
so 50 arrivals queued behind each other past the client's default 5 s read timeout (bench/bench_arrivals.py).
`default_concurrency_limit` and `max_threads` do not touch these routes (they are not queued events).

- `lean_config` drops from a config what no client reads: a component's `api_info_as_input` /
  `api_info_as_output` where they equal its `api_info` (Gradio falls back to `api_info` for both) and its
  `example_inputs` (the API page takes them from the component, not the config).
- `cache_static_routes` answers GET of a mount's page, /config and /gradio_api/info from the bytes of the first
  answer, keyed by everything those answers depend on (path, query, host and forwarded headers, cookies,
  authorization). The config of a Blocks does not change after launch (no dev-mode reload here). Plain ASGI:
  no front-end import.
"""

from __future__ import annotations

from typing import Any

CACHED_SUFFIXES = ("/config", "/gradio_api/info")
KEY_HEADERS = (b"host", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-prefix", b"x-forwarded-port",
               b"cookie", b"authorization", b"accept-encoding")
MAX_CACHED = 64  # distinct keys (hosts x paths); a cache that could grow without bound is a memory leak


def lean_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the per-component API copies that equal `api_info` and without `example_inputs`."""
    for component in config.get("components", []):
        info = component.get("api_info")
        for key in ("api_info_as_input", "api_info_as_output"):
            if key in component and component[key] == info:
                del component[key]
        component.pop("example_inputs", None)
    return config


def _cacheable(scope: dict[str, Any], mounts: tuple[str, ...]) -> bool:
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path = scope["path"]
    for mount in mounts:
        prefix = mount.rstrip("/")
        if path in (prefix + "/", prefix or "/") or any(path == prefix + s for s in CACHED_SUFFIXES):
            return True
    return False


class StaticRouteCache:
    """ASGI middleware: the first 200 answer of a cacheable GET is kept (status, headers, body) and replayed."""

    def __init__(self, app: Any, mounts: tuple[str, ...]):
        self.app, self.mounts = app, mounts
        self.cache: dict[tuple, tuple[int, list, bytes]] = {}
        self.hits = 0

    async def __call__(self, scope, receive, send):
        if not _cacheable(scope, self.mounts):
            return await self.app(scope, receive, send)
        headers = dict((k.lower(), v) for k, v in scope.get("headers", []))
        key = (scope["path"], scope.get("query_string", b""), tuple(headers.get(h, b"") for h in KEY_HEADERS))
        hit = self.cache.get(key)
        if hit is not None:
            self.hits += 1
            status, out_headers, body = hit
            await send({"type": "http.response.start", "status": status, "headers": out_headers})
            await send({"type": "http.response.body", "body": body})
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        set_cookie = any(k.lower() == b"set-cookie" for k, _ in start.get("headers", []))
        if start.get("status") == 200 and not set_cookie and len(self.cache) < MAX_CACHED:
            self.cache[key] = (200, list(start.get("headers", [])), b"".join(chunks))


def cache_static_routes(app: Any, mounts) -> StaticRouteCache:
    """Wrap a FastAPI/Starlette app (the one every Blocks is mounted on) in the cache."""
    return StaticRouteCache(app, tuple(mounts))
