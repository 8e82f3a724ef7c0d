"""The miniature world generator (issue 20, item 1): captions say exactly what a scene holds, renders put each
object where and in the colour its caption says, styles change the pixels measurably, videos move the way the
caption says, and words outside the world are named. Fast: numpy + Pillow, no model."""

from __future__ import annotations

import colorsys
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from workbench.world import (LEVELS, Motion, Scene, WorldObject, load_vocabulary, parse_caption, render,
                             render_video, sample_scene, unknown_words)
from workbench.world.__main__ import main as cli_main

V = load_vocabulary()
SEEDS = range(300)


def _lightness(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float64) / 255.0
    return (f.max(axis=2) + f.min(axis=2)) / 2


def _hue_deg(rgb) -> float:
    return colorsys.rgb_to_hsv(*rgb)[0] * 360


def _nearest_colour(pixels: np.ndarray) -> str:
    """The palette colour whose hue is nearest the circular mean hue of saturated `pixels` (N x 3, 0..255)."""
    hsv = np.array([colorsys.rgb_to_hsv(*(p / 255.0)) for p in pixels])
    sat = hsv[hsv[:, 1] > 0.15]
    assert len(sat) > 0, "no saturated pixel under the mask"
    ang = sat[:, 0] * 2 * np.pi
    mean = (np.degrees(np.arctan2(np.sin(ang).mean(), np.cos(ang).mean()))) % 360
    return min(V.colours, key=lambda c: min(abs(_hue_deg(V.colours[c]) - mean),
                                            360 - abs(_hue_deg(V.colours[c]) - mean)))


def _erode(m: np.ndarray) -> np.ndarray:
    e = m.copy()
    e[1:] &= m[:-1]
    e[:-1] &= m[1:]
    e[:, 1:] &= m[:, :-1]
    e[:, :-1] &= m[:, 1:]
    return e


