"""Run a screenshot scenario: start the app (or use a running one), drive it with Playwright in Debian's
headless Chromium, save each shot as a PNG with a caption strip (tab, inputs, model ids, seed, time) and
write a manifest JSON beside them. Used for the README's screenshots and for study stimuli."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from workbench.screenshots.scenario import Scenario, Shot

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CAPTION_BG, CAPTION_FG = (32, 33, 36), (235, 235, 235)


def chromium_path() -> str:
    path = os.environ.get("WORKBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium not found: install Debian's chromium (apt-get install -y chromium) or set "
                           "WORKBENCH_CHROMIUM to its executable. Playwright's own browser download is not used.")
    return path


# --------------------------------------------------------------------------- the app


def start_app(profile: str, env: dict[str, str], timeout: float = 180.0) -> tuple[subprocess.Popen, str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"workbench-screenshots-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--profile", profile, "--port", str(port)], cwd=str(ROOT),
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env}, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}; its output is in {log.name}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, url, log
        except OSError:
            time.sleep(0.2)
    stop_app(proc, log)
    raise TimeoutError(f"the app did not answer within {timeout:.0f} s; its output is in {log.name}")


def stop_app(proc: subprocess.Popen, log: Any) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


# --------------------------------------------------------------------------- steps


def _target(page, spec: dict[str, Any]):
    if "elem_id" in spec:
        return page.locator(f"#{spec['elem_id']}")
    if "button" in spec:
        return page.get_by_role("button", name=spec["button"], exact=True).first
    if "label" in spec:
        return page.get_by_label(spec["label"], exact=True).first
    return page.get_by_text(spec["text"], exact=True).first


def perform(page, step: dict[str, Any], inputs: dict[str, str], timeout_ms: float) -> None:
    (kind, value), = step.items()
    if kind == "fill":
        target = _target(page, value)
        if "elem_id" in value:
            target = target.locator("textarea, input").first
        text = str(value["value"])
        for _ in range(3):  # a box that was still being mounted (an accordion just opened) may be reset after a fill
            target.fill(text)
            page.wait_for_timeout(200)
            if target.input_value() == text:
                break
        else:
            raise RuntimeError(f"the box {value.get('label') or value.get('elem_id')!r} did not keep what was typed")
        name = value.get("label") or value.get("elem_id")
        secret = any(word in name.lower() for word in ("token", "password", "secret", "api_key", "api-key"))
        inputs[name] = "<redacted>" if secret else str(value["value"])  # captions and manifests are published
    elif kind == "click":
        _target(page, value).click()
    elif kind == "check":
        target = _target(page, value)
        (target.locator("input[type=checkbox]").first if "elem_id" in value else target).check()
    elif kind == "select":  # a radio option (by its text) inside the target
        scope = page.locator(f"#{value['elem_id']}") if "elem_id" in value else page
        scope.get_by_label(str(value["value"]), exact=True).first.check()
        inputs[value.get("label") or value.get("elem_id") or "choice"] = str(value["value"])
    elif kind == "wait_text":
        page.get_by_text(value).first.wait_for(timeout=timeout_ms)
    elif kind == "wait_for":
        _target(page, value).wait_for(timeout=timeout_ms)
    elif kind == "wait_ms":
        page.wait_for_timeout(value)
    elif kind == "scroll":
        height = page.evaluate("document.body.scrollHeight")
        for y in range(0, height, 600):  # bring lazily loaded images into view once
            page.evaluate(f"window.scrollTo(0, {y})")
            page.wait_for_timeout(200)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(300)
    elif kind == "tab":
        page.get_by_role("tab", name=value).click()


# --------------------------------------------------------------------------- captions


def model_lines(profile: str, roles: list[str]) -> list[str]:
    """'role: model id' for the shot's roles, saying where weights are random."""
    if not roles:
        return []
    from workbench.profiles import load_profiles

    chosen = load_profiles().get(profile)
    out = []
    for role in roles:
        spec = chosen.roles.get(role) if chosen else None
        if spec is None:
            out.append(f"{role}: (not in profile '{profile}')")
            continue
        # The Models tab's rule: fake backends and tiny models built in code have random weights.
        random = spec.random_weights or spec.model_id.startswith("tiny:") or spec.backend.startswith("fake")
        note = " (RANDOM WEIGHTS: outputs are not meaningful)" if random else ""
        out.append(f"{role}: {spec.model_id}{note}")
    return out


