"""The world rewriter's data and measures, no model: the shipped coarse -> fine pairs round-trip through the parser
and keep the seed split; the measures of `workbench.world.rewriter` on hand-written candidates; the refiner's role
options that the world rewriter brings (facets off, the gate's repeat length)."""

import json
from pathlib import Path

import pytest

from workbench.world import parse_caption, sample_scene
from workbench.world.data import HELDOUT_SEED0
from workbench.world.rewriter import (
    HELDOUT_FILE, PAIRS_FILE, Refined, evaluate_rewriter, format_rewriter_table, heldout_coarse, keeps,
    load_rewriter_pairs, rewriter_pairs, score_candidate, set_diversity, write_rewriter_pairs,
)

ADAPTER = Path(__file__).resolve().parents[1] / "assets" / "adapters" / "smollm2-135m-world-rewriter-lora"


def _heldout_ids():
    return {line.strip() for line in HELDOUT_FILE.read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_shipped_pairs_are_the_generator_s_and_round_trip():
    rows = load_rewriter_pairs()
    assert len(rows) == 4400 and len({r["id"] for r in rows}) == len(rows)
    assert sum(r["level"] == "partial" for r in rows) == 2200
    for row in rows:
        scene = sample_scene(row["seed"])
        omit = row.get("omit", [])
        assert (row["level"] == "partial") == bool(omit), row["id"]
        prompt = scene.caption("fine", omit=omit) if omit else scene.caption("coarse")
        assert (row["coarse"], row["fine"]) == (prompt, scene.caption("fine"))
        fine, coarse = parse_caption(row["fine"]), parse_caption(row["coarse"])
        assert fine == scene.stated("fine"), row["id"]  # exactly its scene's attributes
        assert coarse == (scene.stated("fine", omit) if omit else scene.stated("coarse")), row["id"]
        assert keeps(coarse, fine), row["id"]  # every attribute the prompt states is within the fine caption
        if omit:  # a partial prompt states more than the coarse caption and less than the fine one
            assert coarse not in (scene.stated("coarse"), fine), row["id"]
    # a distribution of fine captions per coarse one: many scenes share a coarse caption
    shared = {}
    for row in rows:
        shared.setdefault(row["coarse"], set()).add(row["fine"])
    assert max(len(v) for v in shared.values()) >= 10


def test_the_shipped_pairs_are_reproducible(tmp_path):
    path = write_rewriter_pairs(tmp_path, 2000, 200, 2000, 200)
    assert path.read_bytes() == PAIRS_FILE.read_bytes()
    assert (tmp_path / "heldout_ids.txt").read_bytes() == HELDOUT_FILE.read_bytes()


def test_heldout_ids_are_heldout_seeds_only_and_never_trained_on():
    rows = load_rewriter_pairs()
    held = _heldout_ids()
    assert len(held) == 400
    for row in rows:
        assert (row["id"] in held) == (row["split"] == "heldout") == (row["seed"] >= HELDOUT_SEED0), row["id"]
    # the shipped adapter's training run left them out: its pairs file, its exclusion and how many rows it used
    settings = json.loads((ADAPTER / "training.json").read_text())["provenance"]["settings"]
    assert Path(settings["pairs_file"]).name == "pairs.jsonl" and "rewriter_pairs" in settings["pairs_file"]
    assert any(Path(f).resolve() == HELDOUT_FILE.resolve() for f in settings["exclude_ids_files"])
    assert settings["pairs_used"] == len(rows) - len(held)
    # and the recipe's own selection leaves them out (workbench.common.rewriter_train reads ids this way)
    from workbench.common.refiner import heldout_ids, load_pairs

    trained = [p for p in load_pairs(PAIRS_FILE) if p.id not in heldout_ids(HELDOUT_FILE)]
    assert not {p.id for p in trained} & held and len(trained) == 4000
    # partial prompts come from scenes that no coarse pair shows, in both splits
    seeds = {level: {r["seed"] for r in rows if r["level"] == level} for level in ("coarse", "partial")}
    assert not seeds["coarse"] & seeds["partial"]


def test_the_adapter_was_trained_on_the_world_profile_s_request(profiles):
    spec = profiles["world"].spec("t2i_rewriter")
    settings = json.loads((ADAPTER / "training.json").read_text())["provenance"]["settings"]
    assert settings["prompt_template"] == spec.option("prompt_template") and "{query}" in settings["prompt_template"]
    assert Path(str(spec.option("adapter"))).name == ADAPTER.name
    assert profiles["world"].setting("t2i_refine", "rewriter_role") == "t2i_rewriter"
    for f in ADAPTER.iterdir():
        assert f.stat().st_size <= 10 * 1024 * 1024 and f.suffix in (".safetensors", ".json", ".md"), f.name


def test_pair_counts_are_checked():
    with pytest.raises(ValueError, match=r"n_heldout must be a whole number in \[1, 100000\]"):
        rewriter_pairs(10, 0)
    with pytest.raises(ValueError, match=r"limit must be a whole number in \[1, 1000\]"):
        heldout_coarse(0)
    with pytest.raises(ValueError, match="level must be one of coarse, partial"):
        heldout_coarse(3, level="fine")


def test_partial_captions_round_trip_and_bad_omit_is_named():
    import numpy as np

    from workbench.world.rewriter import partial_omit
    from workbench.world.scene import OBJECT_OMITTABLE, SCENE_OMITTABLE

    for seed in range(300):
        for video in (False, True):
            scene, rng = sample_scene(seed, video=video), np.random.default_rng(seed)
            keys = [f"{i}:{k}" for i in range(len(scene.objects)) for k in OBJECT_OMITTABLE] + list(SCENE_OMITTABLE)
            omit = [k for k in keys if rng.random() < 0.5]
            assert parse_caption(scene.caption("fine", omit=omit)) == scene.stated("fine", omit), (seed, omit)
        omit = partial_omit(scene, seed)
        assert omit and all(scene.stated("fine", [k]) != scene.stated("fine") for k in omit)  # each one stated
    scene = sample_scene(0)
    assert scene.caption("fine", omit=["background"]).endswith("background") is False
    with pytest.raises(ValueError, match=r"omit may name .* INDEX:KEY with INDEX in \[0, \d\].*got \['5:size'\]"):
        scene.caption("fine", omit=["5:size"])
    with pytest.raises(ValueError, match="only a fine caption leaves attributes out"):
        scene.stated("coarse", ["style"])
    with pytest.raises(ValueError, match="not the string"):
        scene.caption("fine", omit="style")


def test_world_fine_captions_pass_the_gate_at_the_role_s_repeat_length(profiles):
    from workbench.common.guard import quality_gate

    n = int(profiles["world"].spec("t2i_rewriter").option("repeat_ngram"))
    fine = [sample_scene(s).caption("fine") for s in range(3000)]
    assert not quality_gate(fine, [1.0] * len(fine), 0.45, n).dropped
    # at the default three words, "in the top left ... in the top right" reads as a repeat
    assert len(quality_gate(fine, [1.0] * len(fine), 0.45).dropped) > 300
    assert quality_gate(["a red star in the top left, a red star in the top left"], [1.0], 0.45, n).dropped


def test_role_options_turn_facets_off_and_say_so(profiles):
    from workbench.common.refiner import facets_turned_off, with_rewriter_defaults
    from workbench.t2i.defaults import t2i_refine_settings

    asked = t2i_refine_settings(n=4)
    assert asked.facets  # the T2I tab asks for every facet by default
    world = profiles["world"].spec("t2i_rewriter")
    used = with_rewriter_defaults(asked, world)
    assert used.facets == () and used.repeat_ngram == 6 and used.max_words == 0 and used.repetition_penalty == 1.0
    assert used.keep_objects is True and asked.keep_objects is False
    assert "facets were not asked for" in facets_turned_off(asked, used, world)[0]
    offline = profiles["offline"].spec("t2i_rewriter")
    kept = with_rewriter_defaults(asked, offline)
    assert kept.facets == asked.facets and kept.max_words == 30 and kept.repeat_ngram == 3
    assert kept.repetition_penalty == asked.repetition_penalty == 1.1 and kept.keep_objects is False
    assert facets_turned_off(asked, kept, offline) == []


def test_the_world_role_s_gate_drops_rewrites_that_change_the_prompt_s_objects(profiles):
    """keep_objects (the world rewriter's role option): a rewrite that turns the hexagon into a triangle (seen in
    Chromium at 80 training steps), adds an object or recolours the scene the prompt named is dropped with the
    reason; the others pass. The relevance check is not under test here: every text embeds to the same vector."""
    import dataclasses

    import numpy as np

    from workbench.common import refiner as R
    from workbench.t2i.defaults import t2i_refine_settings

    class SameVector:
        def embed(self, texts):
            return type("E", (), {"vectors": np.ones((len(texts), 4)) / 2.0})()

    prompt = "a green hexagon and a yellow star"
    kept = "a large green hexagon in the top left and a small yellow star in the center, on a plain blue background"
    changed = kept.replace("yellow star", "yellow triangle")
    added = kept.replace(" and a small", ", a red ring in the bottom right and a small")
    got = [(t, None, None) for t in (kept, changed, added)]
    settings = R.with_rewriter_defaults(t2i_refine_settings(n=4), profiles["world"].spec("t2i_rewriter"))
    pool = R._Pool()
    pool.add(SameVector(), prompt, got, settings)
    assert [t for t, _, _ in pool.passed] == [kept]
    reasons = {t: why for t, _, _, why in pool.dropped}
    assert reasons[changed] == "changes the prompt's objects (“yellow star”)"
    assert reasons[added] == "changes the prompt's objects (“1 object(s) added”)"
    assert "2 changes the prompt's objects" in pool.notes(settings, None)[0]
    scene = R._Pool()
    recoloured = "a large red star in the top left, on a plain pink background"
    scene.add(SameVector(), "a red star on a blue background", [(recoloured, None, None)], settings)
    assert scene.dropped and "background_colour blue" in scene.dropped[0][3]
    # a rewrite that changes the scene is never the fallback shown when every rewrite fails the gate
    only_changed = R._Pool()
    only_changed.add(SameVector(), prompt, [(changed, None, None), (added, None, None)], settings)
    assert not only_changed.passed and only_changed.fallback() == []
    # ... nor one the gate dropped for something else first: seen in Chromium at 400 training steps, "with a glow,
    # on a striped green background" (no object left) drifted from the prompt and came back as the fallback

    class FarVector:
        def embed(self, texts):
            return type("E", (), {"vectors": np.eye(len(texts), 4)})()  # every rewrite unrelated to the prompt

    objectless = "with a glow, on a striped green background"
    drifted = R._Pool()
    drifted.add(FarVector(), prompt, [(objectless, None, None), (kept, None, None)], settings)
    assert not drifted.passed and {why for *_, why in drifted.dropped} == {"drifts from the prompt (similarity 0.00 < 0.45)"}
    assert [t for t, *_ in drifted.fallback()] == [kept]  # the drifted rewrite that keeps the objects, only
    off = R._Pool()
    off.add(SameVector(), prompt, got, dataclasses.replace(settings, keep_objects=False))
    assert len(off.passed) == 3


# --------------------------------------------------------------------------- the measures on a small case


def test_score_candidate_reads_the_world_back():
    good = score_candidate("a red star", "a large red striped star in the top left, on a plain blue background")
    assert good.in_vocabulary and good.parses and good.keeps_coarse and good.complete and good.consistent
    assert good.added == 5  # size, finish, position, background, background colour
    changed = score_candidate("a red star", "a large blue star in the top left, on a plain red background")
    assert changed.parses and not changed.keeps_coarse  # the star is blue now
    assert not score_candidate("a red star", "a red star and a green circle").keeps_coarse  # an object added
    clash = score_candidate("a red star", "a small red star in the center, on a dotted red background")
    assert clash.keeps_coarse and not clash.consistent  # the world never paints an object in its background's colour
    story = score_candidate("a red star", "a majestic red star, golden hour lighting, 8k")
    assert story.unknown == ["majestic", "golden", "hour", "lighting", "8k"] and not story.complete


def test_diversity_is_the_distance_between_stated_scenes():
    one = "a large red star in the top left, on a plain blue background"
    assert set_diversity([one, one]) == 0.0 and set_diversity([one]) == 0.0
    other = "a small red star in the center, on a dotted green background, pastel style"
    # facts: {shape, colour} shared of {size x2, position x2, shape, colour, background x2, colour x2, style}
    assert set_diversity([one, other]) == pytest.approx(1 - 2 / 11)


def test_evaluate_rewriter_on_a_fake_rewriter():
    answers = {
        "a red star": ["a large red star in the top left, on a plain blue background",
                       "a small red star in the center, on a dotted green background, pastel style",
                       "a majestic red dragon"],
        "a blue circle and a green heart": ["a small blue circle to the left of a large green heart, on a gradient "
                                            "red background"],
    }

    def refine(prompt, seed):
        if prompt not in answers:
            raise RuntimeError("no usable rewrite")
        return answers[prompt]

    ticks = iter(range(100))
    row = evaluate_rewriter("fake", refine, ["a red star", "a blue circle and a green heart", "a pink cross"],
                            provenance={"model": "fake"}, clock=lambda: next(ticks))
    assert (row.prompts, row.candidates) == (3, 4)
    assert row.in_vocabulary == pytest.approx(3 / 4) and row.keeps_coarse == pytest.approx(3 / 4)
    assert row.parses == pytest.approx(3 / 4)  # "a majestic red dragon" names no shape
    assert row.complete == pytest.approx(3 / 4) and row.consistent == 1.0
    assert row.seconds_per_prompt == pytest.approx(1.0)  # one tick per refine
    assert row.failures == ["a pink cross: no usable rewrite"]
    assert row.examples[0]["candidates"][2]["unknown_words"] == ["majestic", "dragon"]
    table = format_rewriter_table([row])
    assert "| fake | 4 | 75% | 75% | 75% |" in table
    assert row.gate_dropped is None and table.splitlines()[-1].split(" | ")[-2] == "-"  # refine said nothing of it
    # a refine that reports its gate (what `eval-world` does through the T2I tab's Refine): the share of sampled
    # rewrites dropped, over all prompts, is the adapter's own error rate that the shown candidates no longer carry
    counts = {"a red star": (4, 1), "a blue circle and a green heart": (1, 5)}

    def gated(prompt, seed):
        return Refined(list(refine(prompt, seed)), *counts[prompt])

    row = evaluate_rewriter("gated", gated, list(counts), clock=lambda: next(ticks))
    assert row.candidates == 4 and row.gate_dropped == pytest.approx(6 / 11)
    assert "| dropped by gate |" in format_rewriter_table([row])
    assert format_rewriter_table([row]).splitlines()[-1].split(" | ")[-2] == "55%"
    with pytest.raises(ValueError, match="at least one caption"):
        evaluate_rewriter("fake", refine, [])


def test_heldout_coarse_are_distinct_heldout_captions():
    coarse = heldout_coarse(10)
    held = _heldout_ids()
    by_caption = {r["coarse"] for r in load_rewriter_pairs() if r["id"] in held and r["level"] == "coarse"}
    assert len(set(coarse)) == 10 and set(coarse) <= by_caption
    assert heldout_coarse(3, offset=2) == coarse[2:5]
    partial = heldout_coarse(10, level="partial")
    by_partial = {r["coarse"] for r in load_rewriter_pairs() if r["id"] in held and r["level"] == "partial"}
    assert len(set(partial)) == 10 and set(partial) <= by_partial and not set(partial) & by_caption
