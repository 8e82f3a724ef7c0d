"""A registry of lazy "module:Class" strings (lm-evaluation-harness style).

Registering a name imports nothing; `resolve` imports the module on first use. Duplicate names
raise, unknown names answer with the closest known names.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from typing import Any


class RegistryError(ValueError):
    """A name that is unknown, registered twice, or points at nothing importable."""


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._targets: dict[str, str] = {}
        self._resolved: dict[str, Any] = {}
        self._lock = threading.Lock()

    def register(self, name: str, target: str) -> None:
        if not name or not isinstance(name, str):
            raise RegistryError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
            raise RegistryError(f"{self.kind} '{name}': target must look like 'package.module:Class', got {target!r}")
        with self._lock:
            if name in self._targets:
                raise RegistryError(
                    f"{self.kind} '{name}' is already registered (as {self._targets[name]}); names must be unique"
                )
            self._targets[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def target(self, name: str) -> str:
        try:
            return self._targets[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._targets, n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} '{name}'.{hint} Known: {', '.join(self.names())}"
            ) from None

    def resolve(self, name: str) -> Any:
        target = self.target(name)
        with self._lock:
            if name in self._resolved:
                return self._resolved[name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise RegistryError(
                f"{self.kind} '{name}' needs module '{module_name}', which failed to import: {exc}. "
                f"Install the missing package (see requirements.txt)."
            ) from exc
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise RegistryError(f"{self.kind} '{name}': module '{module_name}' has no attribute '{attr}'") from None
        with self._lock:
            self._resolved[name] = obj
        return obj

    def __contains__(self, name: object) -> bool:
        return name in self._targets
