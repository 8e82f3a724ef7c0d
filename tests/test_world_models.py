"""The world's trained models (issue 20), shipped under assets/world/: the attribute classifier reads held-out
renders as well as its TRAINING.md states, and the small CLIP loads through the project's image_text backend
unchanged and picks each held-out scene's own caption. Each check has a random-weights control of the same
architecture that fails the same bar, so the bar measures training, not chance."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from backends.base import ModelSpec
from backends.clip_scorer import ClipScorer
from workbench.world import Scene, WorldObject, render
from workbench.world.__main__ import main as cli_main
from workbench.world.classifier import SHIPPED as CLASSIFIER_DIR
from workbench.world.classifier import AttributeClassifier, evaluate
from workbench.world.clip import SHIPPED as CLIP_DIR
from workbench.world.clip import build_tokenizer, world_words
from workbench.world.data import HELDOUT_SEED0, make_scenes
from workbench.world.evaluate import random_classifier, random_clip

# held-out seeds far from those TRAINING.md's figures were measured on (any seed >= HELDOUT_SEED0 is never trained on)
HELD_START, HELD_N = HELDOUT_SEED0 + 100_000, 48
MARGIN = 0.1  # 48 scenes, ~95 objects: a binomial standard error of about 0.035 at 0.86


@pytest.fixture(scope="module")
def held():
    return make_scenes(HELD_START, HELD_N)


@pytest.fixture(scope="module")
def classifier():
    return AttributeClassifier.load()


def test_the_shipped_classifier_reads_held_out_renders_as_its_training_md_states(held, classifier):
    stated = classifier.config["training"]["heldout_accuracy"]
    training_md = (CLASSIFIER_DIR / "TRAINING.md").read_text(encoding="utf-8")
    acc = evaluate(classifier, held)
    for k in ("position", "shape", "colour", "size", "background", "background_colour", "style"):
        assert f"{stated[k]:.3f}" in training_md, f"TRAINING.md does not state the {k} accuracy {stated[k]:.3f}"
        assert acc[k] >= stated[k] - MARGIN, (k, acc[k], stated[k])
    # what TRAINING.md states clears the bar a ground-truth scorer needs (issue 20 asks renders for >= 80% shape and
    # colour, >= 60% position; a scorer below that could not tell)
    assert stated["shape"] >= 0.8 and stated["colour"] >= 0.9 and stated["position"] >= 0.9, stated
    rand = evaluate(random_classifier(classifier.config), held)
    assert rand["shape"] < 0.5 and rand["colour"] < 0.5, rand


def test_the_classifier_reads_a_hand_built_scene_object_by_object(classifier):
    scene = Scene((WorldObject("star", "red", "large", (0, 0)), WorldObject("circle", "blue", "medium", (2, 2))),
                  "plain", "yellow")
    image, _ = render(scene, 64)
    read = classifier.read([Image.fromarray(image)])[0]
    found = sorted((o["shape"], o["colour"], tuple(o["position"])) for o in read["objects"])
    assert found == [("circle", "blue", (2, 2)), ("star", "red", (0, 0))], read
    assert (read["background"], read["background_colour"]) == ("plain", "yellow"), read
    with pytest.raises(ValueError, match="images must be RGB"):
        classifier.read([np.zeros((64, 64), np.uint8)])


def _top1(img: torch.Tensor, txt: torch.Tensor) -> float:
    return float(((img @ txt.T).argmax(1) == torch.arange(len(img))).float().mean())


def test_the_shipped_clip_loads_through_the_image_text_backend_and_picks_the_true_caption(held):
    scorer = ClipScorer.load(ModelSpec("image_text", "clip-scorer", "assets/world/clip"), device="cpu",
                             dtype="float32")
    assert not scorer.random_weights and scorer.text_token_limit() == 77
    images, captions = [Image.fromarray(a) for a in held.images[:16]], held.fine[:16]
    top1 = _top1(scorer.image_embeddings(images), scorer.text_embeddings(captions))
    stated = json.loads((CLIP_DIR / "training.json").read_text())["heldout_top1_of_16"]
    assert top1 >= min(0.7, stated - 0.15), (top1, stated)
    # the backend's own score: each image scores its own caption above a caption of another scene, mostly
    own = scorer.image_text_similarity(images, captions)
    other = scorer.image_text_similarity(images, captions[1:] + captions[:1])
    assert (own > other).mean() >= 0.8, (own, other)
    # control: the same architecture with random weights, through the same processor, is near chance (1/16)
    scorer.model = random_clip(CLIP_DIR)
    assert _top1(scorer.image_embeddings(images), scorer.text_embeddings(captions)) <= 0.35


def test_the_clip_tokenizer_spells_each_world_word_as_one_token_and_splits_others():
    tok = build_tokenizer()
    for w in world_words():
        assert tok.tokenize(w) == [w + "</w>"], w
    assert tok.tokenize("a red watercolor")[:2] == ["a</w>", "red</w>"]
    pieces = tok.tokenize("watercolor")  # outside the world: byte-level pieces, never the unknown token
    assert len(pieces) > 1 and "".join(pieces) == "watercolor</w>" and tok.unk_token not in pieces


def test_eval_prints_the_held_out_table_beside_random_weights(capsys):
    assert cli_main(["eval", "--n", "32"]) == 0
    out = capsys.readouterr().out
    rows = {tuple(cols[:2]): cols[2:] for cols in (re.split(r"\s{2,}", line.strip()) for line in out.splitlines()[2:])}
    trained, random_, n = rows[("attribute classifier", "shape accuracy")]
    assert float(trained) >= 0.8 > float(random_) and int(n) > 32
    trained, random_, n = rows[("attribute classifier", "cells (occupied or empty) accuracy")]
    assert float(trained) >= 0.95 > float(random_) and n == str(9 * 32)
    trained, random_, n = rows[("small CLIP", "top-1 caption of 16")]
    assert float(trained) >= 0.8 > float(random_) and n == "32"
    with pytest.raises(SystemExit):
        cli_main(["eval", "--n", "3"])
