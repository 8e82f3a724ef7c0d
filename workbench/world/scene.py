"""Scenes of the miniature world: sampled deterministically from a seed, described by captions at two levels.

A scene's `stated(level)` is exactly what its caption at that level says; `parse_caption` maps a caption back to
the same structure (the round trip tests/test_world.py checks over hundreds of seeds). A fine caption can leave out
some of its attributes (`omit`, see OMITTABLE): a prompt that already states part of the fine scene, as the T2I
rewriter meets it when a user refines a refined prompt further."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Collection

import numpy as np

from workbench.world.vocabulary import Vocabulary, load_vocabulary

LEVELS = ("coarse", "fine")
# what a fine caption may leave out: per object (as "INDEX:KEY", e.g. "0:size") and per scene
OBJECT_OMITTABLE = ("size", "finish", "position", "speed")
SCENE_OMITTABLE = ("background", "effect", "style", "relation")
DIR_VECTORS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
BOUNCE_HEIGHT = 0.12  # image fraction a bouncing object rises
SYMMETRIC = {"circle", "ring"}  # a rotation of these would not show


@dataclass(frozen=True)
class Motion:
    kind: str  # "move", "bounce", "rotate", "fade"
    direction: str | None = None  # for "move"
    speed: str | None = None  # for "move"


@dataclass(frozen=True)
class WorldObject:
    shape: str
    colour: str
    size: str
    cell: tuple[int, int]  # (column, row) of the 3x3 grid
    offset: tuple[float, float] = (0.0, 0.0)  # jitter inside the cell, image fraction
    finish: str = "plain"
    motion: Motion | None = None


@dataclass(frozen=True)
class Scene:
    objects: tuple[WorldObject, ...]
    background: str
    background_colour: str
    effect: str = "none"
    style: str = "none"
    relation: str | None = None  # objects[0] RELATION objects[1]; then positions are not stated
    seed: int | None = None
    video: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Scene":
        objs = tuple(WorldObject(**{**o, "cell": tuple(o["cell"]), "offset": tuple(o["offset"]),
                                    "motion": Motion(**o["motion"]) if o.get("motion") else None})
                     for o in d["objects"])
        return Scene(**{**d, "objects": objs})

    # -- what a caption states ------------------------------------------------------------------------------
    def stated(self, level: str = "fine", omit: Collection[str] = ()) -> dict:
        """The attributes the caption at `level` states, in the form `parse_caption` returns; at the fine level
        without those in `omit` (see `check_omit`)."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        omit = self.check_omit(omit, level)
        fine = level == "fine"
        objs = []
        for i, o in enumerate(self.objects):
            def says(key: str) -> bool:
                return fine and f"{i}:{key}" not in omit

            d: dict = {"shape": o.shape, "colour": o.colour}
            if o.motion is not None:
                d["motion"] = o.motion.kind
                if o.motion.kind == "move":
                    d["direction"] = o.motion.direction
                    if says("speed"):
                        d["speed"] = o.motion.speed
            if says("size"):
                d["size"] = o.size
            if says("finish") and o.finish != "plain":
                d["finish"] = o.finish
            if says("position") and self.relation is None:
                d["position"] = list(o.cell)
            objs.append(d)
        out: dict = {"objects": objs}
        if fine:
            if "background" not in omit:
                out["background"] = self.background
                out["background_colour"] = self.background_colour
            if self.relation is not None and "relation" not in omit:
                out["relation"] = self.relation
            if self.effect != "none" and "effect" not in omit:
                out["effect"] = self.effect
            if self.style != "none" and "style" not in omit:
                out["style"] = self.style
        return out

    def check_omit(self, omit: Collection[str], level: str = "fine") -> frozenset:
        """`omit` as a set, checked: scene keys (SCENE_OMITTABLE) and "INDEX:KEY" for an object of this scene
        (KEY in OBJECT_OMITTABLE); only a fine caption leaves anything out."""
        if isinstance(omit, str):
            raise ValueError(f"omit must be a collection of keys, not the string {omit!r}")
        omit = frozenset(omit)
        allowed = set(SCENE_OMITTABLE) | {f"{i}:{k}" for i in range(len(self.objects)) for k in OBJECT_OMITTABLE}
        bad = sorted(str(k) for k in omit if k not in allowed)
        if bad:
            raise ValueError(f"omit may name {', '.join(SCENE_OMITTABLE)} and INDEX:KEY with INDEX in "
                             f"[0, {len(self.objects) - 1}] and KEY one of {', '.join(OBJECT_OMITTABLE)}; got {bad}")
        if omit and level != "fine":
            raise ValueError(f"only a fine caption leaves attributes out, got level {level!r} with omit")
        return omit

    def caption(self, level: str = "fine", vocab: Vocabulary | None = None, omit: Collection[str] = ()) -> str:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        omit = self.check_omit(omit, level)
        v = vocab or load_vocabulary()
        related = self.relation is not None and level == "fine" and "relation" not in omit
        phrases = [_object_phrase(o, level, v, self.relation is None,
                                  {k.split(":")[1] for k in omit if k.startswith(f"{i}:")})
                   for i, o in enumerate(self.objects)]
        if related:
            text = f"{phrases[0]} {v.phrase_of(v.relations, self.relation)} {phrases[1]}"
        elif len(phrases) == 1:
            text = phrases[0]
        else:
            text = ", ".join(phrases[:-1]) + " and " + phrases[-1]
        if level == "coarse":
            return text
        if self.effect != "none" and "effect" not in omit:
            text += ", " + v.phrase_of(v.effects, self.effect)
        if "background" not in omit:
            text += f", on a {self.background} {self.background_colour} background"
        if self.style != "none" and "style" not in omit:
            text += f", {self.style} style"
        return text


