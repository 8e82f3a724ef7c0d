"""Study files: what a researcher writes (YAML), checked by a validator that explains every mistake by line.

A study has a join code, consent text, conditions, an assignment (between or within subjects, counterbalanced
or randomised with a recorded seed) and an ordered list of steps: tasks (work in a tab from a starting prompt
or image, then give an answer), blinded comparisons (pairwise A/B or best-worst over texts, images or videos)
and questionnaires (Likert and free text). See assets/studies/README.md for the format.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.checked_yaml import Checker, FileProblems, Problem, read_yaml

KINDS = ("task", "comparison", "questionnaire")
DESIGNS = ("between", "within")
METHODS = ("counterbalanced", "randomised")
MODES = ("pairwise", "best_worst")
MEDIA = ("text", "image", "video")
QUESTION_TYPES = ("likert", "text")
ANSWERS = ("text", "none")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$")
MAX_QUESTIONS = 8  # questionnaire slots the pages lay out
MAX_ITEMS = 6  # best-worst items the pages lay out (pairwise has exactly 2)
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".gif")
VIDEO_EXT = (".mp4", ".webm", ".gif")


class StudyError(FileProblems):
    """A study file with mistakes; `problems` lists each one with its line."""

    what = "study file"


@dataclass
class Condition:
    id: str
    label: str
    instructions: str = ""  # shown to participants in this condition
    tab: str = ""  # the tab they work in (empty: no tool)


@dataclass
class Item:
    id: str
    condition: str = ""  # which condition produced it (never shown to participants)
    text: str = ""
    path: str = ""  # image or video file, resolved against the study file's folder


@dataclass
class Question:
    id: str
    type: str  # likert | text
    text: str
    scale: int = 5
    labels: tuple[str, str] = ("Strongly disagree", "Strongly agree")
    required: bool = True


@dataclass
class Step:
    id: str
    kind: str  # task | comparison | questionnaire
    title: str = ""
    instructions: str = ""
    tab: str = ""
    prompt: str = ""
    image: str = ""
    answer: str = "text"
    per_condition: bool = False  # within subjects: repeated once per condition, in the participant's order
    mode: str = "pairwise"
    media: str = "text"
    question: str = ""
    items: list[Item] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


@dataclass
class Study:
    code: str
    title: str
    consent: str
    conditions: list[Condition]
    design: str
    method: str
    seed: int
    steps: list[Step]
    description: str = ""
    source: str = ""  # the file it came from
    text: str = ""  # the file's text, stored with every participant's data
    folder: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def condition(self, cid: str) -> Condition:
        return next(c for c in self.conditions if c.id == cid)

    def step(self, sid: str) -> Step:
        return next(s for s in self.steps if s.id == sid)

    def resolve(self, path: str) -> Path:
        return (Path(self.folder) / path).resolve()


# --------------------------------------------------------------------------- the validator


def parse_study(text: str, source: str = "<study>", folder: str | Path = ".",
                known_tabs: tuple[str, ...] | None = None, check_files: bool = True) -> Study:
    """The study in `text`, or `StudyError` listing every problem with its line. `check_files=False` skips
    checking that media files exist (reading a stored study whose files moved)."""
    data, lines, problems = read_yaml(text, source)
    if data is None and problems:
        raise StudyError(source, problems)
    c = Checker(lines)
    c.check_files = check_files
    c.problems.extend(problems)
    top = c.mapping(data, (), ("code", "title", "description", "consent", "seed", "conditions", "assignment",
                               "steps"), required=("code", "title", "consent", "conditions", "steps"))
    code = top.get("code")
    if "code" in top and (not isinstance(code, str) or not CODE_RE.match(code)):
        c.fail(("code",), f"code must be 3-40 letters, digits, - or _ (participants type it to join); got {code!r}")
    seed = top.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        c.fail(("seed",), f"seed must be a whole number from 0 to 2**32-1 (it is recorded with every assignment); "
                          f"got {seed!r}")
        seed = 0
    consent = c.text(top, "consent", ())
    if "consent" in top and not consent.strip():
        c.fail(("consent",), "consent text must not be empty: participants read it before they start")

    conditions: list[Condition] = []
    seen_conditions: dict[str, tuple] = {}
    raw_conditions = top.get("conditions", [])
    if not isinstance(raw_conditions, list) or not raw_conditions:
        if "conditions" in top:
            c.fail(("conditions",), "conditions must be a list with at least one condition")
        raw_conditions = []
    for i, raw in enumerate(raw_conditions):
        p = ("conditions", i)
        d = c.mapping(raw, p, ("id", "label", "instructions", "tab"), required=("id", "label"))
        if not d:
            continue
        tab = c.text(d, "tab", p)
        if tab and known_tabs is not None and tab not in known_tabs:
            c.fail(p + ("tab",), f"unknown tab '{tab}'; the app has: {', '.join(known_tabs)}")
        conditions.append(Condition(id=c.ident(d, "id", p, seen_conditions, "condition"),
                                    label=c.text(d, "label", p), instructions=c.text(d, "instructions", p), tab=tab))
    condition_ids = tuple(x.id for x in conditions)

    assignment = c.mapping(top.get("assignment", {}), ("assignment",), ("design", "method"))
    design = c.choice(assignment, "design", ("assignment",), DESIGNS, "between")
    method = c.choice(assignment, "method", ("assignment",), METHODS, "counterbalanced")

    steps: list[Step] = []
    seen_steps: dict[str, tuple] = {}
    raw_steps = top.get("steps", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        if "steps" in top:
            c.fail(("steps",), "steps must be a list with at least one task, comparison or questionnaire")
        raw_steps = []
    folder = Path(folder)
    for i, raw in enumerate(raw_steps):
        p = ("steps", i)
        if not isinstance(raw, dict):
            c.fail(p, f"each step must be a mapping with an id and a kind; got {type(raw).__name__}")
            continue
        kind = c.choice(raw, "kind", p, KINDS, "task") if "kind" in raw else None
        if kind is None:
            c.fail(p, f"'kind' is missing; choose one of {', '.join(KINDS)}")
            continue
        common = ("id", "kind", "title", "instructions", "per_condition")
        if kind == "task":
            d = c.mapping(raw, p, common + ("tab", "prompt", "image", "answer"), required=("id",))
        elif kind == "comparison":
            d = c.mapping(raw, p, common + ("mode", "media", "question", "prompt", "items"), required=("id", "items"))
        else:
            d = c.mapping(raw, p, common + ("questions",), required=("id", "questions"))
        per_condition = d.get("per_condition", kind == "task")
        if not isinstance(per_condition, bool):
            c.fail(p + ("per_condition",), f"per_condition must be true or false; got {per_condition!r}")
            per_condition = kind == "task"
        step = Step(id=c.ident(d, "id", p, seen_steps, "step"), kind=kind, title=c.text(d, "title", p),
                    instructions=c.text(d, "instructions", p), per_condition=per_condition)
        if kind == "task":
            step.tab = c.text(d, "tab", p)
            if step.tab and known_tabs is not None and step.tab not in known_tabs:
                c.fail(p + ("tab",), f"unknown tab '{step.tab}'; the app has: {', '.join(known_tabs)}")
            step.prompt = c.text(d, "prompt", p)
            step.image = c.text(d, "image", p)
            if step.image:
                _check_file(c, folder, step.image, p + ("image",), IMAGE_EXT, "image")
            step.answer = c.choice(d, "answer", p, ANSWERS, "text")
        elif kind == "comparison":
            step.mode = c.choice(d, "mode", p, MODES, "pairwise")
            step.media = c.choice(d, "media", p, MEDIA, "text")
            step.question = c.text(d, "question", p, default="Which is better?")
            step.prompt = c.text(d, "prompt", p)
            step.items = _items(c, d.get("items"), p + ("items",), step, condition_ids, folder)
        else:
            step.questions = _questions(c, d.get("questions"), p + ("questions",))
        steps.append(step)

    if design == "within":
        flags = [s.per_condition for s in steps]
        if True in flags:
            first, last = flags.index(True), len(flags) - 1 - flags[::-1].index(True)
            for j in range(first, last + 1):
                if not flags[j]:
                    c.fail(("steps", j), f"within subjects, the steps repeated per condition (per_condition: true) "
                                         f"form one block (steps {first + 1}-{last + 1}); move '{steps[j].id}' "
                                         f"before or after it, or make it per_condition: true")
    if c.problems:
        raise StudyError(source, sorted(c.problems, key=lambda pr: (pr.line or 0)))
    return Study(code=code, title=c.text(top, "title", ()), consent=consent, conditions=conditions, design=design,
                 method=method, seed=seed, steps=steps, description=c.text(top, "description", ()), source=source,
                 text=text, folder=str(folder.resolve()))


def _check_file(c: Checker, folder: Path, rel: str, path: tuple, exts: tuple[str, ...], what: str) -> None:
    if not rel.lower().endswith(exts):
        c.fail(path, f"{what} file must end with {', '.join(exts)}; got '{rel}'")
    elif Path(rel).is_absolute() or ".." in Path(rel).parts:
        c.fail(path, f"{what} path must be relative to the study file's folder, without '..'; got '{rel}'")
    elif c.check_files and not (folder / rel).is_file():
        c.fail(path, f"{what} file '{rel}' not found next to the study file (looked in {folder})")


def _items(c: Checker, raw: Any, path: tuple, step: Step, condition_ids: tuple[str, ...], folder: Path) -> list[Item]:
    if not isinstance(raw, list):
        if raw is not None:
            c.fail(path, "items must be a list")
        return []
    want = "exactly 2" if step.mode == "pairwise" else f"3 to {MAX_ITEMS}"
    ok = len(raw) == 2 if step.mode == "pairwise" else 3 <= len(raw) <= MAX_ITEMS
    if not ok:
        c.fail(path, f"a {step.mode} comparison needs {want} items; got {len(raw)}")
    items, seen = [], {}
    for i, r in enumerate(raw):
        p = path + (i,)
        d = c.mapping(r, p, ("id", "condition", "text", "path"), required=("id",))
        if not d:
            continue
        item = Item(id=c.ident(d, "id", p, seen, "item"), condition=c.text(d, "condition", p),
                    text=c.text(d, "text", p), path=c.text(d, "path", p))
        if item.condition and item.condition not in condition_ids:
            c.fail(p + ("condition",), f"unknown condition '{item.condition}'; the study has: "
                                       f"{', '.join(condition_ids) or 'none'}")
        if step.media == "text":
            if not item.text.strip():
                c.fail(p, "a text comparison item needs 'text'")
            if item.path:
                c.fail(p + ("path",), "a text comparison item takes 'text', not 'path' (set media: image or video)")
        else:
            if not item.path:
                c.fail(p, f"an {step.media} comparison item needs 'path' (a file next to the study file)")
            else:
                _check_file(c, folder, item.path, p + ("path",), IMAGE_EXT if step.media == "image" else VIDEO_EXT,
                            step.media)
        items.append(item)
    return items


def _questions(c: Checker, raw: Any, path: tuple) -> list[Question]:
    if not isinstance(raw, list) or not raw:
        c.fail(path, "questions must be a list with at least one question")
        return []
    if len(raw) > MAX_QUESTIONS:
        c.fail(path, f"at most {MAX_QUESTIONS} questions per questionnaire (split it in two); got {len(raw)}")
    out, seen = [], {}
    for i, r in enumerate(raw):
        p = path + (i,)
        d = c.mapping(r, p, ("id", "type", "text", "scale", "labels", "required"), required=("id", "type", "text"))
        if not d:
            continue
        q = Question(id=c.ident(d, "id", p, seen, "question"), type=c.choice(d, "type", p, QUESTION_TYPES, "likert"),
                     text=c.text(d, "text", p))
        if q.type == "likert":
            scale = d.get("scale", 5)
            if isinstance(scale, bool) or not isinstance(scale, int) or not 2 <= scale <= 11:
                c.fail(p + ("scale",), f"scale must be a whole number of points from 2 to 11; got {scale!r}")
            else:
                q.scale = scale
            labels = d.get("labels", list(q.labels))
            if not (isinstance(labels, list) and len(labels) == 2 and all(isinstance(x, str) for x in labels)):
                c.fail(p + ("labels",), "labels must be two texts: the lowest and the highest point")
            else:
                q.labels = (labels[0], labels[1])
        elif "scale" in d or "labels" in d:
            c.fail(p, "scale and labels belong to likert questions; this one is type: text")
        required = d.get("required", True)
        if not isinstance(required, bool):
            c.fail(p + ("required",), f"required must be true or false; got {required!r}")
        else:
            q.required = required
        out.append(q)
    return out


def load_study(path: str | Path, known_tabs: tuple[str, ...] | None = None) -> Study:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(str(path), [Problem(None, "", f"cannot read the file: {exc}")]) from None
    return parse_study(text, source=str(path), folder=path.parent, known_tabs=known_tabs)


def study_dirs() -> list[Path]:
    """Folders searched for study files: WORKBENCH_STUDIES_DIR (os.pathsep-separated) then assets/studies."""
    import os

    dirs = [Path(p) for p in os.environ.get("WORKBENCH_STUDIES_DIR", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "assets" / "studies")
    return dirs


_parsed: dict[Path, tuple[tuple[int, int], Study | None]] = {}


def _cached_study(path: Path) -> Study | None:
    """The study in `path` (None if it has problems), parsed again only when the file changes."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _parsed.get(path)
    if cached is None or cached[0] != key:
        try:
            study = load_study(path)
        except StudyError:
            study = None
        _parsed[path] = cached = (key, study)
    return cached[1]


def find_study(code: str) -> Study:
    """The study whose join code is `code` (case-insensitive), from the study folders. Bad files are skipped
    here (the researcher sees them with `python -m workbench.studies check`); an unknown code says so."""
    code = (code or "").strip()
    if not code:
        raise ValueError("Type the study code you were given.")
    for folder in study_dirs():
        for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
            study = _cached_study(path)
            if study is not None and study.code.lower() == code.lower():
                return study
    from workbench.text import preview

    raise ValueError(f"No study has the code '{preview(code, 40)}'. Check the code you were given (letters, digits, - and _).")
