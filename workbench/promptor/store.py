"""Per-user Promptor sessions kept on the server under a user-visible resume code, so a conversation survives a page
reload (the Gradio page also keeps the code in the browser's localStorage and resumes by itself) and can be
reopened in the other front end. The state never goes to the browser: a blinded comparison's draft identities
stay here. One JSON file per session in a folder (WORKBENCH_PROMPTOR_SESSIONS, default
~/.cache/prompt-workbench/promptor-sessions), plus an in-memory copy."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from workbench.promptor.agent import StateError, check_state

_CODE = re.compile(r"^[a-z0-9]{10}$")


def default_folder() -> Path:
    env = os.environ.get("WORKBENCH_PROMPTOR_SESSIONS")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "prompt-workbench")
    return base / "promptor-sessions"


def check_code(code: Any) -> str:
    code = (code or "").strip().lower() if isinstance(code, str) else ""
    if not _CODE.match(code):
        raise ValueError(f"resume code must be 10 letters and digits (shown in the side panel), got {code!r}")
    return code


class SessionStore:
    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    def save(self, state: dict[str, Any]) -> None:
        check_state(state)
        code = check_code(state["code"])
        raw = json.dumps(state, ensure_ascii=False)
        with self._lock:
            self._memory[code] = raw
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".{code}.tmp"
                tmp.write_text(raw, encoding="utf-8")
                tmp.replace(self.folder / f"{code}.json")
            except OSError:  # a read-only disk still keeps sessions for this server's lifetime
                pass

    def load(self, code: Any) -> dict[str, Any]:
        code = check_code(code)
        with self._lock:
            raw = self._memory.get(code)
        if raw is None:
            path = self.folder / f"{code}.json"
            if not path.exists():
                raise ValueError(f"no saved Promptor session has the code {code!r}; check it, or start a new session")
            raw = path.read_text(encoding="utf-8")
        try:
            return check_state(json.loads(raw))
        except (json.JSONDecodeError, StateError) as exc:
            raise ValueError(f"the session saved under {code!r} cannot be read ({exc}); start a new session") from None
