"""Held-out format-constraint probes with automatic checks: does a model follow "all capitals", "one per line",
"-" bullets, "start your answer with", "N words or fewer" and "repeat exactly"? Measures the behaviour shift
the instruction adapter should bring (Wu et al., NAACL'24 study what instruction tuning changes; this is the
outcome side of that). The probes are `assets/instruct_data/format_probes.jsonl` (built by
`assets/instruct_data/build_format_data.py`, content never trained on). Usage:

    OMP_NUM_THREADS=2 python -m workbench.shift.format_probes                     # base, tuned, SmolLM2
    python -m workbench.shift.format_probes --models tuned --adapter /tmp/new-adapter --show 5

Every model gets the same greedy decoding, the same token budget and the same stop strings (the plain
template's next "###" turn), through its own chat template.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from workbench.shift.train_adapter import load_items, user_message  # probes are asked as the adapter was trained

ROOT = Path(__file__).resolve().parents[2]
PROBES = ROOT / "assets" / "instruct_data" / "format_probes.jsonl"
KINDS = ("upper", "lower", "lines", "bullets", "starts", "max_words", "repeat")
STOP = ("\n###", "### ")  # the plain template's next turn: a base model that runs on is cut there, like a chat stop
LIST_MARK = re.compile(r"^\s*([-*•]|\d+[.)])")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def check_answer(answer: str, check: dict[str, Any]) -> bool:
    """Whether `answer` meets the probe's constraint (`check` as in the data files)."""
    kind = check.get("kind")
    text = answer.strip()
    if not text:
        return False
    letters = [c for c in text if c.isalpha()]
    if kind == "upper":
        return len(letters) >= 2 and all(c.isupper() for c in letters)
    if kind == "lower":
        return len(letters) >= 2 and all(c.islower() for c in letters)
    if kind == "lines":
        lines = _lines(text)
        return len(lines) == check["n"] and not any(LIST_MARK.match(line) for line in lines)
    if kind == "bullets":
        lines = _lines(text)
        return len(lines) == check["n"] and all(line.startswith("- ") and len(line) > 2 for line in lines)
    if kind == "starts":
        return text.startswith(check["prefix"]) and len(text) > len(check["prefix"])
    if kind == "max_words":
        return 1 <= len(text.split()) <= check["n"]
    if kind == "repeat":
        return " ".join(text.split()) == " ".join(check["text"].split())
    raise ValueError(f"check kind must be one of {', '.join(KINDS)}, got {kind!r}")


def load_probes(path: str | Path = PROBES) -> list[dict[str, Any]]:
    """The held-out probes (JSON Lines, read like the training data)."""
    return load_items(path)


@dataclass
class ProbeRun:
    model: str
    answers: list[str]
    passed: list[bool]
    seconds: float

    def rate(self, probes: Sequence[dict[str, Any]], kind: str | None = None) -> float:
        keep = [ok for ok, p in zip(self.passed, probes) if kind is None or p["check"]["kind"] == kind]
        return sum(keep) / len(keep) if keep else float("nan")


def run_probes(backend: Any, probes: Sequence[dict[str, Any]], model: str, max_new_tokens: int = 48,
               batch_size: int = 10) -> ProbeRun:
    """Greedy answers to every probe from `backend` (as it is: switch its adapter before calling)."""
    from backends.base import GenerationSettings

    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False, stop=STOP)
    started = time.perf_counter()
    answers: list[str] = []
    for start in range(0, len(probes), batch_size):
        convs = [[{"role": "user", "content": user_message(p)}] for p in probes[start:start + batch_size]]
        answers += [gens[0].text for gens in backend.generate(convs, settings)]
    passed = [check_answer(a, p["check"]) for a, p in zip(answers, probes)]
    return ProbeRun(model, answers, passed, time.perf_counter() - started)


