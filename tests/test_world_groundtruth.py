"""Ground-truth rows of `python -m workbench.world eval --t2i` (issue 20, item 5) and the T2I tab's world note (item 3):
the pointing game and IoU on hand-built cases whose answer is known, the attribute checks against the shipped
classifier on true renders, an image model that draws the scene exactly scoring what it should, the whole
measurement end to end on the tiny random pipeline, and the note naming a prompt's unknown words only for a world
model."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from workbench.world import Scene, WorldObject, load_vocabulary, render, sample_scene
from workbench.world import groundtruth as gt

V = load_vocabulary()
SEED0 = 1_000_000  # held-out seeds


@pytest.fixture(scope="module")
def classifier():
    from workbench.world.classifier import AttributeClassifier

    return AttributeClassifier.load()


# -- pointing game and IoU on constructed maps -------------------------------------------------------------------
def test_pointing_game_hits_the_peaks_cell_and_misses_elsewhere():
    heat = np.zeros((8, 8), np.float32)
    heat[1, 6] = 1.0  # row 1, column 6 of an 8x8 latent grid: the top right cell of the image
    assert gt.pointing_hit(heat, gt.cell_box((2, 0), 64))
    assert not gt.pointing_hit(heat, gt.cell_box((0, 0), 64))
    assert not gt.pointing_hit(heat, gt.cell_box((2, 2), 64))
    heat[7, 0] = 2.0  # a stronger peak, bottom left: the game follows the maximum
    assert gt.pointing_hit(heat, gt.cell_box((0, 2), 64)) and not gt.pointing_hit(heat, gt.cell_box((2, 0), 64))
    assert gt.cell_box((1, 1), 63).sum() == 21 * 21 and gt.cell_box((0, 0), 64).sum() == 21 * 21


def test_iou_of_a_map_drawn_on_the_mask_is_high_and_of_one_elsewhere_is_zero():
    scene = Scene((WorldObject("square", "red", "large", (0, 0)),), "plain", "blue")
    _, (mask,) = render(scene, 64)
    on = np.asarray(Image.fromarray(mask.astype(np.float32), mode="F").resize((16, 16), Image.BILINEAR))
    assert gt.heat_iou(on, mask) > 0.8
    away = gt.shifted(mask, (0, 0), (2, 2)).astype(np.float32)  # the same square in the opposite corner
    assert gt.heat_iou(away, mask) == 0.0
    assert gt.heat_iou(np.ones((8, 8)), mask) == 0.0  # a flat map points nowhere
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        gt.heat_iou(on, mask, threshold=1.5)
    with pytest.raises(ValueError, match="heat must be a non-empty 2-D map"):
        gt.heat_iou(np.ones(8), mask)


def test_a_mask_moved_to_another_cell_keeps_its_shape_and_lands_in_that_cell():
    for seed in range(20):
        scene = sample_scene(SEED0 + seed)
        _, masks = render(scene, 64)
        for o, m in zip(scene.objects, masks):
            target = (2 - o.cell[0], 2 - o.cell[1])
            moved = gt.shifted(m, o.cell, target)
            assert moved.sum() == m.sum(), (seed, o)  # whole cells: nothing falls off the image
            ys, xs = np.nonzero(moved)
            assert (int(xs.mean() * 3 // 64), int(ys.mean() * 3 // 64)) == target or scene.relation, (seed, o)
            assert (moved & gt.cell_box(target, 64)).sum() >= 0.9 * m.sum() or scene.relation, (seed, o)


# -- the attribute checks ----------------------------------------------------------------------------------------
def _perfect_read(scene: Scene) -> dict:
    return {"objects": [{"shape": o.shape, "colour": o.colour, "size": o.size, "finish": o.finish,
                         "position": list(o.cell), "confidence": 1.0} for o in scene.objects],
            "background": scene.background, "background_colour": scene.background_colour, "effect": scene.effect,
            "style": scene.style}


def test_caption_checks_state_each_attribute_once_and_catch_each_wrong_one():
    scene = Scene((WorldObject("star", "red", "large", (0, 0), finish="dotted"),
                   WorldObject("ring", "blue", "small", (2, 2))), "striped", "green", effect="glow", style="pastel")
    read = _perfect_read(scene)
    checks = gt.caption_checks(read, scene.stated("fine"))
    names = [k for k, _ in checks]
    assert all(ok for _, ok in checks)
    assert names == ["count", "shape", "colour", "size", "finish", "position", "shape", "colour", "size", "position",
                     "background", "background_colour", "effect", "style"]
    coarse = gt.caption_checks(read, scene.stated("coarse"))
    assert [k for k, _ in coarse] == ["count", "shape", "colour", "shape", "colour"] and all(ok for _, ok in coarse)
    wrong = _perfect_read(scene)
    wrong["objects"][0]["colour"] = "pink"  # the star drawn pink: colour, and the red object's place, fail
    wrong["objects"][1]["shape"] = "cross"
    wrong["background_colour"] = "red"
    bad = [k for k, ok in gt.caption_checks(wrong, scene.stated("fine")) if not ok]
    assert bad == ["colour", "position", "shape", "background_colour"]
    full = _perfect_read(scene)  # an image read as holding a third object: the count fails, nothing else
    full["objects"].append({**full["objects"][0], "position": [1, 1]})
    assert [k for k, ok in gt.caption_checks(full, scene.stated("fine")) if not ok] == ["count"]
    moved = _perfect_read(scene)
    moved["objects"][0]["position"] = [1, 0]
    assert [k for k, ok in gt.caption_checks(moved, scene.stated("fine")) if not ok] == [
        "shape", "colour", "size", "finish", "position"]  # nothing in the named cell
    assert all(ok for _, ok in gt.caption_checks(moved, scene.stated("coarse")))  # a coarse caption names no place


def test_the_shipped_classifier_confirms_true_renders_of_their_fine_captions(classifier):
    scenes = [sample_scene(SEED0 + i) for i in range(40)]
    reads = classifier.read([render(s, 64)[0] for s in scenes])
    acc = gt.accuracy_by_attribute([gt.caption_checks(r, s.stated("fine")) for r, s in zip(reads, scenes)])
    assert acc["colour"] >= 0.95 and acc["position"] >= 0.95 and acc["shape"] >= 0.75 and acc["count"] >= 0.95, acc
    noise = np.random.default_rng(0).integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)
    noisy = gt.accuracy_by_attribute([gt.caption_checks(r, s.stated("fine"))
                                      for r, s in zip(classifier.read(noise), scenes)])
    assert noisy["position"] < 0.5 and noisy["colour"] < 0.5, noisy


# -- an image model that draws the scene exactly -----------------------------------------------------------------
def _coarse_version(scene: Scene) -> Scene:
    """The scene as a coarse caption leaves it open: same shapes and colours, every other attribute different."""
    others = [c for c in V.colours if c not in {o.colour for o in scene.objects} | {scene.background_colour}]
    sizes = list(V.sizes)
    objs = tuple(WorldObject(o.shape, o.colour, sizes[(sizes.index(o.size) + 1) % 3], (2 - o.cell[0], 2 - o.cell[1]))
                 for o in scene.objects)
    background = "plain" if scene.background != "plain" else "dotted"
    return Scene(objs, background, others[0])


class SceneDrawer:
    """A text-to-image "model" that draws each known prompt's scene exactly, with DAAM maps drawn on the masks: the
    answer every measurement should give is known."""

    def __init__(self, scenes, size=64):
        self.drawn = {}
        for s in scenes:
            self.drawn[s.caption("fine")] = s
            self.drawn[s.caption("coarse")] = _coarse_version(s)
        self.size = size

    def generate(self, prompts, settings):
        return [SimpleNamespace(image=Image.fromarray(render(self.drawn[p], self.size)[0])) for p in prompts]

    def attend(self, prompt, settings):
        from backends.base import TokenAttention, WordTokens

        scene = self.drawn[prompt]
        _, masks = render(scene, self.size)
        words = prompt.replace(",", "").split()
        maps = np.zeros((len(words) + 1, 16, 16), np.float32)
        for i, w in enumerate(words):
            for o, m in zip(scene.objects, masks):
                if w in (o.shape, o.colour):
                    small = Image.fromarray(m.astype(np.float32), mode="F").resize((16, 16), Image.BILINEAR)
                    maps[i + 1] += np.asarray(small)
        tokens = [WordTokens(w, 0, [i + 1]) for i, w in enumerate(words)]
        return (SimpleNamespace(image=Image.fromarray(render(scene, self.size)[0])),
                TokenAttention(maps=maps, words=tokens, window=77, layers=1, steps=1))


def test_a_model_that_draws_the_scene_scores_the_pointing_game_and_the_refinement_question(classifier):
    scenes = [sample_scene(SEED0 + i) for i in range(8)]
    drawer, settings = SceneDrawer(scenes), SimpleNamespace(width=64, height=64)
    heat = gt.heatmap_scores(drawer, settings, classifier, scenes=scenes)
    assert heat.pointing == {"shape": 1.0, "colour": 1.0} and heat.located >= 0.75, heat
    assert heat.iou["colour"] > 0.6 and heat.n["colour"] == sum(len(s.objects) for s in scenes)
    assert heat.chance == pytest.approx(1 / 9)
    rates = gt.refinement_scores(drawer, settings, classifier, scenes=scenes)
    assert rates.refiner == "oracle: the scene's fine caption" and rates.prompts == 8
    assert rates.coarse_kept_refined >= 0.85 and rates.coarse_kept_coarse >= 0.85, rates
    assert rates.fine_refined >= 0.85 and rates.fine_coarse <= 0.5 and rates.more_fine >= 0.85, rates


def test_the_object_is_looked_for_where_the_model_drew_it_not_where_the_caption_put_it(classifier):
    import dataclasses

    scenes = [s for s in (sample_scene(SEED0 + i) for i in range(20))
              if s.relation is None and all(o.cell != (1, 1) for o in s.objects)][:4]
    drawer = SceneDrawer(scenes)
    for s in scenes:  # every object drawn in the opposite cell, its word's map on it
        drawer.drawn[s.caption("fine")] = dataclasses.replace(s, objects=tuple(
            dataclasses.replace(o, cell=(2 - o.cell[0], 2 - o.cell[1])) for o in s.objects))
    heat = gt.heatmap_scores(drawer, SimpleNamespace(width=64), classifier, scenes=scenes)
    assert heat.pointing["colour"] == 1.0 and heat.located >= 0.75, heat
    assert all(d["cell"] != d["intended_cell"] for d in heat.details if d["kind"] == "colour")


def test_a_rewriter_is_judged_on_what_it_asked_for(classifier):
    scenes = [sample_scene(SEED0 + i) for i in range(4)]
    drawer = SceneDrawer(scenes)

    def lazy_rewriter(coarse: str) -> str:  # adds a background the drawer never draws for a coarse prompt
        return coarse + ", on a plain " + [c for c in V.colours if c not in coarse][-1] + " background"

    for s in scenes:  # the drawer draws the rewrite as it draws the coarse prompt
        drawer.drawn[lazy_rewriter(s.caption("coarse"))] = _coarse_version(s)
    rates = gt.refinement_scores(drawer, SimpleNamespace(width=64), classifier, refine=lazy_rewriter, scenes=scenes)
    assert rates.refiner == "lazy_rewriter" and rates.fine_checks == 2 * 4  # background kind and colour, per prompt
    assert rates.more_fine == 0.0 and rates.fine_refined == rates.fine_coarse
    with pytest.raises(ValueError, match="refine must return a non-empty prompt"):
        gt.refinement_scores(drawer, SimpleNamespace(width=64), classifier, refine=lambda c: " ", scenes=scenes)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 1000\]"):
        gt.heatmap_scores(drawer, SimpleNamespace(width=64), classifier, n=0)


# -- end to end on the tiny random pipeline ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_t2i():
    from backends.base import ModelSpec
    from workbench.models import load_standalone

    t2i = load_standalone(ModelSpec("t2i", "diffusers-t2i", "tiny:sd", random_weights=True), device="cpu")
    yield t2i
    t2i.unload()


def test_the_ground_truth_rows_run_on_the_tiny_random_pipeline(tiny_t2i, classifier):
    from backends.base import ImageSettings

    settings = ImageSettings(steps=2, width=64, height=64, seed=0)
    heat = gt.heatmap_scores(tiny_t2i, settings, classifier, n=2)
    rates = gt.refinement_scores(tiny_t2i, settings, classifier, n=2)
    assert set(heat.pointing) == set(heat.iou) == {"shape", "colour"} and heat.prompts == 2
    for value in [*heat.pointing.values(), *heat.iou.values(), heat.located, rates.coarse_kept_refined,
                  rates.coarse_kept_coarse, rates.fine_refined, rates.fine_coarse, rates.more_fine]:
        assert 0.0 <= value <= 1.0 or math.isnan(value)
    assert heat.n["colour"] == sum(len(sample_scene(SEED0 + i).objects) for i in range(2))
    rows = gt.groundtruth_rows("tiny", heat, rates)
    assert [r["metric"] for r in rows] == [
        "pointing game, shape word", "pointing game, colour word", "heatmap IoU (τ=0.4), shape word",
        "heatmap IoU (τ=0.4), colour word", "object found by the classifier", "coarse attributes kept (refined render)",
        "fine attributes realised (refined render)", "refined render realises more fine attrs"]
    table = gt.format_groundtruth(rows, rates.refiner)
    assert "0.111 (chance)" in table and "Refinement: oracle: the scene's fine caption." in table


def test_the_cli_prints_the_ground_truth_table_for_the_tiny_pipeline(capsys):
    from workbench.world.__main__ import main

    main(["eval", "--t2i", "tiny", "--t2i-only", "--t2i-n", "1", "--t2i-steps", "2", "--t2i-faithfulness-n", "3"])
    out = capsys.readouterr().out
    assert "tiny random pipeline" in out and "pointing game, shape word" in out and "coarse render" in out
    faith = [line for line in out.splitlines() if "render faithfulness, " in line]
    assert [line.split("faithfulness, ")[1].split(" (")[0] for line in faith] == ["shape", "colour", "position"]
    assert all(line.split()[-1] == faith[0].split()[-1] and int(line.split()[-1]) >= 3 for line in faith)  # objects
    layout = next(line for line in out.splitlines() if "render layout" in line).split()
    assert layout[-1] == "3" and float(layout[-2]) == 0.0  # random noise reads as objects in every cell
    assert "Settings: 2 steps, 64 px" in out
    with pytest.raises(SystemExit):
        main(["eval", "--t2i-only"])


# -- the T2I tab's note for a world model ------------------------------------------------------------------------
def test_the_note_names_unknown_words_for_a_world_model_only(profiles):
    import dataclasses

    from workbench.common.world_note import is_world_model, world_note

    offline = profiles["offline"].spec("t2i")  # the world model (issue 20: offline renders from the world)
    world = dataclasses.replace(offline, model_id="assets/world/t2i", random_weights=False)
    plain = profiles["cpu"].spec("t2i")  # a hub model: no note
    assert is_world_model(world) and is_world_model(offline) and not is_world_model(plain)
    note = world_note(world, [("your prompt", "a majestic red dragon in the top left, on a plain blue background"),
                              ("#1", "a red star in the center")])
    assert "Images come from the miniature world" in note and "assets/world/t2i" in note
    assert "your prompt: “majestic”, “dragon”" in note and "#1" not in note  # #1 uses world words only
    assert "circle, square, triangle" in note and "pastel" in note  # what it knows
    assert "⚠️ It draws most objects as round blobs" in note  # and what it gets wrong (options.world_caveat)
    assert "Every word of the prompt is a world word." in world_note(world, [("your prompt", "a red star")])
    assert world_note(plain, [("your prompt", "a majestic red dragon")]) == ""


@pytest.fixture()
def world_fake_ctx(profiles):
    """The fake profile, and the same with its t2i and t2v roles marked as world models."""
    import dataclasses

    from workbench.context import AppContext
    from workbench.models import ModelManager

    fake = marked = profiles["fake"]
    for role in ("t2i", "t2v"):
        spec = fake.spec(role)
        marked = marked.with_role(role, dataclasses.replace(spec, options=(*spec.options, ("world", True))))
    ctx = AppContext(manager=ModelManager(budget_bytes=2**30, device="cpu"), profiles={"w": marked, "plain": fake},
                     default_profile="w")
    yield ctx
    ctx.manager.unload_all()


def test_the_tab_shows_the_note_after_refine_and_render_on_a_world_model(world_fake_ctx):
    from workbench.t2i import flows

    prompt = "a red star beside a quantum teapot"
    state, view = flows.refine(world_fake_ctx, "w", prompt, flows.RewriterInputs(n=2))
    assert "Images come from the miniature world" in view.status
    assert "your prompt: “beside”, “quantum”, “teapot”" in view.status
    state, _, view = flows.render(world_fake_ctx, "w", state, [s.text for s in view.slots],
                                  flows.RenderInputs(steps=1, size=64, seed=0), None)
    assert "Images come from the miniature world" in view.render_status
    assert "original: “beside”, “quantum”, “teapot”" in view.render_status
    import json
    import zipfile

    with zipfile.ZipFile(view.results.zip_path) as zf:  # the round's download keeps the note
        notes = json.loads(zf.read("round.json"))["notes"]
    assert len(notes) == 1 and "“quantum”" in notes[0]
    _, view = flows.refine(world_fake_ctx, "plain", prompt, flows.RewriterInputs(n=2))
    assert "miniature world" not in view.status


def test_the_video_tab_shows_the_note_after_evolve_final_render_and_reopen(world_fake_ctx):
    """The T2V tab's note when the profile's t2v role is a world model: after Evolve, after the final render, and
    made afresh on reopening a run (a saved file's Markdown is never shown); none for a plain video model."""
    import json
    from pathlib import Path

    from workbench.t2v import flows

    ctx = world_fake_ctx
    idea = "a red star moving left beside a teapot"
    small = flows.VideoInputs(width=32, height=32, frames=4, steps=1)
    state, view = flows.evolve(ctx, "w", None, idea, flows.EvolveInputs(rounds=1, population=2), small,
                               flows.RewriterInputs())
    assert "Videos come from the miniature world" in view.status
    assert "your idea: “beside”, “teapot”" in view.status and "shape the video" in view.status
    state, view = flows.render_final(ctx, "w", state, "a blue circle moving up and a teapot", small)
    assert "Videos come from the miniature world" in view.final_status and "chosen: “teapot”" in view.final_status
    saved = Path(state["run_dir"]) / "state.json"
    data = json.loads(saved.read_text())
    saved.write_text(json.dumps({**data, "world_note": "<img src=x onerror=alert(1)>"}))
    again, view = flows.reopen(ctx, "w", None, state["run_dir"])
    assert "onerror" not in view.status and "Videos come from the miniature world" in view.status
    _, view = flows.evolve(ctx, "plain", None, idea, flows.EvolveInputs(rounds=1, population=2), small,
                           flows.RewriterInputs())
    assert "miniature world" not in view.status
