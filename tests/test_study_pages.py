"""The participant page (/study) shows only the study and stays small; the researcher page (/research) holds the
dashboard behind the token; `--study-only` serves just those two; the page, /config and /gradio_api/info are
built once per Blocks (pages/_serving.py, workbench/serving.py). Figures from 50 arrivals at once are in bench/bench_arrivals.py."""

from __future__ import annotations

import json
import sys
import urllib.request

import pytest

TOKEN = "test-researcher-token-5c1d"
CODE = "REFINER-AB"
# Budgets (bytes) for what every participant's browser and client fetch on arrival; measured 51.6 KB and
# 127.5 KB. The workbench's /config was 604 KB before the lean config; it is ~410 KB now.
PARTICIPANT_CONFIG_BUDGET = 64_000
PARTICIPANT_INFO_BUDGET = 140_000
PARTICIPANT_PAGE_BUDGET = 200_000
WORKBENCH_CONFIG_BUDGET = 450_000


def _ids(config: dict) -> set[str]:
    return {c["props"].get("elem_id") for c in config["components"] if c["props"].get("elem_id")}


def _types(config: dict) -> set[str]:
    return {c["type"] for c in config["components"]}


def test_the_participant_page_holds_only_the_study_and_the_researcher_page_only_the_dashboard(fake_ctx):
    from pages import study_pages

    participant = study_pages.participant_blocks(fake_ctx).get_config_file()
    ids = _ids(participant)
    assert {"study-code", "study-join", "study-agree", "study-start", "study-submit-task"} <= ids
    assert not {"profile-choice", "profile-banner", "study-token", "study-login", "study-export"} & ids
    assert not {"tabs", "tabitem", "accordion"} & _types(participant)  # no other tab, no dashboard accordion
    assert "Researcher" not in json.dumps(participant, default=str)
    assert {d["api_name"] for d in participant["dependencies"] if d["api_visibility"] == "public"} == {
        "studies_join", "studies_consent", "studies_current", "studies_submit_task", "studies_submit_choice",
        "studies_submit_questionnaire"}

    researcher = study_pages.researcher_blocks(fake_ctx).get_config_file()
    ids = _ids(researcher)
    assert {"study-token", "study-login", "study-export", "study-free-text"} <= ids
    assert not {"study-code", "study-join", "profile-choice"} & ids


def test_lean_config_drops_only_what_no_client_reads():
    from workbench.serving import lean_config

    info = {"type": "string"}
    config = {"components": [
        {"id": 1, "api_info": info, "api_info_as_input": dict(info), "api_info_as_output": dict(info),
         "example_inputs": "Hello!!"},
        {"id": 2, "api_info": info, "api_info_as_input": {"type": "object"}, "example_inputs": {"path": "x.png"}},
        {"id": 3, "type": "row"},
    ]}
    lean_config(config)
    assert config["components"][0] == {"id": 1, "api_info": info}
    assert config["components"][1] == {"id": 2, "api_info": info, "api_info_as_input": {"type": "object"}}
    assert config["components"][2] == {"id": 3, "type": "row"}


