"""GPU entry points. `spaces.GPU` attaches a ZeroGPU device on Hugging Face Spaces and is a no-op elsewhere,
so the same code runs locally, on a GPU box and on ZeroGPU."""

from __future__ import annotations

import os
from typing import Any, Callable

try:  # `spaces` is light and only does something on Spaces; without it we fall back to a no-op.
    if os.environ.get("SPACES_ZERO_GPU"):
        import spaces

        _gpu = spaces.GPU(duration=int(os.environ.get("WORKBENCH_GPU_DURATION", "120")))
    else:
        raise ImportError
except ImportError:
    def _gpu(fn: Callable) -> Callable:
        return fn


@_gpu
def run_on_device(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a callable that touches the accelerator. All model calls in `ModelManager.run` go through here."""
    return fn(*args, **kwargs)
