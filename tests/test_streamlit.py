"""The Streamlit front end over the same pages, with streamlit.testing.v1.AppTest."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_process import ROOT


def _page_script(page: str, root: str) -> None:
    """Runs one page module's Streamlit renderer on the fake profile (AppTest.from_function body)."""
    import importlib
    import sys

    import streamlit as st

    from workbench.context import build_context

    @st.cache_resource
    def ctx():
        return build_context(profile="fake")

    st.session_state.setdefault("profile", "fake")
    importlib.import_module(f"pages.{page}").render_streamlit(ctx())


def page_test(page: str) -> AppTest:
    at = AppTest.from_function(_page_script, args=(page, str(ROOT)), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_streamlit_front_end_has_profile_choice_and_every_page(monkeypatch):
    from pages import discover_pages

    monkeypatch.setenv("WORKBENCH_PROFILE", "fake")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox[0].value == "fake"
    assert "Random weights" in at.sidebar.markdown[0].value
    registered = {info.get("page_name") for info in at._registered_pages.values()}
    assert {m.TITLE for m in discover_pages()} <= registered
    assert at.title[0].value == discover_pages()[0].TITLE  # the first tab renders by default


def test_streamlit_models_page_loads_a_model():
    at = page_test("models")
    at.selectbox(key="models_role").set_value("embeddings")
    at.button(key="models_load").click()
    at.run()
    assert not at.exception, at.exception
    assert any(m.value.startswith("Loaded embeddings: fake/embeddings") for m in at.markdown)
    frame = at.dataframe[0].value
    assert frame.set_index("role").loc["embeddings", "state"] == "loaded"
