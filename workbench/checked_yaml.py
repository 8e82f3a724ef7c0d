"""YAML files people write by hand (study files, screenshot scenarios), read with the line of every value so
that a checker can explain each mistake by line ("line 12 (steps[1].kind): ... did you mean 'task'?").
Uses yaml's node marks; libyaml's C loader when installed.

Files come from people (a researcher pastes one into "Check a study file"), so reading is bounded: at most
`MAX_CHARS` characters, `MAX_DEPTH` levels of nesting and `MAX_VALUES` values after aliases are expanded (a
"billion laughs" file of nested `*alias` repeats is refused in a millisecond instead of filling memory), and an
alias that contains itself is a problem with its line, not a RecursionError."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # ids people write: lower_case, starting with a letter

MAX_CHARS = 200_000  # the shipped study is 3 KB; a study with 100 steps of long texts stays far below this
MAX_VALUES = 50_000  # values after alias expansion (each key, item and scalar counts once per place it appears)
MAX_DEPTH = 50  # nesting levels (a study file uses about 6)


class _TooBig(Exception):
    def __init__(self, problem: "Problem"):
        self.problem = problem


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based line in the file (None: the whole file)
    path: str  # where in the file: "steps[2].items[0].path"
    message: str

    def describe(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where} ({self.path}): {self.message}" if self.path else f"{where}: {self.message}"


class FileProblems(ValueError):
    """A file with mistakes; `problems` lists each one with its line (the message lists them all)."""

    what = "file"

    def __init__(self, source: str, problems: list[Problem]):
        self.source, self.problems = source, problems
        lines = "\n".join(f"- {p.describe()}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the {self.what}:\n{lines}")


def read_yaml(text: str, source: str, max_chars: int = MAX_CHARS,
              max_values: int = MAX_VALUES) -> tuple[Any, dict[tuple, int], list[Problem]]:
    """Parse `text`, returning the data, a map from each value's path to its line, and problems YAML itself
    has (syntax errors with their line, duplicate keys, a file too long, too deep, or whose aliases expand to
    more than `max_values` values). On a size problem the data is None and nothing was built."""
    if len(text) > max_chars:
        return None, {}, [Problem(None, "", f"the file is {len(text):,} characters; at most {max_chars:,} are read "
                                            f"(split the study, or move long texts into media files)")]
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 10x faster
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = str(getattr(exc, "problem", None) or exc)
        if "got '?'" in problem or "mapping values are not allowed" in problem:
            problem += " (a text containing '?', ': ' or '#' must be put in quotes)"
        return None, {}, [Problem(line, "", f"not valid YAML: {problem}")]
    if node is None:
        return None, {}, [Problem(None, "", "the file is empty")]
    too_big = _measure(node, max_values)
    if too_big is not None:
        return None, {}, [too_big]
    lines: dict[tuple, int] = {}
    problems: list[Problem] = []
    loader = yaml.SafeLoader("")

    def scalar(n: Any, path: tuple) -> Any:
        try:
            return loader.construct_object(n, deep=True)
        except yaml.YAMLError as exc:  # an unknown tag such as !!python/object: SafeLoader refuses it
            problems.append(Problem(n.start_mark.line + 1, fmt_path(path),
                                    f"value cannot be read: {getattr(exc, 'problem', None) or exc}"))
            return None

    def walk(n: Any, path: tuple) -> Any:  # bounded: `_measure` checked the expanded size, depth and cycles
        lines.setdefault(path, n.start_mark.line + 1)  # a key's own line wins over its value's
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                key = scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    what = repr(key) if isinstance(key_node, yaml.ScalarNode) else "a list or mapping"
                    problems.append(Problem(key_node.start_mark.line + 1, fmt_path(path), f"key {what} must be text"))
                    continue
                if key in out:
                    problems.append(Problem(key_node.start_mark.line + 1, fmt_path(path + (key,)),
                                            f"'{key}' is given twice (first on line {lines[path + (key,)]})"))
                    continue
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = walk(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(v, path + (i,)) for i, v in enumerate(n.value)]
        return scalar(n, path)

    return walk(node, ()), lines, problems


def _measure(root: Any, max_values: int) -> Problem | None:
    """A problem if the composed node graph, with its aliases expanded, would hold more than `max_values` values,
    nest deeper than MAX_DEPTH or contain itself; None otherwise. Linear in the file: each node's expanded size is
    computed once (an alias is the same node object as its anchor)."""
    sizes: dict[int, int] = {}
    inside: set[int] = set()

    def size(n: Any, depth: int) -> int:
        line = n.start_mark.line + 1
        if id(n) in sizes:
            return sizes[id(n)]
        if id(n) in inside:
            raise _TooBig(Problem(line, "", "an alias (*name) refers to a block that contains it, so the value "
                                            "would never end"))
        if depth > MAX_DEPTH:
            raise _TooBig(Problem(line, "", f"nested more than {MAX_DEPTH} levels deep"))
        total = 1
        if isinstance(n, (yaml.MappingNode, yaml.SequenceNode)):
            inside.add(id(n))
            children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else n.value
            for child in children:
                total += size(child, depth + 1)
                if total > max_values:
                    raise _TooBig(Problem(line, "", f"the file expands to more than {max_values:,} values: aliases "
                                                    f"(*name) that repeat blocks many times are refused"))
            inside.discard(id(n))
        sizes[id(n)] = total
        return total

    try:
        size(root, 0)
    except _TooBig as exc:
        return exc.problem
    return None


def fmt_path(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class Checker:
    """Collects problems while reading the parsed file, each with the line of the value it is about."""

    def __init__(self, lines: dict[tuple, int]):
        self.lines, self.problems = lines, []
        self.check_files = True  # whether referenced files must exist (off when re-reading a stored copy)

    def line(self, path: tuple) -> int | None:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def fail(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.line(path), fmt_path(path), message))

    def mapping(self, value: Any, path: tuple, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping of {', '.join(allowed)}; got {type(value).__name__}")
            return {}
        for key in value:
            if key not in allowed:
                hint = closest(key, allowed)
                self.fail(path + (key,), f"unknown field '{key}'" + (f"; did you mean '{hint}'?" if hint else
                                                                    f"; allowed: {', '.join(allowed)}"))
        for key in required:
            if key not in value:
                self.fail(path, f"'{key}' is missing")
        return value

    def text(self, d: dict, key: str, path: tuple, default: str | None = None, max_len: int = 20000) -> str:
        if key not in d:
            return default if default is not None else ""
        value = d[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.fail(path + (key,), f"'{key}' must be text, got {type(value).__name__}")
            return ""
        if len(value) > max_len:
            self.fail(path + (key,), f"'{key}' is {len(value)} characters; at most {max_len}")
        return value

    def choice(self, d: dict, key: str, path: tuple, allowed: tuple[str, ...], default: str) -> str:
        value = d.get(key, default)
        if value not in allowed:
            self.fail(path + (key,), f"'{key}' must be one of {', '.join(allowed)}; got {value!r}")
            return default
        return value

    def ident(self, d: dict, key: str, path: tuple, seen: dict[str, tuple], what: str) -> str:
        value = d.get(key)
        if not isinstance(value, str) or not ID_RE.match(value):
            self.fail(path + (key,), f"{what} id must be lower-case letters, digits and _ (starting with a letter, "
                                     f"at most 40); got {value!r}")
            return str(value)
        if value in seen:
            self.fail(path + (key,), f"{what} id '{value}' is used twice (first on line {self.line(seen[value])})")
        seen[value] = path + (key,)
        return value


def closest(word: str, options: tuple[str, ...]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return found[0] if found else None
