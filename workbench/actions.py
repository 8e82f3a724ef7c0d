"""The wiring layer's core: every user action of every tab, in both front ends, runs through `run_action`.

It (1) turns known errors into one user-facing message, the same text in Gradio and Streamlit, logged as one
line with the action's name (no traceback: the user can act on it); (2) keeps unexpected errors from reaching
the UI as tracebacks, logging them with their traceback instead; (3) emits
an `Event` to the subscribers on the AppContext (the study recorder is one). The front-end adapters in
`pages/_wiring.py` only translate: the message into `gr.Error` or `st.error`, progress into `gr.Progress`
or `st.progress`.
"""

from __future__ import annotations

import inspect
import logging
import time
from typing import Any, Callable, Iterator

from workbench.events import Event, find_provenance, jsonable
from workbench.jobs import Cancelled, Job, ProgressUpdate
from workbench.models import ModelLoadError

log = logging.getLogger(__name__)

# Failures the user can act on: their message is shown as it is. ValueError covers bad input (and
# RegistryError, JobBusy); ModelLoadError says which model failed and what to do; the network ones come
# from remote rewriters and servers.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (ValueError, ModelLoadError, TimeoutError, ConnectionError)


MAX_MESSAGE = 2000  # characters of an error shown to the user (a study file's problem list fits; a pasted essay not)


class ActionError(Exception):
    """What the front end shows instead of a traceback. `kind`: input | cancelled | internal. The message is
    plain text that may contain what the user typed: front ends show it as `html` (Gradio renders a toast's
    message as HTML) or `markdown` (st.error renders Markdown), both of which show every character literally."""

    def __init__(self, message: str, kind: str = "input", partial: Any = None):
        super().__init__(message)
        self.message, self.kind, self.partial = message, kind, partial

    @property
    def html(self) -> str:
        import html

        return html.escape(self.message, quote=False)  # quotes are harmless in text and read better unescaped

    @property
    def markdown(self) -> str:
        from workbench.text import literal_markdown

        return literal_markdown(self.message)


def user_message(action: str, exc: BaseException) -> tuple[str, str]:
    """(message, kind) for an exception raised by an action; at most MAX_MESSAGE characters."""
    message, kind = _message(action, exc)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + f"… (message cut; {len(message):,} characters)"
    return message, kind


def _log(name: str, message: str, kind: str) -> None:
    """One line for an error the user can act on; the traceback only for an unexpected one."""
    if kind == "internal":
        log.exception("action %s failed", name)
    else:
        from workbench.text import preview

        log.warning("action %s: %s error: %s", name, kind, preview(message, 200))


def _message(action: str, exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ActionError):
        return exc.message, exc.kind
    if isinstance(exc, Cancelled):
        return f"Stopped: {exc}. What finished before the cancel is kept.", "cancelled"
    if isinstance(exc, KNOWN_ERRORS):
        return str(exc) or type(exc).__name__, "input"
    return (f"Something went wrong in '{action}' ({type(exc).__name__}: {str(exc)[:300]}). It was logged on "
            f"the server; your earlier results are kept. Try again, or change the inputs."), "internal"


def _emit(ctx: Any, event: Event, output: Any) -> None:
    bus = getattr(ctx, "events", None)
    if bus is None:
        return
    summary = jsonable(output)
    event.outputs = summary
    event.provenance = find_provenance(summary)
    bus.emit(event)


def _event(name: str, tab: str, session_id: str, frontend: str, inputs: dict[str, Any]) -> Event:
    return Event(action=name, tab=tab, session_id=session_id or "anonymous", frontend=frontend,
                 inputs=jsonable(inputs))


def run_action(ctx: Any, name: str, fn: Callable[..., Any], args: tuple = (), kwargs: dict[str, Any] | None = None,
               *, tab: str = "", session_id: str = "", frontend: str = "python",
               input_names: list[str] | None = None,
               on_progress: Callable[[ProgressUpdate], None] | None = None, job: bool = False) -> Any:
    """Call `fn(*args, **kwargs)` as the user action `name`. Returns its value or raises `ActionError`.

    With `job=True` the call gets a `job=` keyword: a Job registered for this session (one at a time,
    cancellable from another request through `ctx.jobs.cancel(session_id)`), reporting to `on_progress`.
    """
    kwargs = dict(kwargs or {})
    event = _event(name, tab, session_id, frontend, _named_inputs(fn, args, kwargs, input_names))
    started = time.perf_counter()
    running: Job | None = None
    try:
        if job:
            running = ctx.jobs.start(session_id or "anonymous", name, on_progress)
            kwargs["job"] = running
        value = fn(*args, **kwargs)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, Streamlit's rerun/stop signals
            raise
        message, kind = user_message(name, exc)
        _log(name, message, kind)
        event.error, event.error_kind = message, kind
        event.seconds = time.perf_counter() - started
        partial = getattr(exc, "partial", None)
        _emit(ctx, event, partial)
        raise ActionError(message, kind, partial) from exc
    finally:
        if running is not None:
            ctx.jobs.finish(running)
    event.seconds = time.perf_counter() - started
    _emit(ctx, event, value)
    return value


def stream_action(ctx: Any, name: str, fn: Callable[..., Iterator[Any]], args: tuple = (),
                  kwargs: dict[str, Any] | None = None, *, tab: str = "", session_id: str = "",
                  frontend: str = "python", input_names: list[str] | None = None) -> Iterator[Any]:
    """Like `run_action` for a generator (a streamed chat reply): yields its values; the event carries the
    last value (or the error, with the last value as the partial output) when the stream ends."""
    event = _event(name, tab, session_id, frontend, _named_inputs(fn, args, kwargs or {}, input_names))
    started = time.perf_counter()
    last: Any = None
    try:
        for last in fn(*args, **(kwargs or {})):
            yield last
    except GeneratorExit:
        event.error, event.error_kind = "closed by the user before the reply ended", "cancelled"
        event.seconds = time.perf_counter() - started
        _emit(ctx, event, last)
        raise
    except Exception as exc:
        message, kind = user_message(name, exc)
        _log(name, message, kind)
        event.error, event.error_kind = message, kind
        event.seconds = time.perf_counter() - started
        _emit(ctx, event, last)
        raise ActionError(message, kind, last) from exc
    event.seconds = time.perf_counter() - started
    _emit(ctx, event, last)


def _named_inputs(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any],
                  names: list[str] | None) -> dict[str, Any]:
    if names is None:
        try:
            params = [p.name for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        names = params
    out = {(names[i] if i < len(names) else f"arg{i}"): v for i, v in enumerate(args)}
    out.update({k: v for k, v in kwargs.items() if k not in ("job", "ctx")})
    out.pop("ctx", None)
    return out
