"""Deploying to a Hugging Face Space: a check that needs no network, and the upload.

    python -m workbench.space check                              # front matter, requirements, files to upload
    python -m workbench.space check --push --repo you/workbench  # then create the Space and upload

`check` reads the README's front matter (the Space's configuration), requirements.txt (what the Space
installs) and the files that would be uploaded (the repository less .gitignore'd and .spaceignore'd paths),
and names every problem with what to do. `--push` runs the check first and uploads only if it passes, with
huggingface_hub: `create_repo(..., repo_type="space", space_sdk="gradio")`, then `upload_folder`.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# A Space's git refuses a file over 10 MiB that is not stored with LFS/Xet (the Hub's "large file" limit);
# huggingface_hub uploads such files through LFS, but a later `git push` to the Space would not.
MAX_PLAIN_FILE_BYTES = 10 * 1024**2
MAX_FILE_BYTES = 50 * 1024**3  # the Hub's hard per-file limit, LFS or not
SDKS = ("gradio", "streamlit", "docker", "static")
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13")  # >= pyproject's requires-python, and built by Spaces
# Never uploaded: local environments, caches, study databases and run outputs.
FORBIDDEN_DIRS = {".venv", "venv", "env", "site-packages", "__pycache__", ".pytest_cache", ".cache", "hf_home",
                  ".import_linter_cache", ".mypy_cache", ".ruff_cache", "node_modules", ".git"}
FORBIDDEN_SUFFIXES = (".sqlite", ".sqlite3", ".db", ".db-journal", ".pyc")


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # what --push uploads, relative to the root
    upload_bytes: int = 0
    front_matter: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self) -> str:
        lines = [f"error: {e}" for e in self.errors] + [f"note: {n}" for n in self.notes]
        lines.append(f"ok: ready to push ({len(self.files)} files, {self.upload_bytes / 1024**2:.1f} MiB)" if self.ok
                     else f"FAILED: {len(self.errors)} problem(s); nothing was uploaded")
        return "\n".join(lines)


# --------------------------------------------------------------------------- front matter


def read_front_matter(readme: Path) -> dict[str, Any]:
    """The YAML block between the README's first two `---` lines. Raises ValueError when missing/broken."""
    import yaml

    if not readme.exists():
        raise ValueError(f"{readme.name} is missing: a Space reads its configuration from the README's front matter")
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"\A---[ \t]*\n(.*?)\n---[ \t]*(\n|\Z)", text, re.S)
    if not match:
        raise ValueError(f"{readme.name} does not start with a front matter block (a '---' line, YAML, a '---' line)")
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"{readme.name}'s front matter is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{readme.name}'s front matter must be a YAML mapping (key: value lines)")
    return data


