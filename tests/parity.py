"""Drive one tab through both front ends over one context and compare what a study would record: the events'
names and named inputs (every input but the opaque per-user state), and whether they failed."""

from __future__ import annotations

from typing import Any

CONTEXTS: dict[str, Any] = {}  # AppTest runs the page script in this process: it finds its context here
OPAQUE = ("state", "rendered")  # per-user session objects, not what the user typed


def _page(tab: str) -> None:
    import importlib

    import streamlit as st

    from tests.parity import CONTEXTS

    st.session_state.setdefault("profile", "fake")
    importlib.import_module(f"pages.{tab}").render_streamlit(CONTEXTS[tab])


def app_test(ctx: Any, tab: str):
    from streamlit.testing.v1 import AppTest

    CONTEXTS[tab] = ctx
    return AppTest.from_function(_page, kwargs={"tab": tab}, default_timeout=120)


class Recorder:
    """Every event of `ctx`, split by front end."""

    def __init__(self, ctx: Any):
        self.events: list[Any] = []
        ctx.events.subscribe(self.events.append)

    def of(self, frontend: str, tab: str | None = None) -> list[tuple[str, dict[str, Any], str | None]]:
        return [(e.action, {k: v for k, v in e.inputs.items() if k not in OPAQUE}, e.error)
                for e in self.events if e.frontend == frontend and (tab is None or e.tab == tab)]

    def assert_same(self, tab: str) -> list[tuple[str, dict[str, Any], str | None]]:
        gradio, streamlit = self.of("gradio", tab), self.of("streamlit", tab)
        assert [e[0] for e in gradio] == [e[0] for e in streamlit]
        for g, s in zip(gradio, streamlit):
            assert g == s, f"{g[0]}: the front ends recorded different inputs\ngradio:    {g}\nstreamlit: {s}"
        return gradio


def no_errors(at: Any) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
