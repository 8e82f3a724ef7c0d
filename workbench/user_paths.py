"""Folders and names typed into the UI, confined to the app's own data folders.

A text box that takes a folder (a LoRA adapter, a Prompt-CAM checkpoint, a T2V run to reopen) is read by the
server, so `../../etc` or `/home/someone/.ssh` must not reach the disk. `confined_folder` resolves what was
typed (relative paths against the repository root, as profiles name shipped files; symlinks followed) and
accepts it only inside one of the allowed roots: the shipped assets, the app's data folder (`workbench.storage
.data_dir`), and folders a server operator lists in WORKBENCH_USER_PATHS (os.pathsep-separated). The Python API
and the CLI take any path; only the UI's flows call this.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.text import preview

ROOT = Path(__file__).resolve().parent.parent
USER_PATHS_ENV = "WORKBENCH_USER_PATHS"


def user_roots() -> list[Path]:
    """The folders a UI path may point into: assets/, the data folder, then WORKBENCH_USER_PATHS."""
    from workbench.storage import data_dir

    roots = [ROOT / "assets", data_dir().path]
    roots += [Path(p).expanduser() for p in os.environ.get(USER_PATHS_ENV, "").split(os.pathsep) if p.strip()]
    return [r.resolve() for r in roots]


def confined_folder(value: object, what: str, roots: list[Path] | None = None) -> Path:
    """The folder `value` names, resolved, if it lies inside one of `roots` (default `user_roots()`); else a
    ValueError naming `what` and the allowed folders. Does not check that the folder exists."""
    text = str(value or "").strip()
    if not text:
        raise ValueError(f"{what} is empty")
    if "\x00" in text:
        raise ValueError(f"{what} must not contain a NUL character")
    allowed = roots if roots is not None else user_roots()
    path = Path(text).expanduser()
    resolved = (path if path.is_absolute() else ROOT / path).resolve()
    for root in allowed:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return resolved
    names = ", ".join(str(r) for r in allowed)
    raise ValueError(f"{what} '{preview(text)}' is outside the folders this app reads from ({names}); copy it "
                     f"into one of them, or have the server's operator add its folder to {USER_PATHS_ENV}")