def _object_phrase(o: WorldObject, level: str, v: Vocabulary, with_position: bool,
                   omit: Collection[str] = ()) -> str:
    fine = level == "fine"
    words = ["a"]
    if fine and "size" not in omit:
        words.append(o.size)
    words.append(o.colour)
    if fine and o.finish != "plain" and "finish" not in omit:
        words.append(o.finish)
    words.append(o.shape)
    if fine and with_position and "position" not in omit:
        words.append(v.position_phrase(o.cell))
    if o.motion is not None:
        if o.motion.kind == "move":
            words.append(v.phrase_of(v.directions, o.motion.direction))
            if fine and "speed" not in omit:
                words.append(v.phrase_of(v.speeds, o.motion.speed))
        else:
            words.append(v.phrase_of(v.other_motions, o.motion.kind))
    return " ".join(words)


# -- sampling ---------------------------------------------------------------------------------------------------
def _check_seed(seed) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def sample_simple_scene(seed: int, video: bool = False, vocab: Vocabulary | None = None) -> Scene:
    """A one-object scene on a plain background, with no finish, effect or style, drawn from `seed` alone: any shape,
    colour, size and cell, with the world's jitter inside the cell; for a video, the object moves (a direction and
    speed whose path stays inside the image). A scene the world holds (sample_scene draws such scenes too, rarely);
    the trainers' curriculum (`train-t2i` / `train-t2v --simple-share`), where the shape, or the way the object
    moves, is all there is to learn."""
    seed = _check_seed(seed)
    v = vocab or load_vocabulary()
    rng = np.random.default_rng([seed, 1 if video else 0, 21])
    colours = list(v.colours)
    obj, bg = (colours[i] for i in rng.permutation(len(colours))[:2])
    cell = (int(rng.integers(3)), int(rng.integers(3)))
    shape, size = str(rng.choice(v.shapes)), str(rng.choice(list(v.sizes)))
    r = v.sizes[size]
    offset = _jitter(rng, r)
    motion = None
    if video:
        moves = [Motion("move", d, speed) for d in DIR_VECTORS for speed in v.speeds.values()]
        fits = [m for m in moves if _inside(_swept_box(m, cell, offset, r, v))]  # the centre cell fits them all
        motion = fits[int(rng.integers(len(fits)))]
    return Scene((WorldObject(shape, obj, size, cell, offset, motion=motion),), "plain", bg, seed=seed, video=video)