def caption_lines(shot: Shot, profile: str, inputs: dict[str, str], when: str) -> list[str]:
    lines = [f"Tab: {shot.tab or '(current)'}   Profile: {profile}   Seed: "
             f"{shot.seed if shot.seed is not None else '-'}   Time: {when}"]
    if inputs:
        lines.append("Inputs: " + "; ".join(f"{k} = {v!r}" for k, v in inputs.items()))
    models = model_lines(profile, shot.roles)
    if models:
        lines.append("Models: " + "; ".join(models))
    if shot.caption:
        lines.append(shot.caption)
    return lines


def add_caption(png: bytes, lines: list[str]):
    """The screenshot with a dark strip under it carrying `lines` (wrapped to the image's width)."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    shot = Image.open(io.BytesIO(png)).convert("RGB")
    try:
        font = ImageFont.load_default(size=15)
    except TypeError:  # Pillow < 10.1: the bitmap font only
        font = ImageFont.load_default()
    char_w = max(1, int(font.getlength("M")))
    wrapped = [part for line in lines for part in textwrap.wrap(line, max(20, (shot.width - 24) // char_w)) or [""]]
    line_h = int(sum(font.getbbox("Ag")[1::2]) * 1.0) + 6
    strip_h = 12 + line_h * len(wrapped)
    out = Image.new("RGB", (shot.width, shot.height + strip_h), CAPTION_BG)
    out.paste(shot, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(wrapped):
        draw.text((12, shot.height + 6 + i * line_h), line, fill=CAPTION_FG, font=font)
    return out


# --------------------------------------------------------------------------- the run


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(ROOT), capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except OSError:
        return None


def run(scenario: Scenario, url: str | None = None, only: list[str] | None = None,
        out: Path | None = None) -> Path:
    """Take every shot (or those named in `only`); returns the manifest's path."""
    from playwright.sync_api import sync_playwright

    from workbench.types import package_versions

    shots = [s for s in scenario.shots if not only or s.name in only]
    if only and len(shots) != len(set(only)):
        unknown = sorted(set(only) - {s.name for s in scenario.shots})
        raise ValueError(f"no shot named {', '.join(unknown)}; the scenario has: "
                         f"{', '.join(s.name for s in scenario.shots)}")
    out = Path(out or scenario.out)
    out.mkdir(parents=True, exist_ok=True)
    proc = log = None
    if url is None:
        # The app started here records studies into a throwaway database unless the scenario names one.
        env = {"WORKBENCH_STUDIES_DB": str(out / ".screenshots-studies.sqlite"), **scenario.env}
        proc, url, log = start_app(scenario.profile, env, timeout=scenario.timeout_s)
    records: list[dict[str, Any]] = []
    started = dt.datetime.now(dt.timezone.utc)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            timeout_ms = scenario.timeout_s * 1000
            page = None
            for shot in shots:
                if page is None or shot.new_session:
                    if page is not None:
                        page.context.close()
                    page = browser.new_context(viewport={"width": scenario.viewport[0],
                                                         "height": scenario.viewport[1]}).new_page()
                    page.set_default_timeout(timeout_ms)
                    page.goto(url, wait_until="domcontentloaded")
                inputs: dict[str, str] = {}
                if shot.tab:
                    page.get_by_role("tab", name=shot.tab).click()
                for step in shot.steps:
                    perform(page, step, inputs, timeout_ms)
                when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                lines = caption_lines(shot, scenario.profile, inputs, when)
                image = add_caption(page.screenshot(full_page=shot.full_page), lines)
                path = out / f"{shot.name}.png"
                image.save(path, optimize=True)
                records.append({"name": shot.name, "file": path.name, "tab": shot.tab, "inputs": inputs,
                                "models": model_lines(scenario.profile, shot.roles), "seed": shot.seed, "time": when,
                                "caption": lines, "width": image.width, "height": image.height,
                                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
                print(f"{path} ({image.width}x{image.height})", flush=True)
            browser.close()
    finally:
        if proc is not None:
            stop_app(proc, log)
            for suffix in ("", "-wal", "-shm"):
                Path(str(out / ".screenshots-studies.sqlite") + suffix).unlink(missing_ok=True)
    manifest = {"scenario": scenario.source, "url": url if proc is None else "(started by this command)",
                "profile": scenario.profile, "started_at": started.isoformat(timespec="seconds"),
                "git_commit": _git_commit(), "chromium": chromium_path(),
                "versions": package_versions("playwright", "pillow"), "shots": records}
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
