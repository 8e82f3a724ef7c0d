"""Persistent storage on Spaces: /data when it exists and is writable, else a local folder and a banner."""

from __future__ import annotations

import os

import pytest

from workbench import storage


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("SPACE_ID", "DATABASE_URL", "WORKBENCH_STUDY_DB", "WORKBENCH_DATA_DIR", "WORKBENCH_CACHE", "HF_HOME"):
        monkeypatch.setenv(name, "")  # recorded, so whatever a test sets is undone afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("WORKBENCH_PERSISTENT_ROOT", str(tmp_path / "absent"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return monkeypatch


def test_data_dir_is_under_data_when_it_is_writable(clean_env, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    clean_env.setenv("WORKBENCH_PERSISTENT_ROOT", str(root))
    clean_env.setenv("SPACE_ID", "someone/workbench")
    data = storage.data_dir()
    assert data.persistent and data.path == root / "prompt-workbench" and data.path.is_dir()
    assert storage.study_db_path() == root / "prompt-workbench" / "studies.sqlite"
    assert storage.restart_warning() == ""


def test_caches_move_to_data_on_a_space(clean_env, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    clean_env.setenv("WORKBENCH_PERSISTENT_ROOT", str(root))
    clean_env.setenv("SPACE_ID", "someone/workbench")
    storage.configure_storage()
    assert os.environ["WORKBENCH_CACHE"] == str(root / "prompt-workbench" / "cache")
    assert os.environ["HF_HOME"] == str(root / "prompt-workbench" / "hf_home")


def test_a_space_without_data_warns_that_nothing_survives_a_restart(clean_env, tmp_path):
    clean_env.setenv("SPACE_ID", "someone/workbench")
    data = storage.configure_storage()
    assert data is not None and not data.persistent
    assert data.path == tmp_path / "xdg" / "prompt-workbench"
    assert "WORKBENCH_CACHE" not in os.environ  # nothing to gain from moving caches to a disk that is wiped
    assert "will not survive a restart" in storage.restart_warning()


def test_off_spaces_a_local_folder_and_no_banner(clean_env, tmp_path):
    data = storage.data_dir()
    assert data.persistent and data.path == tmp_path / "xdg" / "prompt-workbench"
    assert storage.configure_storage() is None and storage.restart_warning() == ""
    clean_env.setenv("WORKBENCH_STUDY_DB", str(tmp_path / "mine.sqlite"))
    assert storage.study_db_path() == tmp_path / "mine.sqlite"
    assert storage.study_database_url() == f"sqlite:///{tmp_path / 'mine.sqlite'}"
    clean_env.setenv("DATABASE_URL", "postgresql://db/studies")
    assert storage.study_database_url() == "postgresql://db/studies"


def test_read_only_data_is_not_used(clean_env, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    root.chmod(0o500)
    try:
        clean_env.setenv("WORKBENCH_PERSISTENT_ROOT", str(root))
        clean_env.setenv("SPACE_ID", "someone/workbench")
        if os.access(root, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        assert not storage.data_dir().persistent
    finally:
        root.chmod(0o700)


def test_the_banner_is_in_the_gradio_header_on_a_space_without_data(clean_env):
    import app
    from workbench.context import build_context

    clean_env.setenv("SPACE_ID", "someone/workbench")
    demo = app.build_demo(build_context(profile="fake", device="cpu"))
    warnings = [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "storage-warning"]
    assert len(warnings) == 1 and "will not survive a restart" in warnings[0]["props"]["value"]
    clean_env.delenv("SPACE_ID")
    demo = app.build_demo(build_context(profile="fake", device="cpu"))
    assert not [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "storage-warning"]


def test_export_folders_are_private_and_old_ones_pruned(tmp_path, monkeypatch):
    import os
    import tempfile
    import time

    from workbench.storage import EXPORT_ROOT_NAME, export_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = export_folder("t2i-round-")
    (old / "t2i_round.zip").write_bytes(b"zip")
    os.utime(old, (time.time() - 7 * 3600,) * 2)  # older than the six hours a download is kept
    recent = export_folder("shift-export-")
    fresh = export_folder("study-export-")
    assert not old.exists() and recent.exists() and fresh.exists()
    assert fresh.parent == tmp_path / EXPORT_ROOT_NAME and fresh.name.startswith("study-export-")
    assert (fresh.stat().st_mode & 0o777) == 0o700  # study exports are not readable by other users