def test_the_route_cache_builds_each_answer_once_per_key():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from workbench.serving import cache_static_routes

    calls = []

    def config(request):
        calls.append(("config", request.headers.get("host")))
        return JSONResponse({"root": f"http://{request.headers.get('host')}", "n": len(calls)})

    def other(request):
        calls.append(("other", None))
        return JSONResponse({"n": len(calls)})

    def login(request):
        calls.append(("cookie", None))
        response = JSONResponse({"n": len(calls)})
        response.set_cookie("access-token", "x")
        return response

    inner = Starlette(routes=[Route("/study/config", config, methods=["GET", "POST"]), Route("/other", other),
                              Route("/config", login)])
    client = TestClient(cache_static_routes(inner, ["/study", "/"]))
    first = client.get("/study/config").json()
    assert client.get("/study/config").json() == first and calls == [("config", "testserver")]
    assert client.get("/study/config", headers={"host": "elsewhere"}).json()["root"] == "http://elsewhere"
    assert client.post("/study/config").json()["n"] == 3  # only GET is cached
    client.get("/other"), client.get("/other")
    assert calls.count(("other", None)) == 2  # not a page, /config or /gradio_api/info: never cached
    client.get("/config"), client.get("/config")
    assert calls.count(("cookie", None)) == 2  # an answer that sets a cookie is never replayed


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`python app.py` on the fake profile: the workbench at /, the participant page at /study, the researcher
    page at /research."""
    from tests.app_process import start_app, stop

    db = tmp_path_factory.mktemp("pages") / "studies.sqlite"
    proc, url, _ = start_app("--profile", "fake", env={"WORKBENCH_STUDIES_DB": str(db),
                                                       "WORKBENCH_RESEARCHER_TOKEN": TOKEN}, timeout=300)
    try:
        yield url
    finally:
        stop(proc)


def test_the_participant_page_is_small_and_runs_the_study(served):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    config = _get(served + "/study/config")
    info = _get(served + "/study/gradio_api/info")
    page = _get(served + "/study/")
    assert len(config) <= PARTICIPANT_CONFIG_BUDGET, len(config)
    assert len(info) <= PARTICIPANT_INFO_BUDGET, len(info)
    assert len(page) <= PARTICIPANT_PAGE_BUDGET, len(page)
    assert b'"title":"Study"' in page.replace(b" ", b"") and b"Prompt Workbench" not in page
    assert len(_get(served + "/config")) <= WORKBENCH_CONFIG_BUDGET
    assert _get(served + "/study/config") == config  # built once, served as the same bytes
    # the link as the README and the start-up lines print it, without the slash, reaches the same page
    assert _get(served + "/study") == page and b"Study dashboard" in _get(served + "/research?x=1")

    participant = Client(served + "/study/", verbose=False)
    joined = participant.predict(CODE, api_name="/studies_join")
    assert joined[0].endswith("consent") and "We record what you type" in joined[2]
    step = participant.predict(True, api_name="/studies_consent")
    assert step[1] == "Step 1 of 5"
    with pytest.raises(ValueError, match="Cannot find a function with `api_name`: /studies_login"):
        participant.predict(TOKEN, api_name="/studies_login")

    researcher = Client(served + "/research/", verbose=False)
    with pytest.raises(AppError, match="Wrong researcher token"):
        researcher.predict("wrong", api_name="/studies_login")
    assert researcher.predict(TOKEN, api_name="/studies_login")["value"] == CODE
    summary, *_ = researcher.predict(TOKEN, CODE, api_name="/studies_dashboard")
    assert "1 participant(s), 0 finished" in summary


def test_study_only_serves_the_participant_page_at_the_root(tmp_path):
    from tests.app_process import start_app, stop

    proc, url, _ = start_app("--profile", "fake", "--study-only",
                             env={"WORKBENCH_STUDIES_DB": str(tmp_path / "s.sqlite")}, timeout=300)
    try:
        root = json.loads(_get(url + "/config"))
        assert "study-code" in _ids(root) and "t2i-prompt" not in _ids(root) and "profile-choice" not in _ids(root)
        assert "study-token" in _ids(json.loads(_get(url + "/research/config")))
    finally:
        stop(proc)


def _participant_script() -> None:
    import streamlit as st

    import app
    from workbench.context import build_context

    @st.cache_resource
    def ctx():
        return app.attach_services(build_context(profile="fake"))

    app.streamlit_study_page(["--participant"])(ctx())


def test_streamlit_serves_the_participant_page_alone(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import app
    from pages import study_pages

    assert app.streamlit_study_page(["--participant"]) is study_pages.render_participant_streamlit
    assert app.streamlit_study_page(["--researcher"]) is study_pages.render_researcher_streamlit
    assert app.streamlit_study_page([]) is None
    monkeypatch.setenv("WORKBENCH_STUDIES_DB", str(tmp_path / "st.sqlite"))
    at = AppTest.from_function(_participant_script, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert [t.key for t in at.text_input] == ["study_code"] and not at.selectbox and not at.tabs
    at.text_input(key="study_code").set_value(CODE)
    at.button(key="study_join").click().run()
    assert any(m.value.startswith("### ") and m.value.endswith("consent") for m in at.markdown)  # the heading
    assert "--participant" in sys.modules["app"].streamlit_study_page.__doc__


def test_new_sessions_share_the_blocks_configs(fake_ctx, monkeypatch):
    """Gradio's session state builds every block's config for each new session (on the event loop): the
    participant page builds each once, and every session still gets its own, equal, writable copy."""
    from gradio.blocks import BlocksConfig
    from gradio.state_holder import SessionState

    from pages import study_pages

    demo = study_pages.participant_blocks(fake_ctx)
    demo.get_config_file()
    built = []
    original = BlocksConfig.config_for_block
    monkeypatch.setattr(BlocksConfig, "config_for_block",
                        staticmethod(lambda *a, **k: built.append(a[0]) or original(*a, **k)))
    first = SessionState(demo)
    n_blocks = len(built)
    sessions = [SessionState(demo) for _ in range(5)]
    assert len(built) == n_blocks  # five more sessions built nothing
    plain = {k: original(k, [], v) for k, v in demo.blocks.items()}
    assert all(s.config_values == plain for s in sessions)
    key = next(k for k, v in first.config_values.items() if "props" in v)
    first._update_value_in_config(key, "changed in one session")
    assert sessions[0].config_values[key]["props"].get("value") != "changed in one session"
