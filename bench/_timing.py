"""What the benchmarks share: interleaved timing (each repeat runs every candidate once, so load on shared cores
falls on all alike) and the markdown table with ratios to the first row."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence


def time_interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each named callable: one warm-up call each, then `repeats` rounds, each calling all in
    order."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return times


def print_ratio_table(title: str, columns: Sequence[str], cells: dict[str, Sequence[object]],
                      times: dict[str, list[float]], unit: str, baseline: str) -> None:
    """A markdown table: one row per name in `times` (its `cells` under `columns`), mean and max seconds per
    `unit`, and the ratio of its mean to the first row's (`baseline` names that row in the header)."""
    base = statistics.mean(next(iter(times.values())))
    print(title)
    print("| model | " + " | ".join(columns) + f" | mean s/{unit} | max s | ratio to {baseline} |")
    print("|---" * (len(columns) + 4) + "|")
    for name, ts in times.items():
        row = " | ".join(str(c) for c in cells[name])
        print(f"| {name} | {row} | {statistics.mean(ts):.3f} | {max(ts):.3f} | {statistics.mean(ts) / base:.2f} |")
