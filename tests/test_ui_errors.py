"""Failures reach the user as clear messages through the wiring layer, in both front ends, and the app keeps
serving: an unreachable rewriter server in the T2I tab (a RuntimeError from the openai-chat backend), and
behaviour-shift models that fail to load (ModelLoadError) in the Shift tab."""

from __future__ import annotations

import pytest

from tests.app_process import free_port
from tests.conftest import ROOT, gradio_client_for

SHIFT_METHODS = ["gradient × input (the paper's)"]
SHIFT_PARTS = ["attribution", "attention", "ffn"]
SHIFT_VIEWS = [SHIFT_METHODS[0], 1, 8, "all", "all", "instruct", 0, 0]
BROKEN_MODEL = "tiny:no-such-model"


def with_broken_profile(profiles: dict) -> dict:
    """The fake profile plus 'broken': the same, except that its behaviour-shift pair cannot load."""
    from backends.base import ModelSpec
    from workbench.profiles import Profile

    fake = profiles["fake"]
    roles = dict(fake.roles)
    for role, seed in (("lm_base", 0), ("lm_instruct", 1)):
        roles[role] = ModelSpec.from_dict(role, {"backend": "transformers-lm", "model": f"{BROKEN_MODEL}?seed={seed}"})
    return {**profiles, "broken": Profile("broken", "the fake profile with a shift pair that cannot load", roles)}


@pytest.fixture()
def broken_client(profiles):
    from workbench.context import AppContext
    from workbench.models import ModelManager

    ctx = AppContext(manager=ModelManager(budget_bytes=8 * 1024**3, device="cpu"),
                     profiles=with_broken_profile(profiles), default_profile="fake")
    with gradio_client_for(ctx) as client:
        yield client
    ctx.manager.unload_all()


def _refine_args(prompt: str, kind: str = "profile chat model", base_url: str = "", model: str = ""):
    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE

    return ["fake", prompt, kind, base_url, model, "", DEFAULT_SYSTEM_TEMPLATE, 2, 0.5, 1, 0.9, 0]


def test_t2i_unreachable_rewriter_server_is_a_message_and_the_tab_keeps_working(client):
    from gradio_client.exceptions import AppError

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens here
    with pytest.raises(AppError) as caught:
        client.predict(*_refine_args("a cat on a sofa", "OpenAI-compatible server", dead, "rewriter"),
                       api_name="/t2i_refine")
    message = str(caught.value)
    assert "could not reach the rewriter server" in message and dead in message, message
    assert "Traceback" not in message
    out = client.predict(*_refine_args("a cat on a sofa"), api_name="/t2i_refine")
    assert out[0].startswith("**2 candidate(s)**")  # the same session goes on with the profile's rewriter


def _assert_load_message(message: str) -> None:
    assert "Could not load the" in message and f"'{BROKEN_MODEL}?seed=" in message, message
    assert "unknown tiny model 'no-such-model'" in message and "What to do" in message, message
    assert "Traceback" not in message


def test_shift_model_load_failure_is_a_clear_message_in_gradio(broken_client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        broken_client.predict("broken", "write a short poem about the sea", "", True, 2, 2, SHIFT_METHODS,
                              SHIFT_PARTS, *SHIFT_VIEWS, api_name="/shift_analyse")
    _assert_load_message(str(caught.value))
    out = broken_client.predict("fake", "write a short poem about the sea", "", True, 2, 2, SHIFT_METHODS,
                                ["attribution"], *SHIFT_VIEWS, api_name="/shift_analyse")
    assert "write a short poem about the sea" in out[0]  # the app still serves the working profile


def _broken_shift_page(root: str) -> None:
    """The Shift page's Streamlit renderer on the 'broken' profile (an AppTest.from_function body)."""
    import sys

    sys.path.insert(0, root)
    import streamlit as st

    from tests.test_ui_errors import with_broken_profile
    from workbench.context import build_context

    @st.cache_resource
    def ctx():
        context = build_context(profile="fake")
        context.profiles = with_broken_profile(context.profiles)
        return context

    st.session_state.setdefault("profile", "broken")
    import pages.shift

    pages.shift.render_streamlit(ctx())


def test_shift_model_load_failure_is_a_clear_message_in_streamlit():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_broken_shift_page, args=(str(ROOT),), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    at.slider(key="shift_max_new").set_value(2)
    at.slider(key="shift_ig_steps").set_value(2)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]  # no traceback on the page
    assert len(at.error) == 1
    _assert_load_message(at.error[0].value)
