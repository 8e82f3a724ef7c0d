"""Fifty arrivals at once: N gradio_client sessions start together (a barrier), each with the client's default
timeouts, against a local server (127.0.0.1 only) started by this script with `python app.py`.

Rows (all against one server, one after another):
- baseline: the workbench page (`/`): connect only (the client's /config and /gradio_api/info);
- participant page (`/study/`): connect, join the study, consent, first step (3 calls);
- the T2I tab's keyword path (`/`): connect, refine with the keyword baseline (the cheapest model path);
- and the page itself as a browser gets it (GET of the HTML) for `/` and `/study/`, for the bytes and seconds.

    python bench/bench_arrivals.py                      # 50 clients, fake profile (tiny models, no downloads)
    python bench/bench_arrivals.py --profile offline    # the real embedder (MiniLM) on the keyword path
    python bench/bench_arrivals.py --runs 3             # repeat each row, errors and percentiles over all runs

Prints a table: errors, p50 and p95 of the whole session and of the connect step, and p95 as a ratio of the
baseline's. Errors are counted by kind (e.g. ReadTimeout on /config, the failure this bench was written for).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.app_process import free_port, start, stop  # noqa: E402

STUDY = "REFINER-AB"  # the shipped example study (assets/studies/refiner_ab.yaml)
MAX_CLIENTS = 200


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _error_kind(exc: BaseException) -> str:
    """The error's class, and the route it happened on where httpx says (e.g. `ReadTimeout on /config`)."""
    text = type(exc).__name__
    cause = exc if hasattr(exc, "request") else (exc.__cause__ or exc.__context__)
    try:
        text += f" on {cause.request.url.path}"  # type: ignore[union-attr]
    except (AttributeError, RuntimeError):
        pass
    return text


def _child(session, barrier, results, i: int) -> None:
    os.nice(19)  # clients yield the CPU to the server, as if they ran on other machines (one host runs both here)
    barrier.wait()
    start_t = time.perf_counter()
    try:
        connect = session(start_t)
        results.put((i, "ok", connect, time.perf_counter() - start_t))
    except BaseException as exc:  # noqa: BLE001 - every failure is counted and shown by kind
        results.put((i, "error", _error_kind(exc) + f": {str(exc)[:120]}", time.perf_counter() - start_t))


