"""A tab's page (declared once, front-end neutral, in workbench/<tab>/page.py with the nodes of workbench.layout)
drawn by both front ends: `gradio_layout` builds the components and `gradio_wire` binds the declared actions;
`streamlit_layout` draws the same nodes as widgets and `streamlit_page` runs the clicked one and redraws from the
same presented values. Layout that must differ is marked in the declaration (`only`)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from pages._forms import gradio_fields, streamlit_field
from pages._wiring import gradio_bind, streamlit_run
from workbench.common.diff import highlighted_markdown
from workbench.forms import widgets
from workbench.layout import KEEP, Node, Update, field_keys, walk
from workbench.text import escape_markdown

# --------------------------------------------------------------------------- Gradio

GRADIO_DEFAULTS = {
    "gallery": dict(columns=4, height="fit-content", object_fit="contain"),  # "auto" would leave a blank 450 px box
    "table": dict(interactive=False, wrap=True),
    "image": dict(interactive=False), "video": dict(interactive=False), "file": dict(interactive=False),
    "diff": dict(combine_adjacent=True, color_map={"added": "green", "removed": "red"}),
}


def gradio_layout(spec: Sequence[Node], c: dict[Any, Any] | None = None) -> dict[Any, Any]:
    """Build the nodes' components; returns name -> component (an input also under its form's dict)."""
    import gradio as gr

    c = {} if c is None else c
    classes = dict(md=gr.Markdown, text=lambda **kw: gr.Textbox(interactive=False, **kw), plot=gr.Plot,
                   table=gr.Dataframe, gallery=gr.Gallery, image=gr.Image, video=gr.Video, file=gr.File,
                   diff=gr.HighlightedText, chat=gr.Chatbot, slider=gr.ImageSlider, download=gr.DownloadButton)
    for node in spec:
        o = dict(node.opts)
        if node.kind == "field":
            layout = {k: x for k, x in o["layout"].items() if k != "horizontal"}  # horizontal: Streamlit's radio
            comps = gradio_fields(o["form"], *o["names"], **layout)
            c.setdefault(o["into"] or o["form"], {}).update(comps)
            for n, comp in comps.items():
                c.setdefault(n, comp)
        elif node.kind in ("out", "button") and o.pop("only") in ("", "gradio"):
            if node.kind == "button":
                c[node.name] = gr.Button(o.pop("label"), **o)
            else:
                kind, label = o.pop("kind"), o.pop("label")
                o = {**GRADIO_DEFAULTS.get(kind, {}), **{k: x for k, x in o.items() if not k.startswith("st_")}}
                c[node.name] = classes[kind](**({"label": label} if label else {}), **o)
        elif node.kind == "only":
            if o["frontend"] == "gradio":
                gradio_layout(node.children, c)
        elif node.kind in ("row", "col", "box", "group", "tabs", "tab"):
            block = {"row": lambda: gr.Row(**o), "col": lambda: gr.Column(**o), "tabs": lambda: gr.Tabs(),
                     "box": lambda: gr.Accordion(o["title"], open=o["open"]), "tab": lambda: gr.Tab(o["title"]),
                     "group": lambda: gr.Group(visible=o["visible"])}[node.kind]()
            with block:
                gradio_layout(node.children, c)
            if node.name:
                c[node.name] = block
    return c


def gradio_value(value: Any) -> Any:
    import gradio as gr

    if isinstance(value, Update):
        kw = {k: getattr(value, k) for k in ("choices", "visible", "interactive", "label")
              if getattr(value, k) is not None}
        return gr.update(**kw, **({} if value.value is KEEP else {"value": value.value}))
    return gr.update() if value is KEEP else value


def gradio_presenter(present: Callable[[Any], dict], outputs: Sequence[str]) -> Callable[[Any], Any]:
    """A flow's value as the values of the `outputs` components: `present` maps it onto output names (those not
    named are kept)."""

    def shown(result: Any) -> Any:  # Gradio takes a one-component output's value as is, not in a list
        presented = present(result)
        values = [gradio_value(presented.get(n, KEEP)) for n in outputs]
        return values if len(values) > 1 else values[0]

    return shown


def gradio_wire(ctx: Any, c: dict[Any, Any], action: Any, trigger: Any, outputs: Sequence[str],
                present: Callable[[Any], dict], *, tab: str, **kwargs: Any):
    """Bind a declared action; `present` maps its flow's value onto output names (those not named are kept)."""
    return gradio_bind(ctx, action, trigger, c, [c[n] for n in outputs], tab=tab,
                       present=gradio_presenter(present, outputs), **kwargs)


