"""GPU entry points and ZeroGPU mode (Hugging Face Spaces).

Every piece of accelerator work runs through `run_on_device` (one call) or `stream_on_device` (a generator).
With `SPACES_ZERO_GPU` set (ZeroGPU hardware sets it), both are wrapped in `spaces.GPU` with a *dynamic*
duration: each call asks for seconds sized by its work (N images at S steps ask for more than one rewrite),
estimated by `estimate_seconds` from the call's settings or given by the flow with `gpu_seconds=`.
Elsewhere they are plain calls and `spaces` is never imported.

ZeroGPU's contract (hub docs, "ZeroGPU"): `import spaces` before anything initialises CUDA (app.py does),
models are moved to `cuda` at start-up outside any `@spaces.GPU` function (`preload` in workbench/models.py),
and no model is loaded inside one: `inside_gpu_call()` lets the manager refuse such a load with a clear error.
A used-up quota becomes `GpuUnavailable`, a user-facing error that points to the tab's cached examples.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from typing import Any, Callable, Iterator

DEFAULT_SECONDS = 15  # a call with nothing to size it by (an embedding, one scoring pass)
MIN_SECONDS = 10
MAX_SECONDS_DEFAULT = 120  # ZeroGPU's free tier refuses longer requests; WORKBENCH_GPU_MAX_DURATION raises it

# Seconds per unit of work on a ZeroGPU H200 slice, about 3x what we expect (an SD1.5 step at 512x512 ~0.05 s
# per image, a 1.5B LM decoding step ~0.03 s, the sequences of a batch decoded together); generous on purpose:
# a call that runs past its duration is killed, one that asks for too much only waits longer in the queue.
# MIN_SECONDS covers moving the weights onto the GPU at the start of each call.
SECONDS_PER_IMAGE_STEP = 0.15
SECONDS_PER_FRAME_STEP = 0.6
SECONDS_PER_TOKEN = 0.05


def zero_gpu_mode() -> bool:
    """On ZeroGPU hardware (the `spaces` package reads the same variable)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


class GpuUnavailable(ConnectionError):
    """The GPU cannot be had now (ZeroGPU quota used up, or no GPU on this Space). User-facing (a
    ConnectionError, so the wiring layer shows its message); the message points to the cached examples."""


_state = threading.local()
_quota_hit = threading.Event()  # set after a quota error: tabs then open their cached examples on load


def inside_gpu_call() -> bool:
    """True while this thread runs inside `run_on_device` / `stream_on_device` (inside `@spaces.GPU`)."""
    return getattr(_state, "depth", 0) > 0


def quota_exhausted() -> bool:
    return _quota_hit.is_set()


def gpu_unavailable_reason() -> str | None:
    """Why cached examples should be shown first: no GPU on this Space, or the ZeroGPU quota ran out."""
    if quota_exhausted():
        return "the ZeroGPU quota is used up for now"
    if on_space() and not zero_gpu_mode() and _cpu_hardware():
        return "this Space runs on CPU hardware"
    return None


def _cpu_hardware() -> bool:
    """Asked on a Space only (where choosing the profile imports torch anyway): no CUDA means CPU hardware.
    SPACE_HARDWARE (e.g. "cpu-basic"), when the Space's settings set it, answers without torch."""
    hardware = os.environ.get("SPACE_HARDWARE", "")
    if hardware:
        return hardware.startswith("cpu")
    import torch

    return not torch.cuda.is_available()


def max_seconds() -> int:
    value = os.environ.get("WORKBENCH_GPU_MAX_DURATION", str(MAX_SECONDS_DEFAULT))
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError(f"WORKBENCH_GPU_MAX_DURATION must be a whole number of seconds, got {value!r}") from None
    if seconds < MIN_SECONDS:
        raise ValueError(f"WORKBENCH_GPU_MAX_DURATION must be at least {MIN_SECONDS}, got {seconds}")
    return seconds


