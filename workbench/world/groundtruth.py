"""Ground-truth checks of a text-to-image model on the miniature world (issue 20, item 5): does a word's token
heatmap (DAAM) point at its object, and do renders of refined prompts keep the coarse attributes and realise more of
the fine ones than renders of the coarse prompt (the UF-FGTG question)?

Every function takes a loaded T2I backend (anything with `generate(prompts, settings)` and, for heatmaps,
`attend(prompt, settings)`, as backends.base defines them) and the settings object that backend takes, so the same
code measures the world's own model, the tiny random pipeline and SD 1.5 on a GPU. The world reaches no backend
module (pyproject's import contract): the caller loads the backend and builds the settings.

What the attribute classifier reads in a generated image is the ground truth here: the image is not the scene's
render, so where an object *is* comes from reading the image, not from the caption."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from workbench.world.data import HELDOUT_SEED0
from workbench.world.parse import parse_caption
from workbench.world.render import render
from workbench.world.scene import Scene, relation_holds, sample_scene

OBJECT_KEYS = ("shape", "colour", "size", "finish", "position")
COARSE_KEYS = ("count", "shape", "colour")  # what a coarse caption states (stills): its objects, each's shape, colour
SCENE_KEYS = ("background", "background_colour", "effect", "style")
# DAAM (Tang et al. 2023) binarises a normalised word map at a threshold τ before its IoU against masks (its
# evaluation script's default is 0.3). 0.4 here, fixed before any world model was measured, never tuned on these rows.
HEAT_THRESHOLD = 0.4
GRID = 3
MAX_PROMPTS = 1_000
Refiner = Callable[[str], str]


# -- reading a caption's claims against what the classifier sees -------------------------------------------------
def caption_checks(read: dict, stated: dict) -> list[tuple[str, bool]]:
    """Each attribute a caption states, checked against the attribute classifier's read of an image
    (`AttributeClassifier.read(...)[i]`): a list of (attribute, realised). `stated` is `Scene.stated(level)` or
    `parse_caption(text)` (the same form).

    An object whose position is stated is looked for in that cell: position is realised when the cell holds an
    object of the stated colour (colours are distinct within a world scene, so the colour names the object; "the
    cell is occupied" alone would pass any image read as full), shape, colour, size and finish are that object's;
    one without a stated position is matched to the read object sharing most of its shape and colour (each read
    object used once). Relations hold when both objects were matched and their cells stand in that relation;
    background, its colour, effect and style are read per scene. "count" checks that the image holds as many objects
    as the caption names (a caption at either level states it; without it, an image read as nine objects of every
    kind would match any unplaced object). Motion words are not checked (a still cannot show them). Helper for
    render faithfulness too: the accuracy on named shape, colour and cell is the share of True among the checks with
    that name."""
    objects = read["objects"]
    used: set[int] = set()
    cells: list[tuple[int, int] | None] = []
    checks: list[tuple[str, bool]] = [("count", len(objects) == len(stated.get("objects", [])))]
    for o in stated.get("objects", []):
        if "position" in o:
            found = next((i for i, r in enumerate(objects) if list(r["position"]) == list(o["position"])), None)
        else:
            free = [i for i in range(len(objects)) if i not in used]
            found = max(free, default=None, key=lambda i: ((objects[i]["shape"] == o.get("shape"))
                                                             + (objects[i]["colour"] == o.get("colour")),
                                                             objects[i]["confidence"]))
        if found is not None:
            used.add(found)
        cells.append(tuple(objects[found]["position"]) if found is not None else None)
        for k in OBJECT_KEYS:
            if k not in o:
                continue
            if k == "position":  # the object, known by its colour (unique in a world scene), sits in that cell
                checks.append(("position", found is not None and objects[found]["colour"] == o.get("colour")))
            else:
                checks.append((k, found is not None and objects[found][k] == o[k]))
    if "relation" in stated and len(cells) >= 2:
        a, b = cells[0], cells[1]
        checks.append(("relation", a is not None and b is not None and relation_holds(stated["relation"], a, b)))
    for k in SCENE_KEYS:
        if k in stated:
            checks.append((k, read.get(k) == stated[k]))
    return checks


def accuracy_by_attribute(checks: Sequence[Sequence[tuple[str, bool]]]) -> dict[str, float]:
    """Share realised per attribute name over many images' `caption_checks`."""
    tally: dict[str, list[int]] = {}
    for one in checks:
        for k, ok in one:
            t = tally.setdefault(k, [0, 0])
            t[0] += int(ok)
            t[1] += 1
    return {k: hit / n for k, (hit, n) in tally.items()}


# -- heatmaps against masks --------------------------------------------------------------------------------------
def upsample(heat: Any, size: int) -> np.ndarray:
    """A latent-grid map (h x w) resized bilinearly to size x size image pixels."""
    from PIL import Image

    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f"heat must be a non-empty 2-D map, got shape {heat.shape}")
    return np.asarray(Image.fromarray(heat, mode="F").resize((size, size), Image.BILINEAR), dtype=np.float32)


