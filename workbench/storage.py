"""Where the workbench keeps data that should outlive a restart: caches and the studies database.

On a Hugging Face Space with persistent storage, `/data` exists and is writable: the GGUF->safetensors copies
(`WORKBENCH_CACHE`), the hub cache (`HF_HOME`) and the studies database go there. Without it a Space's disk
is wiped on every restart, and the header says so (`restart_warning`). Off Spaces a local folder is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PERSISTENT_ROOT = "/data"  # what Spaces mounts when persistent storage is on
STUDY_DB_NAME = "studies.sqlite"


@dataclass(frozen=True)
class DataDir:
    path: Path
    persistent: bool  # survives a Space restart (the persistent volume); False for a local folder on a Space


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def data_dir() -> DataDir:
    """`/data/prompt-workbench` when /data exists and is writable (WORKBENCH_PERSISTENT_ROOT overrides the
    root, for tests), else WORKBENCH_DATA_DIR, else ~/.local/share/prompt-workbench. Created on first call."""
    root = Path(os.environ.get("WORKBENCH_PERSISTENT_ROOT", PERSISTENT_ROOT))
    if _writable(root):
        path, persistent = root / "prompt-workbench", True
    else:
        local = os.environ.get("WORKBENCH_DATA_DIR") or (
            Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "prompt-workbench")
        # Off a Space a local disk keeps its files; on a Space without /data the container's disk does not.
        path, persistent = Path(local), not on_space()
    path.mkdir(parents=True, exist_ok=True)
    return DataDir(path=path, persistent=persistent)


def study_db_path() -> Path:
    """The studies SQLite file: WORKBENCH_STUDIES_DB (or WORKBENCH_STUDY_DB) when set, else studies.sqlite in `data_dir()`.
    (A DATABASE_URL, when set, is the study store's own business and wins over this path.)"""
    env = os.environ.get("WORKBENCH_STUDIES_DB") or os.environ.get("WORKBENCH_STUDY_DB")
    return Path(env).expanduser() if env else data_dir().path / STUDY_DB_NAME


def study_database_url() -> str:
    """The studies database as an SQLAlchemy URL: DATABASE_URL when set, else SQLite at `study_db_path()`."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{study_db_path()}"


def configure_storage() -> DataDir | None:
    """On a Space with /data: point the caches there (WORKBENCH_CACHE, HF_HOME), unless the Space's settings
    already set them. Call before huggingface_hub is imported (it reads HF_HOME once). Returns the data dir on
    a Space, None elsewhere (local runs keep their usual caches)."""
    if not on_space():
        return None
    data = data_dir()
    if data.persistent:
        os.environ.setdefault("WORKBENCH_CACHE", str(data.path / "cache"))
        os.environ.setdefault("HF_HOME", str(data.path / "hf_home"))
    return data


def restart_warning() -> str:
    """The header banner on a Space without persistent storage; empty elsewhere."""
    if not on_space() or data_dir().persistent:
        return ""
    return ("⚠️ **This Space has no persistent storage: studies, caches and downloaded models will not survive "
            "a restart.** Turn on persistent storage in the Space's settings to keep them (they then go under "
            "`/data`).")


EXPORT_ROOT_NAME = "prompt-workbench-exports"
EXPORT_MAX_AGE_S = 6 * 3600  # downloads are copied by the front end when served; older folders are pruned


def export_folder(prefix: str, max_age_s: float = EXPORT_MAX_AGE_S) -> Path:
    """A fresh folder for one download (a round ZIP, an analysis export) under the system temp directory's
    `prompt-workbench-exports/`. Folders older than `max_age_s` are removed first, so a long-running server
    does not fill its disk with old downloads (Gradio and Streamlit serve their own copy of a file)."""
    import shutil
    import tempfile
    import time

    root = Path(tempfile.gettempdir()) / EXPORT_ROOT_NAME
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - max_age_s
    for old in root.iterdir():
        try:
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # another process removed it first
            continue
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