def estimate_seconds(*args: Any, **kwargs: Any) -> int:
    """GPU seconds for one backend call, from its arguments: a batch (the first list) and a settings object
    (ImageSettings/VideoSettings: steps and frames; GenerationSettings: max_new_tokens; ShiftSettings)."""
    values = list(args) + list(kwargs.values())
    batch = next((len(v) for v in values if isinstance(v, (list, tuple)) and v), 1)
    work = 0.0
    for v in values:
        steps = getattr(v, "steps", None)
        frames = getattr(v, "num_frames", None)
        tokens = getattr(v, "max_new_tokens", None)
        if isinstance(steps, int) and isinstance(frames, int):
            work += batch * steps * frames * SECONDS_PER_FRAME_STEP / 8
        elif isinstance(steps, int):
            work += batch * steps * SECONDS_PER_IMAGE_STEP
        elif isinstance(tokens, int):
            sequences = batch * max(1, int(getattr(v, "num_return_sequences", 1) or 1))
            work += tokens * SECONDS_PER_TOKEN * (1 + 0.1 * (sequences - 1))
        ig_steps = getattr(v, "ig_steps", None)
        if isinstance(ig_steps, int):  # behaviour shift: two passes per IG step and method
            work += ig_steps * len(getattr(v, "methods", ()) or (1,)) * 0.2
    seconds = DEFAULT_SECONDS if work == 0 else MIN_SECONDS + work
    return int(min(max_seconds(), max(MIN_SECONDS, math.ceil(seconds))))


def _duration(fn: Callable[..., Any], *args: Any, gpu_seconds: int | None = None, **kwargs: Any) -> int:
    """spaces.GPU's dynamic duration: called with the same arguments as the decorated function."""
    if gpu_seconds is not None:
        return int(min(max_seconds(), max(MIN_SECONDS, int(gpu_seconds))))
    return estimate_seconds(*args, **kwargs)


def _quota_error(exc: BaseException) -> bool:
    text = f"{getattr(exc, 'title', '')} {exc}".lower()
    return "zerogpu" in text and ("quota" in text or "gpu limit" in text) or "reached its gpu limit" in text


def _unavailable(exc: BaseException) -> GpuUnavailable:
    _quota_hit.set()
    return GpuUnavailable(
        f"No GPU right now: {getattr(exc, 'message', None) or exc} Open 'Cached examples' at the top of this tab "
        "to see precomputed results, or try again later.")


@contextlib.contextmanager
def _inside() -> Iterator[None]:
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def _run(fn: Callable[..., Any], *args: Any, gpu_seconds: int | None = None, **kwargs: Any) -> Any:
    with _inside():
        return fn(*args, **kwargs)


def _stream(fn: Callable[..., Iterator[Any]], *args: Any, gpu_seconds: int | None = None,
            **kwargs: Any) -> Iterator[Any]:
    """Each step of the stream runs inside the GPU call on whichever thread pulls it (Gradio may pull a
    generator's items from different worker threads: a depth counted around the whole `yield from` was raised on
    one thread's counter and lowered on another's)."""
    items = fn(*args, **kwargs)
    while True:
        with _inside():
            try:
                item = next(items)
            except StopIteration:
                return
        yield item


def _decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
    if not zero_gpu_mode():
        return fn
    import spaces  # app.py imported it first, before torch; here it is only looked up

    return spaces.GPU(duration=_duration)(fn)


_run_gpu = _decorate(_run)
_stream_gpu = _decorate(_stream)
GPU_ENTRY_POINTS = (_run, _stream)  # what the ZeroGPU test checks is wrapped by spaces.GPU


def run_on_device(fn: Callable[..., Any], *args: Any, gpu_seconds: int | None = None, **kwargs: Any) -> Any:
    """Run a callable that touches the accelerator (inside `@spaces.GPU` on ZeroGPU). `gpu_seconds`: the flow's
    own estimate; without it the duration is estimated from the arguments (`estimate_seconds`). A call made
    inside another (a model call within a behaviour-shift analysis) runs in the GPU call already held."""
    if inside_gpu_call():
        return _run(fn, *args, **kwargs)
    try:
        return _run_gpu(fn, *args, gpu_seconds=gpu_seconds, **kwargs)
    except Exception as exc:
        if _quota_error(exc):
            raise _unavailable(exc) from exc
        raise


def stream_on_device(fn: Callable[..., Iterator[Any]], *args: Any, gpu_seconds: int | None = None,
                     **kwargs: Any) -> Iterator[Any]:
    """`run_on_device` for a generator (a streamed chat reply): one GPU request for the whole stream."""
    if inside_gpu_call():
        yield from _stream(fn, *args, **kwargs)
        return
    try:
        yield from _stream_gpu(fn, *args, gpu_seconds=gpu_seconds, **kwargs)
    except Exception as exc:
        if _quota_error(exc):
            raise _unavailable(exc) from exc
        raise
