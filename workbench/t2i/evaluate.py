"""`python -m workbench.t2i eval`: the rewriters side by side on the held-out coarse prompts
(assets/t2i_pairs/heldout_ids.txt), which are kept out of few-shot retrieval while evaluating.

Rows: the keyword baseline; nearest-neighbour retrieval (the fine prompt of the closest training pair with its
first phrase, the subject, swapped for the user's prompt); the base chat model with the settings before the guard
(96 new tokens, no window budget, no gate, no repetition penalty); the guarded refiner (the defaults); the shipped
rewriter adapter with the guard. Per row: intent (embedding cosine of each candidate with the coarse prompt),
words added, diversity among the N candidates (mean pairwise 1 - cosine), share within the image encoder's window,
share free of repeated phrases, seconds per prompt. Numbers are means over prompts.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.t2i.baseline import keyword_candidates
from workbench.common.diversity import pairwise_diversity
from workbench.common.guard import repeated_phrase
from workbench.common.refiner import (HELDOUT_FILE, RefineSettings, heldout_ids, listed_lines, load_pairs,
                                      refine_candidates, retrieve_examples)
from workbench.common.facets import facet_names
from workbench.t2i.defaults import t2i_refine_settings

ADAPTER_DIR = Path(__file__).resolve().parents[2] / "assets" / "adapters" / "smollm2-135m-t2i-rewriter-lora"
SYSTEMS = ("keyword baseline", "nearest-neighbour retrieval", "base chat model (old settings)", "guarded refiner",
           "guarded refiner + adapter", "guarded refiner + adapter + facets")
TARGETS = {"intent": 0.70, "words_added": 15, "diversity": 0.35, "within_window": 0.95, "free_of_repeats": 0.95,
           "further_diversity": 0.30}


@dataclass
class EvalRow:
    system: str
    intent: float
    words_added: float
    diversity: float
    within_window: float
    free_of_repeats: float
    seconds_per_prompt: float
    prompts: int
    candidates: int
    further_diversity: float | None = None  # one refine-further round from the first candidate (None: not run)
    facets_shown: float | None = None  # mean distinct steered facets among a prompt's candidates (facet rows)
    notes: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)  # the first few prompts' candidates

    def meets(self) -> dict[str, bool]:
        return {k: getattr(self, k) is not None and getattr(self, k) >= v for k, v in TARGETS.items()}


def old_settings(n: int, seed: int) -> RefineSettings:
    """The refiner's settings before the guard: what users got before this evaluation existed."""
    return RefineSettings(n=n, seed=seed, guard=False, repetition_penalty=1.0, max_new_tokens=96)


def swap_subject(fine: str, coarse: str) -> str:
    """The retrieved fine prompt with its first phrase (the subject) replaced by the user's prompt."""
    phrases = [p.strip() for p in fine.split(",") if p.strip()]
    return ", ".join([coarse.strip().rstrip(".")] + phrases[1:])


def parse_overrides(text: str) -> dict[str, Any]:
    """'diversity=0.3,intent_floor=0.55' -> {'diversity': 0.3, 'intent_floor': 0.55}, typed like RefineSettings'
    defaults; an unknown key or a value of the wrong kind names the problem (the ranges are checked later)."""
    fields = {f.name: f for f in dataclasses.fields(RefineSettings)}
    out: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = (x.strip() for x in part.partition("="))
        if not sep or key not in fields or key in ("n", "seed"):
            allowed = ", ".join(k for k in fields if k not in ("n", "seed"))
            raise ValueError(f"--set takes KEY=VALUE pairs with KEY among {allowed}; got {part!r}")
        kind = type(fields[key].default)
        if kind is tuple:  # facets: names joined by '+', e.g. facets=lighting+style ('none' for undirected)
            out[key] = () if value.lower() in ("", "none") else tuple(v for v in value.split("+") if v)
            continue
        try:
            out[key] = value.lower() in ("1", "true", "yes", "on") if kind is bool else kind(value)
        except ValueError:
            raise ValueError(f"--set {key} must be a {kind.__name__}, got {value!r}") from None
    RefineSettings(**out).check()
    return out


VALIDATION_FILE = HELDOUT_FILE.parent / "validation_ids.txt"
DEV_FILE = HELDOUT_FILE.parent / "dev_prompts.txt"
SPLITS = ("heldout", "validation", "dev")


