"""One wiring layer for both front ends: every page handler goes through `gradio_action` / `streamlit_action`,
which run it with `workbench.actions.run_action` (one error policy, one event per action, the user's session
id) and only translate for the front end: the message into `gr.Error` / `st.error`, progress into
`gr.Progress` / `st.progress`. Pages never catch errors themselves."""

from __future__ import annotations

import inspect
import uuid
from typing import Any, Callable, Mapping, Sequence

from workbench.actions import ActionError, run_action, stream_action, user_message


# --------------------------------------------------------------------------- Gradio


def gradio_action(ctx: Any, trigger: Callable[..., Any], name: str, fn: Callable[..., Any], inputs: Sequence[Any],
                  outputs: Any, *, tab: str, job: bool = False, stream: bool = False,
                  input_names: Sequence[str] | None = None, api_name: str | bool | None = None,
                  busy: Sequence[Any] = (), prepare: Callable[[tuple], tuple] | None = None,
                  present: Callable[[Any], Any] | None = None, **event_kwargs: Any):
    """Bind `fn` to a Gradio event (`trigger` is e.g. `button.click`) as the user action `name`.

    `fn` receives the input components' values positionally (plus `job=` when `job=True`). A generator `fn`
    with `stream=True` streams its values. Errors become `gr.Error` with the wiring layer's message. `busy`
    lists buttons that would start conflicting work: they are disabled while this action runs and enabled again
    when it ends, also after an error (the job registry also refuses a second job of the same session, for API
    callers). `prepare` turns the components' values into `fn`'s arguments before the event records them;
    `present` turns `fn`'s value (what the event records) into the output components' values.
    """
    import gradio as gr

    n = len(inputs)
    # Event inputs are named after their components (elem_id, else label), so a study log reads as the page does.
    names = list(input_names) if input_names is not None else [
        getattr(c, "elem_id", None) or getattr(c, "label", None) or f"input_{i}" for i, c in enumerate(inputs)]

    def split(values: tuple) -> tuple[tuple, str, Any]:
        request = values[n] if len(values) > n else None
        progress = values[n + 1] if len(values) > n + 1 else None
        args = tuple(prepare(values[:n])) if prepare is not None else values[:n]
        return args, (getattr(request, "session_hash", None) or "anonymous"), progress

    show = present if present is not None else (lambda value: value)

    if stream:
        def call(*values: Any):
            args, session_id, _ = split(values)
            try:
                for value in stream_action(ctx, name, fn, args, tab=tab, session_id=session_id, frontend="gradio",
                                           input_names=names):
                    yield show(value)
            except ActionError as exc:
                raise gr.Error(exc.html, print_exception=False) from None
    else:
        def call(*values: Any):
            args, session_id, progress = split(values)

            def on_progress(update) -> None:
                if progress is not None:
                    progress(update.fraction, desc=update.describe())

            try:
                return show(run_action(ctx, name, fn, args, tab=tab, session_id=session_id, frontend="gradio",
                                       input_names=names, on_progress=on_progress if job else None, job=job))
            except ActionError as exc:
                raise gr.Error(exc.html, print_exception=False) from None

    # Gradio injects the request (by annotation) and progress (by default value) into positional parameters
    # it finds in the signature, so the wrapper declares exactly n inputs, then those two.
    params = [inspect.Parameter(f"input_{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD) for i in range(n)]
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request))
    if job:
        params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    call.__annotations__ = {"request": gr.Request}
    call.__name__ = name
    api = name if api_name is None else api_name
    if not busy:
        return trigger(call, list(inputs), outputs, api_name=api, **event_kwargs)
    busy = list(busy)

    def toggle(interactive: bool):  # Gradio takes a one-component output's value as is, not in a list
        updates = [gr.update(interactive=interactive)] * len(busy)
        return updates if len(busy) > 1 else updates[0]

    first = trigger(lambda: toggle(False), None, busy, queue=False, api_name=False)
    event = first.then(call, list(inputs), outputs, api_name=api, **event_kwargs)
    # `.then` runs only after a success in the browser: an error needs its own listener, or the buttons stay off
    event.then(lambda: toggle(True), None, busy, queue=False, api_name=False)
    event.failure(lambda: toggle(True), None, busy, queue=False, api_name=False)
    return event


def _lookup(action: Any, items: Mapping[Any, Any]) -> list[Any]:
    """The action's inputs from a page's mapping: a plain name maps to its value (or component), a form class
    to a dict of its fields."""
    from workbench.forms import widgets

    out: list[Any] = []
    for item in action.inputs:
        out += [items[item][n] for n in widgets(item)] if isinstance(item, type) else [items[item]]
    return out


def gradio_bind(ctx: Any, action: Any, trigger: Callable[..., Any], components: Mapping[Any, Any], outputs: Any,
                present: Callable[[Any], Any] | None = None, *, tab: str, **kwargs: Any):
    """Bind a declared `workbench.forms.Action`: its inputs come from `components` (a plain name maps to a
    component or a list of components, whose values reach the flow as one list; a form class to a dict of its
    fields' components), normalised by their declared widgets; the event records the action's input names;
    `present` maps the flow's value onto `outputs`."""
    from pages._forms import normalise

    groups = _lookup(action, components)
    flat = [c for g in groups for c in (g if isinstance(g, (list, tuple)) else [g])]

    def prepare(values: tuple) -> tuple:
        args, i = [], 0
        for g in groups:
            if isinstance(g, (list, tuple)):
                args.append([normalise(c, v) for c, v in zip(g, values[i:i + len(g)])])
                i += len(g)
            else:
                args.append(normalise(g, values[i]))
                i += 1
        return tuple(args)

    return gradio_action(ctx, trigger, action.name, action.bound(ctx), flat, outputs, tab=tab, job=action.job,
                         stream=action.stream, input_names=action.input_names, prepare=prepare, present=present,
                         **kwargs)


