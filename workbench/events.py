"""The event hook: one record per user action, sent to every subscriber registered on the AppContext.

The wiring layer (`workbench.actions`) emits an `Event` for every handler it runs, in both front ends:
the action's name, the tab, the per-user session id, the inputs, the outputs (or the error), timings and
the provenance found in the outputs. A study recorder subscribes here and sees every tab, present and
future, without touching a page. Subscribers must be quick and must not raise; one that raises is logged
and skipped, never allowed to break the user's action.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

MAX_TEXT = 4000  # characters of one string kept in an event (a pasted essay is summarised, not dropped)
MAX_ITEMS = 64  # items of one list kept in an event


@dataclass
class Event:
    action: str  # "t2i_refine", "shift_analyse", ...
    tab: str  # the page module's name: "t2i", "shift", ...
    session_id: str  # Gradio's session hash or the Streamlit session's id: one per browser tab
    frontend: str  # "gradio" | "streamlit" | "python"
    inputs: dict[str, Any]
    outputs: Any = None  # JSON-safe summary of what the user was shown
    error: str | None = None  # the message the user saw
    error_kind: str | None = None  # "input" (bad input, a known failure) | "cancelled" | "internal"
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    provenance: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Register `fn`; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def emit(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception:  # a broken subscriber must never break the user's action
                log.exception("event subscriber %r failed on %s", fn, event.action)


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe summary of a handler's input or output: images and arrays become their shapes, figures
    their titles, long strings and lists are cut (with a note of how much was cut)."""
    if depth > 6:
        return f"<{type(value).__name__}>"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + f"… [{len(value) - MAX_TEXT} more characters]"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    to_dict = getattr(type(value), "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        try:
            return jsonable(value.to_dict(), depth + 1)
        except Exception:
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        out = [jsonable(v, depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out.append(f"… [{len(items) - MAX_ITEMS} more items]")
        return out
    kind = type(value).__name__
    module = type(value).__module__
    if module.startswith("PIL."):
        return {"image": f"{value.width}x{value.height}", "mode": value.mode}
    shape = getattr(value, "shape", None)
    if shape is not None:
        return {"array": list(shape), "dtype": str(getattr(value, "dtype", ""))}
    if module.startswith("plotly."):
        title = getattr(getattr(getattr(value, "layout", None), "title", None), "text", None)
        return {"figure": title or kind}
    return f"<{kind}>"


def find_provenance(value: Any, depth: int = 0, out: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every provenance record inside a (JSON-safe) output: dicts carrying a model id and package versions."""
    out = [] if out is None else out
    if depth > 8 or len(out) >= MAX_ITEMS:
        return out
    if isinstance(value, dict):
        if "model_id" in value and "versions" in value:
            if value not in out:
                out.append(value)
            return out
        for v in value.values():
            find_provenance(v, depth + 1, out)
    elif isinstance(value, list):
        for v in value:
            find_provenance(v, depth + 1, out)
    return out