def pointing_hit(heat: Any, region: np.ndarray) -> bool:
    """The pointing game: does the heatmap's maximum fall inside `region` (a boolean image mask)? The maximum is
    taken on the map's own grid (no interpolation invents a peak) and its cell's centre is located in the image."""
    heat = np.asarray(heat, dtype=np.float32)
    region = np.asarray(region, dtype=bool)
    if heat.ndim != 2 or region.ndim != 2 or region.shape[0] != region.shape[1]:
        raise ValueError(f"heat must be 2-D and region a square 2-D mask, got {heat.shape} and {region.shape}")
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    size = region.shape[0]
    y, x = int((r + 0.5) / heat.shape[0] * size), int((c + 0.5) / heat.shape[1] * size)
    return bool(region[min(y, size - 1), min(x, size - 1)])


def heat_iou(heat: Any, mask: np.ndarray, threshold: float = HEAT_THRESHOLD) -> float:
    """IoU of the heatmap, upsampled to the mask's size, min-max normalised (as the tab shows it) and thresholded
    at `threshold` (DAAM's τ; 0.4 by default), against a boolean mask. A flat or empty map covers nothing (IoU 0)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    mask = np.asarray(mask, dtype=bool)
    up = upsample(heat, mask.shape[0])
    lo, hi = float(up.min()), float(up.max())
    if hi <= lo:
        return 0.0
    region = (up - lo) / (hi - lo) >= threshold
    union = int((region | mask).sum())
    return float((region & mask).sum()) / union if union else 0.0


def cell_box(cell: tuple[int, int], size: int) -> np.ndarray:
    """The (column, row) cell of the 3x3 grid as a boolean size x size mask."""
    out = np.zeros((size, size), dtype=bool)
    c, r = int(cell[0]), int(cell[1])
    out[round(r * size / GRID):round((r + 1) * size / GRID), round(c * size / GRID):round((c + 1) * size / GRID)] = True
    return out


def shifted(mask: np.ndarray, from_cell: tuple[int, int], to_cell: tuple[int, int]) -> np.ndarray:
    """The object's ground-truth mask moved by whole grid cells (where the generated image put the object)."""
    size = mask.shape[0]
    dy = round((to_cell[1] - from_cell[1]) * size / GRID)
    dx = round((to_cell[0] - from_cell[0]) * size / GRID)
    out = np.zeros_like(mask)
    src = mask[max(0, -dy):size - max(0, dy), max(0, -dx):size - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def locate(read: dict, shape: str, colour: str) -> tuple[int, int] | None:
    """The cell where the classifier reads this object: one of this shape and colour, else one of this colour (the
    colour names an object in a world scene, and the classifier reads colour far more reliably than shape: a
    circle drawn or read as a hexagon is still the pink object), the most confident if several; None if none."""
    hits = [r for r in read["objects"] if r["shape"] == shape and r["colour"] == colour] or \
        [r for r in read["objects"] if r["colour"] == colour]
    if not hits:
        return None
    return tuple(max(hits, key=lambda r: r["confidence"])["position"])


@dataclass
class HeatmapScores:
    """Pointing game and IoU per kind of word ("shape", "colour"): rates in [0, 1] over `n[kind]` objects."""

    pointing: dict[str, float]
    iou: dict[str, float]
    n: dict[str, int]
    located: float  # share of objects the classifier found (by colour, shape preferred) in the generated image
    chance: float  # the pointing game's chance rate: a uniformly random point lands in the object's cell
    prompts: int
    objects: int  # objects in those prompts
    skipped_repeated: int = 0  # words naming two objects of one prompt (their map is the sum of both)
    details: list[dict] = field(default_factory=list)


def heatmap_scores(t2i: Any, settings: Any, classifier: Any, n: int = 8, seed0: int = HELDOUT_SEED0,
                   threshold: float = HEAT_THRESHOLD, scenes: Sequence[Scene] | None = None) -> HeatmapScores:
    """Pointing game and IoU of each object's shape word and colour word on held-out fine captions.

    Each fine caption is rendered with `t2i.attend` (the image and its per-token DAAM maps at once). Where is the
    object in the *generated* image? The attribute classifier reads the image, and the object's cell is the one
    where it reads that shape in that colour, else that colour (`locate`); where it finds neither (the model did not
    draw it recognisably), the cell the scene intended (the caption's place) is used, and `located` says how often
    the classifier found it. The classifier, not the caption, decides, because a model that draws the star in the
    wrong cell while its map points at the right one should not score a hit.

    Pointing game: hit when the word map's maximum lies inside that cell (a 1/3 x 1/3 box; chance 1/9). IoU: the map
    upsampled to the image, min-max normalised and thresholded at `threshold`, against the scene's own rendered mask
    of the object moved to that cell (the shape and size the caption asked for, where the model put it). A word
    naming two objects of one prompt (two stars) is skipped: its map is the sum of both."""
    _check_n(n)
    scenes = list(scenes) if scenes is not None else [sample_scene(seed0 + i) for i in range(n)]
    size = int(settings.width)
    hits: dict[str, list[bool]] = {"shape": [], "colour": []}
    ious: dict[str, list[float]] = {"shape": [], "colour": []}
    located, skipped, details = [], 0, []
    for scene in scenes:
        prompt = scene.caption("fine")
        result, attention = t2i.attend(prompt, settings)
        image = np.asarray(result.image.convert("RGB"))
        read = classifier.read([image])[0]
        _, masks = render(scene, size)
        for o, mask in zip(scene.objects, masks):
            cell = locate(read, o.shape, o.colour)
            located.append(cell is not None)
            cell = cell if cell is not None else o.cell
            region, gt = cell_box(cell, size), shifted(mask, o.cell, cell)
            for kind, word in (("shape", o.shape), ("colour", o.colour)):
                if sum(getattr(p, kind) == word for p in scene.objects) > 1:
                    skipped += 1
                    continue
                heat = attention.word_map(word)
                hit, iou = pointing_hit(heat, region), heat_iou(heat, gt, threshold)
                hits[kind].append(hit)
                ious[kind].append(iou)
                details.append({"seed": scene.seed, "word": word, "kind": kind, "cell": list(cell),
                                "intended_cell": list(o.cell), "hit": hit, "iou": iou})
    return HeatmapScores(pointing={k: _mean(v) for k, v in hits.items()}, iou={k: _mean(v) for k, v in ious.items()},
                         n={k: len(v) for k, v in hits.items()}, located=_mean(located), chance=1 / GRID ** 2,
                         prompts=len(scenes), objects=len(located), skipped_repeated=skipped, details=details)


# -- the UF-FGTG question ----------------------------------------------------------------------------------------
@dataclass
class RefinementScores:
    """For held-out coarse captions and their refinements, rendered from one seed: the share of the coarse
    prompt's attributes realised and of the refined prompt's fine attributes realised, in each render."""

    coarse_kept_refined: float  # coarse attributes realised in the refined prompt's render
    coarse_kept_coarse: float  # ... in the coarse prompt's render (the reference)
    fine_refined: float  # the refined prompt's fine attributes realised in its own render
    fine_coarse: float  # ... in the coarse prompt's render (what the coarse prompt gets by chance)
    more_fine: float  # share of prompts whose refined render realises more fine attributes than the coarse one
    refiner: str
    prompts: int
    coarse_checks: int  # attributes checked, summed over prompts
    fine_checks: int
    details: list[dict] = field(default_factory=list)


def refinement_scores(t2i: Any, settings: Any, classifier: Any, n: int = 8, refine: Refiner | None = None,
                      refiner_name: str | None = None, seed0: int = HELDOUT_SEED0,
                      scenes: Sequence[Scene] | None = None, batch_size: int = 8) -> RefinementScores:
    """The UF-FGTG question on held-out scenes: render each coarse caption and its refinement from the same seed; does
    the refined render keep the coarse attributes (the number of objects, each one's shape and colour) and realise
    more of the refined prompt's fine attributes (size, finish, cell, relation, background and its colour, effect,
    style) than the coarse render does? Attributes are read by the attribute classifier (`caption_checks`).

    `refine` maps a coarse caption to a refined prompt (a trained rewriter plugs in here). Without one, the
    refinement is the same scene's fine caption: an *oracle* refinement, the best a rewriter could write, which
    measures the image model's side of the question alone. The fine attributes are those the refined prompt states
    (parsed back with `parse_caption`; words outside the world are not checked), so a rewriter is judged on what it
    asked for."""
    _check_n(n)
    if refine is not None and not callable(refine):
        raise ValueError(f"refine must be a callable from a coarse caption to a refined prompt, got {refine!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= 64:
        raise ValueError(f"batch_size must be an integer in [1, 64], got {batch_size!r}")
    scenes = list(scenes) if scenes is not None else [sample_scene(seed0 + i) for i in range(n)]
    coarse = [s.caption("coarse") for s in scenes]
    refined = [refine(c) if refine is not None else s.caption("fine") for s, c in zip(scenes, coarse)]
    for r in refined:
        if not isinstance(r, str) or not r.strip():
            raise ValueError(f"refine must return a non-empty prompt, got {r!r}")
    prompts = [p for pair in zip(coarse, refined) for p in pair]
    images = []
    for i in range(0, len(prompts), batch_size):
        images += [np.asarray(r.image.convert("RGB")) for r in t2i.generate(prompts[i:i + batch_size], settings)]
    reads = classifier.read(images)
    tallies = {k: [0, 0] for k in ("ck_r", "ck_c", "f_r", "f_c")}
    more, details = 0, []
    for j, (c, r) in enumerate(zip(coarse, refined)):
        read_c, read_r = reads[2 * j], reads[2 * j + 1]
        want_c, want_r = parse_caption(c), parse_caption(r)
        kept_r, kept_c = caption_checks(read_r, want_c), caption_checks(read_c, want_c)
        fine_r = _fine(caption_checks(read_r, want_r))
        fine_c = _fine(caption_checks(read_c, want_r))
        for key, checks in (("ck_r", kept_r), ("ck_c", kept_c), ("f_r", fine_r), ("f_c", fine_c)):
            tallies[key][0] += sum(ok for _, ok in checks)
            tallies[key][1] += len(checks)
        got_r, got_c = sum(ok for _, ok in fine_r), sum(ok for _, ok in fine_c)
        more += got_r > got_c
        details.append({"seed": scenes[j].seed, "coarse": c, "refined": r, "fine_realised_refined": got_r,
                        "fine_realised_coarse": got_c, "fine_stated": len(fine_r)})
    rate = {k: (hit / total if total else 0.0) for k, (hit, total) in tallies.items()}
    return RefinementScores(coarse_kept_refined=rate["ck_r"], coarse_kept_coarse=rate["ck_c"], fine_refined=rate["f_r"],
                            fine_coarse=rate["f_c"], more_fine=more / len(scenes), prompts=len(scenes),
                            refiner=refiner_name or ("oracle: the scene's fine caption" if refine is None else
                                                     getattr(refine, "__name__", type(refine).__name__)),
                            coarse_checks=tallies["ck_r"][1], fine_checks=tallies["f_r"][1], details=details)


def _fine(checks: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """The checks a coarse caption does not make: everything but the object count and each object's shape and
    colour."""
    return [(k, ok) for k, ok in checks if k not in COARSE_KEYS]


def _check_n(n) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_PROMPTS:
        raise ValueError(f"n must be an integer in [1, {MAX_PROMPTS}], got {n!r}")


def _mean(values: Sequence) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def groundtruth_rows(name: str, heat: HeatmapScores, refinement: RefinementScores,
                     faithfulness: dict | None = None) -> list[dict]:
    """Rows {"model", "metric", "value", "reference", "n"} for `python -m workbench.world eval --t2i`;
    `faithfulness`: what `workbench.world.diffusion.render_faithfulness` returned for the model (rows first)."""
    rows = []
    for kind in ("shape", "colour", "position") if faithfulness else ():
        rows.append({"model": name, "metric": f"render faithfulness, {kind} (named cell)",
                     "value": faithfulness[kind], "reference": None, "ref_name": "", "n": faithfulness["objects"]})
    if faithfulness:
        rows.append({"model": name, "metric": "render layout: objects in the named cells only",
                     "value": faithfulness["layout"], "reference": None, "ref_name": "", "n": faithfulness["captions"]})
    for kind in ("shape", "colour"):
        rows.append({"model": name, "metric": f"pointing game, {kind} word", "value": heat.pointing[kind],
                     "reference": heat.chance, "ref_name": "chance", "n": heat.n[kind]})
    for kind in ("shape", "colour"):
        rows.append({"model": name, "metric": f"heatmap IoU (τ={HEAT_THRESHOLD}), {kind} word",
                     "value": heat.iou[kind], "reference": None, "ref_name": "", "n": heat.n[kind]})
    rows.append({"model": name, "metric": "object found by the classifier", "value": heat.located,
                 "reference": None, "ref_name": "", "n": heat.objects})
    rows.append({"model": name, "metric": "coarse attributes kept (refined render)",
                 "value": refinement.coarse_kept_refined, "reference": refinement.coarse_kept_coarse,
                 "ref_name": "coarse render", "n": refinement.coarse_checks})
    rows.append({"model": name, "metric": "fine attributes realised (refined render)",
                 "value": refinement.fine_refined, "reference": refinement.fine_coarse,
                 "ref_name": "coarse render", "n": refinement.fine_checks})
    rows.append({"model": name, "metric": "refined render realises more fine attrs", "value": refinement.more_fine,
                 "reference": None, "ref_name": "", "n": refinement.prompts})
    return rows


def format_groundtruth(rows: list[dict], refiner: str) -> str:
    head = f"{'T2I model':<22} {'metric (held-out)':<44} {'value':>7} {'reference':>22} {'n':>5}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = f"{r['reference']:.3f} ({r['ref_name']})" if r["reference"] is not None else ""
        lines.append(f"{r['model'][:22]:<22} {r['metric']:<44} {r['value']:>7.3f} {ref:>22} {r['n']:>5}")
    lines.append(f"Refinement: {refiner}.")
    return "\n".join(lines)