def requirement_lines(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    out = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def _pinned(lines: list[tuple[int, str]], name: str) -> tuple[int, str] | None:
    for number, line in lines:
        if re.match(rf"^{re.escape(name)}(\[[^\]]*\])?\s*([<>=!~;@ ]|$)", line, re.I):
            return number, line
    return None


def check_front_matter(root: Path, report: Report) -> None:
    try:
        fm = read_front_matter(root / "README.md")
    except ValueError as exc:
        report.errors.append(str(exc))
        return
    report.front_matter = fm
    sdk = fm.get("sdk")
    if sdk not in SDKS:
        report.errors.append(f"front matter: sdk must be one of {', '.join(SDKS)} (this app: gradio), got {sdk!r}")
    elif sdk != "gradio":
        report.errors.append(f"front matter: sdk is {sdk!r}, but app.py is a Gradio app: use 'sdk: gradio'")
    app_file = fm.get("app_file")
    if not app_file:
        report.errors.append("front matter: app_file is missing (app_file: app.py)")
    elif not (root / str(app_file)).is_file():
        report.errors.append(f"front matter: app_file '{app_file}' does not exist in the repository")
    python = fm.get("python_version")
    if not isinstance(python, str):
        report.errors.append(f"front matter: python_version must be a quoted string like \"3.11\" (YAML reads "
                             f"3.10 as the number 3.1), got {python!r}")
    elif python.rsplit(".", 1)[0] not in PYTHON_VERSIONS and python not in PYTHON_VERSIONS:
        report.errors.append(f"front matter: python_version must be one of {', '.join(PYTHON_VERSIONS)}, "
                             f"got {python!r}")
    version = fm.get("sdk_version")
    if sdk == "gradio":
        if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
            report.errors.append(f"front matter: sdk_version must be a Gradio version like \"6.31.0\", "
                                 f"got {version!r}")
        else:
            _check_gradio_pin(root, version, report)


def _check_gradio_pin(root: Path, version: str, report: Report) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    pin = _pinned(requirement_lines(root / "requirements.txt"), "gradio")
    if pin is None:
        report.notes.append("requirements.txt does not name gradio; the Space installs sdk_version's")
        return
    number, line = pin
    try:
        spec = Requirement(line).specifier
    except InvalidRequirement as exc:
        report.errors.append(f"requirements.txt line {number}: {line!r} is not a valid requirement ({exc})")
        return
    if spec and version not in spec:
        report.errors.append(f"front matter: sdk_version {version} does not satisfy requirements.txt line "
                             f"{number} ({line!r}); the Space installs gradio=={version}: make them agree")


# --------------------------------------------------------------------------- requirements


def check_requirements(root: Path, report: Report, name: str = "requirements.txt", seen: set | None = None) -> None:
    path = root / name
    seen = seen if seen is not None else set()
    if name in seen:
        return
    seen.add(name)
    if not path.exists():
        report.errors.append(f"{name} is missing: the Space installs its packages from requirements.txt")
        return
    lines = requirement_lines(path)
    for number, line in lines:
        where = f"{name} line {number} ({line!r})"
        if line.startswith(("-e", "--editable")):
            report.errors.append(f"{where}: editable installs point at a local checkout; a Space cannot install them")
        elif line.startswith(("-r", "--requirement")):
            include = line.split(None, 1)[1] if " " in line else line[2:]
            check_requirements(root, report, include.strip(), seen)
        elif "file://" in line or re.match(r"^(\.{1,2}/|/|~)", line) or re.search(r"@\s*(\.{1,2}/|/)", line):
            report.errors.append(f"{where}: a local path or file:// URL exists only on this machine")
        elif re.search(r"(--(extra-)?index-url|--find-links|-f)\s+\S*(localhost|127\.0\.0\.1|file:)", line):
            report.errors.append(f"{where}: a local package index is unreachable from a Space")
        elif re.match(r"^torch\b", line, re.I) and ("+cpu" in line or "/whl/cpu" in line):
            report.errors.append(f"{where}: a CPU-only torch build cannot use a Space's GPU; pin the plain version "
                                 f"(PyPI's Linux wheel is the CUDA build)")
        elif re.search(r"/whl/cpu", line):
            report.errors.append(f"{where}: the CPU-only PyTorch index would install torch without CUDA on a Space")
    if name != "requirements.txt":
        return
    torch = _pinned(lines, "torch")
    if torch is None:
        report.errors.append("requirements.txt does not name torch; pin it (torch==X.Y.Z) so the Space builds the "
                             "same version that was tested")
    elif "==" not in torch[1]:
        report.errors.append(f"requirements.txt line {torch[0]} ({torch[1]!r}): pin torch exactly (==): an open "
                             f"range installs whatever CUDA build is newest on the day the Space rebuilds")
    else:
        report.notes.append(f"torch: {torch[1]} installs PyPI's Linux wheel on the Space, which is the CUDA build "
                            f"(GPU and ZeroGPU hardware); ZeroGPU supports only some torch versions: check the "
                            f"ZeroGPU page before raising it")
    if _pinned(lines, "spaces") is None:
        report.errors.append("requirements.txt does not name 'spaces', which ZeroGPU mode imports (workbench/gpu.py)")


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class _Pattern:
    base: str  # folder of the ignore file, relative to the root ("" for the root)
    glob: str
    negate: bool
    dir_only: bool
    anchored: bool


def _read_patterns(path: Path, base: str) -> list[_Pattern]:
    out = []
    if not path.is_file():
        return out
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        out.append(_Pattern(base, line.lstrip("/"), negate, dir_only, anchored))
    return out


def _ignored(rel: str, is_dir: bool, patterns: list[_Pattern]) -> bool:
    verdict = False
    for p in patterns:
        if p.base and not rel.startswith(p.base + "/"):
            continue
        sub = rel[len(p.base) + 1:] if p.base else rel
        if p.dir_only and not is_dir:
            continue
        target = sub if p.anchored else sub.rsplit("/", 1)[-1]
        if fnmatch.fnmatchcase(target, p.glob) or (p.anchored and fnmatch.fnmatchcase(target, p.glob + "/**")):
            verdict = not p.negate
    return verdict


def upload_files(root: Path) -> list[str]:
    """Files `--push` uploads: everything under `root` except .git, what .gitignore files (nested ones too)
    ignore, and what `.spaceignore` (same syntax, at the root) leaves out."""
    patterns = _read_patterns(root / ".spaceignore", "")
    files: list[str] = []

    def walk(folder: Path, rel: str, inherited: list[_Pattern]) -> None:
        local = inherited + _read_patterns(folder / ".gitignore", rel)
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.name == ".git":
                continue
            is_dir = entry.is_dir() and not entry.is_symlink()
            if _ignored(child, is_dir, local + patterns):
                continue
            if is_dir:
                walk(entry, child, local)
            else:
                files.append(child)

    walk(root, "", [])
    return files


def _lfs_patterns(root: Path) -> list[str]:
    path = root / ".gitattributes"
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()
            if "filter=lfs" in line and line.strip() and not line.startswith("#")]


