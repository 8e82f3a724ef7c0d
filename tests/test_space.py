"""`python -m workbench.space check` (no network) and `--push` against a stand-in HfApi."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import space

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path):
    """A minimal copy of what the Space needs: README (front matter), requirements.txt, app.py, .gitignore."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("README.md", "requirements.txt", "app.py", ".gitignore", ".spaceignore"):
        shutil.copy(ROOT / name, root / name)
    return root


def set_front_matter(root: Path, old: str, new: str) -> None:
    readme = root / "README.md"
    text = readme.read_text()
    assert old in text
    readme.write_text(text.replace(old, new, 1))


def test_check_passes_on_this_repository():
    report = space.check(ROOT)
    assert report.ok, report.errors
    assert report.front_matter["sdk"] == "gradio" and report.front_matter["app_file"] == "app.py"
    assert {"README.md", "app.py", "requirements.txt", "assets/profiles.yaml"} <= set(report.files)
    assert not [f for f in report.files if f.startswith(("tests/", ".venv/", ".git/", ".import_linter_cache/"))]


def test_the_command_line_passes_offline():
    out = subprocess.run([sys.executable, "-m", "workbench.space", "check"], capture_output=True, text=True,
                         cwd=str(ROOT), env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok: ready to push" in out.stdout


@pytest.mark.parametrize("old,new,message", [
    ("sdk_version: 6.31.0", "sdk_version: 7.1.0", "sdk_version 7.1.0 does not satisfy requirements.txt"),
    ("sdk: gradio", "sdk: streamlit", "app.py is a Gradio app"),
    ("sdk: gradio", "sdk: gradoi", "sdk must be one of"),
    ('python_version: "3.11"', "python_version: 3.10", "python_version must be a quoted string"),
    ('python_version: "3.11"', 'python_version: "2.7"', "python_version must be one of"),
    ("app_file: app.py", "app_file: main.py", "app_file 'main.py' does not exist"),
    ("app_file: app.py\n", "", "app_file is missing"),
    ("sdk: gradio\n", "sdk: gradio\n  bad: [\n", "not valid YAML"),
])
def test_a_broken_front_matter_fails_with_a_clear_message(repo, old, new, message):
    set_front_matter(repo, old, new)
    report = space.check(repo)
    assert not report.ok
    assert any(message in e for e in report.errors), report.errors
    out = subprocess.run([sys.executable, "-m", "workbench.space", "check", "--root", str(repo)],
                         capture_output=True, text=True, cwd=str(ROOT))
    assert out.returncode == 1 and message in out.stdout and "FAILED" in out.stdout


def test_no_front_matter_at_all(repo):
    (repo / "README.md").write_text("# Prompt Workbench\n")
    assert any("does not start with a front matter block" in e for e in space.check(repo).errors)


@pytest.mark.parametrize("line,message", [
    ("-e .", "editable installs"),
    ("mypkg @ file:///home/me/mypkg", "local path or file:// URL"),
    ("./wheels/thing-1.0-py3-none-any.whl", "local path or file:// URL"),
    ("--extra-index-url http://localhost:8080/simple", "local package index"),
])
def test_local_only_requirements_fail(repo, line, message):
    with open(repo / "requirements.txt", "a") as fh:
        fh.write(line + "\n")
    assert any(message in e for e in space.check(repo).errors)


@pytest.mark.parametrize("old,new,message", [
    ("torch==2.13.0", "torch>=2.5", "pin torch exactly"),
    ("torch==2.13.0", "torch==2.13.0+cpu", "CPU-only torch build"),
    ("torch==2.13.0\n", "", "does not name torch"),
    ("spaces\n", "", "does not name 'spaces'"),
])
def test_torch_and_spaces_pins(repo, old, new, message):
    path = repo / "requirements.txt"
    path.write_text(path.read_text().replace(old, new, 1))
    assert any(message in e for e in space.check(repo).errors)


def test_dev_requirements_may_be_editable_but_not_included_by_requirements():
    assert any(line.strip() == "-e ." for line in (ROOT / "requirements-dev.txt").read_text().splitlines())
    assert not [e for e in space.check(ROOT).errors if "editable" in e]


def test_venvs_caches_databases_and_big_files_are_refused_until_ignored(repo):
    (repo / "myenv" / "site-packages").mkdir(parents=True)
    (repo / "myenv" / "site-packages" / "x.py").write_text("")
    (repo / "studies.sqlite").write_bytes(b"SQLite format 3\0")
    with open(repo / "big.bin", "wb") as fh:
        fh.truncate(space.MAX_PLAIN_FILE_BYTES + 1)  # sparse: no real disk use
    errors = space.check(repo).errors
    assert any("site-packages/" in e for e in errors)
    assert any("studies.sqlite" in e and "study databases" in e for e in errors)
    assert any("big.bin" in e and "10 MiB" in e for e in errors)
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    with open(repo / ".spaceignore", "a") as fh:
        fh.write("myenv/\n*.sqlite\n")
    report = space.check(repo)
    assert report.ok, report.errors
    assert "big.bin" in report.files and "studies.sqlite" not in report.files


def test_gitignore_nested_and_negated_patterns(repo):
    (repo / "cachey").mkdir()
    (repo / "cachey" / ".gitignore").write_text("*\n")
    (repo / "cachey" / "data.json").write_text("{}")
    (repo / "keep").mkdir()
    (repo / "keep" / "a.log").write_text("")
    (repo / "keep" / "b.log").write_text("")
    with open(repo / ".gitignore", "a") as fh:
        fh.write("*.log\n!b.log\n")
    files = space.upload_files(repo)
    assert not [f for f in files if f.startswith("cachey/")]
    assert "keep/b.log" in files and "keep/a.log" not in files


class StubApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/spaces/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))


