"""Device and dtype choice: CUDA (bf16 where supported, else fp16), Apple MPS (fp16), CPU (fp32)."""

from __future__ import annotations

import os

_DTYPES = ("float32", "float16", "bfloat16")


def pick_device(requested: str | None = None) -> str:
    """`requested` (or WORKBENCH_DEVICE) wins; else the best accelerator present."""
    requested = requested or os.environ.get("WORKBENCH_DEVICE") or None
    if requested and not _known_device(requested):
        raise ValueError(f"device must be cpu, cuda, cuda:<index>, mps or auto, got {requested!r}")
    import torch

    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device '{requested}' was requested but CUDA is not available; use 'cpu' or 'auto'")
        if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError("device 'mps' was requested but Apple MPS is not available; use 'cpu' or 'auto'")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _known_device(name: str) -> bool:
    """cpu, cuda, mps (each optionally with an index, as torch writes them: "cuda:1", "cpu:0") or auto."""
    kind, colon, index = name.partition(":")
    if kind == "auto":
        return not colon
    return kind in ("cpu", "cuda", "mps") and (not colon or index.isdigit())


def pick_dtype(device: str, requested: str | None = None) -> str:
    """Half precision only on accelerators: CPU kernels are slow and lossy in fp16."""
    if requested and requested != "auto":
        if requested not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)} or 'auto', got '{requested}'")
        return requested
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    return "float32"


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def device_memory_bytes(device: str) -> int:
    """Total memory of the device (system RAM for CPU/MPS)."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    import psutil

    return int(psutil.virtual_memory().total)