def sample_scene(seed: int, video: bool = False, vocab: Vocabulary | None = None) -> Scene:
    """A scene drawn from `seed` alone (the same seed gives the same scene, on any machine)."""
    seed = _check_seed(seed)
    v = vocab or load_vocabulary()
    rng = np.random.default_rng([seed, 1 if video else 0, 20])
    n = int(rng.integers(1, 3 if video else 4))  # videos: 1-2 objects, stills 1-3
    colours = list(v.colours)
    picked = [colours[i] for i in rng.permutation(len(colours))[: n + 1]]
    obj_colours, bg_colour = picked[:n], picked[n]
    relation = None
    cells_all = [(c, r) for r in range(3) for c in range(3)]
    if n == 2 and not video and rng.random() < 0.35:
        relation = str(rng.choice(list(v.relations.values())))
        pairs = [(a, b) for a in cells_all for b in cells_all if relation_holds(relation, a, b)]
        a, b = pairs[int(rng.integers(len(pairs)))]
        cells = [a, b]
    else:
        cells = [cells_all[i] for i in rng.permutation(9)[:n]]
    objs: list[WorldObject] = []
    boxes: list[tuple[float, float, float, float]] = []
    for i in range(n):
        shape = str(rng.choice(v.shapes))
        size = str(rng.choice(list(v.sizes)))
        r = v.sizes[size]
        offset = _jitter(rng, r)
        finish = "plain" if rng.random() < 0.5 else str(rng.choice(v.finishes))
        motion = None
        if video:
            motion = _sample_motion(rng, v, shape, cells[i], offset, r, boxes)
            boxes.append(_swept_box(motion, cells[i], offset, r, v))
        objs.append(WorldObject(shape, obj_colours[i], size, tuple(cells[i]), offset, finish, motion))
    background = str(rng.choice(v.backgrounds))
    effect = ["none", *v.effects.values()][int(rng.integers(len(v.effects) + 1))]
    style = ["none", *v.styles][int(rng.integers(len(v.styles) + 1))]
    return Scene(tuple(objs), background, bg_colour, effect, style, relation, seed, video)


def relation_holds(relation: str, a, b) -> bool:
    """Whether cell `a` (column, row) stands in `relation` to cell `b`: the one rule the scene sampler and the
    ground-truth checks (workbench/world/groundtruth.py) share."""
    return {"left of": a[0] < b[0], "right of": a[0] > b[0], "above": a[1] < b[1], "below": a[1] > b[1]}[relation]


def _jitter(rng, r: float) -> tuple[float, float]:
    """An object's offset from its cell's centre (image fractions): as far as an object of radius `r` can move and
    still keep 0.01 inside the cell."""
    slack = max(0.0, 1 / 6 - r - 0.01)
    return (float(rng.uniform(-slack, slack)) * 0.5, float(rng.uniform(-slack, slack)) * 0.5)


def centre_of(cell, offset) -> tuple[float, float]:
    return ((cell[0] + 0.5) / 3 + offset[0], (cell[1] + 0.5) / 3 + offset[1])


def _swept_box(motion: Motion, cell, offset, r, v: Vocabulary):
    x, y = centre_of(cell, offset)
    x0, y0, x1, y1 = x - r, y - r, x + r, y + r
    if motion.kind == "move":
        dx, dy = DIR_VECTORS[motion.direction]
        d = v.distance[motion.speed]
        x0, x1 = min(x0, x0 + dx * d), max(x1, x1 + dx * d)
        y0, y1 = min(y0, y0 + dy * d), max(y1, y1 + dy * d)
    elif motion.kind == "bounce":
        y0 -= BOUNCE_HEIGHT
    return (x0, y0, x1, y1)


def _inside(box) -> bool:
    return box[0] >= 0.005 and box[1] >= 0.005 and box[2] <= 0.995 and box[3] <= 0.995


def _sample_motion(rng, v: Vocabulary, shape, cell, offset, r, boxes) -> Motion:
    """A motion whose path stays inside the image and clear of the other objects' paths."""
    options = []
    for direction in DIR_VECTORS:
        for speed in v.speeds.values():
            options.append(Motion("move", direction, speed))
    options += [Motion("bounce"), Motion("fade")]
    if shape not in SYMMETRIC:
        options.append(Motion("rotate"))
    order = rng.permutation(len(options))
    for i in order:
        m = options[i]
        box = _swept_box(m, cell, offset, r, v)
        inside = _inside(box)
        clear = all(box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1] for b in boxes)
        if inside and clear:
            return m
    return Motion("fade")
