"""A tab's page declared once, front-end neutral: its inputs (`fields`, from the workbench.forms dataclasses),
outputs (`out`), buttons and containers (`row`, `col`, `box`, `group`, `tabs`, `only`). Each tab declares its page
next to its flows (`workbench/<tab>/page.py`: the layout, the actions bound to buttons, and the presenter that maps
a flow's value onto output names as `{name: value or Update}`). pages/_layout.py draws the same declaration with
Gradio components or Streamlit widgets; nothing here imports a front end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from workbench.forms import widgets

KEEP = object()  # an output left as it is


@dataclass
class Node:
    kind: str
    name: str = ""
    children: tuple = ()
    opts: dict = field(default_factory=dict)


@dataclass
class Update:
    """What a presenter changes on a component besides (or instead of) its value: front-end neutral."""

    value: Any = KEEP
    choices: Any = None
    visible: bool | None = None
    interactive: bool | None = None
    label: str | None = None


def fields(form: type, *names: str, into: Any = None, prefix: str = "", **layout: Any) -> Node:
    """Declared inputs of `form` (all by default); `into` names their dict (default: the form), `prefix` their
    Streamlit keys (default: the tab's)."""
    return Node("field", "", (), dict(form=form, names=names or tuple(widgets(form)), into=into, prefix=prefix,
                                      layout=layout))


def out(name: str, kind: str, label: str = "", only: str = "", **opts: Any) -> Node:
    """An output: md, text, plot, table, gallery, image, video, file, diff, chat, slider, download. Options are
    Gradio's, but for `st_` ones (Streamlit's: `st_width`, `st_key`)."""
    return Node("out", name, (), dict(kind=kind, label=label, only=only, **opts))


def button(name: str, label: str, only: str = "", **opts: Any) -> Node:
    return Node("button", name, (), dict(label=label, only=only, **opts))


def row(*children: Node, **opts: Any) -> Node:
    return Node("row", opts.pop("name", ""), children, opts)


def col(*children: Node, **opts: Any) -> Node:
    return Node("col", opts.pop("name", ""), children, opts)


def box(title: str, *children: Node, open: bool = True, name: str = "") -> Node:
    return Node("box", name, children, dict(title=title, open=open))


def group(name: str, *children: Node, visible: bool = True) -> Node:
    return Node("group", name, children, dict(visible=visible))


def tabs(*pages: tuple[str, Sequence[Node]]) -> Node:
    return Node("tabs", "", tuple(Node("tab", "", tuple(nodes), dict(title=t)) for t, nodes in pages))


def only(frontend: str, *children: Node) -> Node:
    """Nodes drawn by one front end only (a Cancel button: a click anywhere stops a Streamlit run)."""
    return Node("only", "", children, dict(frontend=frontend))


def walk(spec: Sequence[Node]):
    for node in spec:
        yield node
        yield from walk(node.children)


def field_keys(spec: Sequence[Node], tab: str) -> dict[str, str]:
    """Each input's Streamlit key (name -> key); the first of two same-named inputs wins, as in the values."""
    keys: dict[str, str] = {}
    for node in walk(spec):
        if node.kind == "field":
            for n in node.opts["names"]:
                keys.setdefault(n, f"{node.opts['prefix'] or tab}_{n}")
    return keys