def gradio_view(trigger: Callable[..., Any], fn: Callable[..., Any], inputs: Any, outputs: Any, **kwargs: Any):
    """Bind a view recomputation (a diff while typing, a redraw): not a user action, so no event is recorded; a
    known error still reaches the user as its message."""
    import gradio as gr

    def call(*values: Any):
        try:
            return fn(*values)
        except Exception as exc:
            import html

            raise gr.Error(html.escape(user_message(getattr(fn, "__name__", "view"), exc)[0]),
                           print_exception=False) from None

    return trigger(call, inputs, outputs, api_name=False, **kwargs)


def gradio_cancel(ctx: Any, trigger: Callable[..., Any], *, api_name: str | bool = False, outputs: Any = None):
    """Bind a Cancel button: stops this session's running job at its next step (what finished is kept)."""
    import gradio as gr

    def cancel(request) -> str:
        session_id = getattr(request, "session_hash", None) or "anonymous"
        stopped = ctx.jobs.cancel(session_id)
        return "Cancelling at the next step..." if stopped else "Nothing is running."

    cancel.__annotations__ = {"request": gr.Request, "return": str}  # real classes: Gradio injects the request

    return trigger(cancel, None, outputs, api_name=api_name, queue=False)


# --------------------------------------------------------------------------- Streamlit


def streamlit_session_id() -> str:
    import streamlit as st

    if "_wb_session_id" not in st.session_state:
        st.session_state["_wb_session_id"] = uuid.uuid4().hex
    return st.session_state["_wb_session_id"]


def streamlit_action(ctx: Any, name: str, fn: Callable[..., Any], *args: Any, tab: str, job: bool = False,
                     input_names: Sequence[str] | None = None, where: Any = None, **kwargs: Any) -> Any:
    """Run `fn(*args, **kwargs)` as the user action `name`; on error show `st.error` and return None.

    With `job=True` a progress bar shows the stage and item; a click anywhere on the page stops the run
    (Streamlit reruns the script), and the last partial result is kept under `st.session_state[name +
    "_partial"]`. The bar and the error go into `where` (the clicked button's place), else the page's end."""
    import streamlit as st

    where = where if where is not None else st
    bar = where.progress(0.0, text=f"{name}: starting") if job else None

    def on_progress(update) -> None:
        if bar is not None:
            bar.progress(update.fraction if update.fraction is not None else 0.0, text=update.describe())

    session_id = streamlit_session_id()
    try:
        return run_action(ctx, name, fn, args, kwargs, tab=tab, session_id=session_id, frontend="streamlit",
                          input_names=list(input_names) if input_names is not None else None,
                          on_progress=on_progress if job else None, job=job)
    except ActionError as exc:
        where.error(exc.markdown)
        if exc.partial is not None:
            st.session_state[f"{name}_partial"] = exc.partial
        return None
    except BaseException:  # Streamlit's stop/rerun on a click mid-run: keep what the job reported
        last = ctx.jobs.last(session_id)
        if job and last is not None and last.name == name and last.partial is not None:
            st.session_state[f"{name}_partial"] = last.partial
        raise
    finally:
        if bar is not None:
            bar.empty()


def streamlit_view(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A view recomputed on a rerun (not a user action: no event); a known error shows as `st.error`, giving None."""
    import streamlit as st

    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        from workbench.text import literal_markdown

        st.error(literal_markdown(user_message(getattr(fn, "__name__", "view"), exc)[0]))
        return None


def streamlit_stream(ctx: Any, name: str, fn: Callable[..., Any], *args: Any, tab: str,
                     input_names: Sequence[str] | None = None, **kwargs: Any):
    """Iterate a generator action in Streamlit (e.g. `st.write_stream(streamlit_stream(...))`); on error show
    `st.error` and stop the stream."""
    import streamlit as st

    try:
        yield from stream_action(ctx, name, fn, args, kwargs, tab=tab, session_id=streamlit_session_id(),
                                 frontend="streamlit",
                                 input_names=list(input_names) if input_names is not None else None)
    except ActionError as exc:
        st.error(exc.markdown)


def streamlit_run(ctx: Any, action: Any, values: Mapping[str, Any], *, tab: str, where: Any = None) -> Any:
    """Run a declared `workbench.forms.Action` with the page's values (name -> value) through `streamlit_action`
    (or, for a streamed action, return the `streamlit_stream` generator): the same event name and named inputs
    as its Gradio binding."""
    args = _lookup(action, values)
    if action.stream:
        return streamlit_stream(ctx, action.name, action.bound(ctx), *args, tab=tab, input_names=action.input_names)
    return streamlit_action(ctx, action.name, action.bound(ctx), *args, tab=tab, job=action.job,
                            input_names=action.input_names, where=where)
