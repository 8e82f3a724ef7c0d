"""The miniature world (issue 20, foundation): scenes of 1-3 objects sampled from a seed, rendered with
anti-aliasing at any size (stills and videos), one boolean mask per object, captions at a coarse and a fine
level, a caption parser and an out-of-vocabulary check. Pure numpy + Pillow; the vocabulary is data
(assets/world/vocabulary.yaml). The models trained on it (the attribute classifier and a small CLIP, shipped under
assets/world/) live in classifier.py, clip.py and train.py, which import torch; nothing here imports them."""

from workbench.world.parse import parse_caption, unknown_words
from workbench.world.render import render, render_frame, render_video
from workbench.world.scene import LEVELS, Motion, Scene, WorldObject, sample_scene
from workbench.world.vocabulary import Vocabulary, load_vocabulary

GENERATOR_VERSION = "1"

__all__ = ["GENERATOR_VERSION", "LEVELS", "Motion", "Scene", "Vocabulary", "WorldObject", "load_vocabulary",
           "parse_caption", "render", "render_frame", "render_video", "sample_scene", "unknown_words"]
