"""The model manager: one loaded copy of each model shared by every user and tab.

Loads on first use (once, even when many threads ask at the same moment), keeps models under a memory
budget by evicting the least recently used idle ones, serialises work per device through one lock
(a queue), and turns failed loads into messages that name the model and what to do.

Weights are keyed by base model: backend, model id, revision, dtype, device and the options that change what
the backend loads (`Capabilities.load_options`). A LoRA adapter (`options.adapter`) on a backend that can share its
base (`Capabilities.shared_adapters`: `attach_adapter`, `activate`, `restore`) is a named peft adapter on that one
loaded base, keyed by its folder: the chat role and the
T2I rewriter (SmolLM2 + adapter) are one SmolLM2, the behaviour-shift pair and Promptor's coherence model one
Gemma. `use` switches the base's peft layers to the caller's adapter (or off, for the base) under the device
lock, so concurrent calls with different adapters each see their own. The memory budget counts each base once
and each adapter on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from backends import BACKENDS
from backends.base import Capabilities, ModelSpec, PromptWindow
from backends.devices import device_memory_bytes, pick_device, pick_dtype
from workbench.gpu import estimate_seconds, inside_gpu_call, run_on_device, stream_on_device, zero_gpu_mode

GIB = 1024**3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_standalone(spec: ModelSpec, *, device: str | None = None, dtype: str = "float32", registry=BACKENDS) -> Any:
    """A backend loaded outside the shared manager, on `device` (else the spec's, else the best one present): for
    a trainer or an offline script that needs the model to itself (it changes weights, or runs without the app).
    Nothing shares or evicts it; the caller unloads it. Tabs call this instead of importing a backend module."""
    return registry.resolve(spec.backend).load(spec, device=pick_device(device or spec.device), dtype=dtype)


def registry_with(extra: dict[str, str]):
    """The backend registry plus `extra` ({name: "module:Class"}): for a script that serves a backend class of its
    own (e.g. Promptor's scripted capable chat) through a manager of its own, without a tab importing the registry."""
    from backends.registry import Registry

    registry = Registry("backend")
    for name in BACKENDS.names():
        registry.register(name, BACKENDS.target(name))
    for name, target in extra.items():
        registry.register(name, target)
    return registry


def _record_load(status: Any, spec: ModelSpec, weights: Any, memory_bytes: int, started: float,
                 rss_before: int) -> None:
    """A finished load's figures on its status: time, RSS growth, the bytes it added (a whole model, or one
    adapter on a shared base), and the device, dtype and random-weights flag of the weights that serve it."""
    status.load_seconds = time.perf_counter() - started
    status.rss_delta_bytes = _rss() - rss_before
    status.memory_bytes = int(memory_bytes)
    status.random_weights = bool(weights.random_weights or spec.random_weights)
    status.device, status.dtype = weights.device, weights.dtype


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
    parent: str | None = None  # an adapter's entry: the key of the base it sits on
    adapter: str = ""  # an adapter's entry: its folder


def _canonical_model_id(model_id: str) -> str:
    """Profiles name shipped folders relative to the repository root; a tab may name the same folder by its
    absolute path. Both are one model, named the profiles' way: root-relative with forward slashes, so the model id
    that provenance records is the same on every machine and checkout (the backends resolve a relative id against
    the repository root, `backends.sources.resolve_source`). A path outside the repository stays as it is."""
    if not model_id or ":" in model_id.split("/")[0]:
        return model_id
    path = model_id if os.path.isabs(model_id) else os.path.join(ROOT, model_id)
    if not os.path.exists(path):
        return model_id
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(ROOT))
    if rel == os.curdir or rel.split(os.sep)[0] == os.pardir:
        return model_id
    return rel.replace(os.sep, "/")


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

    def try_acquire(self) -> bool:
        """Take the lock if it is free or held by this thread; never waits."""
        me = threading.get_ident()
        with self._cond:
            if self._depth and self._owner != me:
                return False
            self._owner, self._depth = me, self._depth + 1
            return True

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
        self._pending: list[_Entry] = []  # dropped entries whose weights are still to be freed
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

    # ------------------------------------------------------------------ keys
    def _capabilities(self, spec: ModelSpec) -> Capabilities | None:
        try:
            return self.capabilities(spec)
        except Exception:  # an unknown backend fails at load time with its own message
            return None

    def base_spec(self, spec: ModelSpec) -> ModelSpec:
        """The spec whose weights serve `spec`: for a backend that declares its load options (`Capabilities.
        load_options`), the options it does not load by (the adapter, the tabs' own settings) dropped, and shipped
        folders named by absolute path."""
        caps = self._capabilities(spec)
        keep = caps.load_options if caps is not None else None
        if keep is None:
            if spec.option("adapter") and not self.adapter_folder(spec):  # cannot share its base: its own copy
                return spec
            return dataclasses.replace(spec, model_id=_canonical_model_id(spec.model_id))
        options = tuple((k, v) for k, v in spec.options if k in keep)
        return dataclasses.replace(spec, model_id=_canonical_model_id(spec.model_id), options=options)

    def adapter_folder(self, spec: ModelSpec) -> str:
        """The absolute folder of `spec`'s LoRA adapter when its backend shares one base among adapters, else ''."""
        adapter = spec.option("adapter")
        caps = self._capabilities(spec) if adapter else None
        if caps is None or not caps.shared_adapters:
            return ""
        from backends.transformers_lm import adapter_folder

        return adapter_folder(str(adapter))

    def key_of(self, spec: ModelSpec) -> str:
        """The manager's key for `spec`: its base model's key, plus `|adapter=<folder>` for an adapter."""
        folder = self.adapter_folder(spec)
        base = self.base_spec(spec).key
        return f"{base}|adapter={folder}" if folder else base

    # ------------------------------------------------------------------ loading
    def get(self, spec: ModelSpec) -> Any:
        """The loaded backend for `spec`, loading it on first use. Raises ModelLoadError with a clear message.
        An adapter spec returns a view of its shared base (the base loaded first, once)."""
        return self._switched(spec, self._get(spec))

    def _shares_base(self, spec: ModelSpec) -> bool:
        caps = self._capabilities(spec)
        return caps is not None and caps.shared_adapters

    def _switched(self, spec: ModelSpec, backend: Any) -> Any:
        """A script that holds a backend from `get` (not `use`) and calls its model directly gets the weights it
        asked for: a shared base is switched to its adapter when no other thread is working on that device
        (work under `use` switches it again for itself, so this never changes what a running call sees)."""
        if not self._shares_base(spec) or backend.device == "remote":
            return backend
        lock = self.device_lock(backend.device)
        if lock.try_acquire():
            try:
                if backend.model is not None:
                    backend.activate()
            finally:
                lock.release()
        return backend

    def _get(self, spec: ModelSpec) -> Any:
        key = self.key_of(spec)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._touch(key)
                return entry.backend
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # one loader per key; the others wait and then find it loaded
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._touch(key)
                    return entry.backend
            if self.adapter_folder(spec):
                return self._attach(spec, key)
            return self._load(spec, key)

    def _attach(self, spec: ModelSpec, key: str) -> Any:
        """Load `spec`'s adapter onto its base (loading the base first if needed) as a named peft adapter."""
        base_spec = self.base_spec(spec)
        base_key = base_spec.key
        status = ModelStatus(key=key, role=spec.role, backend=spec.backend, model_id=spec.model_id,
                             state="loading", random_weights=spec.random_weights)
        while True:
            base = self._get(base_spec)
            with self._lock:
                parent = self._entries.get(base_key)
                if parent is not None and parent.backend is base:
                    parent.in_use += 1  # pinned while the adapter loads: not evicted meanwhile
                    break
        started, rss_before = time.perf_counter(), _rss()
        try:
            with self._lock:
                self._failures[key] = status
            try:
                with self.device_lock(base.device):  # the shared model changes: no work on it meanwhile
                    view = base.attach_adapter(spec)
            except Exception as exc:
                status.state, status.error = "failed", explain_load_error(spec, exc)
                raise ModelLoadError(status.error) from exc
            _record_load(status, spec, base, view.adapter_bytes(), started, rss_before)
            status.state = "loaded"
            with self._lock:
                self._failures.pop(key, None)
                self._entries[key] = _Entry(spec=spec, backend=view, status=status, parent=base_key,
                                            adapter=view.adapter_path or "")
                self.load_count[key] = self.load_count.get(key, 0) + 1
                self._touch(key)
                self._evict(keep=key)
            return view
        finally:
            with self._lock:
                parent.in_use -= 1
            self._finish_unloads()

    def _load(self, spec: ModelSpec, key: str | None = None) -> Any:
        if zero_gpu_mode() and inside_gpu_call():
            # Inside @spaces.GPU the work runs in a forked worker: a model loaded there is loaded again on every
            # call and never reaches the shared manager. ZeroGPU wants every model placed at start-up.
            raise ModelLoadError(
                f"The {spec.role} model '{spec.model_id}' was not loaded at start-up, and ZeroGPU does not allow "
                f"loading a model inside a GPU call. What to do: add the role '{spec.role}' to WORKBENCH_PRELOAD "
                f"in the Space's settings (or unset it to preload the whole profile) and restart the Space.")
        key = key or self.key_of(spec)
        spec = self.base_spec(spec)  # the options it loads by only (an adapter is attached to it afterwards)
        device, dtype = self.placement(spec)
        status = ModelStatus(key=key, role=spec.role, backend=spec.backend, model_id=spec.model_id,
                             device=device, dtype=dtype, state="loading", random_weights=spec.random_weights)
        with self._lock:
            self._failures[key] = status
        started, rss_before = time.perf_counter(), _rss()
        try:
            cls = self.registry.resolve(spec.backend)
            backend = cls.load(spec, device=device, dtype=dtype)
        except Exception as exc:  # every failure becomes a message; the app keeps serving (Ctrl-C still stops it)
            status.state, status.error = "failed", explain_load_error(spec, exc)
            raise ModelLoadError(status.error) from exc
        _record_load(status, spec, backend, backend.memory_bytes(), started, rss_before)
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
            self._failures.pop(key, None)
            self._entries[key] = _Entry(spec=spec, backend=backend, status=status)
            self.load_count[key] = self.load_count.get(key, 0) + 1
            self._touch(key)
            self._evict(keep=key)
        self._finish_unloads()
        return backend

    def _touch(self, key: str) -> None:
        parent = self._entries[key].parent
        if parent is not None and parent in self._entries:  # using an adapter uses its base
            self._entries.move_to_end(parent)
            self._entries[parent].status.last_used = time.time()
        self._entries.move_to_end(key)
        self._entries[key].status.last_used = time.time()

    def _children(self, key: str) -> list[str]:
        return [k for k, e in self._entries.items() if e.parent == key]

    def _busy(self, key: str) -> bool:
        """In use, or (a base) one of its adapters is."""
        return bool(self._entries[key].in_use) or any(self._entries[k].in_use for k in self._children(key))

    def _evict(self, keep: str) -> None:
        """Unload idle models, least recently used first, until the loaded total fits the budget (a base goes
        with its adapters; the base of the model being loaded stays)."""
        kept = {keep, self._entries[keep].parent} if keep in self._entries else {keep}
        for key in list(self._entries):
            if self.resident_bytes() <= self.budget_bytes:
                return
            if key not in self._entries or key in kept or self._busy(key):
                continue
            self._drop(key)

    def _drop(self, key: str) -> None:
        """Forget an entry (a base with its adapters, adapters first) under the manager's lock; the weights are
        freed by `_finish_unloads`, after that lock is released (detaching an adapter waits for the device lock,
        and a thread holding the device lock may be waiting for the manager's lock)."""
        for child in self._children(key):
            self._drop(child)
        entry = self._entries.pop(key)
        entry.status.state = "not loaded"
        self._pending.append(entry)

    def _finish_unloads(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for entry in pending:
            if entry.parent is None:
                entry.backend.unload()
            else:  # an adapter: removed from its shared base, which may be serving other work
                with self.device_lock(entry.backend.device):
                    entry.backend.unload()

    # ------------------------------------------------------------------ use
    @contextlib.contextmanager
    def use(self, spec: ModelSpec) -> Iterator[Any]:
        """Hold a model for one piece of work: it is not evicted meanwhile, and work on its device is serialised
        (re-entrant for the holding thread, so one thread may hold several models of one device at once)."""
        key = self.key_of(spec)
        while True:
            backend = self._get(spec)  # loads outside the global lock
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.backend is backend:
                    entry.in_use += 1
                    break
            # evicted between get() and here by another thread's load: load again
        lock = self.device_lock(backend.device) if backend.device != "remote" else contextlib.nullcontext()
        try:
            with lock:
                # a shared base: its peft layers switched to this spec's adapter (off for the base) for this work
                shared = self._shares_base(spec)
                previous = backend.activate() if shared else None
                try:
                    yield backend
                finally:
                    if shared and backend.model is not None:
                        backend.restore(previous)
        finally:
            with self._lock:
                entry.in_use -= 1
                if key in self._entries:
                    self._touch(key)

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
        """Unload a model (a base goes with its adapters; an adapter alone leaves its base loaded)."""
        key = self.key_of(spec_or_key) if isinstance(spec_or_key, ModelSpec) else spec_or_key
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._failures.pop(key, None)
                return False
            if self._busy(key):
                raise RuntimeError(f"model '{entry.spec.model_id}' is in use by a running job; try again when it ends")
            self._drop(key)
        self._finish_unloads()
        return True

    def unload_all(self) -> None:
        with self._lock:
            for key in list(self._entries):
                if key in self._entries and not self._busy(key):
                    self._drop(key)
        self._finish_unloads()

    def is_loaded(self, spec: ModelSpec) -> bool:
        key = self.key_of(spec)
        with self._lock:
            return key in self._entries

    def resident_bytes(self) -> int:
        with self._lock:
            return sum(e.status.memory_bytes for e in self._entries.values())

    def status(self, spec: ModelSpec) -> ModelStatus:
        with self._lock:
            held = any(e.status.backend == spec.backend for e in self._entries.values()) or \
                any(f.backend == spec.backend for f in self._failures.values())
        # nothing of this backend is held: the spec's own key will do, and the backend module stays unimported
        # (the banner asks every role's status at start-up; habit 2: importing the app imports no backend)
        key = self.key_of(spec) if held else spec.key
        with self._lock:
            if key in self._entries:
                entry = self._entries[key]
                entry.status.in_use = entry.in_use
                return entry.status
            if key in self._failures:
                return self._failures[key]
        if spec.backend == "openai-chat":
            device, dtype = "remote", "remote"
        elif self.device_resolved or (spec.device and spec.device != "auto"):
            device, dtype = self.placement(spec)
        else:
            device, dtype = "auto", spec.dtype or "auto"
        return ModelStatus(key=key, role=spec.role, backend=spec.backend, model_id=spec.model_id,
                           device=device, dtype=dtype, random_weights=spec.random_weights or spec.model_id.startswith("tiny:"))

    def loaded(self) -> list[ModelStatus]:
        with self._lock:
            return [e.status for e in self._entries.values()]

    def loaded_bases(self) -> list[tuple[ModelStatus, list[tuple[str, ModelStatus]]]]:
        """Each loaded base model with its loaded adapters, as (base status, [(adapter folder, status)])."""
        with self._lock:
            out = []
            for key, entry in self._entries.items():
                if entry.parent is None:
                    entry.status.in_use = entry.in_use
                    out.append((entry.status, [(e.adapter, e.status) for e in self._entries.values()
                                               if e.parent == key]))
            return out


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
