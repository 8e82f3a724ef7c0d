"""Long work that shows progress and can be cancelled, keeping what finished.

A flow that takes a while accepts a `Job` and calls `job.update(stage, done, total, item)` at each step
boundary (a denoising step, a candidate, an output token, an epoch). `update` reports progress to whichever
front end is listening and raises `Cancelled` once the user has asked to stop; the flow catches it where
it can keep partial results (`Cancelled.partial`). A flow run without a job gets `Job.none()`, which
reports nowhere and is never cancelled, so the same code serves the CLI, the tests and both front ends.

`JobRegistry` (one per app, on the AppContext) holds the running job of each user session: one job at a
time per session (a second start is refused with a message), and a Cancel button anywhere can stop it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable


class Cancelled(Exception):
    """The user cancelled a job. `partial` holds what finished before the cancel (flow-specific)."""

    def __init__(self, message: str = "cancelled by the user", partial: Any = None):
        super().__init__(message)
        self.partial = partial


class JobBusy(ValueError):
    """A session asked for a second job while one is running."""


@dataclass
class ProgressUpdate:
    stage: str  # what is running: "render", "score", "attribution: integrated gradients (base)"
    done: int | None = None  # steps finished in this stage
    total: int | None = None  # steps in this stage, when known
    item: str = ""  # which item: "candidate 2 of 4", "token 5 'Paris'"
    at: float = field(default_factory=time.time)

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    def describe(self) -> str:
        text = self.stage
        if self.done is not None and self.total:
            text += f" {self.done}/{self.total}"
        if self.item:
            text += f" · {self.item}"
        return text


class Job:
    def __init__(self, name: str = "", on_progress: Callable[[ProgressUpdate], None] | None = None,
                 session_id: str = ""):
        self.name, self.session_id = name, session_id
        self._listeners: list[Callable[[ProgressUpdate], None]] = [on_progress] if on_progress else []
        self._cancel = threading.Event()
        self.last: ProgressUpdate | None = None
        self.partial: Any = None  # the latest partial result a flow reported (kept when a run is interrupted)
        self.history: list[ProgressUpdate] = []  # every update, for tests and the event log
        self.started = time.time()

    @classmethod
    def none(cls) -> "Job":
        return cls("")

    def listen(self, fn: Callable[[ProgressUpdate], None]) -> None:
        self._listeners.append(fn)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self, partial: Any = None) -> None:
        """Raise `Cancelled` (carrying `partial`) if the user asked to stop."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.name or 'job'} cancelled by the user", partial)

    def update(self, stage: str, done: int | None = None, total: int | None = None, item: str = "",
               partial: Any = None) -> None:
        """Report progress, then stop here if cancelled."""
        update = ProgressUpdate(stage, done, total, item)
        self.last = update
        if partial is not None:
            self.partial = partial
        self.history.append(update)
        for fn in list(self._listeners):
            fn(update)
        self.check(partial)


class JobRegistry:
    """The running job of each session (one at a time), so a Cancel button can reach it."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._last: dict[str, Job] = {}  # the last finished job per session (its partial result survives)
        self._lock = threading.Lock()

    def start(self, session_id: str, name: str, on_progress: Callable[[ProgressUpdate], None] | None = None) -> Job:
        with self._lock:
            running = self._jobs.get(session_id)
            if running is not None:
                raise JobBusy(f"'{running.name}' is still running in this session; wait for it or press Cancel "
                              f"before starting '{name}'")
            job = Job(name, on_progress, session_id)
            self._jobs[session_id] = job
            return job

    def finish(self, job: Job) -> None:
        with self._lock:
            if self._jobs.get(job.session_id) is job:
                del self._jobs[job.session_id]
            self._last[job.session_id] = job

    def last(self, session_id: str) -> Job | None:
        """The session's most recently finished (or interrupted) job."""
        with self._lock:
            return self._last.get(session_id)

    def running(self, session_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(session_id)

    def cancel(self, session_id: str) -> bool:
        """Ask the session's running job to stop at its next step; False when nothing runs."""
        with self._lock:
            job = self._jobs.get(session_id)
        if job is None:
            return False
        job.cancel()
        return True
