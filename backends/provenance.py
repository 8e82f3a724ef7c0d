"""Provenance: which model, seed, settings and package versions produced a result.

Every generated image, video, score and heatmap carries one of these so a study can be reproduced.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import platform
from dataclasses import dataclass, field
from typing import Any

# Packages whose versions change numbers (tokenisers, kernels, image decoding: CLIPScore moves with
# the Pillow version, clipscore #16).
TRACKED_PACKAGES = (
    "torch", "transformers", "diffusers", "accelerate", "peft", "captum", "tokenizers", "pillow", "numpy",
)

_VERSIONS: dict[str, str] | None = None


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def package_versions(*extra: str) -> dict[str, str]:
    """Installed versions of the packages that influence results, plus any `extra` ones (read from metadata,
    no imports; the tracked set is cached)."""
    global _VERSIONS
    if _VERSIONS is None:
        _VERSIONS = {"python": platform.python_version(), **{name: _version(name) for name in TRACKED_PACKAGES}}
    return {**_VERSIONS, **{name: _version(name) for name in extra}}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class Provenance:
    """What produced a result. `random_weights` is True when the model was built in code with random weights."""

    model_id: str
    backend: str
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    random_weights: bool = False
    versions: dict[str, str] = field(default_factory=package_versions)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def of(cls, backend: Any, seed: int | None = None, settings: dict[str, Any] | None = None) -> "Provenance":
        """Provenance of a result produced by a loaded backend (anything with `.spec`, `.device`, `.dtype`)."""
        spec = backend.spec
        return cls(model_id=spec.model_id, backend=spec.backend, seed=seed, settings=dict(settings or {}),
                   revision=spec.revision, device=getattr(backend, "device", None),
                   dtype=getattr(backend, "dtype", None),
                   random_weights=bool(getattr(backend, "random_weights", spec.random_weights)))

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def caption(self) -> str:
        """One line for a figure caption or image alt text."""
        parts = [f"model {self.model_id}", f"backend {self.backend}"]
        if self.revision:
            parts.append(f"rev {self.revision}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.device:
            parts.append(f"{self.device}/{self.dtype}")
        if self.settings:
            parts.append(", ".join(f"{k}={v}" for k, v in sorted(self.settings.items())))
        parts.append(f"torch {self.versions.get('torch')}, transformers {self.versions.get('transformers')}")
        if self.random_weights:
            parts.append("RANDOM WEIGHTS: outputs are not meaningful")
        return " · ".join(parts)
