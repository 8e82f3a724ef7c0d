"""The world rewriter for real: the T2I tab's Refine (the flow both front ends call, with the tab's default inputs)
on the `world` profile refines held-out world coarse captions with the shipped adapter (real SmolLM2-135M-Instruct
from PyPI), and what the user reads is world captions: each candidate parses into world attributes, keeps the
coarse caption's shapes and colours, adds fine attributes, and uses no word outside the world."""

import pytest

from workbench.world import parse_caption, unknown_words
from workbench.world.rewriter import heldout_coarse, keeps

pytestmark = [pytest.mark.real_models, pytest.mark.slow]


@pytest.fixture(scope="module")
def world_ctx(real_manager, profiles):
    from workbench.context import AppContext

    return AppContext(manager=real_manager, profiles=profiles, default_profile="world")


def test_refine_on_the_world_profile_writes_world_captions(world_ctx):
    from workbench.t2i import flows
    from workbench.t2i.forms import RewriterInputs

    for prompt in heldout_coarse(2):
        _, view = flows.refine(world_ctx, "world", prompt, RewriterInputs())
        texts = [slot.text for slot in view.slots]
        assert len(texts) == 4, view.status
        # the adapter, asked without facets, and the status line says so
        assert "smollm2-135m-world-rewriter-lora" in view.status and "facets were not asked for" in view.status
        coarse = parse_caption(prompt)
        for text in texts:
            assert unknown_words(text) == [], (prompt, text)
            fine = parse_caption(text)
            assert fine["objects"] and all("shape" in o and "colour" in o for o in fine["objects"]), (prompt, text)
            assert keeps(coarse, fine), (prompt, text)
            assert "background" in fine and "background_colour" in fine, (prompt, text)  # fine attributes added
        assert len(set(texts)) == 4
