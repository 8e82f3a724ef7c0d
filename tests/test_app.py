"""`python app.py` as a subprocess, driven with gradio_client; the page builders in-process."""

import psutil
import pytest
from gradio_client import Client

from tests.app_process import start_app, stop


def records(table):
    return {row[0]: dict(zip(table["headers"], row)) for row in table["data"]}


@pytest.fixture(scope="module")
def running_app():
    proc, url, _ = start_app("--profile", "fake")
    yield proc, url
    stop(proc)


def test_binds_loopback_only(running_app):
    proc, _ = running_app
    listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet") if c.status == "LISTEN"]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening)


def test_models_tab_loads_and_unloads_through_the_api(running_app):
    _, url = running_app
    client = Client(url + "/", verbose=False)
    table, summary, message = client.predict("fake", "chat", api_name="/load_model")
    assert message.startswith("Loaded chat: fake/chat") and "RANDOM WEIGHTS" in message
    rows = records(table)
    assert rows["chat"]["state"] == "loaded" and rows["chat"]["weights"].startswith("RANDOM WEIGHTS")
    assert rows["t2i"]["state"] == "not loaded"
    assert "Loaded: 1 model(s)" in summary
    table, _, message = client.predict("fake", "chat", api_name="/unload_model")
    assert message == "Unloaded chat: fake/chat."
    assert records(table)["chat"]["state"] == "not loaded"


def test_a_failing_model_gives_a_message_and_the_app_keeps_serving(running_app):
    _, url = running_app
    client = Client(url + "/", verbose=False)
    # The offline profile's real packaged models may be absent on a dev box without requirements-offline.txt;
    # a hub profile always fails here (no internet), which is the failure we want to see reported.
    _, _, message = client.predict("cpu", "chat", api_name="/load_model")
    assert message.startswith("Failed: Could not load the chat model 'HuggingFaceTB/SmolLM2-360M-Instruct'")
    assert "What to do" in message
    table, _, message = client.predict("fake", "embeddings", api_name="/load_model")
    assert message.startswith("Loaded embeddings")
    table = client.predict("cpu", api_name="/models_table")[0]
    assert records(table)["chat"]["state"] == "failed"
    assert records(table)["chat"]["message"].startswith("Could not load the chat model")


def test_unknown_roles_and_profiles_get_messages(running_app):
    _, url = running_app
    client = Client(url + "/", verbose=False)
    _, _, message = client.predict("fake", "t2i_rewriter", api_name="/load_model")
    assert message.startswith("Failed: profile 'fake' has no model for role 't2i_rewriter'")
    _, _, message = client.predict("fake", "nope", api_name="/unload_model")
    assert message.startswith("Not unloaded: profile 'fake' has no model for role 'nope'")


def test_bad_flags_are_refused_with_a_message():
    import subprocess
    import sys

    from tests.app_process import ROOT

    out = subprocess.run([sys.executable, "app.py", "--profile", "nope"], cwd=str(ROOT), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and "unknown profile 'nope'; choose one of" in out.stderr
    out = subprocess.run([sys.executable, "app.py", "--port", "70000"], cwd=str(ROOT), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and "--port must be between 1 and 65535" in out.stderr


def test_profile_banner_marks_random_weight_roles(fake_ctx):
    import app

    from backends.base import ModelSpec
    from workbench.context import AppContext

    def warned(ctx, name):
        text = app.profile_banner(ctx, name)
        assert "Random weights: outputs are not meaningful" in text
        return text.split("meaningful** for: ", 1)[1].split(". ", 1)[0].split(", ")

    # offline renders and scores with the trained world models (issue 20): no random-weights warning
    assert "Random weights" not in app.profile_banner(fake_ctx, "offline")
    # the tabs' random roles; not `vit`, which no tab runs (Prompt-CAM runs on the trained `promptcam` backbone)
    offline = fake_ctx.profiles["offline"]
    mixed = offline.with_role("vit", ModelSpec.from_dict("vit", {"backend": "vit", "model": "tiny:vit",
                                                                  "random_weights": True}))
    mixed = mixed.with_role("image_text", ModelSpec.from_dict("image_text", {"backend": "clip-scorer", "model":
                                                                             "tiny:clip", "random_weights": True}))
    ctx = AppContext(fake_ctx.manager, {"offline": mixed}, "offline")
    assert warned(ctx, "offline") == ["image_text"]


def test_streamlit_sees_no_asgi_app_in_app_py():
    """`streamlit run app.py` serves a FastAPI/Starlette object it finds bound to a name in the file instead of the
    Streamlit front end (it exited with 'Attribute "app" not found'); app.py binds none."""
    from pathlib import Path

    from streamlit.web.server.app_discovery import discover_asgi_app

    assert discover_asgi_app(Path(__file__).resolve().parent.parent / "app.py").is_asgi_app is False