def arrivals(n: int, session) -> dict:
    """Run `session()` in n client processes released together (separate processes, as arrivals from separate
    machines: one process's GIL would make the clients' own JSON parsing the bottleneck); per session (connect
    seconds, total seconds) or its error."""
    import multiprocessing as mp

    fork = mp.get_context("fork")  # the parent has imported gradio_client: children start warm
    barrier, results = fork.Barrier(n), fork.Queue()
    procs = [fork.Process(target=_child, args=(session, barrier, results, i), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    wall = time.perf_counter()
    out: list = [None] * n
    for _ in range(n):
        try:
            i, *rest = results.get(timeout=900)
        except Exception:  # noqa: BLE001 - a child that never answered counts as an error below
            break
        out[i] = tuple(rest)
    wall = time.perf_counter() - wall
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
    oks = [o for o in out if o and o[0] == "ok"]
    bad = [o[1] if o else "no answer" for o in out if not o or o[0] == "error"]
    errors = collections.Counter(b.split(":")[0] for b in bad)
    return {"n": n, "ok": len(oks), "errors": len(bad), "kinds": dict(errors), "samples": bad[:2],
            "connect": [o[1] for o in oks], "total": [o[2] for o in oks], "wall": wall}


def client_session(url: str, calls):
    from gradio_client import Client  # imported in the parent, before the fork

    def session(start_t: float) -> float:
        client = Client(url, verbose=False)  # the client's default timeouts, no httpx_kwargs
        connect = time.perf_counter() - start_t
        try:
            for api_name, args in calls:
                client.predict(*args, api_name=api_name)
        finally:
            client.close()
        return connect

    return session


def page_session(url: str):
    def session(start_t: float) -> float:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        return time.perf_counter() - start_t

    return session


def participant_calls() -> list:
    return [("/studies_join", (STUDY,)), ("/studies_consent", (True,))]


def keyword_calls(profile: str) -> list:
    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE
    from workbench.t2i.flows import REWRITER_LABELS

    # the T2I tab's Refine inputs in order: profile, prompt, rewriter, server URL, model, adapter, template, n,
    # diversity, few-shot, temperature, seed
    return [("/t2i_refine", (profile, "a red fox in the snow", REWRITER_LABELS["baseline"], "", "", "",
                             DEFAULT_SYSTEM_TEMPLATE, 4, 0.5, 3, 0.9, 0))]


def merge(results: list[dict]) -> dict:
    out = {"n": 0, "ok": 0, "errors": 0, "kinds": collections.Counter(), "samples": [], "connect": [], "total": [],
           "wall": 0.0}
    for r in results:
        for k in ("n", "ok", "errors"):
            out[k] += r[k]
        out["kinds"].update(r["kinds"])
        out["samples"] += r["samples"]
        out["connect"] += r["connect"]
        out["total"] += r["total"]
        out["wall"] = max(out["wall"], r["wall"])
    return out


def sizes(url: str) -> dict[str, int]:
    got = {}
    for name, path in (("config", "config"), ("info", "gradio_api/info"), ("page", "")):
        with urllib.request.urlopen(url + path, timeout=60) as response:
            got[name] = len(response.read())
    return got


def main(argv: list[str] | None = None) -> int:
    import gradio_client  # noqa: F401  (once, before the client processes fork)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", default="fake")
    parser.add_argument("--url", default=None, help="an already running app (127.0.0.1 only); default: start one")
    parser.add_argument("--rows", default="baseline,participant,keyword,pages")
    parser.add_argument("--app-dir", default=str(ROOT),
                        help="the checkout whose app.py to start (e.g. an export of an older commit, to compare)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be between 1 and {MAX_CLIENTS}, got {args.clients}")
    if not 1 <= args.runs <= 10:
        parser.error(f"--runs must be between 1 and 10, got {args.runs}")
    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--url must be a local server (http://127.0.0.1:PORT/)")
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]

    proc = None
    tmp = tempfile.TemporaryDirectory()
    if args.url:
        base = args.url.rstrip("/") + "/"
    else:
        port = free_port()
        env = {"WORKBENCH_STUDIES_DB": str(Path(tmp.name) / "bench.sqlite"), "WORKBENCH_EVENT_LOG": "participants",
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        proc, url, seconds = start([sys.executable, str(Path(args.app_dir) / "app.py"), "--host", "127.0.0.1",
                                    "--port", str(port), "--profile", args.profile], port, env=env, timeout=300)
        base = url + "/"
        print(f"server up in {seconds:.1f} s ({args.profile} profile)", flush=True)
    try:
        main_sizes = sizes(base)
        print(f"bytes  workbench: /config {main_sizes['config']:,}  /gradio_api/info {main_sizes['info']:,}  "
              f"page {main_sizes['page']:,}")
        if "participant" in rows:
            study_sizes = sizes(base + "study/")
            print(f"bytes  participant page: /config {study_sizes['config']:,}  /gradio_api/info "
                  f"{study_sizes['info']:,}  page {study_sizes['page']:,}")
            client_session(base + "study/", participant_calls())(time.perf_counter())  # warm-up
        if "keyword" in rows:  # warm-up: the first refine loads the embedder
            client_session(base, keyword_calls(args.profile))(time.perf_counter())
        plan = {
            "baseline": ("workbench page: connect", lambda: client_session(base, [])),
            "participant": ("participant page: connect+join+consent", lambda: client_session(
                base + "study/", participant_calls())),
            "keyword": ("T2I keyword path: connect+refine", lambda: client_session(base, keyword_calls(args.profile))),
        }
        table = []
        for row in rows:
            if row == "pages":
                urls = [("GET workbench page /", base)] + ([("GET participant page /study/", base + "study/")]
                                                            if "participant" in rows else [])
                for label, url in urls:
                    table.append((label, merge([arrivals(args.clients, page_session(url)) for _ in range(args.runs)])))
                continue
            label, make = plan[row]
            table.append((label, merge([arrivals(args.clients, make()) for _ in range(args.runs)])))
    finally:
        if proc is not None:
            stop(proc)
        tmp.cleanup()

    baseline = next((r for label, r in table if label.startswith("workbench page")), None)
    base_p95 = _pct(baseline["total"], 0.95) if baseline and baseline["total"] else None
    print(f"\n{args.clients} simultaneous sessions x {args.runs} run(s); seconds; gradio_client default timeouts")
    head = f"{'row':<40} {'errors':>9} {'connect p50':>11} {'connect p95':>11} {'total p50':>9} {'total p95':>9} " \
           f"{'p95/base':>8}"
    print(head)
    print("-" * len(head))
    for label, r in table:
        p95 = _pct(r["total"], 0.95)
        ratio = f"{p95 / base_p95:.2f}" if base_p95 and r["total"] else "-"
        print(f"{label:<40} {r['errors']:>4}/{r['n']:<4} {_pct(r['connect'], .5):>11.2f} {_pct(r['connect'], .95):>11.2f} "
              f"{_pct(r['total'], .5):>9.2f} {p95:>9.2f} {ratio:>8}")
    for label, r in table:
        if r["errors"]:
            print(f"  {label}: {dict(r['kinds'])}; e.g. {r['samples'][:1]}")
    return 0 if all(r["errors"] == 0 for _, r in table) else 1


if __name__ == "__main__":
    sys.exit(main())