def check_files(root: Path, report: Report) -> None:
    files = upload_files(root)
    report.files = files
    lfs = _lfs_patterns(root)
    for rel in files:
        parts = rel.split("/")
        bad_dir = next((p for p in parts[:-1] if p in FORBIDDEN_DIRS), None)
        if bad_dir:
            report.errors.append(f"would upload '{rel}': '{bad_dir}/' is a local environment or cache; add it to "
                                 f".gitignore or .spaceignore")
            continue
        if rel.endswith(FORBIDDEN_SUFFIXES):
            report.errors.append(f"would upload '{rel}': study databases and compiled files stay local; add it to "
                                 f".gitignore or .spaceignore")
            continue
        size = (root / rel).stat().st_size
        report.upload_bytes += size
        if size > MAX_FILE_BYTES:
            report.errors.append(f"'{rel}' is {size / 1024**3:.1f} GiB, over the Hub's 50 GiB per-file limit")
        elif size > MAX_PLAIN_FILE_BYTES and not any(fnmatch.fnmatchcase(parts[-1], p) or fnmatch.fnmatchcase(rel, p)
                                                     for p in lfs):
            report.errors.append(f"'{rel}' is {size / 1024**2:.1f} MiB, over the Hub's 10 MiB limit for a file not "
                                 f"stored with LFS: track it in .gitattributes (filter=lfs) or leave it out")
    for needed in ("README.md", "requirements.txt", str(report.front_matter.get("app_file") or "app.py")):
        if needed not in files:
            report.errors.append(f"'{needed}' would not be uploaded (ignored): the Space needs it")


def check(root: str | Path = ROOT) -> Report:
    root = Path(root).resolve()
    report = Report()
    check_front_matter(root, report)
    check_requirements(root, report)
    check_files(root, report)
    return report


# --------------------------------------------------------------------------- push


def push(repo_id: str, root: str | Path = ROOT, *, private: bool = False, token: str | None = None,
         api: Any = None, report: Report | None = None) -> str:
    """Create the Space (if new) and upload the checked files. Raises ValueError when the check fails.
    `api`: an `huggingface_hub.HfApi` (a stand-in in tests). Returns the Space's URL."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id or ""):
        raise ValueError(f"--repo must be 'user/space-name', got {repo_id!r}")
    root = Path(root).resolve()
    report = report or check(root)
    if not report.ok:
        raise ValueError("the Space check failed; fix these first:\n" + "\n".join(report.errors))
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type="space", allow_patterns=list(report.files),
                      commit_message="Deploy Prompt Workbench (python -m workbench.space check --push)")
    return str(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.space", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check"], help="check the repository for a Space (no network)")
    parser.add_argument("--root", default=str(ROOT), help="repository folder (default: this checkout)")
    parser.add_argument("--push", action="store_true", help="after a passing check, create the Space and upload")
    parser.add_argument("--repo", default=os.environ.get("SPACE_REPO"), help="user/space-name (for --push)")
    parser.add_argument("--private", action="store_true", help="create the Space private (for --push)")
    parser.add_argument("--list", action="store_true", help="print the files that would be uploaded")
    args = parser.parse_args(argv)
    report = check(args.root)
    if args.list:
        print("\n".join(report.files))
    print(report.text())
    if not report.ok:
        return 1
    if args.push:
        if not args.repo:
            print("error: --push needs --repo user/space-name", file=sys.stderr)
            return 2
        try:
            url = push(args.repo, args.root, private=args.private, report=report)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"pushed {len(report.files)} files to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
