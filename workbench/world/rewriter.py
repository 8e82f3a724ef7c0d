"""The world's T2I rewriter (issue 20): coarse -> fine caption pairs drawn from the generator, and the measures of a
rewriter's candidates against the world (in its vocabulary, the coarse caption's attributes kept, fine attributes
added, a scene the world could hold, diversity among the N). Pure Python: a rewriter comes in as a callable
(`refine(coarse, seed) -> candidates`), so this module loads no model and imports no tab; the T2I tab's CLI runs
its refine flow through it (`python -m workbench.t2i eval-world`).

Pairs: training rows from training seeds [0, n_train) (a subset of [0, HELDOUT_SEED0)), held-out rows from
HELDOUT_SEED0 upwards, so no held-out scene is a training scene. Many scenes share a coarse caption ("a red star"
has dozens of fine captions), so a rewriter trained on them learns a distribution of fine captions per coarse one."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from workbench.world.data import HELDOUT_SEED0
from workbench.world.parse import parse_caption, unknown_words
from workbench.world.scene import sample_scene
from workbench.world.vocabulary import load_vocabulary

PAIRS_DIR = Path(__file__).resolve().parents[2] / "assets" / "world" / "rewriter_pairs"
PAIRS_FILE, HELDOUT_FILE = PAIRS_DIR / "pairs.jsonl", PAIRS_DIR / "heldout_ids.txt"
MAX_PAIRS = 100_000
MAX_EVAL_PROMPTS = 1_000
PROMPT_LEVELS = ("coarse", "partial")
SCENE_KEYS = ("background", "background_colour", "relation", "effect", "style")


def pair_id(seed: int, level: str = "coarse") -> str:
    return f"{'p' if level == 'partial' else 'w'}{seed:07d}"


def partial_omit(scene, seed: int) -> list[str]:
    """A random part of `scene`'s fine attributes to leave out (each with probability 1/2, drawn from `seed`), such
    that the caption without them states more than the coarse caption and less than the fine one."""
    import numpy as np

    from workbench.world.scene import OBJECT_OMITTABLE, SCENE_OMITTABLE

    coarse, fine = scene.stated("coarse"), scene.stated("fine")
    keys = [k for k in [f"{i}:{k}" for i in range(len(scene.objects)) for k in OBJECT_OMITTABLE]
            + list(SCENE_OMITTABLE) if scene.stated("fine", [k]) != fine]  # those the caption states
    rng = np.random.default_rng([seed, 31])
    while True:
        omit = [k for k in keys if rng.random() < 0.5]
        if scene.stated("fine", omit) not in (coarse, fine):
            return omit


def rewriter_pairs(n_train: int = 2_000, n_heldout: int = 200, n_partial: int = 0,
                   n_partial_heldout: int = 0) -> list[dict[str, Any]]:
    """Caption pairs of still scenes, prompt ("coarse") -> fine caption: `n_train` coarse prompts from training seeds
    0.., `n_heldout` from held-out seeds HELDOUT_SEED0.. (split "heldout"); then `n_partial` *partial* prompts (the
    fine caption with some attributes left out, `partial_omit`: what Refine further sends, a prompt that already
    names some places, sizes or the background, which the fine caption must keep) from the training seeds after
    the coarse ones, and `n_partial_heldout` from the held-out seeds after the coarse ones. Each row carries its
    level ("coarse" or "partial"), seed, split and the generator's provenance."""
    from workbench.world import GENERATOR_VERSION

    for name, value, low in (("n_train", n_train, 1), ("n_heldout", n_heldout, 1), ("n_partial", n_partial, 0),
                             ("n_partial_heldout", n_partial_heldout, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_PAIRS:
            raise ValueError(f"{name} must be a whole number in [{low}, {MAX_PAIRS}], got {value!r}")
    if n_train + n_partial > HELDOUT_SEED0:
        raise ValueError(f"n_train + n_partial must be at most {HELDOUT_SEED0} (the training seeds end there), "
                         f"got {n_train + n_partial}")
    v = load_vocabulary()
    h = HELDOUT_SEED0
    plan = (("train", "coarse", range(n_train)), ("heldout", "coarse", range(h, h + n_heldout)),
            ("train", "partial", range(n_train, n_train + n_partial)),
            ("heldout", "partial", range(h + n_heldout, h + n_heldout + n_partial_heldout)))
    rows = []
    for split, level, seeds in plan:
        for seed in seeds:
            scene = sample_scene(seed, vocab=v)
            omit = partial_omit(scene, seed) if level == "partial" else []
            prompt = scene.caption("fine", v, omit) if omit else scene.caption("coarse", v)
            rows.append({"id": pair_id(seed, level), "coarse": prompt, "fine": scene.caption("fine", v),
                         "level": level, **({"omit": omit} if omit else {}),
                         "seed": seed, "split": split, "objects": len(scene.objects),
                         "generator_version": GENERATOR_VERSION, "vocabulary_digest": v.digest})
    return rows


def write_rewriter_pairs(out_dir: str | Path = PAIRS_DIR, n_train: int = 2_000, n_heldout: int = 200,
                         n_partial: int = 0, n_partial_heldout: int = 0) -> Path:
    """`pairs.jsonl` (every row, training and held-out, in the format of assets/t2i_pairs/pairs.jsonl: id, coarse,
    fine, ...) and `heldout_ids.txt` (the held-out rows' ids, never trained on) in `out_dir`."""
    rows = rewriter_pairs(n_train, n_heldout, n_partial, n_partial_heldout)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pairs.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    held = [r["id"] for r in rows if r["split"] == "heldout"]
    h = HELDOUT_SEED0
    (out / "heldout_ids.txt").write_text(
        f"# Held-out world caption pairs (seeds {h}-{h + n_heldout + n_partial_heldout - 1}, the held-out range of\n"
        f"# workbench/world/data.py): never trained on; `python -m workbench.t2i eval-world` measures on them.\n"
        f"# Rebuild: python -m workbench.world pairs --n-train {n_train} --n-heldout {n_heldout} "
        f"--n-partial {n_partial} --n-partial-heldout {n_partial_heldout}\n"
        + "\n".join(held) + "\n", encoding="utf-8")
    return out / "pairs.jsonl"


def load_rewriter_pairs(path: str | Path = PAIRS_FILE) -> list[dict[str, Any]]:
    if not Path(path).exists():
        raise FileNotFoundError(f"world pairs file '{path}' does not exist; write it with python -m workbench.world pairs")
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def heldout_coarse(limit: int = 10, offset: int = 0, path: str | Path = PAIRS_FILE,
                   heldout_file: str | Path = HELDOUT_FILE, level: str = "coarse") -> list[str]:
    """Distinct prompts of the held-out pairs at `level` ("coarse", or "partial": fine captions with some attributes
    left out), in file order, from the `offset`-th on, at most `limit`."""
    for name, value, low, high in (("limit", limit, 1, MAX_EVAL_PROMPTS), ("offset", offset, 0, MAX_PAIRS)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    if level not in PROMPT_LEVELS:
        raise ValueError(f"level must be one of {', '.join(PROMPT_LEVELS)}, got {level!r}")
    lines = Path(heldout_file).read_text(encoding="utf-8").splitlines()
    held = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    coarse = list(dict.fromkeys(r["coarse"] for r in load_rewriter_pairs(path)
                                if r["id"] in held and r.get("level", "coarse") == level))
    if not coarse:
        raise ValueError(f"{path} holds no held-out {level} prompts; write them with python -m workbench.world pairs"
                         + (" --n-partial-heldout N" if level == "partial" else ""))
    return coarse[offset:offset + limit]


# --------------------------------------------------------------------------- measures of one candidate


def _object_facts(o: dict) -> set[tuple]:
    return {(k, tuple(v) if isinstance(v, list) else v) for k, v in o.items()}


def facts(stated: dict) -> set[tuple]:
    """A parsed caption as a set of facts: (object index, key, value) per object attribute, (key, value) per scene
    attribute (the measure of diversity between candidates)."""
    out: set[tuple] = set()
    for i, o in enumerate(stated.get("objects", [])):
        out |= {(i, k, v) for k, v in _object_facts(o)}
    return out | {(k, stated[k]) for k in SCENE_KEYS if k in stated}


def departures(coarse: dict, fine: dict) -> list[str]:
    """What `fine` changes of `coarse`: each coarse object it does not state with every attribute the coarse caption
    gave it (matched in order, then any unmatched one), named by its attributes ("green hexagon"); "N object(s)
    added" when it states more objects; each scene attribute the coarse caption stated and `fine` states otherwise.
    Empty when `fine` keeps `coarse`."""
    left = [_object_facts(o) for o in fine.get("objects", [])]
    out = []
    for o in coarse.get("objects", []):
        want = _object_facts(o)
        match = next((j for j, have in enumerate(left) if want <= have), None)
        if match is None:
            out.append(" ".join(str(o[k]) for k in ("size", "colour", "finish", "shape") if k in o) or "an object")
        else:
            left.pop(match)
    extra = len(fine.get("objects", [])) - len(coarse.get("objects", []))
    if extra > 0:
        out.append(f"{extra} object(s) added")
    return out + [f"{k} {coarse[k]}" for k in SCENE_KEYS if k in coarse and fine.get(k) != coarse[k]]


def keeps(coarse: dict, fine: dict) -> bool:
    """Whether `fine` states the same objects as `coarse` (as many, none added), each with every attribute the coarse
    caption gave it, and every scene attribute the coarse caption stated (see `departures`)."""
    return not departures(coarse, fine)


def rewrite_departures(prompt: str, rewrite: str) -> list[str]:
    """`departures` of two texts as the world's parser reads them (the refiner's gate option keep_objects)."""
    return departures(parse_caption(prompt), parse_caption(rewrite))


def fine_added(coarse: dict, fine: dict) -> int:
    """How many attributes `fine` states beyond those of `coarse`."""
    before = sum(len(o) for o in coarse.get("objects", [])) + sum(k in coarse for k in SCENE_KEYS)
    after = sum(len(o) for o in fine.get("objects", [])) + sum(k in fine for k in SCENE_KEYS)
    return max(0, after - before)


def complete(stated: dict) -> bool:
    """A full fine caption: every object has a size and a place (a grid cell, or the scene's relation between two
    objects), and the background's kind and colour are stated."""
    objs = stated.get("objects", [])
    placed = all("position" in o for o in objs) or ("relation" in stated and len(objs) == 2)
    return bool(objs) and placed and all("size" in o for o in objs) and \
        "background" in stated and "background_colour" in stated


def world_consistent(stated: dict) -> bool:
    """A scene the world's generator could draw: objects' colours differ from each other and from the background's,
    cells differ, a relation joins exactly two objects."""
    objs = stated.get("objects", [])
    colours = [o.get("colour") for o in objs] + ([stated["background_colour"]] if "background_colour" in stated else [])
    cells = [tuple(o["position"]) for o in objs if "position" in o]
    relation_ok = "relation" not in stated or (len(objs) == 2 and not cells)
    return len(set(colours)) == len(colours) and len(set(cells)) == len(cells) and relation_ok and len(objs) <= 3


@dataclass
class CandidateScore:
    text: str
    unknown: list[str]  # words outside the world's vocabulary
    parses: bool  # at least one object, each with a shape and a colour
    keeps_coarse: bool
    added: int  # fine attributes stated beyond the coarse caption's
    complete: bool
    consistent: bool

    @property
    def in_vocabulary(self) -> bool:
        return not self.unknown


def score_candidate(coarse: str, candidate: str) -> CandidateScore:
    c, f = parse_caption(coarse), parse_caption(candidate)
    objs = f.get("objects", [])
    return CandidateScore(text=candidate, unknown=unknown_words(candidate),
                          parses=bool(objs) and all("shape" in o and "colour" in o for o in objs),
                          keeps_coarse=keeps(c, f), added=fine_added(c, f), complete=complete(f),
                          consistent=world_consistent(f))


def set_diversity(candidates: Sequence[str]) -> float:
    """Mean pairwise Jaccard distance between the candidates' parsed facts (0: all state the same scene; 1: no
    fact in common); 0 for fewer than two."""
    sets = [facts(parse_caption(c)) for c in candidates]
    pairs = list(itertools.combinations(sets, 2))
    if not pairs:
        return 0.0
    return sum(1 - len(a & b) / len(a | b) if a | b else 0.0 for a, b in pairs) / len(pairs)


# --------------------------------------------------------------------------- a rewriter on held-out captions


@dataclass
class Refined:
    """What one refine gave, when it can say more than its candidates: how many distinct sampled rewrites its quality
    gate kept and how many it dropped (with the world role's keep_objects, a rewrite that changes the prompt's
    objects is dropped there: the adapter's own error rate, which the shown candidates no longer carry)."""
    texts: list[str]
    kept: int
    dropped: int


@dataclass
class RewriterRow:
    system: str
    prompts: int
    candidates: int
    in_vocabulary: float  # share of candidates with no word outside the world
    parses: float
    keeps_coarse: float
    added: float  # mean fine attributes added per candidate
    complete: float
    consistent: float
    diversity: float  # mean over prompts of the N candidates' set_diversity
    distinct_scenes: float  # mean share of a prompt's candidates that state distinct fact sets
    seconds_per_prompt: float
    provenance: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)  # the first prompts' candidates
    failures: list[str] = field(default_factory=list)  # prompts the rewriter gave no candidate for, and why
    gate_dropped: float | None = None  # share of the sampled rewrites the gate dropped (None: refine did not say)


def evaluate_rewriter(system: str, refine: Callable[[str, int], "Sequence[str] | Refined"], coarse: Sequence[str],
                      provenance: dict[str, Any] | None = None, examples: int = 3,
                      clock: Callable[[], float] = time.perf_counter) -> RewriterRow:
    """`refine(coarse, seed)` (seed = the prompt's index) on each coarse caption, timed, and its candidates measured.
    A prompt whose refine raises RuntimeError (no usable rewrite) counts as zero candidates and is listed. A refine
    that returns `Refined` also gives the share of sampled rewrites its gate dropped (`gate_dropped`)."""
    if not coarse:
        raise ValueError("coarse must hold at least one caption")
    scores: list[CandidateScore] = []
    diversity, distinct, seconds, shown, failures = [], [], 0.0, [], []
    gate: list[tuple[int, int]] = []
    for i, prompt in enumerate(coarse):
        start = clock()
        try:
            out = refine(prompt, i)
            if isinstance(out, Refined):
                gate.append((out.kept, out.dropped))
                out = out.texts
            cands = list(out)
        except RuntimeError as exc:
            cands = []
            failures.append(f"{prompt}: {exc}")
        seconds += clock() - start
        got = [score_candidate(prompt, c) for c in cands]
        scores += got
        diversity.append(set_diversity(cands))
        if cands:
            distinct.append(len({frozenset(facts(parse_caption(c))) for c in cands}) / len(cands))
        if i < examples:
            shown.append({"coarse": prompt, "candidates": [
                {"text": s.text, "unknown_words": s.unknown, "keeps_coarse": s.keeps_coarse, "added": s.added}
                for s in got]})

    def share(name: str) -> float:
        return sum(bool(getattr(s, name)) for s in scores) / len(scores) if scores else 0.0

    return RewriterRow(system=system, prompts=len(coarse), candidates=len(scores), in_vocabulary=share("in_vocabulary"),
                       parses=share("parses"), keeps_coarse=share("keeps_coarse"),
                       added=sum(s.added for s in scores) / len(scores) if scores else 0.0,
                       complete=share("complete"), consistent=share("consistent"),
                       diversity=sum(diversity) / len(diversity),
                       distinct_scenes=sum(distinct) / len(distinct) if distinct else 0.0,
                       seconds_per_prompt=seconds / len(coarse), provenance=dict(provenance or {}), examples=shown,
                       failures=failures, gate_dropped=_dropped_share(gate))


def _dropped_share(gate: list[tuple[int, int]]) -> float | None:
    sampled = sum(k + d for k, d in gate)
    return sum(d for _, d in gate) / sampled if sampled else None


COLUMNS = (("in vocabulary", "in_vocabulary", "{:.0%}"), ("parses", "parses", "{:.0%}"),
           ("coarse kept", "keeps_coarse", "{:.0%}"), ("fine attrs added", "added", "{:.1f}"),
           ("complete fine", "complete", "{:.0%}"), ("world-consistent", "consistent", "{:.0%}"),
           ("diversity", "diversity", "{:.2f}"), ("distinct", "distinct_scenes", "{:.0%}"),
           ("dropped by gate", "gate_dropped", "{:.0%}"), ("s / prompt", "seconds_per_prompt", "{:.1f}"))


def format_rewriter_table(rows: Sequence[RewriterRow]) -> str:
    """A Markdown table, one row per rewriter (the share columns are over all candidates)."""
    head = "| rewriter | candidates | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for r in rows:
        lines.append(f"| {r.system} | {r.candidates} | " + " | ".join(
            "-" if getattr(r, key) is None else fmt.format(getattr(r, key)) for _, key, fmt in COLUMNS) + " |")
    return "\n".join(lines)
