"""The CI guard (tests/ci_skips.py): a browser/torchrun/real-model test that skips fails when CI is set."""

import pytest

INNER = """
import pytest

@pytest.mark.browser
def test_browser_without_chromium():
    pytest.skip("chromium is not installed")

@pytest.mark.torchrun
def test_torchrun_missing():
    from tests.ci_skips import missing_tool
    missing_tool("torchrun is not installed beside this Python")

def test_ordinary_skip():
    pytest.skip("not relevant on this platform")
"""


@pytest.mark.parametrize("ci, failed, skipped", [("", 0, 3), ("true", 2, 1), ("0", 0, 3)])
def test_skips_of_tests_ci_must_run_fail_in_ci(pytester, monkeypatch, ci, failed, skipped):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "tests.ci_skips", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(failed=failed, skipped=skipped)
    if failed:
        result.stdout.fnmatch_lines(["*a 'browser' test was skipped in CI, which must run it*chromium is not installed*",
                                     "*torchrun is not installed beside this Python (CI must run this test*"])
