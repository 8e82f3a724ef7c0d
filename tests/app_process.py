"""Start `python app.py` (or any server command) as a subprocess and wait for its first HTTP 200.
Shared by the app, browser and Streamlit tests and by bench/bench_cold_start.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until `url` answers 200; raises with the server's output if it dies or times out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def start(cmd: list[str], port: int, env: dict | None = None, timeout: float = 180.0,
          path: str = "/") -> tuple[subprocess.Popen, str, float]:
    full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        seconds = wait_for_http(url + path, proc, timeout)
    except BaseException:
        stop(proc)
        raise
    return proc, url, seconds


def start_app(*args: str, env: dict | None = None, timeout: float = 180.0) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    return start([sys.executable, "app.py", "--port", str(port), *args], port, env, timeout)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