def split_ids(split: str) -> set[str]:
    """Ids of an evaluation split: "heldout" (final figures only), "validation" (training pairs the settings were
    first chosen on; assets/t2i_pairs/validation_ids.txt) or "dev" (coarse prompts with no pair, so no ids:
    assets/t2i_pairs/dev_prompts.txt)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "dev":
        return set()
    return heldout_ids() if split == "heldout" else heldout_ids(VALIDATION_FILE)


def dev_prompts() -> list[str]:
    """The dev split: coarse prompts that no pair holds, never trained on (settings are chosen on them)."""
    return listed_lines(DEV_FILE)


def heldout_prompts(limit: int | None = None, offset: int = 0, split: str = "heldout") -> list[str]:
    """The split's coarse prompts in file order, from `offset`."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a whole number of at least 0, got {offset!r}")
    ids = split_ids(split)
    prompts = (dev_prompts() if split == "dev" else [p.coarse for p in load_pairs() if p.id in ids])[offset:]
    return prompts[:limit] if limit else prompts


def evaluate(ctx: Any, profile_name: str | None, n: int = 4, limit: int | None = None, seed: int = 0,
             systems: tuple[str, ...] = SYSTEMS, adapter_dir: Path = ADAPTER_DIR,
             progress: Callable[[str], None] | None = None,
             overrides: dict[str, Any] | None = None, offset: int = 0, further: bool = True,
             split: str = "heldout") -> list[EvalRow]:
    """Rows of the table. `further`: also one refine-further round from each prompt's first candidate (its
    diversity is a separate column); the facet row asks for every facet of assets/t2i_facets.yaml unless
    `overrides` name them."""
    from workbench.models import ManagedModel
    from workbench.t2i.service import prompt_window

    overrides = dict(overrides or {})
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"systems must be among {', '.join(SYSTEMS)}; got {unknown}")
    profile = ctx.profile(profile_name)
    embedder = ManagedModel(ctx.manager, profile.spec("embeddings"))
    window = prompt_window(ctx, profile_name)
    held = frozenset(heldout_ids() | split_ids(split))  # the split evaluated never serves as a few-shot example
    prompts = heldout_prompts(limit, offset, split)
    chat_spec = profile.spec("chat")

    further_runners: dict[str, Callable[[str, int], list[str]]] = {}
    facet_log: dict[str, list[int]] = {}

    def llm(spec: Any, settings_for: Callable[[int], RefineSettings],
            name: str = "") -> Callable[[str, int], tuple[list[str], list]]:
        chat = ManagedModel(ctx.manager, spec)

        def run(prompt: str, i: int) -> tuple[list[str], list]:
            result = refine_candidates(chat, embedder, prompt, settings_for(i), window=window, exclude_ids=held)
            if result.settings.get("facets"):
                facet_log.setdefault(name, []).append(len({c.facet for c in result.candidates if c.facet}))
            return [c.text for c in result.candidates], result.notes

        def run_further(picked: str, i: int) -> list[str]:
            result = refine_candidates(chat, embedder, picked, settings_for(i), window=window, exclude_ids=held,
                                       further=True)
            return [c.text for c in result.candidates]

        further_runners[name] = run_further
        return run

    def retrieval(prompt: str, i: int) -> tuple[list[str], list]:
        pairs = retrieve_examples(embedder, prompt, n, exclude_ids=held)
        return [swap_subject(p.fine, prompt) for p, _ in pairs], []

    runners: dict[str, Callable[[str, int], tuple[list[str], list]]] = {
        "keyword baseline": lambda prompt, i: ([c.text for c in keyword_candidates(prompt, n, seed + i)], []),
        "nearest-neighbour retrieval": retrieval,
        "base chat model (old settings)": llm(chat_spec, lambda i: old_settings(n, seed + i),
                                              "base chat model (old settings)"),
        "guarded refiner": llm(chat_spec, lambda i: RefineSettings(n=n, seed=seed + i, **overrides), "guarded refiner"),
    }
    further_runners["keyword baseline"] = lambda picked, i: [c.text for c in keyword_candidates(picked, n, seed + i)]
    faceted = {**overrides, "facets": overrides.get("facets") or facet_names()}  # the T2I defaults (defaults.py)
    overrides = {"facets": (), **overrides}  # the other guarded rows are undirected unless --set names facets
    if any(s.startswith("guarded refiner + adapter") for s in systems):
        if (adapter_dir / "adapter_config.json").exists():
            options = dict(chat_spec.options)
            shipped = profile.roles.get("t2i_rewriter")
            if shipped is not None and shipped.option("adapter") and \
                    Path(str(shipped.option("adapter"))).name == adapter_dir.name:
                options.update(shipped.options)  # the profile's role as it is used: its word budget too
            options["adapter"] = str(adapter_dir)
            adapted = dataclasses.replace(chat_spec, options=tuple(sorted(options.items())))
            runners["guarded refiner + adapter"] = llm(adapted, lambda i: RefineSettings(n=n, seed=seed + i, **overrides),
                                                       "guarded refiner + adapter")
            runners["guarded refiner + adapter + facets"] = llm(
                adapted, lambda i: t2i_refine_settings(n=n, seed=seed + i, **faceted), "guarded refiner + adapter + facets")
        else:
            systems = tuple(s for s in systems if not s.startswith("guarded refiner + adapter"))
    rows = []
    for system in systems:
        intents, added, diversity, within, clean, notes, examples, further_div = [], [], [], [], [], [], [], []
        started = time.perf_counter()
        for i, prompt in enumerate(prompts):
            if progress:
                progress(f"{system}: prompt {i + 1}/{len(prompts)}")
            texts, prompt_notes = runners[system](prompt, i)
            vectors = np.asarray(embedder.embed([prompt] + texts).vectors)
            intents += list(vectors[1:] @ vectors[0])
            added += [len(t.split()) - len(prompt.split()) for t in texts]
            if len(texts) > 1:
                diversity.append(pairwise_diversity(vectors[1:]).mean)
            within += [not (window.split(t)[1] if window is not None else "") for t in texts]
            clean += [repeated_phrase(t) is None for t in texts]
            notes += prompt_notes
            example = {"prompt": prompt, "candidates": texts}
            if further and system in further_runners and texts:
                if progress:
                    progress(f"{system}: refine further, prompt {i + 1}/{len(prompts)}")
                children = further_runners[system](texts[0], i)
                if len(children) > 1:
                    further_div.append(pairwise_diversity(np.asarray(embedder.embed(children).vectors)).mean)
                example["further"] = children
            if i < 3:
                examples.append(example)
        seconds = (time.perf_counter() - started) / max(1, len(prompts))
        rows.append(EvalRow(system=system, intent=float(np.mean(intents)), words_added=float(np.mean(added)),
                            diversity=float(np.mean(diversity)) if diversity else 0.0,
                            within_window=float(np.mean(within)), free_of_repeats=float(np.mean(clean)),
                            seconds_per_prompt=seconds, prompts=len(prompts), candidates=len(intents),
                            further_diversity=float(np.mean(further_div)) if further_div else None,
                            facets_shown=float(np.mean(facet_log[system])) if facet_log.get(system) else None,
                            notes=sorted(set(notes))[:10], examples=examples))
    return rows


def table(rows: list[EvalRow], window_limit: int | None) -> str:
    head = ("| system | intent ↑ | words added | diversity ↑ | within the "
            f"{window_limit or '?'}-token window | free of repeats | refine-further diversity ↑ | s / prompt |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = r.meets()

        def mark(key: str, text: str) -> str:
            return f"**{text}**" if ok[key] else text

        further = "n/a" if r.further_diversity is None else mark("further_diversity", f"{r.further_diversity:.3f}")
        lines.append(f"| {r.system} | {mark('intent', f'{r.intent:.3f}')} | {mark('words_added', f'{r.words_added:.1f}')} "
                     f"| {mark('diversity', f'{r.diversity:.3f}')} | {mark('within_window', f'{r.within_window:.0%}')} "
                     f"| {mark('free_of_repeats', f'{r.free_of_repeats:.0%}')} | {further} "
                     f"| {r.seconds_per_prompt:.1f} |")
    lines.append("")
    lines.append("Bold: meets the target (intent ≥ 0.70, words added ≥ 15, diversity ≥ 0.35, ≥ 95% within the window, "
                 "≥ 95% free of repeated phrases, refine-further diversity ≥ 0.30). Seconds include the "
                 "refine-further round where one was run.")
    return "\n".join(lines)