def test_push_creates_a_gradio_space_and_uploads_only_the_checked_files():
    api = StubApi()
    url = space.push("someone/workbench", ROOT, api=api)
    assert url == "https://huggingface.co/spaces/someone/workbench"
    (c_name, c_repo, c_kw), (u_name, u_repo, u_kw) = api.calls
    assert (c_name, c_repo) == ("create_repo", "someone/workbench")
    assert c_kw["repo_type"] == "space" and c_kw["space_sdk"] == "gradio" and c_kw["exist_ok"] is True
    assert u_name == "upload_folder" and u_kw["repo_type"] == "space" and u_kw["folder_path"] == str(ROOT)
    assert u_kw["allow_patterns"] == space.check(ROOT).files
    assert "app.py" in u_kw["allow_patterns"] and not [p for p in u_kw["allow_patterns"] if p.startswith("tests/")]


def test_push_refuses_a_failing_check_and_a_bad_repo_name(repo):
    api = StubApi()
    set_front_matter(repo, "sdk_version: 6.31.0", "sdk_version: 7.1.0")
    with pytest.raises(ValueError, match="the Space check failed"):
        space.push("someone/workbench", repo, api=api)
    with pytest.raises(ValueError, match="user/space-name"):
        space.push("no-slash", ROOT, api=api)
    assert api.calls == []


def test_cli_push_uses_huggingface_hub(monkeypatch, capsys):
    import huggingface_hub

    made = []

    class Api(StubApi):
        def __init__(self, token=None):
            super().__init__()
            made.append(self)

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    assert space.main(["check", "--push", "--repo", "someone/workbench"]) == 0
    assert [c[0] for c in made[0].calls] == ["create_repo", "upload_folder"]
    assert "pushed" in capsys.readouterr().out


def test_cli_push_without_repo_is_refused(monkeypatch, capsys):
    monkeypatch.delenv("SPACE_REPO", raising=False)
    assert space.main(["check", "--push"]) == 2
    assert "--push needs --repo" in capsys.readouterr().err
