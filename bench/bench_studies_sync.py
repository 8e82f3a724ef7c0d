"""Study database: cost of one committed event with SQLite synchronous=FULL (what the app uses) vs NORMAL,
both in WAL mode, measured side by side in interleaved rounds on the same disk.

    python -m bench.bench_studies_sync [--events 300] [--rounds 3]

FULL fsyncs the WAL at every commit (a committed event survives a power cut); NORMAL fsyncs only at
checkpoints (survives a killed process, may lose the last commits on power loss). Either is far below the
rate at which people click.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.studies.store import StudyStore, sqlite_url  # noqa: E402

EVENT = {"action": "t2i_refine", "tab": "t2i", "session_id": "bench", "frontend": "gradio",
         "inputs": {"prompt": "a cat on a sofa", "n": 4}, "outputs": {"candidates": ["x" * 200] * 4},
         "provenance": [{"model_id": "fake/chat", "versions": {"torch": "2.13"}}], "seconds": 0.1}


def store(folder: Path, mode: str) -> StudyStore:
    from sqlalchemy import event

    s = StudyStore(sqlite_url(folder / f"{mode}.sqlite"))
    s.engine.dispose()

    @event.listens_for(s.engine, "connect")
    def set_mode(dbapi_connection, _record) -> None:  # runs after the store's own listener
        dbapi_connection.execute(f"PRAGMA synchronous={mode}")

    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == {"FULL": 2, "NORMAL": 1}[mode]
    return s


def per_event_ms(s: StudyStore, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        s.add_event(EVENT)
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {mode: store(Path(tmp), mode) for mode in ("FULL", "NORMAL")}
        times: dict[str, list[float]] = {mode: [] for mode in stores}
        for _ in range(args.rounds):
            for mode, s in stores.items():
                times[mode].append(per_event_ms(s, args.events))
        full, normal = statistics.median(times["FULL"]), statistics.median(times["NORMAL"])
        print(f"{'synchronous':<12} {'ms per committed event':>22} {'events/s':>10}")
        for mode, value in (("FULL", full), ("NORMAL", normal)):
            print(f"{mode:<12} {value:>22.2f} {1000 / value:>10.0f}")
        print(f"FULL / NORMAL: {full / normal:.2f}x ({args.events} events x {args.rounds} interleaved rounds, median)")


if __name__ == "__main__":
    main()
