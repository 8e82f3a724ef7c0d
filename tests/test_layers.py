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


def test_the_core_asks_capabilities_instead_of_probing_backends():
    offenders = []
    for path in (ROOT / "workbench").rglob("*.py"):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bhasattr\(", line):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == []
