"""A tab's inputs and actions, declared once for both front ends.

A form is a dataclass whose fields carry a `Widget` in their metadata (label, kind, range or choices, help): the
dataclass gives the checked values (its flows parse it), and `pages/_forms.py` turns the same metadata into Gradio
components and Streamlit widgets. An `Action` names a user action once (event name, flow, named inputs, outputs);
`pages/_wiring.py` binds it in both front ends, so both record the same event with the same named inputs.
(After Gradio's `gr.Interface`, which builds a form from a function's signature.)
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

KINDS = (
    "text", "textarea", "password", "code", "slider", "number", "radio", "dropdown", "checkbox", "multi", "file")


@dataclass(frozen=True)
class Widget:
    """How one input looks in both front ends. `choices` holds values, or (label, value) pairs."""

    label: str
    kind: str = "text"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple = ()
    help: str = ""
    placeholder: str = ""
    lines: int = 1
    elem_id: str | None = None
    whole: bool = False  # a whole number: both front ends hand it on as int (3, not 3.0)
    custom: bool = False  # a dropdown that also takes typed values

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"widget kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def values(self) -> list[Any]:
        return [c[1] if isinstance(c, tuple) else c for c in self.choices]

    def pairs(self) -> list[tuple[str, Any]]:
        return [c if isinstance(c, tuple) else (str(c), c) for c in self.choices]

    def normalise(self, value: Any) -> Any:
        """What a front end's widget gave, as the flow expects it: whole numbers as int, floats as float (Gradio
        and Streamlit disagree on 3 vs 3.0; the recorded event must not)."""
        if self.kind in ("slider", "number") and isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.whole and float(value).is_integer():
                return int(value)
            if not self.whole:
                return float(value)
        return value


def input_field(default: Any, label: str, kind: str = "text", **options: Any) -> Any:
    """A dataclass field whose metadata is its widget: `n: int = input_field(4, "Candidates (N)", "slider", ...)`."""
    widget = Widget(label, kind, **options)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata={"widget": widget})
    return dataclasses.field(default=default, metadata={"widget": widget})


def input_group(form: type) -> Any:
    """A dict-valued field whose entries are `form`'s inputs (e.g. one weight per metric)."""
    return dataclasses.field(default_factory=lambda: {n: d for n, (_, d) in widgets(form).items()},
                             metadata={"group": form})


def group_form(name: str, inputs: dict[str, tuple[Widget, Any]]) -> type:
    """A form made from data (one input per metric, say): name -> (widget, default)."""
    return dataclasses.make_dataclass(name, [(n, Any, dataclasses.field(default=d, metadata={"widget": w}))
                                             for n, (w, d) in inputs.items()])


def widgets(form: type) -> dict[str, tuple[Widget, Any]]:
    """A form's inputs in declaration order, groups flattened: name -> (widget, default)."""
    out = {}
    for f in dataclasses.fields(form):
        if "group" in f.metadata:
            out.update(widgets(f.metadata["group"]))
        elif "widget" in f.metadata:
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
            out[f.name] = (f.metadata["widget"], default)
    return out


def build(form: type, values: Sequence[Any]) -> Any:
    """The form instance from its flattened input values (as `widgets` lists them)."""
    kwargs, i = {}, 0
    for f in dataclasses.fields(form):
        if "group" in f.metadata:
            names = list(widgets(f.metadata["group"]))
            kwargs[f.name] = dict(zip(names, values[i:i + len(names)]))
            i += len(names)
        elif "widget" in f.metadata:
            kwargs[f.name] = values[i]
            i += 1
    return form(**kwargs)


def widget(form: type, name: str) -> Widget:
    try:
        return widgets(form)[name][0]
    except KeyError:
        raise ValueError(f"{form.__name__} has no input {name!r}; it has {', '.join(widgets(form))}") from None


def default(form: type, name: str) -> Any:
    return widgets(form)[name][1]


@dataclass(frozen=True)
class Action:
    """One user action of a tab, for both front ends.

    `inputs` are the flow's positional arguments after `ctx` (when `takes_ctx`): plain names (``"profile"``,
    ``"state"``, a widget of the tab) or a form class, which stands for its fields in order and reaches the flow
    as one instance. The recorded event's inputs are those names, flattened. `outputs` names what the flow
    returns (documentation for both presenters)."""

    name: str
    flow: Callable[..., Any]
    inputs: tuple = ()
    outputs: tuple[str, ...] = ()
    job: bool = False
    stream: bool = False
    takes_ctx: bool = True

    @property
    def input_names(self) -> list[str]:
        """The event's input names: a field's name, qualified by its form where two forms of the action share it
        (`VideoInputs.seed` beside `EvolveInputs.seed`), so no recorded value hides another."""
        pairs: list[tuple[str, str]] = []
        for item in self.inputs:
            pairs += [(item.__name__, n) for n in widgets(item)] if isinstance(item, type) else [("", item)]
        counts: dict[str, int] = {}
        for _, n in pairs:
            counts[n] = counts.get(n, 0) + 1
        return [f"{form}.{n}" if counts[n] > 1 and form else n for form, n in pairs]

    def bound(self, ctx: Any) -> Callable[..., Any]:
        """The flow as a function of the flattened input values (plus `job=` for a job)."""

        def call(*values: Any, **kwargs: Any) -> Any:
            args, i = [], 0
            for item in self.inputs:
                if isinstance(item, type):
                    n = len(widgets(item))
                    args.append(build(item, values[i:i + n]))
                    i += n
                else:
                    args.append(values[i])
                    i += 1
            return self.flow(*([ctx] if self.takes_ctx else []), *args, **kwargs)

        call.__name__ = self.name
        return call