# --------------------------------------------------------------------------- Streamlit


def _draw_output(st: Any, where: Any, name: str, o: dict, value: Any, tab: str) -> None:
    kind = o["kind"]
    if value is None or isinstance(value, (str, list, tuple)) and not value:
        return
    if kind == "md":
        where.markdown(value)
    elif kind == "text":
        where.code(value, language=None)
    elif kind == "plot":
        where.plotly_chart(value, key=f"{tab}_{name}")
    elif kind == "table":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            value = {"headers": list(value.columns), "data": value.values.tolist()}
        rows = value.get("data", []) if isinstance(value, dict) else value
        columns = value.get("headers") if isinstance(value, dict) else o.get("headers")
        if o.get("label"):
            where.caption(o["label"])
        where.dataframe(pd.DataFrame(rows, columns=columns), hide_index=True, key=f"{tab}_{name}")
    elif kind in ("gallery", "slider"):
        images = list(value)
        where.image([im for im, _ in images] if kind == "gallery" else images,  # a caption is Markdown: kept text
                    caption=[escape_markdown(cap) for _, cap in images] if kind == "gallery" else None,
                    width=o.get("st_width", 180))
    elif kind == "image":
        where.image(value, caption=escape_markdown(o.get("label") or "") or None, width=o.get("st_width", 256))
    elif kind == "video":
        where.video(value)
    elif kind == "diff":
        where.markdown("Diff: " + highlighted_markdown(value))
    elif kind in ("file", "download"):
        for path in [value] if isinstance(value, str) else value:
            with open(path, "rb") as fh:
                base = path.rsplit("/", 1)[-1]
                where.download_button(o["label"] if kind == "download" else f"Download {base}", fh.read(),
                                      file_name=base, key=o.get("st_key") or f"{tab}_dl_{name}_{base}")
    elif kind == "chat":
        for msg in value:
            with where.chat_message(msg["role"]):
                st.markdown(msg["content"])


def streamlit_layout(spec: Sequence[Node], tab: str, shown: dict[str, Any], v: dict[Any, Any],
                     where: Any = None, watch: Sequence[str] = (), in_columns: bool = False) -> str | None:
    """Draw the nodes (inputs into `v`, outputs from `shown`); returns the clicked button's name, if any. A change
    of an input named in `watch` by the user (not by a presenter) is reported as a click of that name. A row inside
    columns is drawn stacked (columns in columns break Streamlit's page)."""
    import streamlit as st

    where, ss = (where if where is not None else st), st.session_state
    flag = f"{tab}__changed"
    clicked = None
    for node in spec:
        o, value = node.opts, shown.get(node.name, KEEP) if node.name else KEEP
        if (value.visible if isinstance(value, Update) and value.visible is not None else o.get("visible", True)) \
                is False:  # a hidden group, output or button: Streamlit leaves it out
            continue
        if node.kind == "field":
            into = v.setdefault(o["into"] or o["form"], {})
            for n in o["names"]:
                upd = shown.get(n)
                if isinstance(upd, Update) and upd.visible is False:
                    continue
                choices, label = (upd.choices, upd.label) if isinstance(upd, Update) else (None, None)
                layout = {k: x for k, x in o["layout"].items() if k == "horizontal"}
                if n in watch:
                    layout["on_change"] = lambda n=n: ss.__setitem__(flag, n)
                into[n] = streamlit_field(o["form"], n, o["prefix"] or tab, where, choices, label, **layout)
                v.setdefault(n, into[n])
        elif node.kind == "out" and o["only"] in ("", "streamlit"):
            if isinstance(value, Update):
                o = {**o, "label": value.label or o["label"]}
                value = value.value
            _draw_output(st, where, node.name, o, o.get("value") if value is KEEP else value, tab)
        elif node.kind == "button" and o["only"] in ("", "streamlit"):
            off = isinstance(value, Update) and value.interactive is False
            if where.button(o["label"], key=f"{tab}_{node.name}", disabled=off,
                            type="primary" if o.get("variant") == "primary" else "secondary"):
                clicked, v["__at"] = node.name, where.container()  # its progress and error show here
        elif node.kind == "only" and o["frontend"] == "streamlit" or node.kind in ("col", "group"):
            clicked = streamlit_layout(node.children, tab, shown, v, where, watch, in_columns) or clicked
        elif node.kind == "row" and in_columns:
            clicked = streamlit_layout(node.children, tab, shown, v, where, watch, True) or clicked
        elif node.kind == "row":
            for child, column in zip(node.children, where.columns(len(node.children))):
                clicked = streamlit_layout([child], tab, shown, v, column, watch, True) or clicked
        elif node.kind == "box":
            with where.expander(o["title"], expanded=o["open"]):
                clicked = streamlit_layout(node.children, tab, shown, v, None, watch, in_columns) or clicked
        elif node.kind == "tabs":
            for child, pane in zip(node.children, where.tabs([t.opts["title"] for t in node.children])):
                with pane:
                    clicked = streamlit_layout(child.children, tab, shown, v, None, watch, in_columns) or clicked
    return clicked or (ss.pop(flag, None) if where is st else None)


