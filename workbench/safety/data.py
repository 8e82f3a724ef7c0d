"""The labelled prompt set (assets/safety/prompts.jsonl, built by assets/safety/build_prompts.py), its held-out
split (assets/safety/heldout_ids.txt), and the later sets written by hand: fresh (prompts_fresh.jsonl) and fresh2
(prompts_fresh2.jsonl), held out until the fourth pass, which read their mistakes and folded them into TRAINING;
fresh3 and fresh4, the fourth pass's held-out sets, seen since and never trained on; and fresh5
(prompts_fresh5.jsonl), written before the fifth pass changed anything, the held-out set now. fresh3, fresh4, fresh5
and the first split are never trained on nor used to tune the rule or the head's thresholds. fresh6, written before
the sixth pass (the fine-tuned encoder) trained anything, was held out in the sixth pass and is seen since; fresh7,
written before the seventh pass trained or tuned anything, was held out in the seventh pass and scored once; fresh8,
written before the eighth pass trained or tuned anything, was held out in the eighth pass (never trained on); fresh9,
written before the ninth pass trained or tuned anything, is the held-out set now (never trained on)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.profiles import ASSETS

SAFETY_ASSETS = ASSETS / "safety"
CATEGORIES = ("violence", "weapons", "sexual", "minors", "self-harm", "hate", "real-person")


@dataclass(frozen=True)
class LabelledPrompt:
    id: str
    text: str
    label: str  # "safe" | "unsafe"
    category: str  # one of CATEGORIES, or "safe"
    hard_negative: bool
    medium: str  # "image" | "video" (ideas that say video, clip, footage ...)

    @property
    def unsafe(self) -> bool:
        return self.label == "unsafe"


def load_prompts(folder: str | Path = SAFETY_ASSETS, name: str = "prompts.jsonl") -> list[LabelledPrompt]:
    path = Path(folder) / name
    return [LabelledPrompt(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def heldout_ids(folder: str | Path = SAFETY_ASSETS) -> set[str]:
    return {line.strip() for line in (Path(folder) / "heldout_ids.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()}


# the sets `python -m workbench.safety eval` reports on: fresh4 (written after every fourth-pass change, scored
# once) and fresh3 are held out; fresh2 and fresh are trained on since the
# fourth pass (reported for reference); first is the labelled set's held-out split (seen, never trained on)
# fresh5 (written before the fifth pass changed anything) is held out and scored once with the fifth pass's final
# check; fresh4 and fresh3 were held out in the fourth pass and read since (seen, never trained on)
# fresh6 (written before the sixth pass, the fine-tuned encoder, trained anything) is held out now and scored once
# with the sixth pass's final check; fresh5 was scored in the fifth pass and is seen since
# fresh7 (written before the seventh pass trained or tuned anything) is held out now and scored once with the seventh
# pass's final check; fresh6 was held out in the sixth pass and is seen since (never trained on)
# fresh8 (written before the eighth pass trained or tuned anything) is held out now and scored once with the eighth
# pass's final check; fresh7 was held out in the seventh pass and scored once (seen since)
# fresh9 (written before the ninth pass trained or tuned anything) is held out now and scored once with the ninth
# pass's final check; fresh8 was held out in the eighth pass and is trained on since the ninth
SPLITS = ("fresh9", "fresh8", "fresh7", "fresh6", "fresh5", "fresh4", "fresh3", "fresh2", "fresh", "first",
          "rewrites")
TRAINED_ON = ("fresh2", "fresh")  # folded into training by the fourth pass
# the seventh pass (safety-head-v5) folds the seen sets into training too (the eighth fresh7, the ninth fresh8): their
# mistakes had all been read, and a classifier chosen by leaving each of them out in turn (head/TRAINING.md) is then
# trained on all of them
SEEN_TRAINED = ("fresh3", "fresh4", "fresh5", "fresh6", "fresh7", "fresh8")  # fresh7, fresh8: scored once each
NEVER_TRAINED = ("fresh9",)  # files of their own that no training may read
# what the sixth pass's fine-tuned encoder (a recorded experiment, workbench/safety/finetune.py) kept out
NEVER_TRAINED_BEFORE_V5 = ("fresh3", "fresh4", "fresh5", "fresh6", "fresh7", "fresh8", "fresh9")
FILES = {"fresh9": "prompts_fresh9.jsonl", "fresh8": "prompts_fresh8.jsonl", "fresh7": "prompts_fresh7.jsonl",
         "fresh6": "prompts_fresh6.jsonl", "fresh5": "prompts_fresh5.jsonl", "fresh4": "prompts_fresh4.jsonl", "fresh3": "prompts_fresh3.jsonl",
         "fresh2": "prompts_fresh2.jsonl", "fresh": "prompts_fresh.jsonl"}


def heldout(name: str = "fresh9", folder: str | Path = SAFETY_ASSETS) -> list[LabelledPrompt]:
    """The prompts of one evaluation set (SPLITS); "fresh" and "fresh2" are in the training split since the fourth
    pass, "fresh3"-"fresh6" since the seventh, "fresh7" since the eighth and "fresh8" since the ninth; "fresh9" is held
    out; "first" is seen, never trained on; "rewrites" is the rewriter corpora's held-out prompts (plain safe)."""
    if name not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
    if name == "rewrites":
        return rewrite_prompts(held_out=True)
    return load_prompts(folder, FILES[name]) if name in FILES else split(folder)[1]


