"""Shared fixtures: tiny random models built in code, the fake profile, and one session-wide manager for the
real offline models (loaded once per test run). Nothing here downloads."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.ci_skips", "pytester"]  # ci_skips: in CI, a skipped browser/torchrun/real-model test fails

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Under xdist (the README's `-n 2`) each worker computes with one thread: two workers with two OpenMP threads each
# on 2 cores spin-wait on each other (a real-model test ran 10-30 times slower so, not 2 times).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"


def pytest_configure(config):
    """WORKBENCH_DETERMINISTIC=1 (set by .ci/run for its second pass over the `numerical` tests): torch raises on
    any op without a deterministic implementation, so a tolerance that only holds with one kernel choice fails."""
    if os.environ.get("WORKBENCH_DETERMINISTIC") == "1":
        import torch

        torch.use_deterministic_algorithms(True)
    if os.environ.get("PYTEST_XDIST_WORKER") and "torch" in sys.modules:  # imported before this file set the threads
        sys.modules["torch"].set_num_threads(1)


def pytest_collection_modifyitems(session, config, items):
    """The files that hold `slow` or `browser` tests run first (each file keeps its own order). With the README's
    `-n 2 --dist loadfile`, xdist hands files to its two workers in this order, so the longest files start early
    instead of leaving one worker busy for minutes after the other has finished."""
    heavy = {item.path for item in items if item.get_closest_marker("slow") or item.get_closest_marker("browser")}
    items.sort(key=lambda item: item.path not in heavy)


@pytest.fixture(scope="session")
def profiles():
    from workbench.profiles import load_profiles

    return load_profiles()


@pytest.fixture()
def manager():
    """A fresh CPU manager with a generous budget (tests that check eviction make their own)."""
    from workbench.models import ModelManager

    m = ModelManager(budget_bytes=8 * 1024**3, device="cpu")
    yield m
    m.unload_all()


@pytest.fixture()
def fake_ctx(profiles):
    from workbench.context import AppContext
    from workbench.models import ModelManager

    ctx = AppContext(manager=ModelManager(budget_bytes=8 * 1024**3, device="cpu"), profiles=profiles,
                     default_profile="fake")
    yield ctx
    ctx.manager.unload_all()


@pytest.fixture(scope="session")
def real_manager():
    """One manager for every real-model test in the run: the offline models load once (SmolLM2 ~15 s,
    Gemma ~40 s, MiniLM ~3 s on 2 cores)."""
    from workbench.models import ModelManager

    m = ModelManager(budget_bytes=16 * 1024**3, device="cpu")
    yield m
    m.unload_all()


@pytest.fixture(scope="session")
def offline_profile(profiles):
    return profiles["offline"]


@contextlib.contextmanager
def gradio_client_for(ctx):
    """A gradio_client Client on the whole app (every tab) built over `ctx`, served in-process."""
    from gradio_client import Client

    import app
    from tests.app_process import free_port

    demo = app.build_demo(ctx)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


@pytest.fixture()
def client(fake_ctx):
    """A gradio_client Client on the whole app (every tab) built over the fake profile, served in-process."""
    with gradio_client_for(fake_ctx) as c:
        yield c


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian Chromium (Playwright) per test module; skips (fails in CI) without it. Module scope, not
    session: Playwright's sync API keeps an event loop open in this thread while the browser lives, and modules
    that drive Playwright themselves (screenshots, studies) must find none."""
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium_path, launch

    chromium_path()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def browser_app(chromium):
    """`python app.py --profile fake` in a subprocess, shared by every browser test: (browser, url)."""
    from tests.app_process import start_app, stop

    proc, url, _ = start_app("--profile", "fake")
    try:
        yield chromium, url
    finally:
        stop(proc)


@pytest.fixture()
def app_page(browser_app):
    """A fresh page on the shared app (see tests/browser.py for the helpers that go with it)."""
    from tests.browser import TIMEOUT_MS

    browser, url = browser_app
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url, wait_until="domcontentloaded")
    yield page
    page.close()


POSTGRES_ENV = "WORKBENCH_TEST_POSTGRES"  # an admin URL of a PostgreSQL server the tests may create databases on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def study_db_url(request, tmp_path, monkeypatch):
    """A fresh, empty studies database, once on SQLite and once on PostgreSQL, also set as DATABASE_URL (what a
    deployment sets). PostgreSQL needs WORKBENCH_TEST_POSTGRES (e.g. postgresql+psycopg://postgres@/postgres?host=
    /var/run/postgresql; .ci/run starts Debian's server and sets it): each test gets its own database, dropped
    after. Without it the PostgreSQL run skips locally and fails in CI (tests/ci_skips.py)."""
    if request.param == "sqlite":
        from workbench.studies.store import sqlite_url

        url = sqlite_url(tmp_path / "studies.sqlite")
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
        return
    from tests.ci_skips import missing_tool

    admin_url = os.environ.get(POSTGRES_ENV, "").strip()
    if not admin_url:
        missing_tool(f"no PostgreSQL server for the studies tests: set {POSTGRES_ENV} to an admin URL "
                     f"(.ci/run installs and starts Debian's postgresql)")
    import uuid

    from sqlalchemy import create_engine, make_url

    name = f"wb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield url
    finally:
        from workbench.studies import store

        cached = store._stores.pop(url, None)
        if cached is not None:
            cached.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def spec(role: str, backend: str, model: str, **options):
    """A ModelSpec for tests: `spec("chat", "transformers-lm", "tiny:causal-lm")`."""
    from backends.base import ModelSpec

    return ModelSpec.from_dict(role, {"backend": backend, "model": model, "options": options})


@pytest.fixture()
def make_spec():
    return spec
