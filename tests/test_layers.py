"""The layers point one way (backends <- workbench <- pages <- app), checked with import-linter on every run,
and the core never probes a backend with hasattr: it asks the backend's declared capabilities."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    exe = Path(sys.executable).with_name("lint-imports")
    return str(exe) if exe.exists() else (shutil.which("lint-imports") or "lint-imports")


def test_import_contracts_hold():
    out = subprocess.run([_lint_imports(), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Layers: pages -> workbench -> backends KEPT" in out.stdout
    assert "Pages reach models only through workbench KEPT" in out.stdout
    assert "Tab packages are independent of each other KEPT" in out.stdout
    assert "Tabs use backends.base types only KEPT" in out.stdout
    assert "The common module imports no tab KEPT" in out.stdout
    assert "The world generator imports no tab and no backend KEPT" in out.stdout


def test_a_wrong_way_import_is_caught(tmp_path):
    """The contract really bites: a copy of the tree with backends importing workbench fails."""
    for package in ("backends", "workbench", "pages"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "backends" / "fake.py", "a") as f:
        f.write("\nfrom workbench.models import ModelManager  # wrong way\n")
    out = subprocess.run([_lint_imports(), "--config", str(tmp_path / "pyproject.toml")], cwd=tmp_path,
                         capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0 and "BROKEN" in out.stdout and "backends.fake -> workbench.models" in out.stdout


def _lint_copy(tmp_path, path: str, line: str) -> str:
    """lint-imports over a copy of the tree with `line` appended to `path`: its output."""
    for package in ("backends", "workbench", "pages"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / path, "a") as f:
        f.write("\n" + line + "\n")
    out = subprocess.run([_lint_imports(), "--config", str(tmp_path / "pyproject.toml")], cwd=tmp_path,
                         capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0, out.stdout
    return out.stdout


def test_a_tab_importing_another_tab_is_caught(tmp_path):
    out = _lint_copy(tmp_path, "workbench/t2v/flows.py", "from workbench.t2i.service import RewriterChoice  # wrong")
    assert "Tab packages are independent of each other BROKEN" in out
    assert "workbench.t2v.flows -> workbench.t2i.service" in out


def test_a_tab_importing_a_backend_module_is_caught(tmp_path):
    out = _lint_copy(tmp_path, "workbench/shift/attribution.py", "from backends.transformers_lm import prefix_cache")
    assert "Tabs use backends.base types only BROKEN" in out
    assert "workbench.shift.attribution -> backends.transformers_lm" in out


def test_the_backend_contract_names_every_backend_module_but_base():
    """A new backend file is covered the day it is added: the forbidden list is every module of backends/ but
    the interface types (and the registry package itself, which tabs never import: checked below)."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = next(c for c in contracts if c["name"] == "Tabs use backends.base types only")["forbidden_modules"]
    modules = {f"backends.{p.stem}" for p in (ROOT / "backends").glob("*.py") if p.stem not in ("__init__", "base")}
    assert set(forbidden) == modules
    tabs = ("t2i", "t2v", "shift", "promptcam", "promptor", "studies", "common")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for tab in tabs for path in (ROOT / "workbench" / tab).rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.match(r"\s*from backends import|\s*import backends\s*$", line)]
    assert offenders == []


def test_the_core_asks_capabilities_instead_of_probing_backends():
    offenders = []
    for path in (ROOT / "workbench").rglob("*.py"):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bhasattr\(", line):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == []


def test_the_world_importing_a_tab_is_caught(tmp_path):
    out = _lint_copy(tmp_path, "workbench/world/render.py", "import workbench.t2i.service  # wrong")
    assert "The world generator imports no tab and no backend BROKEN" in out


PAGES_LINE_BUDGET = 1_323  # issue 19: 35% below the 2,036 lines of pages/ when every tab was written twice


def pages_lines(root: Path = ROOT) -> int:
    return sum(len(p.read_text().splitlines()) for p in (root / "pages").glob("*.py"))


def test_pages_stay_within_their_line_budget():
    """pages/ only draws each tab's page (declared once in workbench/<tab>/page.py) and binds what is per front
    end; a tab written twice again, once per front end, would show here first."""
    assert pages_lines() <= PAGES_LINE_BUDGET, pages_lines()


def test_the_line_budget_catches_a_tab_written_twice(tmp_path):
    shutil.copytree(ROOT / "pages", tmp_path / "pages")
    t2i = (tmp_path / "pages" / "t2i.py").read_text()
    (tmp_path / "pages" / "t2i_twice.py").write_text(t2i * 10)  # a second copy of the tab, widget by widget
    assert pages_lines(tmp_path) > PAGES_LINE_BUDGET
