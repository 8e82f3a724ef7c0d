"""Screenshot scenarios: a YAML file of shots, each a tab and scripted steps (fill, click, wait), checked up
front with the line of every mistake (the same line-numbered YAML reading as study files).

    profile: fake                     # the app's profile (started with --profile), and whose model ids the captions name
    out: docs/screenshots             # relative to the scenario file
    viewport: {width: 1400, height: 1000}
    timeout_s: 180                    # per step that waits
    env: {WORKBENCH_RESEARCHER_TOKEN: demo}   # extra environment for the app this command starts
    shots:
      - name: t2i_tab                 # the PNG's file name
        new_session: false            # true: a fresh browser context first (a new user, e.g. the next participant)
        tab: T2I prompt refinement    # the tab's title, clicked first
        roles: [chat, t2i, clip]      # caption: these roles' model ids
        seed: 0                       # caption: the seed the shot used (fill it into an input too if needed)
        full_page: true
        steps:
          - fill: {label: Coarse prompt, value: a cat on a sofa}   # or {elem_id: t2i-prompt, value: ...}
          - click: {button: Refine}   # or {elem_id: ...}, {text: ...}, {label: ...} (checkbox/radio)
          - wait_text: candidate(s) chosen
          - scroll: true              # scroll through once so lazy images load
          - wait_ms: 500
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.checked_yaml import Checker, FileProblems, Problem, read_yaml

STEP_KINDS = ("fill", "click", "check", "select", "wait_text", "wait_for", "wait_ms", "scroll", "tab")
TARGETS = ("elem_id", "label", "button", "text")


class ScenarioError(FileProblems):
    """A scenario file with mistakes (each with its line)."""

    what = "scenario file"


@dataclass
class Shot:
    name: str
    tab: str
    steps: list[dict[str, Any]]
    roles: list[str] = field(default_factory=list)
    seed: int | None = None
    full_page: bool = True
    caption: str = ""  # an extra caption line
    new_session: bool = False  # open the app afresh in a new browser context (a new user: a new Gradio session)


@dataclass
class Scenario:
    profile: str
    out: Path
    shots: list[Shot]
    viewport: tuple[int, int] = (1400, 1000)
    timeout_s: float = 180.0
    env: dict[str, str] = field(default_factory=dict)
    source: str = ""


def parse_scenario(text: str, source: str = "<scenario>", folder: str | Path = ".") -> Scenario:
    data, lines, problems = read_yaml(text, source)
    if data is None and problems:
        raise ScenarioError(source, problems)
    c = Checker(lines)
    c.problems.extend(problems)
    top = c.mapping(data, (), ("profile", "out", "viewport", "timeout_s", "env", "shots"), required=("shots",))
    viewport = c.mapping(top.get("viewport", {"width": 1400, "height": 1000}), ("viewport",), ("width", "height"),
                         required=("width", "height"))
    size = (1400, 1000)
    if viewport:
        w, h = viewport.get("width"), viewport.get("height")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 200 <= v <= 8000 for v in (w, h)):
            c.fail(("viewport",), f"width and height must be whole numbers of pixels from 200 to 8000; got {w!r}, {h!r}")
        else:
            size = (w, h)
    timeout = top.get("timeout_s", 180)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 3600:
        c.fail(("timeout_s",), f"timeout_s must be a number of seconds from 1 to 3600; got {timeout!r}")
        timeout = 180
    env = top.get("env", {}) or {}
    if not isinstance(env, dict) or not all(isinstance(v, (str, int, float)) for v in env.values()):
        c.fail(("env",), "env must map variable names to values")
        env = {}
    shots, seen = [], {}
    raw_shots = top.get("shots")
    if not isinstance(raw_shots, list) or not raw_shots:
        if "shots" in top:
            c.fail(("shots",), "shots must be a list with at least one shot")
        raw_shots = []
    for i, raw in enumerate(raw_shots):
        p = ("shots", i)
        d = c.mapping(raw, p, ("name", "tab", "steps", "roles", "seed", "full_page", "caption",
                                       "new_session"), required=("name",))
        if not d:
            continue
        name = d.get("name")
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            c.fail(p + ("name",), f"name must be letters, digits, - or _ (it names the PNG); got {name!r}")
        elif name in seen:
            c.fail(p + ("name",), f"shot name '{name}' is used twice (first on line {c.line(seen[name])})")
        else:
            seen[name] = p + ("name",)
        roles = d.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            c.fail(p + ("roles",), "roles must be a list of role names (chat, t2i, ...)")
            roles = []
        seed = d.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            c.fail(p + ("seed",), f"seed must be a whole number; got {seed!r}")
        steps = []
        raw_steps = d.get("steps", [])
        if not isinstance(raw_steps, list):
            c.fail(p + ("steps",), "steps must be a list")
            raw_steps = []
        for j, step in enumerate(raw_steps):
            sp = p + ("steps", j)
            if not isinstance(step, dict) or len(step) != 1:
                c.fail(sp, f"each step is one of {', '.join(STEP_KINDS)} with its value, e.g. 'click: {{button: Run}}'")
                continue
            (kind, value), = step.items()
            if kind not in STEP_KINDS:
                c.fail(sp + (kind,), f"unknown step '{kind}'; choose one of {', '.join(STEP_KINDS)}")
                continue
            _check_step(c, sp + (kind,), kind, value)
            steps.append({kind: value})
        shots.append(Shot(name=str(name), tab=c.text(d, "tab", p), steps=steps, roles=roles, seed=seed,
                          full_page=bool(d.get("full_page", True)), caption=c.text(d, "caption", p),
                          new_session=bool(d.get("new_session", False))))
    if c.problems:
        raise ScenarioError(source, sorted(c.problems, key=lambda pr: pr.line or 0))
    profile = c.text(top, "profile", (), default="fake")
    out = Path(folder) / c.text(top, "out", (), default="screenshots")
    return Scenario(profile=profile, out=out.resolve(), shots=shots, viewport=size, timeout_s=float(timeout),
                    env={str(k): str(v) for k, v in env.items()}, source=source)


def _check_step(c: Checker, path: tuple, kind: str, value: Any) -> None:
    if kind in ("wait_text", "tab"):
        if not isinstance(value, str) or not value:
            c.fail(path, f"{kind} takes the text to wait for / the tab's title")
    elif kind == "wait_ms":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 600000:
            c.fail(path, f"wait_ms takes milliseconds from 0 to 600000; got {value!r}")
    elif kind == "scroll":
        if value is not True:
            c.fail(path, "scroll takes true")
    else:
        allowed = TARGETS + (("value",) if kind in ("fill", "select") else ())
        d = c.mapping(value, path, allowed)
        targets = [t for t in TARGETS if t in d]
        if len(targets) != 1:
            c.fail(path, f"{kind} needs exactly one of {', '.join(TARGETS)}; got {', '.join(targets) or 'none'}")
        if kind in ("fill", "select") and "value" not in d:
            c.fail(path, f"{kind} needs a value")


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), [Problem(None, "", f"cannot read the file: {exc}")]) from None
    return parse_scenario(text, source=str(path), folder=path.parent)