def table(runs: Sequence[ProbeRun], probes: Sequence[dict[str, Any]]) -> str:
    head = "| constraint | probes | " + " | ".join(r.model for r in runs) + " |"
    lines = [head, "|---|---|" + "---|" * len(runs)]
    for kind in KINDS:
        n = sum(1 for p in probes if p["check"]["kind"] == kind)
        if n:
            lines.append(f"| {kind} | {n} | " + " | ".join(f"{r.rate(probes, kind):.0%}" for r in runs) + " |")
    lines.append(f"| **all** | {len(probes)} | " + " | ".join(
        f"**{r.rate(probes):.0%}** ({sum(r.passed)}/{len(probes)})" for r in runs) + " |")
    return "\n".join(lines)


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def _load(role: str, adapter: str | None = None) -> Any:
    from workbench.models import load_standalone
    from workbench.profiles import load_profiles

    spec = load_profiles()["offline"].spec(role)
    if adapter is not None:
        from backends.base import ModelSpec

        spec = ModelSpec.from_dict(role, {"backend": spec.backend, "model": spec.model_id,
                                          "options": {"adapter": adapter}})
    return load_standalone(spec, device="cpu", dtype="float32")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pass rates of base, tuned and SmolLM2-135M-Instruct on the "
                                                 "held-out format-constraint probes.")
    parser.add_argument("--probes", default=str(PROBES))
    parser.add_argument("--models", default="base,tuned,smollm2",
                        help="comma-separated: base (Gemma-3-270M, adapter off), tuned (adapter on), "
                             "smollm2 (SmolLM2-135M-Instruct, the offline chat model)")
    parser.add_argument("--adapter", default=None, help="adapter folder for 'tuned' (default: the offline profile's)")
    parser.add_argument("--before", default=None,
                        help="a second adapter folder (e.g. the previous version) evaluated as an extra column")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="first N probes only (0 = all)")
    parser.add_argument("--show", type=int, default=0, help="print the first N answers of each model")
    parser.add_argument("--json", default="", help="write every answer and verdict to this file")
    parser.add_argument("--append-to", default="", help="append the table as a Markdown section to this file "
                                                        "(the adapter's TRAINING.md)")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in ("base", "tuned", "smollm2")]
    if bad:
        parser.error(f"--models must be among base, tuned, smollm2; got {bad}")
    if not 1 <= args.max_new_tokens <= 512:
        parser.error(f"--max-new-tokens must be between 1 and 512, got {args.max_new_tokens}")
    probes = load_probes(args.probes)
    if args.limit:
        probes = probes[: args.limit]
    runs: list[ProbeRun] = []
    gemma = None
    if {"base", "tuned"} & set(models):
        gemma = _load("lm_instruct", args.adapter)
    if args.before:
        models.insert(models.index("tuned") if "tuned" in models else len(models), "before")
        if gemma is None:
            gemma = _load("lm_instruct", args.adapter)
        gemma.model.load_adapter(str(Path(args.before).resolve()), adapter_name="before")
    for name in models:
        if name == "before":
            gemma.model.set_adapter("before")
            runs.append(run_probes(gemma, probes, f"Gemma-3-270M + {Path(args.before).name} (before)",
                                   args.max_new_tokens, args.batch_size))
            gemma.model.set_adapter("default")
        elif name == "smollm2":
            backend = _load("chat")
            runs.append(run_probes(backend, probes, "SmolLM2-135M-Instruct", args.max_new_tokens, args.batch_size))
            backend.unload()
        else:
            with gemma.adapter_enabled(name == "tuned"):
                label = "Gemma-3-270M base" if name == "base" else "Gemma-3-270M + adapter (tuned)"
                runs.append(run_probes(gemma, probes, label, args.max_new_tokens, args.batch_size))
        print(f"{runs[-1].model}: {runs[-1].rate(probes):.0%} in {runs[-1].seconds:.0f} s", file=sys.stderr, flush=True)
    text = table(runs, probes)
    print(text)
    if args.append_to:
        command = "OMP_NUM_THREADS={} python -m workbench.shift.format_probes {}".format(
            os.environ.get("OMP_NUM_THREADS", ""), " ".join(sys.argv[1:] if argv is None else argv))
        with open(args.append_to, "a", encoding="utf-8") as fh:
            fh.write("\n## Format-constraint probes (held-out)\n\n"
                     f"Pass rates on `{_relative(args.probes)}` ({len(probes)} probes, 10 per constraint, content never "
                     "trained on; some wordings and start phrases never seen in training), checked automatically "
                     f"(`workbench/shift/format_probes.py`). Greedy decoding, {args.max_new_tokens} new tokens, each "
                     "model through its own chat template (Gemma-3-270M base: the plain `### Instruction:` template), "
                     "answers cut at the next `###` turn.\n\n" + text + "\n\n"
                     + "".join(f"- {r.model}: {r.seconds:.0f} s\n" for r in runs)
                     + f"\nCommand: `{command.strip()}`\n")
    for run in runs:
        for probe, answer, ok in list(zip(probes, run.answers, run.passed))[: args.show]:
            print(f"\n[{run.model}] {probe['id']} {'PASS' if ok else 'FAIL'}: {user_message(probe)!r}\n  -> {answer!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"model": r.model, "seconds": r.seconds, "pass_rate": r.rate(probes),
              "answers": [{"id": p["id"], "answer": a, "pass": ok} for p, a, ok in zip(probes, r.answers, r.passed)]}
             for r in runs], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
