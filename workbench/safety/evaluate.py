"""The held-out table of the labelled set: for the keyword rule alone, the profile's safety model alone and the
two combined (the check the app runs), per category:
- recall: the share of that category's unsafe prompts refused (under any category);
- precision: of the prompts refused under that category, the share labelled unsafe;
and the false-refusal rate on the hard safe negatives and on the plain safe prompts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from workbench.safety.data import CATEGORIES, heldout


@dataclass
class Row:
    name: str
    recall: dict[str, float] = field(default_factory=dict)  # category -> recall; "all" = every unsafe prompt
    precision: dict[str, float | None] = field(default_factory=dict)
    false_refusal_hard: float = 0.0
    false_refusal_plain: float = 0.0
    seconds_per_prompt: float = 0.0


@dataclass
class Report:
    rows: list[Row]
    counts: dict[str, int]
    source: str
    mistakes: dict[str, list[str]] = field(default_factory=dict)  # row name -> texts it got wrong
    split: str = "fresh9"


def _row(name: str, prompts: list[Any], flags: list[tuple[str, ...]], seconds: float) -> tuple[Row, list[str]]:
    row = Row(name, seconds_per_prompt=seconds / max(len(prompts), 1))
    for cat in CATEGORIES + ("all",):
        members = [i for i, p in enumerate(prompts) if p.unsafe and (cat == "all" or p.category == cat)]
        row.recall[cat] = sum(bool(flags[i]) for i in members) / max(len(members), 1)
        named = [i for i, f in enumerate(flags) if (f if cat == "all" else cat in f)]
        row.precision[cat] = (sum(prompts[i].unsafe for i in named) / len(named)) if named else None
    hard = [i for i, p in enumerate(prompts) if p.hard_negative]
    plain = [i for i, p in enumerate(prompts) if not p.unsafe and not p.hard_negative]
    row.false_refusal_hard = sum(bool(flags[i]) for i in hard) / max(len(hard), 1)
    row.false_refusal_plain = sum(bool(flags[i]) for i in plain) / max(len(plain), 1)
    wrong = [f"{'missed' if p.unsafe else 'refused'} [{p.category}] {p.text}"
             for p, f in zip(prompts, flags) if bool(f) != p.unsafe]
    return row, wrong


def evaluate(ctx: Any, profile: str | None = None, split: str = "fresh9") -> Report:
    """The table on one set of workbench.safety.data.SPLITS: "fresh9" (held out, never seen by training or tuning),
    "fresh8" (held out in the eighth pass, never trained on),
    "fresh7" (held out in the seventh pass, scored once, never trained on),
    "fresh6" (held out in the sixth pass, seen since, never trained on),
    "fresh5" (held out in the fifth pass, seen since), "fresh3"/"fresh4" (held out in the fourth pass, seen since,
    never trained on; the fine-tuned encoder's thresholds are chosen on them),
    "first" (the labelled set's held-out split, whose mistakes were read once while the first version was built), or
    "fresh"/"fresh2" (trained on since the fourth pass: for reference only)."""
    from workbench.models import ManagedModel
    from workbench.safety.check import ROLE, check_texts
    from workbench.safety.rules import check_rule

    held = heldout(split)
    texts = [p.text for p in held]
    counts = {c: sum(p.category == c for p in held) for c in CATEGORIES}
    counts.update(hard=sum(p.hard_negative for p in held),
                  plain=sum(not p.unsafe and not p.hard_negative for p in held))
    rows, mistakes = [], {}
    start = time.perf_counter()
    rule_flags = [check_rule(t).categories for t in texts]
    row, wrong = _row("keyword rule alone", held, rule_flags, time.perf_counter() - start)
    rows.append(row)
    mistakes[row.name] = wrong
    spec = ctx.profile(profile).spec(ROLE)
    model = ManagedModel(ctx.manager, spec)
    model.classify(texts[:1])  # load before timing
    start = time.perf_counter()
    model_flags = [r.categories for r in model.classify(texts)]
    row, wrong = _row(f"classifier alone ({spec.backend})", held, model_flags, time.perf_counter() - start)
    rows.append(row)
    mistakes[row.name] = wrong
    start = time.perf_counter()
    verdicts = check_texts(ctx, texts, profile)
    row, wrong = _row("classifier + rule (the app's check)", held, [v.categories for v in verdicts],
                      time.perf_counter() - start)
    rows.append(row)
    mistakes[row.name] = wrong
    return Report(rows, counts, verdicts[0].source if verdicts else "", mistakes, split)


def format_table(report: Report, show_mistakes: bool = True) -> str:
    def pct(x: float | None) -> str:
        return "  -  " if x is None else f"{x:.2f}"

    n_unsafe = sum(report.counts[c] for c in CATEGORIES)
    title = {"fresh9": "fresh9 held-out set (written before the ninth pass trained anything; never trained on)",
             "fresh8": "fresh8 (TRAINED ON since the ninth pass; held out in the eighth, scored once)",
             "fresh7": "fresh7 (TRAINED ON since the eighth pass; held out in the seventh, scored once)",
             "fresh6": "fresh6 (TRAINED ON since the seventh pass; held out in the sixth)",
             "fresh5": "fresh5 (TRAINED ON since the seventh pass; held out in the fifth)",
             "fresh4": "fresh4 (TRAINED ON since the seventh pass; held out in the fourth)",
             "fresh3": "fresh3 (TRAINED ON since the seventh pass; held out in the fourth)",
             "fresh2": "fresh2 (TRAINED ON since the fourth pass; held out in the third)",
             "fresh": "fresh (TRAINED ON since the fourth pass; held out in the second and third)",
             "first": "first held-out split (SEEN: its mistakes were read once while building the first version)",
             "rewrites": "rewrites: the T2I and T2V rewriter corpora's held-out prompts (plain safe; never trained on)"}[
        report.split]
    lines = [f"{title}: {n_unsafe} unsafe ({', '.join(f'{c} {report.counts[c]}' for c in CATEGORIES)}), "
             f"{report.counts['hard']} hard safe negatives, {report.counts['plain']} plain safe prompts",
             f"check: {report.source}", ""]
    header = "| category | " + " | ".join(f"{r.name}: P / R" for r in report.rows) + " |"
    lines += [header, "|" + "---|" * (len(report.rows) + 1)]
    for cat in CATEGORIES + ("all",):
        cells = [f"{pct(r.precision[cat])} / {pct(r.recall[cat])}" for r in report.rows]
        lines.append(f"| {cat if cat != 'all' else 'all unsafe'} | " + " | ".join(cells) + " |")
    lines.append("| false refusals, hard safe negatives | " +
                 " | ".join(f"{r.false_refusal_hard:.3f}" for r in report.rows) + " |")
    lines.append("| false refusals, plain safe prompts | " +
                 " | ".join(f"{r.false_refusal_plain:.3f}" for r in report.rows) + " |")
    lines.append("| ms per prompt (batched) | " +
                 " | ".join(f"{1000 * r.seconds_per_prompt:.1f}" for r in report.rows) + " |")
    if show_mistakes:
        for name, wrong in report.mistakes.items():
            lines += ["", f"{name}: {len(wrong)} wrong"] + [f"  {w}" for w in wrong]
    return "\n".join(lines)
