"""A pytest plugin (loaded by tests/conftest.py): in CI, a skipped test that CI must run is a failure.

Locally, a browser test skips when Debian's chromium is missing and the torchrun test skips when torchrun is not
beside the interpreter. In CI (environment variable CI set, as every CI service and .ci/run do) the same skip
would hide that the check never ran, so tests marked `browser`, `torchrun`, `real_models` or `postgres` that skip are
reported as failed, with the skip's reason."""

from __future__ import annotations

import os

import pytest

MUST_RUN_IN_CI = ("browser", "torchrun", "real_models", "postgres")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tool(message: str) -> None:
    """Skip locally, fail in CI (also for tests without one of the markers)."""
    if in_ci():
        pytest.fail(f"{message} (CI must run this test, so a missing tool fails it)", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()):
        return
    if hasattr(report, "wasxfail"):  # an xfail is not a hidden skip
        return
    marker = next((m for m in MUST_RUN_IN_CI if item.get_closest_marker(m)), None)
    if marker is None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"a '{marker}' test was skipped in CI, which must run it: {reason}"