def _centroid(m: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(m)
    return xs.mean(), ys.mean()


# -- captions ---------------------------------------------------------------------------------------------------
def test_a_fine_caption_reads_as_written():
    scene = Scene((WorldObject("star", "red", "large", (0, 0)),), "striped", "blue", effect="soft shadow",
                  style="pastel")
    assert scene.caption("coarse") == "a red star"
    assert scene.caption("fine") == ("a large red star in the top left, with a soft shadow, on a striped blue "
                                     "background, pastel style")
    moving = Scene((WorldObject("ring", "green", "small", (1, 1), motion=Motion("move", "left", "slow")),
                    WorldObject("heart", "pink", "medium", (2, 2), finish="dotted", motion=Motion("fade"))),
                   "plain", "yellow", video=True)
    assert moving.caption("coarse") == "a green ring moving left and a pink heart fading out"
    assert moving.caption("fine") == ("a small green ring in the center moving left slowly and a medium pink dotted "
                                      "heart in the bottom right fading out, on a plain yellow background")


@pytest.mark.parametrize("video", [False, True])
def test_every_caption_parses_back_to_exactly_the_scene_attributes(video):
    for seed in SEEDS:
        scene = sample_scene(seed, video=video)
        for level in LEVELS:
            caption = scene.caption(level)
            assert parse_caption(caption) == scene.stated(level), (seed, level, caption)
            assert unknown_words(caption) == []
        # the fine level states every attribute the scene has (nothing dropped on both sides)
        fine = scene.stated("fine")
        assert len(fine["objects"]) == len(scene.objects)
        for o, d in zip(scene.objects, fine["objects"]):
            assert (d["shape"], d["colour"], d["size"]) == (o.shape, o.colour, o.size)
            assert d.get("finish", "plain") == o.finish
            assert d.get("position") == (list(o.cell) if scene.relation is None else None)
            if video:
                assert d["motion"] == o.motion.kind
                assert d.get("direction") == o.motion.direction and d.get("speed") == o.motion.speed
        assert (fine["background"], fine["background_colour"]) == (scene.background, scene.background_colour)
        assert fine.get("effect", "none") == scene.effect and fine.get("style", "none") == scene.style
        assert fine.get("relation") == scene.relation


def test_the_sampler_covers_the_vocabulary():
    scenes = [sample_scene(s) for s in SEEDS]
    objs = [o for s in scenes for o in s.objects]
    assert {o.shape for o in objs} == set(V.shapes)
    assert {o.colour for o in objs} == set(V.colours)
    assert {o.finish for o in objs} == {"plain", *V.finishes}
    assert {len(s.objects) for s in scenes} == {1, 2, 3}
    assert {s.relation for s in scenes} == {None, *V.relations.values()}
    assert {s.style for s in scenes} == {"none", *V.styles}
    assert {s.effect for s in scenes} == {"none", *V.effects.values()}
    assert {s.background for s in scenes} == set(V.backgrounds)
    motions = {(o.motion.kind, o.motion.direction) for s in SEEDS for o in sample_scene(s, video=True).objects}
    assert motions == {("move", d) for d in ("left", "right", "up", "down")} | {(k, None) for k in
                                                                             ("bounce", "rotate", "fade")}


def test_words_outside_the_world_are_named():
    prompt = "A red star, watercolor style, two cats on a blue background"
    assert unknown_words(prompt) == ["watercolor", "two", "cats"]
    parsed = parse_caption(prompt)
    assert parsed["unknown_words"] == ["watercolor", "two", "cats"]
    assert parsed["objects"] == [{"colour": "red", "shape": "star"}] and parsed["background_colour"] == "blue"
    assert unknown_words("a large red star in the top left, with a glow, high contrast style") == []
    with pytest.raises(ValueError, match="text must be a string"):
        unknown_words(None)


# -- determinism and bad input ----------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_scene_and_pixels():
    for seed in (0, 7, 123):
        a, b = sample_scene(seed), sample_scene(seed)
        assert a == b and Scene.from_dict(json.loads(json.dumps(a.to_dict()))) == a
        ia, ma = render(a)
        ib, mb = render(b)
        assert np.array_equal(ia, ib) and all(np.array_equal(x, y) for x, y in zip(ma, mb))
    assert len({sample_scene(s).caption("fine") for s in range(50)}) == 50
    assert not np.array_equal(render(sample_scene(1))[0], render(sample_scene(2))[0])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        sample_scene(-1)
    with pytest.raises(ValueError, match=r"size must be an integer in \[16, 1024\]"):
        render(sample_scene(0), size=8)
    with pytest.raises(ValueError, match=r"frames must be an integer in \[2, 64\]"):
        render_video(sample_scene(0, video=True), frames=1)
    with pytest.raises(ValueError, match="level must be one of"):
        sample_scene(0).caption("medium")


# -- masks ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [64, 96])
def test_each_mask_sits_where_the_caption_says_in_the_object_colour(size):
    for seed in range(60):
        scene = sample_scene(seed)
        img, masks = render(scene, size)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        assert len(masks) == len(scene.objects)
        cents = []
        for o, m in zip(scene.objects, masks):
            assert m.shape == (size, size) and m.sum() > 0.002 * size * size, (seed, o)
            cx, cy = _centroid(m)
            cents.append((cx, cy))
            if scene.relation is None:
                assert (int(cx * 3 // size), int(cy * 3 // size)) == o.cell, (seed, o, cx, cy)
            inner = _erode(_erode(m)) if _erode(_erode(m)).sum() >= 4 else m
            assert _nearest_colour(img[inner]) == o.colour, (seed, o)
        if scene.relation is not None:
            (ax, ay), (bx, by) = cents
            holds = {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}
            assert holds[scene.relation], (seed, scene.relation, cents)


def test_rendering_is_anti_aliased():
    scene = Scene((WorldObject("circle", "blue", "large", (1, 1)),), "plain", "yellow")
    img, (mask,) = render(scene)
    inside, outside = img[_erode(_erode(mask))][0], img[~mask][0]
    edge = mask ^ _erode(mask)
    between = [p for p in img[edge] if not (np.array_equal(p, inside) or np.array_equal(p, outside))]
    assert len(between) > 0.5 * edge.sum()  # edge pixels mix the two colours


# -- styles -----------------------------------------------------------------------------------------------------
def _variants(seed: int, **changes):
    base = dataclasses.replace(sample_scene(seed), style="none", effect="none")
    return render(base), render(dataclasses.replace(base, **changes))


def test_styles_change_the_pixels_measurably():
    for seed in range(20):
        (plain, masks), (pastel, _) = _variants(seed, style="pastel")
        assert _lightness(pastel).mean() > _lightness(plain).mean() + 0.1, seed
        (_, _), (contrast, _) = _variants(seed, style="high contrast")
        assert contrast.astype(float).std() > 1.2 * plain.astype(float).std(), seed
        union = np.any(masks, axis=0)
        (_, _), (shadow, smasks) = _variants(seed, effect="soft shadow")
        inner = _erode(union)
        assert np.array_equal(shadow[inner], plain[inner])  # the objects themselves are untouched
        below_right = np.zeros_like(union)
        below_right[2:, 2:] = union[:-2, :-2]
        below_right &= ~union  # where the shadow falls, down and to the right of each object
        assert _lightness(shadow)[below_right].mean() < _lightness(plain)[below_right].mean() - 0.08, seed
        (_, _), (glow, _) = _variants(seed, effect="glow")
        assert np.array_equal(glow[inner], plain[inner])
        # glow is lighter than its background next to the object
        ring = np.zeros_like(union)
        for m in masks:
            d = m.copy()
            for _ in range(2):
                d = ~_erode(~d)
            ring |= d & ~m
        assert _lightness(glow)[ring].mean() > _lightness(plain)[ring].mean() + 0.03, seed


# -- videos -----------------------------------------------------------------------------------------------------
def test_videos_move_the_way_the_caption_says():
    seen = set()
    for seed in range(60):
        scene = sample_scene(seed, video=True)
        frames, masks = render_video(scene, 64, 8)
        assert len(frames) == 8 and len(masks) == 8
        for i, o in enumerate(scene.objects):
            cents = np.array([_centroid(m[i]) for m in masks])
            kind = o.motion.kind
            seen.add(o.motion.direction or kind)
            if kind == "move":
                assert f"moving {o.motion.direction}" in scene.caption("coarse")
                axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[o.motion.direction]
                steps = np.diff(cents[:, axis]) * sign
                assert (steps > 0).all(), (seed, o, cents)
                assert np.abs(cents[:, 1 - axis] - cents[0, 1 - axis]).max() < 0.6, (seed, o, cents)
                travelled = steps.sum()
                assert travelled > (13 if o.motion.speed == "fast" else 6), (seed, o, travelled)
            elif kind == "bounce":
                assert "bouncing" in scene.caption("coarse")
                y = cents[:, 1]
                assert y[3] < y[0] - 3 and y[4] < y[7] - 3, (seed, y)
            elif kind == "rotate":
                assert "rotating" in scene.caption("coarse")
                assert not np.array_equal(masks[0][i], masks[3][i])
                # it turns about its centre: the centroid stays within 0.4 of a radius (a triangle's is off-centre)
                assert np.abs(cents - cents[0]).max() < 0.4 * V.sizes[o.size] * 64, (seed, o, cents)
            elif kind == "fade":
                assert "fading out" in scene.caption("coarse")
                m = _erode(masks[0][i])
                bg = render(dataclasses.replace(scene, objects=()), 64)[0]
                dist = [np.abs(f[m].astype(int) - bg[m].astype(int)).mean() for f in frames]
                assert all(a > b for a, b in zip(dist, dist[1:])), (seed, dist)  # nearer the background each frame
    assert seen >= {"left", "right", "up", "down", "bounce", "rotate", "fade"}


# -- the CLI ----------------------------------------------------------------------------------------------------
def test_the_sample_command_writes_images_videos_and_captions(tmp_path, capsys):
    assert cli_main(["sample", "--n", "3", "--out", str(tmp_path), "--seed", "5"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "captions.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and [x["video"] for x in lines] == [False] * 3 + [True] * 3
    first = lines[0]
    scene = sample_scene(5)
    assert first["fine"] == scene.caption("fine") and first["coarse"] == scene.caption("coarse")
    assert Scene.from_dict(first["scene"]) == scene and first["vocabulary_digest"] == V.digest
    assert np.array_equal(np.asarray(Image.open(tmp_path / first["file"]).convert("RGB")), render(scene)[0])
    masks = np.load(tmp_path / "image_00005_masks.npz")["masks"]
    assert masks.shape == (len(scene.objects), 64, 64) and masks.dtype == bool
    gif = Image.open(tmp_path / lines[3]["file"])
    assert gif.n_frames == 8 and lines[3]["fine"] == sample_scene(5, video=True).caption("fine")
    with pytest.raises(SystemExit):
        cli_main(["sample", "--n", "0", "--out", str(tmp_path)])
    assert "n must be an integer in [1, 10000]" in capsys.readouterr().err


def test_a_vocabulary_whose_large_objects_overflow_a_cell_is_refused(tmp_path):
    from workbench.world.vocabulary import VOCAB_PATH
    bad = tmp_path / "vocabulary.yaml"
    bad.write_text(VOCAB_PATH.read_text().replace("large: 0.145", "large: 0.3"))
    with pytest.raises(ValueError, match="sizes must stay below 1/6"):
        load_vocabulary(str(bad))