def streamlit_page(ctx: Any, tab: str, spec: Sequence[Node], actions: dict[str, Any],
                   present: Callable[[Any], dict], v: dict[Any, Any], remap: dict | None = None,
                   prefix: str = "", values: Callable[[], dict] | None = None) -> Any:
    """Draw the page from the last presented values, then run the action of the clicked button (or changed input,
    named in `actions` too; a value may be (action, its own presenter)) with every input read, as Gradio does;
    its presented values are kept and the page redrawn. `remap` gives an action other inputs under a name (name ->
    {form: other dict's name}); `prefix` starts the widgets' keys (default: the tab); `values` adds values made from
    the drawn ones. Returns the action's raw value
    (None when nothing ran or it failed)."""
    import streamlit as st

    ss, prefix = st.session_state, prefix or tab
    shown = ss.setdefault(f"{prefix}_shown", {})
    keys = field_keys(spec, prefix)
    pending = ss.get(f"{prefix}_pending", {})
    for name in [n for n in pending if n in keys]:  # a widget's value can only be set before it is drawn
        ss[keys[name]] = pending.pop(name)
    name = streamlit_layout(spec, prefix, shown, v, watch=[n for n in actions if n in keys])
    if name is None or name not in actions:
        return None
    for node in walk(spec):  # a hidden input holds its default, as Gradio's hidden component does
        if node.kind == "field":
            for n in node.opts["names"]:
                default = widgets(node.opts["form"])[n][1]
                v.setdefault(node.opts["into"] or node.opts["form"], {}).setdefault(n, default)
                v.setdefault(n, default)
    action, show = actions[name] if isinstance(actions[name], tuple) else (actions[name], present)
    v.update({k: v[src] for k, src in (remap or {}).get(name, {}).items()}, **(values() if values else {}))
    result = streamlit_run(ctx, action, v, tab=tab, where=v.pop("__at", None))
    if result is not None:
        keep(prefix, spec, show(result))
        st.rerun()
    return result


def keep(tab: str, spec: Sequence[Node], presented: dict[str, Any]) -> None:
    """Keep presented values: outputs are redrawn from them; an input's new value is set before its next draw."""
    import streamlit as st

    ss = st.session_state
    keys, shown = field_keys(spec, tab), ss.setdefault(f"{tab}_shown", {})
    pending = ss.setdefault(f"{tab}_pending", {})
    for name, value in presented.items():
        if value is KEEP:
            continue
        current = shown.get(name)
        if isinstance(value, Update) and isinstance(current, Update):  # merge, as Gradio's update does
            value = Update(**{k: getattr(value, k) if getattr(value, k) not in (None, KEEP) else getattr(current, k)
                              for k in ("value", "choices", "visible", "interactive", "label")})
        shown[name] = value
        new = value.value if isinstance(value, Update) else value
        if name in keys and new is not KEEP:
            pending[name] = new
