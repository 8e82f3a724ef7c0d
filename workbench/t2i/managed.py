"""A backend seen through the model manager: each method call holds the model and its device queue for that
call only, so one workbench function can use several models on one device without nesting the queue."""

from __future__ import annotations

from typing import Any

from backends.base import ModelSpec


class Managed:
    def __init__(self, manager: Any, spec: ModelSpec):
        self._manager, self.spec = manager, spec

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._manager.get(self.spec), name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._manager.run(self.spec, lambda backend: getattr(backend, name)(*args, **kwargs))

        return call
