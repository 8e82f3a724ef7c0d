"""Token heatmaps (DAAM): the recorder against known attention, against diffusers' own processor, word positions
on the CLIP tokenizer, the overlay's pixels, and the flow on the offline profile's models (the world's T2I model)
and on a tiny random SD pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_the_store_lays_each_tokens_attention_on_the_grid_and_keeps_only_the_prompts_half():
    import torch

    from backends._cross_attention import CrossAttentionStore

    heads, h, w, keys = 2, 4, 6, 5
    # batch of 2 = classifier-free guidance for one image: the unconditional half first
    probs = torch.zeros(2, heads, h * w, keys)
    probs[0, :, :, 4] = 1.0  # unconditional: everything on token 4 (must be ignored)
    probs[1, :, :, 0] = 1.0  # the prompt's half: token 0 everywhere...
    top_left = [r * w + c for r in range(2) for c in range(3)]
    probs[1, :, top_left, 0] = 0.0
    probs[1, :, top_left, 2] = 1.0  # ...except the top-left 2x3 block, which attends to token 2
    store = CrossAttentionStore(images=1, height=h, width=w)
    store.add("layer", probs.reshape(2 * heads, h * w, keys), batch=2, heads=heads)
    maps = store.total[0].numpy()
    assert maps.shape == (keys, h, w)
    assert maps[4].sum() == 0  # the unconditional half left no trace
    assert maps[2][:2, :3].min() == 1 and maps[2].sum() == 6  # exactly the block, in its place (rows, then columns)
    assert maps[0][:2, :3].max() == 0 and maps[0].sum() == h * w - 6
    # a coarser layer is upsampled onto the same grid and summed
    coarse = torch.zeros(2, heads, 2 * 3, keys)
    coarse[1, :, :, 1] = 1.0
    store.add("coarse", coarse.reshape(2 * heads, 6, keys), batch=2, heads=heads)
    maps = store.total[0].numpy()
    assert np.allclose(maps[1], 1.0) and np.allclose(maps.sum(axis=0), 2.0)  # two layers, each summing to one
    assert store.layers == {"layer", "coarse"} and store.calls == 2
    with pytest.raises(ValueError, match="neither 1 images nor twice"):
        store.add("bad", torch.zeros(3 * heads, h * w, keys), batch=3, heads=heads)


def _tiny_unet_inputs():
    import torch

    from backends import tiny

    pipe = tiny.build("sd", {})
    torch.manual_seed(0)
    sample = torch.randn(2, 4, 16, 16)
    context = torch.randn(2, 77, pipe.unet.config.cross_attention_dim)
    return pipe, sample, context


def test_recording_leaves_the_unets_output_unchanged_and_restores_its_processors():
    import torch

    from backends._cross_attention import cross_attention_layers, recording

    pipe, sample, context = _tiny_unet_inputs()
    unet = pipe.unet
    before = dict(unet.attn_processors)
    with torch.no_grad():
        plain = unet(sample, 10, encoder_hidden_states=context).sample
        with recording(unet, images=1, height=16, width=16) as store:
            recorded = unet(sample, 10, encoder_hidden_states=context).sample
    assert torch.allclose(plain, recorded, atol=1e-5), (plain - recorded).abs().max()
    assert dict(unet.attn_processors) == before  # the UNet's own processors are back
    layers = cross_attention_layers(unet)
    assert layers and all(name.endswith("attn2.processor") for name in layers)
    assert store.layers == set(layers) and store.calls == len(layers)
    # softmax over the tokens: at every position the tokens' maps sum to one per recorded layer
    total = store.total[0].sum(dim=0)
    assert torch.allclose(total, torch.full_like(total, float(len(layers))), atol=1e-4)


def test_word_positions_follow_the_clip_tokenizer_and_stop_at_the_window():
    from backends import tiny
    from backends._cross_attention import word_tokens
    from backends.base import TokenAttention

    tok = tiny.build("sd", {}).tokenizer
    prompt = "A red star, on a \"blue\" background"
    words = word_tokens(tok, prompt)
    ids = tok(prompt)["input_ids"]
    assert [w.word for w in words] == ["a", "red", "star", "on", "a", "blue", "background"]
    for w in words:  # each word's tokens decode to the word
        assert tok.decode([ids[p] for p in w.positions]).strip() == w.word
    long = " ".join(["grass"] * 80) + " zebra"  # past the 77-token window
    far = word_tokens(tok, long)
    assert far[-1].word == "zebra" and far[-1].positions == []
    assert max(p for w in far for p in w.positions) == 75  # 0 is the start token, 76 the end token
    maps = np.zeros((77, 2, 2), dtype=np.float32)
    maps[1:76] = 1.0
    attention = TokenAttention(maps=maps, words=far, window=77, layers=1, steps=1)
    assert attention.word_map("grass").sum() == 75 * 4  # every occurrence summed
    with pytest.raises(ValueError, match="past the text encoder's 77-token window"):
        attention.word_map("zebra")
    with pytest.raises(ValueError, match="not a word of this prompt; its words: grass"):
        attention.word_map("horse")


def test_the_overlay_blends_the_words_map_at_the_chosen_opacity():
    from PIL import Image

    from workbench.t2i.heatmaps import colormap, overlay

    image = Image.new("RGB", (32, 32), (40, 120, 200))
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[:4, :4] = 5.0  # the word sits in the top-left quarter
    assert np.array_equal(np.asarray(overlay(image, heat, 0.0)), np.asarray(image))
    full = np.asarray(overlay(image, heat, 1.0)).astype(int)
    assert np.abs(full[2, 2] - colormap(1.0)).max() <= 1  # hottest: the colormap's top
    assert np.abs(full[29, 29] - colormap(0.0)).max() <= 1  # coldest: its bottom
    half = np.asarray(overlay(image, heat, 0.5)).astype(int)
    expected = (np.array([40, 120, 200]) + colormap(1.0)) / 2
    assert np.abs(half[2, 2] - expected).max() <= 1
    brightness = half.sum(axis=2)
    assert brightness[:12, :12].mean() > brightness[20:, 20:].mean() + 100
    with pytest.raises(ValueError, match="opacity must be a number from 0 to 1"):
        overlay(image, heat, 1.5)


def test_a_small_render_is_enlarged_by_a_whole_factor_with_its_pixels_kept():
    from PIL import Image

    from workbench.t2i.heatmaps import enlarged

    image = Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3) % 251)
    big = enlarged(image)
    assert big.size == (320, 320)  # 5 x 64
    assert np.array_equal(np.asarray(big)[::5, ::5], np.asarray(image))  # every pixel kept, none invented
    assert np.array_equal(np.asarray(big)[4::5, 4::5], np.asarray(image))
    large = Image.new("RGB", (512, 400))
    assert enlarged(large) is large


TINY_SD = {"backend": "diffusers-t2i", "model": "tiny:sd", "random_weights": True}


@pytest.fixture(scope="module", params=["world", "tiny-sd"])
def offline_round(request, profiles, real_manager):
    """A round on the offline profile's models (the world's T2I model, the world CLIP, MiniLM; the session's
    manager, so models other tests loaded are reused), refined by the keyword baseline (no language model needed)
    and rendered at 64 px in 2 steps; and the same round with the image model swapped for a tiny random SD pipeline
    (the DAAM code path of any UNet2DConditionModel pipeline, SD 1.5 on a GPU alike). Returns (ctx, rendered, view,
    the image model's spec)."""
    from backends.base import ModelSpec
    from workbench.context import AppContext
    from workbench.t2i import flows
    from workbench.t2i.forms import REWRITER_LABELS, RenderInputs, RewriterInputs

    if request.param == "tiny-sd":
        profiles = {**profiles, "offline": profiles["offline"].with_role("t2i", ModelSpec.from_dict("t2i", TINY_SD))}
    ctx = AppContext(manager=real_manager, profiles=profiles, default_profile="offline")
    state, view = flows.refine(ctx, "offline", "a red fox in the snow",
                               RewriterInputs(kind=REWRITER_LABELS["baseline"], n=2))
    state, rendered, view = flows.render(ctx, "offline", state, [s.text for s in view.slots],
                                         RenderInputs(steps=2, size=64, seed=5))
    yield ctx, rendered, view, profiles["offline"].spec("t2i")
    if request.param == "tiny-sd":  # the session's manager holds the offline models only (test_offline_real counts)
        real_manager.unload(profiles["offline"].spec("t2i"))


def test_the_flow_renders_the_same_image_again_and_shows_a_words_map_with_its_provenance(offline_round):
    from PIL import Image

    from workbench.t2i import flows
    from workbench.t2i.forms import HeatmapInputs

    ctx, rendered, view, t2i = offline_round
    # the chart groups only the metrics some image has a value for: the world CLIP has no aesthetic head, so its
    # "n/a" stays in the table (with the reason) and the chart shows no empty group for it
    groups = list(view.results.chart.data[0].x)
    assert groups[:2] == ["align_original", "align_refined"] and groups[-1] == "weighted total"
    assert not any(g.startswith("aesthetic") for g in groups)
    assert view.results.images == ["original", "#1", "#2"]
    assert view.results.words[:6] == ["a", "red", "fox", "in", "the", "snow"]
    kept, shown = flows.heatmap(ctx, "offline", rendered, None, HeatmapInputs(image="#1", word="fox", opacity=0.6))
    grid_image = np.asarray(rendered.images[0].image, dtype=float)
    assert np.abs(np.asarray(kept.image, dtype=float) - grid_image).max() <= 2  # same seed and settings
    assert kept.prompt == rendered.images[0].prompt and shown.word == "fox" and shown.label == "#1"
    fox = kept.attention.word_map("fox")
    assert fox.shape == (32, 32) and fox.min() >= 0 and fox.std() > 0
    picture = np.asarray(shown.image, dtype=float)
    k = picture.shape[0] // grid_image.shape[0]  # drawn large enough to read: a whole factor, pixels kept sharp
    assert k >= 2 and picture.shape == (grid_image.shape[0] * k, grid_image.shape[1] * k, 3)
    assert min(picture.shape[:2]) >= 320
    assert np.abs(picture[::k, ::k] - grid_image).mean() > 5  # the map is drawn on it
    assert ("random weights" in shown.caption) is t2i.random_weights and "**fox**" in shown.caption
    png = Image.open(shown.png)
    assert png.height > 64  # the image above its caption strip
    record = json.loads(png.text["provenance"])
    assert record["word"] == "fox" and record["image"] == "#1" and record["opacity"] == 0.6
    assert record["prompt"] == rendered.images[0].prompt
    assert record["provenance"]["model_id"].endswith(t2i.model_id) and record["provenance"]["seed"] == 5
    assert record["provenance"]["random_weights"] is t2i.random_weights
    assert record["provenance"]["settings"]["heatmap"]["steps"] == 2
    # another word of the same image: the maps are reused (no second render)
    again, other = flows.heatmap(ctx, "offline", rendered, kept, HeatmapInputs(image="#1", word="Snow", opacity=0.3))
    assert again is kept and other.word == "snow"
    assert not np.array_equal(np.asarray(other.image), np.asarray(shown.image))
    # another image: rendered again, its own words
    orig, shown_orig = flows.heatmap(ctx, "offline", rendered, kept, HeatmapInputs(image="original", word=None,
                                                                                   opacity=0.6))
    assert orig is not kept and shown_orig.words == ["a", "red", "fox", "in", "the", "snow"]
    assert shown_orig.word == "red"  # the first word that is not a function word
    with pytest.raises(ValueError, match="'dog' is not a word of this prompt; its words: a, red, fox"):
        flows.heatmap(ctx, "offline", rendered, kept, HeatmapInputs(image="#1", word="dog", opacity=0.6))
    with pytest.raises(ValueError, match="image must be one of original, #1, #2"):
        flows.heatmap(ctx, "offline", rendered, kept, HeatmapInputs(image="#7", word="fox", opacity=0.6))


def test_a_backend_without_cross_attention_says_so(fake_ctx):
    from workbench.t2i import flows
    from workbench.t2i.forms import REWRITER_LABELS, HeatmapInputs, RenderInputs, RewriterInputs

    state, view = flows.refine(fake_ctx, "fake", "a cat", RewriterInputs(kind=REWRITER_LABELS["baseline"], n=1))
    state, rendered, _ = flows.render(fake_ctx, "fake", state, [s.text for s in view.slots],
                                      RenderInputs(steps=1, size=64, seed=0))
    with pytest.raises(ValueError, match="no cross-attention to record"):
        flows.heatmap(fake_ctx, "fake", rendered, None, HeatmapInputs(image="#1", word="cat", opacity=0.5))
    with pytest.raises(ValueError, match="nothing rendered yet"):
        flows.heatmap(fake_ctx, "fake", None, None, HeatmapInputs(image="#1", word="cat", opacity=0.5))
