"""The model manager: one loaded copy of each model shared by every user and tab.

Loads on first use (once, even when many threads ask at the same moment), keeps models under a memory
budget by evicting the least recently used idle ones, serialises work per device through one lock
(a queue), and turns failed loads into messages that name the model and what to do.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from backends import BACKENDS
from backends.base import Capabilities, ModelSpec, PromptWindow
from backends.devices import device_memory_bytes, pick_device, pick_dtype
from workbench.gpu import estimate_seconds, inside_gpu_call, run_on_device, stream_on_device, zero_gpu_mode

GIB = 1024**3


def load_standalone(spec: ModelSpec, *, device: str | None = None, dtype: str = "float32", registry=BACKENDS) -> Any:
    """A backend loaded outside the shared manager, on `device` (else the spec's, else the best one present): for
    a trainer or an offline script that needs the model to itself (it changes weights, or runs without the app).
    Nothing shares or evicts it; the caller unloads it. Tabs call this instead of importing a backend module."""
    return registry.resolve(spec.backend).load(spec, device=pick_device(device or spec.device), dtype=dtype)


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names the model and what to do about it."""


def explain_load_error(spec: ModelSpec, exc: BaseException) -> str:
    """A user-facing sentence: which model, what went wrong, what to do."""
    what = f"Could not load the {spec.role} model '{spec.model_id}' (backend {spec.backend})"
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if isinstance(exc, ImportError) or "no module named" in lowered:
        hint = "a Python package is missing: install requirements.txt (and requirements-offline.txt for the offline profile)"
    elif "out of memory" in lowered or isinstance(exc, MemoryError):
        hint = "out of memory: unload other models on the Models tab, lower the dtype, or choose a smaller profile"
    elif any(s in lowered for s in ("offline", "connection", "resolve", "unreachable", "name or service",
                                    "couldn't connect", "localentrynotfound", "max retries", "network")):
        hint = ("the Hugging Face hub cannot be reached and the model is not in the local cache: "
                "choose the 'offline' profile, or download the model where there is internet")
    elif "gated" in lowered or "401" in lowered or "403" in lowered:
        hint = "the model is gated: accept its licence on its model card and log in (huggingface-cli login)"
    elif isinstance(exc, (FileNotFoundError, OSError)):
        hint = "the model's files were not found: check the model id or path in the profile"
    elif "trust_remote_code" in lowered:
        hint = "this model needs custom code: turn on trust_remote_code for it only if you trust its authors"
    else:
        hint = "see the server log for the full traceback"
    return f"{what}. {text}. What to do: {hint}."


@dataclass
class ModelStatus:
    key: str
    role: str
    backend: str
    model_id: str
    device: str = ""
    dtype: str = ""
    state: str = "not loaded"  # not loaded | loading | loaded | failed
    load_seconds: float | None = None
    memory_bytes: int = 0
    rss_delta_bytes: int | None = None
    random_weights: bool = False
    error: str = ""
    in_use: int = 0
    last_used: float = 0.0


@dataclass
class _Entry:
    spec: ModelSpec
    backend: Any
    status: ModelStatus
    in_use: int = 0


class DeviceLock:
    """The per-device work queue: re-entrant for the thread that holds it (a script may hold the rewriter and
    the embedder together: `with manager.use(chat) as c, manager.use(emb) as e:`), and releasable from another
    thread (a streamed reply is resumed by whichever worker thread the front end uses)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            while self._depth and self._owner != me:
                self._cond.wait()
            self._owner, self._depth = me, self._depth + 1

    def release(self) -> None:
        with self._cond:
            if not self._depth:
                raise RuntimeError("device lock released more often than it was taken")
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._cond.notify_all()

    def locked(self) -> bool:
        with self._cond:
            return self._depth > 0

    def __enter__(self) -> "DeviceLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def env_budget_bytes() -> int | None:
    """WORKBENCH_MEMORY_BUDGET_GB in bytes, None when unset."""
    env = os.environ.get("WORKBENCH_MEMORY_BUDGET_GB")
    if not env:
        return None
    try:
        value = float(env)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):  # also refuses nan and inf, which float() accepts
        raise ValueError(f"WORKBENCH_MEMORY_BUDGET_GB must be a number of GiB above 0, got {env!r}")
    return int(value * GIB)


def default_budget_bytes(device: str) -> int:
    """WORKBENCH_MEMORY_BUDGET_GB, else 85% of GPU memory or 60% of RAM (leave room for activations). On ZeroGPU
    the device outside a GPU call is emulated, so its size says nothing: there the budget must be given (the
    profile's `memory_budget_gb` reaches the manager through build_context, or the environment variable)."""
    env = env_budget_bytes()
    if env is not None:
        return env
    if zero_gpu_mode():
        raise ValueError("ZeroGPU mode needs a memory budget: set WORKBENCH_MEMORY_BUDGET_GB in the Space's "
                         "settings or memory_budget_gb in the profile (assets/profiles.yaml)")
    share = 0.85 if device.startswith("cuda") else 0.60
    return int(device_memory_bytes(device) * share)


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


class ModelManager:
    def __init__(self, budget_bytes: int | None = None, device: str | None = None, registry=BACKENDS):
        # Device and default budget are resolved on first need: finding out whether CUDA exists imports torch
        # (~2 s), which should not delay the app's first page. An explicit device is checked at once.
        self._requested_device = device
        self._device: str | None = pick_device(device) if device and device != "auto" else None
        if budget_bytes is not None and int(budget_bytes) <= 0:
            raise ValueError(f"memory budget must be above 0 bytes, got {budget_bytes}")
        self._budget_bytes: int | None = int(budget_bytes) if budget_bytes else None
        self.registry = registry
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._failures: dict[str, ModelStatus] = {}
        self._lock = threading.RLock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._device_locks: dict[str, DeviceLock] = {}
        self._windows: dict[tuple, Any] = {}  # prompt windows (tokenizers only), per model
        self._window_lock = threading.Lock()
        self.load_count: dict[str, int] = {}  # how many times each key was really loaded (tests, Models tab)

    @property
    def device(self) -> str:
        with self._lock:
            if self._device is None:
                self._device = pick_device(self._requested_device)
            return self._device

    @property
    def budget_bytes(self) -> int:
        with self._lock:
            if self._budget_bytes is None:
                self._budget_bytes = default_budget_bytes(self.device)
            return self._budget_bytes

    @property
    def device_resolved(self) -> bool:
        return self._device is not None

    # ------------------------------------------------------------------ placement
    def placement(self, spec: ModelSpec) -> tuple[str, str]:
        device = pick_device(spec.device) if spec.device and spec.device != "auto" else self.device
        return device, pick_dtype(device, spec.dtype)

    def device_lock(self, device: str) -> DeviceLock:
        with self._lock:
            return self._device_locks.setdefault(device, DeviceLock())

    # ------------------------------------------------------------------ questions that never load a model
    def capabilities(self, spec: ModelSpec) -> Capabilities:
        """What the spec's backend can do, from the spec alone (imports the backend module, loads nothing)."""
        return self.registry.resolve(spec.backend).capabilities(spec)

    def prompt_window(self, spec: ModelSpec) -> PromptWindow | None:
        """The text encoder's window of a text-to-image/video spec, from its tokenizer only, cached per model;
        None when the backend has no fixed window. Typing in a candidate box never loads the pipeline."""
        if not self.capabilities(spec).prompt_window:
            return None
        key = (spec.backend, spec.model_id, spec.revision, spec.option("tokenizer_subfolder"))
        with self._window_lock:
            if key in self._windows:
                return self._windows[key]
        try:
            window = self.registry.resolve(spec.backend).load_prompt_window(spec)
        except Exception as exc:
            raise ModelLoadError(explain_load_error(spec, exc).replace("Could not load", "Could not load the tokenizer of", 1)) from exc
        with self._window_lock:
            return self._windows.setdefault(key, window)

    # ------------------------------------------------------------------ loading
    def get(self, spec: ModelSpec) -> Any:
        """The loaded backend for `spec`, loading it on first use. Raises ModelLoadError with a clear message."""
        with self._lock:
            entry = self._entries.get(spec.key)
            if entry is not None:
                self._touch(spec.key)
                return entry.backend
            load_lock = self._load_locks.setdefault(spec.key, threading.Lock())
        with load_lock:  # one loader per key; the others wait and then find it loaded
            with self._lock:
                entry = self._entries.get(spec.key)
                if entry is not None:
                    self._touch(spec.key)
                    return entry.backend
            return self._load(spec)

    def _load(self, spec: ModelSpec) -> Any:
        if zero_gpu_mode() and inside_gpu_call():
            # Inside @spaces.GPU the work runs in a forked worker: a model loaded there is loaded again on every
            # call and never reaches the shared manager. ZeroGPU wants every model placed at start-up.
            raise ModelLoadError(
                f"The {spec.role} model '{spec.model_id}' was not loaded at start-up, and ZeroGPU does not allow "
                f"loading a model inside a GPU call. What to do: add the role '{spec.role}' to WORKBENCH_PRELOAD "
                f"in the Space's settings (or unset it to preload the whole profile) and restart the Space.")
        device, dtype = self.placement(spec)
        status = ModelStatus(key=spec.key, role=spec.role, backend=spec.backend, model_id=spec.model_id,
                             device=device, dtype=dtype, state="loading", random_weights=spec.random_weights)
        with self._lock:
            self._failures[spec.key] = status
        started, rss_before = time.perf_counter(), _rss()
        try:
            cls = self.registry.resolve(spec.backend)
            backend = cls.load(spec, device=device, dtype=dtype)
        except Exception as exc:  # every failure becomes a message; the app keeps serving (Ctrl-C still stops it)
            status.state, status.error = "failed", explain_load_error(spec, exc)
            raise ModelLoadError(status.error) from exc
        status.load_seconds = time.perf_counter() - started
        status.rss_delta_bytes = _rss() - rss_before
        status.memory_bytes = int(backend.memory_bytes())
        status.random_weights = bool(backend.random_weights or spec.random_weights)
        status.device, status.dtype = backend.device, backend.dtype
        if status.memory_bytes > self.budget_bytes:
            backend.unload()
            status.state = "failed"
            status.error = (
                f"The {spec.role} model '{spec.model_id}' needs {status.memory_bytes / GIB:.2f} GiB, more than the "
                f"memory budget of {self.budget_bytes / GIB:.2f} GiB. What to do: raise --memory-budget "
                f"(WORKBENCH_MEMORY_BUDGET_GB) or choose a smaller model."
            )
            raise ModelLoadError(status.error)
        status.state = "loaded"
        with self._lock:
            self._failures.pop(spec.key, None)
            self._entries[spec.key] = _Entry(spec=spec, backend=backend, status=status)
            self.load_count[spec.key] = self.load_count.get(spec.key, 0) + 1
            self._touch(spec.key)
            self._evict(keep=spec.key)
        return backend

    def _touch(self, key: str) -> None:
        self._entries.move_to_end(key)
        self._entries[key].status.last_used = time.time()

    def _evict(self, keep: str) -> None:
        """Unload idle models, least recently used first, until the loaded total fits the budget."""
        for key in list(self._entries):
            if self.resident_bytes() <= self.budget_bytes:
                return
            entry = self._entries[key]
            if key == keep or entry.in_use:
                continue
            self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        try:
            entry.backend.unload()
        finally:
            entry.status.state = "not loaded"

    # ------------------------------------------------------------------ use
    @contextlib.contextmanager
    def use(self, spec: ModelSpec) -> Iterator[Any]:
        """Hold a model for one piece of work: it is not evicted meanwhile, and work on its device is serialised
        (re-entrant for the holding thread, so one thread may hold several models of one device at once)."""
        while True:
            backend = self.get(spec)  # loads outside the global lock
            with self._lock:
                entry = self._entries.get(spec.key)
                if entry is not None and entry.backend is backend:
                    entry.in_use += 1
                    break
            # evicted between get() and here by another thread's load: load again
        lock = self.device_lock(backend.device) if backend.device != "remote" else contextlib.nullcontext()
        try:
            with lock:
                yield backend
        finally:
            with self._lock:
                entry.in_use -= 1
                if spec.key in self._entries:
                    self._touch(spec.key)

    def run(self, spec: ModelSpec, fn: Callable[..., Any], *args: Any, gpu_seconds: int | None = None,
            **kwargs: Any) -> Any:
        """Run `fn(backend, *args, **kwargs)` with the model held and its device queue taken (GPU entry point:
        the model is loaded first, outside the GPU call; `gpu_seconds` is the ZeroGPU duration asked for)."""
        with self.use(spec) as backend:
            return run_on_device(fn, backend, *args, gpu_seconds=gpu_seconds, **kwargs)

    def stream(self, spec: ModelSpec, fn: Callable[..., Iterator[Any]], *args: Any, gpu_seconds: int | None = None,
               **kwargs: Any) -> Iterator[Any]:
        """Iterate `fn(backend, *args, **kwargs)` with the model pinned and its device queue held until the
        generator finishes or is closed (a streamed chat reply cannot be evicted mid-reply)."""
        with self.use(spec) as backend:
            yield from stream_on_device(fn, backend, *args, gpu_seconds=gpu_seconds, **kwargs)

    def preload(self, specs: list[ModelSpec]) -> list[ModelStatus]:
        """Load `specs` now, in order (ZeroGPU start-up: every model placed before the first GPU call). Remote
        models (an OpenAI-compatible server) hold no weights and are skipped. Raises ModelLoadError."""
        out = []
        for spec in specs:
            if spec.backend == "openai-chat":
                continue
            self.get(spec)
            out.append(self.status(spec))
        return out

    # ------------------------------------------------------------------ bookkeeping
    def unload(self, spec_or_key: ModelSpec | str) -> bool:
        key = spec_or_key.key if isinstance(spec_or_key, ModelSpec) else spec_or_key
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._failures.pop(key, None)
                return False
            if entry.in_use:
                raise RuntimeError(f"model '{entry.spec.model_id}' is in use by a running job; try again when it ends")
            self._drop(key)
            return True

    def unload_all(self) -> None:
        with self._lock:
            for key in list(self._entries):
                if not self._entries[key].in_use:
                    self._drop(key)

    def is_loaded(self, spec: ModelSpec) -> bool:
        with self._lock:
            return spec.key in self._entries

    def resident_bytes(self) -> int:
        with self._lock:
            return sum(e.status.memory_bytes for e in self._entries.values())

    def status(self, spec: ModelSpec) -> ModelStatus:
        with self._lock:
            if spec.key in self._entries:
                entry = self._entries[spec.key]
                entry.status.in_use = entry.in_use
                return entry.status
            if spec.key in self._failures:
                return self._failures[spec.key]
        if spec.backend == "openai-chat":
            device, dtype = "remote", "remote"
        elif self.device_resolved or (spec.device and spec.device != "auto"):
            device, dtype = self.placement(spec)
        else:
            device, dtype = "auto", spec.dtype or "auto"
        return ModelStatus(key=spec.key, role=spec.role, backend=spec.backend, model_id=spec.model_id,
                           device=device, dtype=dtype, random_weights=spec.random_weights or spec.model_id.startswith("tiny:"))

    def loaded(self) -> list[ModelStatus]:
        with self._lock:
            return [e.status for e in self._entries.values()]


class ManagedModel:
    """A backend seen through the manager: each method call holds the model and its device queue for that call
    only, and runs through the GPU entry point. One workbench function can then use several models on one device
    (render, then score) without holding them all. Nothing here loads a model except calling a method: looking
    up a method, `spec`, `capabilities` and `random_weights` never do. Generator methods (`stream`) hold the model
    until the generator ends or is closed."""

    def __init__(self, manager: ModelManager, spec: ModelSpec):
        self._manager, self.spec = manager, spec

    @property
    def capabilities(self) -> Capabilities:
        return self._manager.capabilities(self.spec)

    @property
    def random_weights(self) -> bool:
        return self.spec.random_weights or self._manager.status(self.spec).random_weights

    @property
    def device(self) -> str:
        """Where the model runs (or will run): from the manager's status, without loading it."""
        return self._manager.status(self.spec).device

    @property
    def dtype(self) -> str:
        return self._manager.status(self.spec).dtype

    def prompt_window(self) -> PromptWindow | None:
        return self._manager.prompt_window(self.spec)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        cls = self._manager.registry.resolve(self.spec.backend)
        member = getattr(cls, name, None)
        if not callable(member):
            raise AttributeError(
                f"'{name}' is not a method of backend '{self.spec.backend}'; hold the model with manager.use(spec) "
                f"to read its attributes")
        if inspect.isgeneratorfunction(member):
            def streamed(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return self._manager.stream(self.spec, lambda backend: getattr(backend, name)(*args, **kwargs),
                                            gpu_seconds=estimate_seconds(*args, **kwargs))

            return streamed

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._manager.run(self.spec, lambda backend: getattr(backend, name)(*args, **kwargs),
                                     gpu_seconds=estimate_seconds(*args, **kwargs))

        return call