def split(folder: str | Path = SAFETY_ASSETS, seen: bool = True,
          rewrites: bool = True) -> tuple[list[LabelledPrompt], list[LabelledPrompt]]:
    """(train, held-out): the labelled set (which holds the training-only extra and fifth-pass lists) less its
    held-out ids, plus fresh and fresh2 (folded into training by the fourth pass) and, with `seen` (the seventh
    pass's recipe), fresh3-fresh8 and, with `rewrites` too (the ninth pass's), the rewriter corpora's training prompts
    as plain safe ones; held-out: the first split. fresh9 is in neither (a file of its own, never trained on)."""
    held = heldout_ids(folder)
    prompts = load_prompts(folder)
    names = TRAINED_ON + (SEEN_TRAINED if seen else ())
    train = [p for p in prompts if p.id not in held] + [p for n in names for p in load_prompts(folder, FILES[n])]
    if seen and rewrites:
        train += rewrite_prompts()
    return train, [p for p in prompts if p.id in held]


def refuse_held_out(train_set: list[LabelledPrompt], folder: str | Path = SAFETY_ASSETS,
                     names: tuple[str, ...] = NEVER_TRAINED) -> None:
    """RuntimeError when a prompt of the first held-out split (by id) or of the sets `names` (by text, lower case,
    spaces collapsed; fresh9 by default, fresh3-fresh9 for the sixth pass's encoder) is in `train_set`: every trainer
    calls this before it reads a prompt."""
    held_ids = heldout_ids(folder)
    if any(p.id in held_ids for p in train_set):
        raise RuntimeError("a held-out prompt reached the training split")
    texts = {" ".join(p.text.lower().split()) for p in train_set}
    for name in names:
        if any(" ".join(p.text.lower().split()) in texts for p in load_prompts(folder, FILES[name])):
            raise RuntimeError(f"a {name} (held-out) prompt reached the training split")


# The rewriters' own corpora as plain safe prompts (the ninth pass): the T2I pairs (coarse and fine prompts, and the
# facet pairs' fine prompts) and the T2V pairs (ideas and video prompts). Long, detailed prompts are what the
# app checks most (every rewrite), and a classifier that has only seen short ideas may take their detail for harm
# (safety-head-v6 refused 14-23% of them). Each corpus's own held-out ids are never trained on here either: they are
# the "rewrites" evaluation set.
REWRITE_CORPORA = {"t2i": ("t2i_pairs/pairs.jsonl", ("coarse", "fine")), "t2i-facet": ("t2i_pairs/facet_pairs.jsonl",
                                                                                     ("fine",)),
                   "t2v": ("t2v_pairs/pairs.jsonl", ("idea", "prompt"))}
REWRITE_HELD_OUT = {"t2i": "t2i_pairs/heldout_ids.txt", "t2i-facet": "t2i_pairs/heldout_ids.txt",
                    "t2v": "t2v_pairs/heldout_ids.txt"}


def rewrite_prompts(held_out: bool = False, assets: str | Path = ASSETS) -> list[LabelledPrompt]:
    """The rewriter corpora's prompts as plain safe LabelledPrompts (ids rw-<corpus>-<pair id>-<field>), the
    training ones or (`held_out`) those of each corpus's held-out ids; duplicates of a text are kept once."""
    from workbench.common.refiner import heldout_ids as corpus_heldout_ids

    assets = Path(assets)
    out, seen = [], set()
    for corpus, (name, fields) in REWRITE_CORPORA.items():
        held = corpus_heldout_ids(assets / REWRITE_HELD_OUT[corpus])
        for line in (assets / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            key = row.get("source", row["id"])
            if (key in held) != held_out:
                continue
            for field in fields:
                text = " ".join(str(row[field]).split())
                if text.lower() in seen:
                    continue
                seen.add(text.lower())
                out.append(LabelledPrompt(id=f"rw-{corpus}-{row['id']}-{field}", text=text, label="safe",
                                          category="safe", hard_negative=False,
                                          medium="video" if corpus == "t2v" and field == "prompt" else "image"))
    return out
