"""Cold start: `python app.py` to its first HTTP 200, against a plain Gradio Blocks hello-world started the same
way, alternating in one run. Target: app / hello-world <= 1.5x. Prints a table.

    python bench/bench_cold_start.py [--runs 5] [--profile offline]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from tests.app_process import free_port, start, stop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", default="offline")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be between 1 and 50")
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    times: dict[str, list[float]] = {"hello-world": [], "app.py": []}
    for _ in range(args.runs):
        for name in times:  # alternate so drift on shared cores hits both equally
            port = free_port()
            cmd = ([sys.executable, str(ROOT / "bench" / "hello_gradio.py"), str(port)] if name == "hello-world"
                   else [sys.executable, "app.py", "--port", str(port), "--profile", args.profile])
            proc, _, seconds = start(cmd, port, env=env, timeout=300)
            stop(proc)
            times[name].append(seconds)
    base = statistics.median(times["hello-world"])
    print(f"\nCold start to first HTTP 200, {args.runs} runs each, alternating (profile {args.profile})")
    print(f"{'server':<14}{'median s':>10}{'min s':>10}{'max s':>10}{'ratio':>8}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<14}{med:>10.2f}{min(values):>10.2f}{max(values):>10.2f}{med / base:>8.2f}")
    ratio = statistics.median(times["app.py"]) / base
    print(f"\napp.py / hello-world = {ratio:.2f}x (target <= 1.50x): {'met' if ratio <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
