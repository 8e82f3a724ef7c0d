"""Who does what: each participant's conditions and steps, and the blinded order and labels of each comparison.

Everything is a pure function of the study's recorded seed and the participant's join number (or id), so an
assignment can be recomputed and audited from the database alone.

- between subjects, counterbalanced: participants fill blocks of one of each condition, each block in a
  seeded random order, so after any number of joins the groups differ by at most one;
- between subjects, randomised: each participant's condition drawn independently from the seeded RNG;
- within subjects, counterbalanced: condition orders from a balanced Latin square (each condition in each
  position equally often, and for an even number of conditions each one before each other equally often);
- within subjects, randomised: a seeded shuffle per participant.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from workbench.studies.definition import Step, Study


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in parts))  # str seeds hash with SHA-512: stable across runs


def balanced_latin_square(k: int) -> list[list[int]]:
    """Rows of a balanced Latin square (Williams design) over 0..k-1; for odd k the mirrored rows are added."""
    first = [0]
    lo, hi = 1, k - 1
    for j in range(1, k):
        if j % 2:
            first.append(lo)
            lo += 1
        else:
            first.append(hi)
            hi -= 1
    rows = [[(x + r) % k for x in first] for r in range(k)]
    if k % 2:
        rows += [row[::-1] for row in rows]
    return rows


def assign_conditions(study: Study, number: int) -> list[str]:
    """The condition ids, in order, of the participant who joined `number`-th (0-based)."""
    ids = [c.id for c in study.conditions]
    k = len(ids)
    if study.design == "between":
        if study.method == "counterbalanced":
            block = ids[:]
            _rng(study.seed, "block", number // k).shuffle(block)
            return [block[number % k]]
        return [_rng(study.seed, "participant", number).choice(ids)]
    if study.method == "counterbalanced":
        rows = balanced_latin_square(k)
        order = ids[:]
        _rng(study.seed, "labels").shuffle(order)  # which condition is "0" in the square: seeded too
        return [order[i] for i in rows[number % len(rows)]]
    order = ids[:]
    _rng(study.seed, "participant", number).shuffle(order)
    return order


@dataclass(frozen=True)
class PlannedStep:
    key: str  # unique within the participant: "write_prompt@refiner", "survey"
    step_id: str
    condition: str  # the condition this step belongs to ("" for steps shared by every condition)


def plan_steps(study: Study, conditions: list[str]) -> list[PlannedStep]:
    """The participant's steps in order. Between subjects each step appears once, in the participant's
    condition. Within subjects the per-condition block repeats once per condition, in the assigned order."""
    steps = study.steps
    if study.design == "between" or not any(s.per_condition for s in steps):
        cond = conditions[0] if len(conditions) == 1 else ""
        return [PlannedStep(s.id, s.id, cond if s.per_condition or len(conditions) == 1 else "") for s in steps]
    flags = [s.per_condition for s in steps]
    first, last = flags.index(True), len(flags) - 1 - flags[::-1].index(True)
    out = [PlannedStep(s.id, s.id, "") for s in steps[:first]]
    for cond in conditions:
        out += [PlannedStep(f"{s.id}@{cond}", s.id, cond) for s in steps[first:last + 1]]
    out += [PlannedStep(s.id, s.id, "") for s in steps[last + 1:]]
    return out


LABELS = string.ascii_uppercase


@dataclass(frozen=True)
class BlindedItem:
    label: str  # what the participant sees: "A", "B", ...
    item_id: str  # kept on the server


def blind(study: Study, step: Step, participant_id: str) -> list[BlindedItem]:
    """The comparison's items in the order this participant sees them, labelled A, B, ... in that order.
    The order is a seeded shuffle per participant and comparison, so neither position nor label tells
    which condition produced an item."""
    items = [it.id for it in step.items]
    _rng(study.seed, "blind", participant_id, step.id).shuffle(items)
    return [BlindedItem(LABELS[i], item_id) for i, item_id in enumerate(items)]
