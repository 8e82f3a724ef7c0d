"""The generic renderer of declared forms (workbench.forms): the same field metadata gives a Gradio component and a
Streamlit widget, with one label, default, range, choices and help. Layout (rows, columns, scale) stays with the
page; what an input is, is declared once next to the tab's flows."""

from __future__ import annotations

from typing import Any, Sequence

from workbench.forms import Widget, widgets


def gradio_field(form: type, name: str, **layout: Any) -> Any:
    """One Gradio component for `form`'s input `name` (layout keywords such as scale pass through)."""
    import gradio as gr

    w, value = widgets(form)[name]
    value = layout.pop("value", value)  # a start value from data (the profile's render settings, say)
    kw: dict[str, Any] = dict(label=w.label, elem_id=w.elem_id, **layout)
    if w.help and w.kind not in ("code",):
        kw["info"] = w.help
    if w.kind in ("text", "textarea", "password"):
        comp = gr.Textbox(value, lines=w.lines, placeholder=w.placeholder or None,
                          type="password" if w.kind == "password" else "text", **kw)
    elif w.kind == "code":
        comp = gr.Code(value, language="yaml", **kw)
    elif w.kind == "slider":
        comp = gr.Slider(w.low, w.high, value=value, step=w.step or (1 if w.whole else None), **kw)
    elif w.kind == "number":  # the range is checked by the flow (one message in both front ends), not here
        comp = gr.Number(value, precision=0 if w.whole else None, **kw)
    elif w.kind == "radio":
        comp = gr.Radio(w.pairs(), value=value, **kw)
    elif w.kind == "dropdown":
        comp = gr.Dropdown(w.pairs(), value=value, allow_custom_value=w.custom, **kw)
    elif w.kind == "checkbox":
        comp = gr.Checkbox(value, **kw)
    elif w.kind == "file":  # an image upload: the flow gets its path
        comp = gr.File(value, file_types=["image"], type="filepath", **kw)
    else:  # multi
        comp = gr.CheckboxGroup(w.pairs(), value=value, **kw)
    comp.wb_widget = w  # the wiring layer normalises this component's value by it
    return comp


def gradio_fields(form: type, *names: str, values: dict[str, Any] | None = None, **layout: Any) -> dict[str, Any]:
    """Components for several inputs of `form` (all of them by default), in declaration order; `values` overrides
    some start values."""
    values = values or {}
    return {n: gradio_field(form, n, **({"value": values[n]} if n in values else {}), **layout)
            for n in (names or widgets(form))}


def streamlit_field(form: type, name: str, prefix: str, where: Any = None, choices: Sequence[Any] | None = None,
                    label: str | None = None, **layout: Any) -> Any:
    """One Streamlit widget (key `<prefix>_<name>`) for `form`'s input `name`; returns its normalised value.
    `choices` narrows a choice widget to what applies now (the computed methods, say); `label` replaces its label
    (a questionnaire slot shows its question)."""
    import dataclasses

    import streamlit as st

    w, value = widgets(form)[name]
    if choices is not None:
        w = dataclasses.replace(w, choices=tuple(choices))
    if label:
        w = dataclasses.replace(w, label=label)
    where = where if where is not None else st
    key = f"{prefix}_{name}"
    fresh = key not in st.session_state  # a widget whose value the session already holds takes no default
    kw: dict[str, Any] = dict(key=key, help=w.help or None, **layout)
    if w.kind in ("text", "password"):
        out = where.text_input(w.label, **({"value": value} if fresh else {}), placeholder=w.placeholder or None,
                               type="password" if w.kind == "password" else "default", **kw)
    elif w.kind in ("textarea", "code"):
        out = where.text_area(w.label, **({"value": value} if fresh else {}), placeholder=w.placeholder or None, **kw)
    elif w.kind in ("slider", "number"):
        num = int if w.whole else float
        lo, hi = (None if w.low is None else num(w.low)), (None if w.high is None else num(w.high))
        step = num(w.step) if w.step is not None else (1 if w.whole else None)
        start = {"value": None if value is None else num(value)} if fresh else {}  # None: empty, as in Gradio
        if w.kind == "slider":
            out = where.slider(w.label, lo, hi, step=step, **start, **kw)
        else:
            out = where.number_input(w.label, lo, hi, step=step, **start, **kw)
    elif w.kind in ("radio", "dropdown"):
        values, labels = w.values(), dict((v, lab) for lab, v in w.pairs())
        first = 0 if w.kind == "dropdown" and values else None  # a menu opens on its first choice; a radio on none
        start = {"index": values.index(value) if value in values else first} if fresh else {}
        widget = where.radio if w.kind == "radio" else where.selectbox
        extra = {"accept_new_options": True} if w.custom else {}
        out = widget(w.label, values, format_func=lambda v: labels.get(v, str(v)), **start, **extra, **kw)
    elif w.kind == "checkbox":
        out = where.checkbox(w.label, **({"value": bool(value)} if fresh else {}), **kw)
    elif w.kind == "file":  # an image upload: the flow gets its bytes
        out = where.file_uploader(w.label, **kw)
        out = out.getvalue() if out is not None else None
    else:  # multi
        labels = dict((v, lab) for lab, v in w.pairs())
        out = where.multiselect(w.label, w.values(), **({"default": value} if fresh else {}),
                                format_func=lambda v: labels.get(v, str(v)), **kw)
    return w.normalise(out)


def normalise(component: Any, value: Any) -> Any:
    w: Widget | None = getattr(component, "wb_widget", None)
    return w.normalise(value) if w is not None else value
