"""The world's text-to-image trainer (issue 20, workbench/world/diffusion.py): two training steps write a
StableDiffusionPipeline folder that the project's diffusers-t2i backend loads unchanged and renders 64x64 from; the
encoder is an exact 2x2 or 4x4 space-to-depth rearrangement followed by the patches' principal components; a run
resumes from the folder it wrote (UNet, EMA and optimizer); the measuring function reads renders of held-out
captions; bad arguments give a clear ValueError. (No model is shipped in assets/world/t2i yet; see the README's world
section.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.recorder import IndexRecorder

from backends.base import ImageSettings, ModelSpec
from backends.diffusers_t2i import DiffusersTextToImage
from workbench.world.data import HELDOUT_SEED0, load_scenes
from workbench.world.diffusion import (heldout_captions, load_pipeline, pipeline_renderer, render_faithfulness,
                                       train_t2i)

# held-out seeds far from those TRAINING.md's figures were measured on (no seed >= HELDOUT_SEED0 is trained on)
HELD_START, HELD_N = HELDOUT_SEED0 + 100_000, 8


def test_training_two_steps_writes_a_pipeline_the_backend_loads(tmp_path):
    out = tmp_path / "t2i"
    result = train_t2i(out, n_train=32, vae_steps=2, unet_steps=2, vae_batch=4, batch_size=4,
                       vae_channels=(16, 16, 16), patch=4, unet_channels=(16, 32, 32), checkpoint_every=1,
                       n_heldout=0, text_scene_steps=2, log=lambda m: None)
    assert result["unet_steps_done"] == 2 and result["final"] is True
    assert json.loads((out / "training.json").read_text())["unet_steps_done"] == 2
    assert not (tmp_path / "t2i.tmp").exists() and not (tmp_path / "t2i.old").exists()
    model = DiffusersTextToImage.load(ModelSpec("t2i", "diffusers-t2i", str(out)), device="cpu", dtype="float32")
    image = model.generate(["a red star"], ImageSettings(steps=2, width=64, height=64, seed=0))[0].image
    assert image.size == (64, 64)
    assert model.pipe.unet.config.block_out_channels == [16, 32, 32]
    assert model.pipe.unet.config.cross_attention_dim == model.pipe.text_encoder.config.hidden_size
    assert model.random_weights is False and model.pipe.vae_scale_factor == 4


def test_render_faithfulness_reads_true_stills_as_right_and_blank_images_as_wrong():
    from workbench.world.render import render
    from workbench.world.scene import sample_scene

    def truth(prompts):  # the world's own renders of the held-out scenes, in caption order
        seeds, out = iter(range(HELD_START, HELD_START + 10 * len(prompts))), []
        for prompt in prompts:
            scene = next(sample_scene(s) for s in seeds if sample_scene(s).caption("fine") == prompt)
            out.append(render(scene, 64)[0])
        return out

    right = render_faithfulness(truth, HELD_N, HELD_START)
    assert right["captions"] == HELD_N and right["objects"] >= HELD_N
    assert right["position"] >= 0.9 and right["colour"] >= 0.9 and right["shape"] >= 0.6, right
    assert right["layout"] >= 0.8, right
    blank = render_faithfulness(lambda p: [np.full((64, 64, 3), 200, np.uint8)] * len(p), HELD_N, HELD_START)
    assert blank["position"] <= 0.2 and blank["all three"] == 0.0 and blank["layout"] == 0.0, blank
    rng = np.random.default_rng(0)  # noise is read as objects everywhere: position passes, layout does not
    noise = render_faithfulness(lambda p: [rng.integers(0, 256, (64, 64, 3), np.uint8) for _ in p], HELD_N, HELD_START)
    assert noise["layout"] == 0.0, noise


def test_the_encoder_rearranges_4x4_patches_and_keeps_their_principal_components():
    import torch
    from diffusers import AutoencoderTiny

    from workbench.world.data import make_scenes
    from workbench.world.diffusion import set_patch_encoder, set_space_to_depth, to_pixels, vae_config

    x = to_pixels(make_scenes(HELD_START, 2).images)
    vae = AutoencoderTiny(**{**vae_config(), "latent_channels": 48})
    set_space_to_depth(vae)
    z = vae.encode(x).latents
    assert z.shape == (2, 48, 16, 16)
    pixels = (x + 1) / 2 - 0.5
    for a2, a1, b2, b1, c in [(0, 0, 0, 0, 0), (1, 0, 1, 1, 2), (1, 1, 0, 1, 1), (0, 1, 1, 0, 2)]:
        channel = 12 * (2 * a2 + b2) + 3 * (2 * a1 + b1) + c
        assert torch.allclose(z[:, channel], pixels[:, c, 2 * a2 + a1::4, 2 * b2 + b1::4], atol=1e-6)
    pca = AutoencoderTiny(**vae_config())
    kept = set_patch_encoder(pca, make_scenes(0, 64).images)["patch_variance_kept"]
    assert kept > 0.97
    assert pca.encode(x).latents.shape == (2, 12, 16, 16)


def test_the_2x2_encoder_is_a_lossless_rearrangement_to_32x32_latents():
    import torch
    from diffusers import AutoencoderTiny

    from workbench.world.data import make_scenes
    from workbench.world.diffusion import patches_of, set_patch_encoder, set_space_to_depth, to_pixels, vae_config

    images = make_scenes(HELD_START, 2).images
    x = to_pixels(images)
    vae = AutoencoderTiny(**vae_config((16, 16), patch=2))
    set_space_to_depth(vae)
    z = vae.encode(x).latents
    assert z.shape == (2, 12, 32, 32)
    pixels = (x + 1) / 2 - 0.5
    for a1, b1, c in [(0, 0, 0), (1, 0, 2), (0, 1, 1), (1, 1, 2)]:
        assert torch.allclose(z[:, 3 * (2 * a1 + b1) + c], pixels[:, c, a1::2, b1::2], atol=1e-6)
    # patches_of lists the same values in the same channel order
    assert torch.allclose(patches_of(images, 2).float(), z.permute(0, 2, 3, 1).reshape(-1, 12), atol=1e-6)
    kept = set_patch_encoder(vae, make_scenes(0, 64).images)
    assert kept["patch"] == 2 and kept["patch_variance_kept"] > 0.999999  # all 12 components: nothing dropped


def test_whitening_gives_every_latent_channel_one_spread_and_decodes_the_same_image():
    import torch
    from diffusers import AutoencoderTiny

    from workbench.world.data import make_scenes
    from workbench.world.diffusion import set_patch_encoder, to_pixels, vae_config, whiten_latents

    torch.manual_seed(0)
    vae = AutoencoderTiny(**vae_config((16, 16), patch=2)).eval()
    train = make_scenes(0, 64).images
    set_patch_encoder(vae, train)
    x = to_pixels(make_scenes(HELD_START, 4).images)
    with torch.inference_mode():
        z_before = vae.encode(x).latents
        image_before = vae.decode(z_before).sample
    report = whiten_latents(vae, train)
    assert max(report["std_before"]) / min(report["std_before"]) > 10  # the patch components' spreads differ
    with torch.inference_mode():
        z_train = vae.encode(to_pixels(train)).latents
        image_after = vae.decode(vae.encode(x).latents).sample
    std = z_train.std((0, 2, 3))
    assert float(std.max() / std.min()) < 1.01 and abs(float(std.mean()) - report["target"]) < 1e-3 * report["target"]
    # the decoder's first convolution takes the inverse gains: the same picture (up to its tanh input clamp)
    assert float((image_after - image_before).abs().max()) < 0.02
    again = whiten_latents(vae, train)  # a whitened VAE is left as it is
    assert all(abs(g - 1) < 1e-3 for g in again["gains"])


def test_simple_scenes_are_one_plain_object_and_the_curriculum_draws_its_share(tmp_path, monkeypatch):
    import torch

    from workbench.world import diffusion
    from workbench.world.data import simple_scenes

    batch = simple_scenes(40)
    assert len(batch.fine) == 40 and (batch.labels["shape"] != 9).sum(1).tolist() == [1] * 40  # one object each
    assert all(c.endswith(" background") and ", on a plain " in c for c in batch.fine)
    assert len({c.split(" in the ")[0] for c in batch.fine}) > 20  # shapes, colours and sizes vary
    assert simple_scenes(40).fine == batch.fine  # drawn from seeds alone
    # the trainer takes that share of every batch from them (indices after the world's n_train scenes)
    maps = []
    monkeypatch.setattr(diffusion, "object_cells", lambda labels, side, w: (
        maps.append(IndexRecorder(torch.ones(len(labels), side, side))), maps[-1])[1])
    result = train_t2i(tmp_path / "t2i", n_train=32, vae_steps=1, unet_steps=3, vae_batch=4, batch_size=4,
                       vae_channels=(16, 16), patch=2, unet_channels=(16, 32, 32), n_heldout=0, text_scene_steps=1,
                       simple_share=0.5, n_simple=16, log=lambda m: None)
    assert result["simple_share"] == 0.5 and result["n_simple"] == 16 and len(maps[0].t) == 32 + 16
    assert [sum(i >= 32 for i in rows) for rows in maps[0].rows] == [2, 2, 2]
    off = train_t2i(tmp_path / "t2i-off", n_train=32, vae_steps=1, unet_steps=2, vae_batch=4, batch_size=4,
                    vae_channels=(16, 16), patch=2, unet_channels=(16, 32, 32), n_heldout=0, text_scene_steps=1,
                    log=lambda m: None)
    assert len(maps[1].t) == 32 and all(i < 32 for rows in maps[1].rows for i in rows)
    assert off["n_simple"] == 0


def test_resume_continues_the_unet_and_its_optimizer_from_a_saved_folder(tmp_path):
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    from workbench.world.diffusion import TRAIN_STATE, load_train_state

    out = tmp_path / "t2i"
    small = dict(n_train=32, vae_steps=2, vae_batch=4, batch_size=4, vae_channels=(16, 16), patch=2,
                 unet_channels=(16, 32, 32), n_heldout=0, text_scene_steps=2, text_lr=1e-3, log=lambda m: None)
    train_t2i(out, unet_steps=2, checkpoint_every=100, **small)
    state = load_file(str(out / TRAIN_STATE))
    assert int(state["step"][0]) == 2 and any(k.startswith("exp_avg_sq.") for k in state)
    # the state restores the raw weights and AdamW's moments exactly
    unet = UNet2DConditionModel.from_pretrained(str(out / "unet"), torch_dtype=torch.float32)
    opt = torch.optim.AdamW(unet.parameters())
    assert load_train_state(out / TRAIN_STATE, {"unet": unet}, opt) == 2
    name, p = next(iter(unet.named_parameters()))
    assert torch.equal(p.detach(), state["unet." + name])
    assert torch.equal(opt.state[p]["exp_avg"], state["exp_avg." + name]) and float(opt.state[p]["step"]) == 2.0
    # ... and the text encoder's, when it trains with the UNet (text_lr > 0)
    text_keys = [k for k in state if k.startswith("exp_avg.text_encoder.")]
    assert text_keys and any(k.startswith("text_encoder.") for k in state)
    logs = []
    result = train_t2i(tmp_path / "t2i-more", unet_steps=4, checkpoint_every=100, resume=out,
                       **{**small, "vae_channels": (32, 32), "log": logs.append})
    assert result["unet_steps_done"] == 4 and result["resumed"] == [{"from": str(out), "at_step": 2}]
    assert result["vae_channels"] == [16, 16]  # the architecture comes from the resumed folder
    assert any("optimizer state" in m for m in logs), logs
    resumed = UNet2DConditionModel.from_pretrained(str(tmp_path / "t2i-more" / "unet"))
    assert resumed.config.block_out_channels == [16, 32, 32]
    model = DiffusersTextToImage.load(ModelSpec("t2i", "diffusers-t2i", str(tmp_path / "t2i-more")), device="cpu",
                                      dtype="float32")
    assert model.pipe.vae_scale_factor == 2
    assert model.generate(["a red star"], ImageSettings(steps=2, width=64, height=64, seed=0))[0].image.size == (64, 64)
    # v-prediction: trained on the velocity, and the saved sampler knows it; a resumed run keeps it
    v = train_t2i(tmp_path / "t2i-v", unet_steps=1, prediction_type="v_prediction", **small)
    assert v["prediction_type"] == "v_prediction"
    config = json.loads((tmp_path / "t2i-v" / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == "v_prediction"
    more = train_t2i(tmp_path / "t2i-v", unet_steps=2, resume=tmp_path / "t2i-v", **small)
    assert more["prediction_type"] == "v_prediction" and more["unet_steps_done"] == 2
    with pytest.raises(ValueError, match="unet_steps must exceed"):
        train_t2i(tmp_path / "x", unet_steps=4, resume=tmp_path / "t2i-more", **small)
    with pytest.raises(ValueError, match="resume"):
        train_t2i(tmp_path / "x", unet_steps=4, resume=tmp_path, **small)


@pytest.mark.parametrize("kwargs, name", [
    ({"vae_steps": 0}, "vae_steps"), ({"unet_steps": -1}, "unet_steps"), ({"lr": 0.0}, "lr"),
    ({"unet_channels": (24, 48, 64)}, "unet_channels"), ({"vae_channels": (16, 32)}, "vae_channels"),
    ({"vae_channels": (16, 32, 32)}, "vae_channels"),
    ({"n_heldout": 5_000}, "n_heldout"), ({"batch_size": 0}, "batch_size"), ({"patch": 3}, "patch"),
    ({"patch": 4}, "vae_channels"), ({"latent_channels": 49}, "latent_channels"), ({"max_minutes": 0}, "max_minutes"),
    ({"prediction_type": "sample"}, "prediction_type"), ({"loss_weighting": "snr"}, "loss_weighting"),
    ({"object_weight": -1}, "object_weight"), ({"zero_snr": "yes"}, "zero_snr"), ({"whiten": 1}, "whiten"),
    ({"unet_channels": (16, 32, 32, 32, 32)}, "unet_channels must be 3 or 4"),
    ({"simple_share": 0.95}, r"simple_share must be .*\[0, 0.9\]"), ({"n_simple": 8}, "n_simple")])
def test_bad_training_arguments_name_the_argument(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        train_t2i(tmp_path / "x", **kwargs)


def test_bad_measuring_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="start"):
        heldout_captions(4, start=5)
    with pytest.raises(ValueError, match="n must"):
        render_faithfulness(lambda p: p, 0)
    with pytest.raises(ValueError, match="render_fn"):
        render_faithfulness("not a renderer", 4)
    with pytest.raises(ValueError, match="render_fn returned 1 images for 4"):
        render_faithfulness(lambda p: [np.zeros((64, 64, 3), np.uint8)], 4)
    with pytest.raises(ValueError, match="steps"):
        pipeline_renderer(None, steps=0)
    with pytest.raises(ValueError, match="path"):
        load_pipeline(tmp_path)


def test_timestep_weights_keep_weight_on_the_layout_at_high_noise():
    """The x0-space weight of "x0_floor" never falls below 1 (min_snr's falls to snr, ~0.005 at t = 999, where the
    caption alone decides the layout); in the UNet's own space both equal the old min-SNR formula where snr >= 4."""
    from workbench.world.diffusion import MIN_SNR_GAMMA, timestep_weights, train_scheduler

    a = train_scheduler().alphas_cumprod
    snr = a / (1 - a)
    for prediction, factor in (("epsilon", snr), ("v_prediction", snr + 1)):
        floor = timestep_weights(snr, prediction, "x0_floor") * factor  # back to x0 space
        old = timestep_weights(snr, prediction, "min_snr") * factor
        assert float(floor.min()) >= 1.0 - 1e-6 and float(floor.max()) <= MIN_SNR_GAMMA + 1e-6
        assert float(old[-1]) < 0.01 and float(floor[-1]) > 1.0  # t = 999
        high = snr >= MIN_SNR_GAMMA
        assert np.allclose(floor[high].numpy(), old[high].numpy())


def test_object_cells_weigh_the_occupied_cells_and_keep_mean_one():
    from workbench.world.data import label_names
    from workbench.world.diffusion import object_cells
    from workbench.world.vocabulary import load_vocabulary

    empty = label_names(load_vocabulary())["shape"].index("empty")
    labels = np.full((2, 9), empty)
    labels[0, 0] = 0  # an object in the top left
    labels[1, 8] = 1  # ... in the bottom right
    w = object_cells(labels, 32, 3.0).numpy()
    assert w.shape == (2, 32, 32) and np.allclose(w.mean((1, 2)), 1.0)
    assert w[0, :10, :10].min() == pytest.approx(4 * w[0, 20:, 20:].max())  # 1 + 3 against 1
    assert w[1, 22:, 22:].min() > w[1, :10, :10].max()
    assert np.allclose(object_cells(labels, 32, 0.0).numpy(), 1.0)


def test_the_text_encoder_trains_with_the_unet_and_ships_unless_frozen(tmp_path):
    """The small CLIP's text encoder barely tells places apart ("top left" vs "top right": 0.16 per token against
    7-13 for a colour), so train-t2i trains a text encoder with the UNet and the pipeline ships it (its EMA): fresh
    weights by default, or the CLIP's fine-tuned; text_lr=0 keeps the CLIP's frozen."""
    import torch
    from transformers import CLIPTextModel

    from workbench.world.diffusion import CLIP_DIR

    clip = CLIPTextModel.from_pretrained(str(CLIP_DIR)).state_dict()
    small = dict(n_train=32, vae_steps=1, vae_batch=4, batch_size=4, vae_channels=(16, 16), unet_steps=3,
                 unet_channels=(16, 32, 32), n_heldout=0, ema_decay=0.5, log=lambda m: None)
    moved = {}
    for name, text_lr, init in (("tuned", 1e-2, "clip"), ("frozen", 0.0, "clip"), ("fresh", 1e-2, "random")):
        result = train_t2i(tmp_path / name, text_lr=text_lr, text_init=init, **small)
        assert result["text_lr"] == text_lr and result["text_init"] == init
        shipped = CLIPTextModel.from_pretrained(str(tmp_path / name / "text_encoder")).state_dict()
        assert shipped.keys() == clip.keys() or set(shipped) <= set(clip)
        moved[name] = max(float((shipped[k].float() - clip[k].float()).abs().max()) for k in shipped)
    assert moved["frozen"] == 0.0
    assert 1e-3 < moved["tuned"] < moved["fresh"]
    assert "fine-tuned" in json.loads((tmp_path / "tuned" / "training.json").read_text())["text_encoder"]
    assert "fresh weights" in json.loads((tmp_path / "fresh" / "training.json").read_text())["text_encoder"]
    with pytest.raises(ValueError, match=r"text_lr must be a number in \[0, 1\]"):
        train_t2i(tmp_path / "x", text_lr=-1.0)
    with pytest.raises(ValueError, match="text_init 'random' needs text_lr > 0"):
        train_t2i(tmp_path / "x", text_lr=0.0, text_init="random")


def test_caption_probe_reads_zero_for_a_unet_that_ignores_the_caption():
    """The training log's caption gain: 0 when the cross-attention's output is zeroed (the caption cannot reach the
    UNet), non-zero for the same UNet with it."""
    import torch
    from diffusers import UNet2DConditionModel

    from workbench.world.diffusion import caption_probe, load_text_encoder, tokenize, train_scheduler, unet_config

    tok, enc = load_text_encoder()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet_config((16, 32, 32), enc.config.hidden_size, 16, 12))
    from workbench.world.data import make_scenes

    ids = tokenize(tok, make_scenes(0, 8).fine)
    probe = caption_probe(torch.randn(8, 12, 16, 16), ids, seed=0, n=8)
    sched = train_scheduler("v_prediction")
    assert abs(probe(unet, enc, sched, "v_prediction")) > 1e-5
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn2.to_out.0"):
                module.weight.zero_()
                module.bias.zero_()
    assert probe(unet, enc, sched, "v_prediction") == 0.0  # the same arithmetic on both captions


def test_zero_snr_schedule_ends_in_pure_noise_and_the_pipeline_samples_from_there(tmp_path):
    """With zero_snr (the default) the last training timestep keeps nothing of the latent (DDPM's own schedule keeps
    sqrt(0.0047) = 0.068 of it, a faint layout the UNet can read instead of the caption), the saved sampler starts
    at t = 999 with the same betas, and the noise-prediction target is refused."""
    from workbench.world.diffusion import sample_scheduler, train_scheduler

    assert float(train_scheduler("v_prediction", zero_snr=True).alphas_cumprod[-1]) == 0.0
    assert float(train_scheduler("v_prediction").alphas_cumprod[-1]) == pytest.approx(0.0047, abs=5e-4)
    sampler = sample_scheduler("v_prediction", zero_snr=True)
    sampler.set_timesteps(12)
    assert int(sampler.timesteps[0]) == 999
    small = dict(n_train=32, vae_steps=1, vae_batch=4, batch_size=4, vae_channels=(16, 16), unet_steps=1,
                 unet_channels=(16, 32, 32, 32), n_heldout=0, text_scene_steps=2, log=lambda m: None)
    result = train_t2i(tmp_path / "z", **small)
    assert result["zero_snr"] is True and result["prediction_type"] == "v_prediction"
    config = json.loads((tmp_path / "z" / "scheduler" / "scheduler_config.json").read_text())
    assert config["rescale_betas_zero_snr"] is True and config["timestep_spacing"] == "trailing"
    unet = json.loads((tmp_path / "z" / "unet" / "config.json").read_text())
    assert len(unet["block_out_channels"]) == 4  # four levels: 32x32 down to 4x4
    with pytest.raises(ValueError, match="zero_snr needs prediction_type v_prediction"):
        train_t2i(tmp_path / "x", prediction_type="epsilon")


def test_place_hits_reads_objects_moved_to_the_named_cells_and_not_identical_predictions():
    import torch

    from workbench.world.diffusion import place_hits

    cells = list(range(9))
    x0 = torch.zeros(9, 12, 32, 32)
    for i, cell in enumerate(cells):  # a blob in the centre of the named cell
        r, c = divmod(cell, 3)
        y, x = int((r + 0.5) * 32 / 3), int((c + 0.5) * 32 / 3)
        x0[i, :, y - 2:y + 2, x - 2:x + 2] = 1.0
    assert place_hits(x0, cells) == 1.0
    assert place_hits(x0, [8 - c for c in cells]) == pytest.approx(1 / 9)  # only the centre is its own mirror
    assert place_hits(torch.ones(9, 12, 32, 32), cells) == 0.0  # the same prediction for every place


def test_place_probe_reads_zero_for_a_unet_that_ignores_the_caption():
    import torch
    from diffusers import UNet2DConditionModel

    from workbench.world.diffusion import load_text_encoder, place_probe, train_scheduler, unet_config

    tok, enc = load_text_encoder()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet_config((16, 32, 32), enc.config.hidden_size, 16, 12))
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn2.to_out.0"):
                module.weight.zero_()
                module.bias.zero_()
    probe = place_probe(tok, seed=0)
    assert probe(unet, enc, train_scheduler("v_prediction", zero_snr=True), "v_prediction") == 0.0


def test_high_noise_share_draws_that_share_of_timesteps_from_the_last_two_hundred():
    """Where objects go is learned only at high noise: --high-noise-share puts that share of each batch's timesteps
    in [800, 999], the rest uniform over all 1,000."""
    import torch

    from workbench.world.diffusion import HIGH_NOISE_T0, high_share_at, sample_timesteps

    gen = torch.Generator().manual_seed(0)
    uniform = sample_timesteps(20_000, 1000, 0.0, gen)
    assert float((uniform >= HIGH_NOISE_T0).float().mean()) == pytest.approx(0.2, abs=0.01)
    assert int(uniform.min()) == 0 and int(uniform.max()) == 999
    half = sample_timesteps(20_000, 1000, 0.5, gen)
    assert float((half >= HIGH_NOISE_T0).float().mean()) == pytest.approx(0.5 + 0.5 * 0.2, abs=0.015)
    assert int(sample_timesteps(1_000, 1000, 1.0, gen).min()) >= HIGH_NOISE_T0
    with pytest.raises(ValueError, match=r"high_noise_share must be a number in \[0, 1\]"):
        train_t2i("unused", high_noise_share=1.5)
    # --high-noise-steps N: the share holds for steps 0..N-1, then --high-noise-share-after
    staged = {"high_noise_share": 0.5, "high_noise_steps": 1200, "high_noise_share_after": 0.15}
    assert [high_share_at(staged, s) for s in (0, 1199, 1200, 2999)] == [0.5, 0.5, 0.15, 0.15]
    assert high_share_at({"high_noise_share": 0.5}, 10_000) == 0.5  # folders written before the option
    assert high_share_at({**staged, "high_noise_steps": None}, 10_000) == 0.5
    with pytest.raises(ValueError, match=r"high_noise_share_after must be a number in \[0, 1\]"):
        train_t2i("unused", high_noise_share_after=-0.1)
    with pytest.raises(ValueError, match=r"high_noise_steps must be an integer in \[1, 1000000\]"):
        train_t2i("unused", high_noise_steps=0)


def test_scene_reading_puts_each_cell_s_object_where_one_attention_hop_finds_it():
    """text_init 'scene' (the default): the CLIP's text encoder is fine-tuned with a SceneReader, nine learned cell
    queries attending over the 77 token states with one head, as the UNet's cross-attention does. After 200 steps
    the reader names the colour, size and finish of each held-out caption's objects cell by cell (the reader on the
    frozen CLIP's states: colour 0.46, size 0.53, measured), and the encoder it leaves behind is no longer the CLIP's."""
    import torch

    from workbench.world.diffusion import load_text_encoder, tokenize
    from workbench.world.text_scene import SceneReader, pretrain_scene_text

    tok, enc = load_text_encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    train, held = load_scenes(0, 2000), load_scenes(HELD_START, 200)
    record = pretrain_scene_text(enc, tokenize(tok, train.fine), train, 200, 0, tokenize(tok, held.fine), held,
                                 batch_size=64, lr=3e-3, log=lambda m: None)
    acc = record["heldout"]
    assert acc["colour"] >= 0.8 and acc["size"] >= 0.8 and acc["finish"] >= 0.8, acc
    assert min(acc[k] for k in ("background", "background_colour", "effect", "style")) >= 0.95, acc
    assert record["steps"] == 200 and record["heldout_captions"] == 200
    assert max(float((v - before[k]).abs().max()) for k, v in enc.state_dict().items()) > 1e-3
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())  # frozen again, as it ships
    out = SceneReader(enc.config.hidden_size)(torch.zeros(2, 77, enc.config.hidden_size))
    assert out["shape"].shape == (2, 9, 10) and out["background"].shape == (2, 4)


def test_token_grounding_records_cross_attention_and_scores_mass_in_the_object_s_cell(tmp_path):
    """grounding.py (TokenCompose's token loss): the recording processor computes what the default one does, keeps
    each cross-attention call's probabilities with their gradient, and the loss is 0 for a word whose attention lies
    in its object's cell, (1 - 1/9)^2 for attention spread evenly, and reaches the UNet's query and key weights.
    word_cells finds each object's colour and shape word and the object's cell; a run with the loss trains."""
    import torch
    from diffusers import UNet2DConditionModel

    from workbench.world.diffusion import load_text_encoder, tokenize, unet_config
    from workbench.world.grounding import attach, cell_masks, grounding_loss, word_cells, word_ids

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet_config((16, 32, 32), 96, 32, 12)).eval()
    tok, enc = load_text_encoder()
    scenes = load_scenes(0, 4)
    ids = tokenize(tok, scenes.fine)
    pos, cell = word_cells(ids, scenes.labels["colour"], *word_ids(tok))
    words = [[tok.decode([int(ids[0, j])]) for j in pos[0] if j >= 0]]
    assert scenes.fine[0].startswith("a small blue diamond in the center, a large purple cross in the top center")
    assert words[0] == ["blue", "diamond", "purple", "cross", "yellow", "heart"], words
    assert cell[0, :6].tolist() == [4, 4, 1, 1, 3, 3]  # center, top center, middle left (row-major)
    z, t, cond = torch.randn(4, 12, 32, 32), torch.tensor([999, 700, 300, 10]), enc(ids)[0]
    with torch.no_grad():
        before = unet(z, t, encoder_hidden_states=cond).sample
    store: list = []
    assert attach(unet, store) == 7  # 16x16 and 8x8 down (1 each), mid (1), 8x8 and 16x16 up (2 each)
    out = unet(z, t, encoder_hidden_states=cond).sample
    assert torch.allclose(out, before, atol=1e-4) and len(store) == 7
    loss = grounding_loss(store, pos, cell)
    assert 0.0 < float(loss) < 1.0
    loss.backward()
    q = [p.grad for n, p in unet.named_parameters() if "attn2.to_q" in n or "attn2.to_k" in n]
    assert q and all(g is not None and float(g.abs().sum()) > 0 for g in q)
    # hand-made maps at 16x16: all of the word's mass in its cell -> 0; spread evenly -> (8/9)^2
    side, b = 16, 1
    inside = (cell_masks(side)[4] == 1).float().reshape(1, side * side, 1).expand(b, -1, 77).clone()
    even = torch.full((b, side * side, 77), 1.0 / 77)
    one = (torch.tensor([[5, -1, -1, -1, -1, -1]]), torch.tensor([[4, -1, -1, -1, -1, -1]]))
    assert float(grounding_loss([(inside, 1)], *one)) == pytest.approx(0.0, abs=1e-6)
    assert float(grounding_loss([(even, 1)], *one)) == pytest.approx((8 / 9) ** 2, rel=1e-4)
    assert float(grounding_loss([], *one)) == 0.0
    result = train_t2i(tmp_path / "g", n_train=32, vae_steps=1, unet_steps=2, vae_batch=4, batch_size=4,
                       vae_channels=(16, 16), unet_channels=(16, 32, 32), n_heldout=0, text_scene_steps=2,
                       grounding_weight=1.0, grounding_from=1, log=lambda m: None)
    assert result["grounding_weight"] == 1.0 and result["grounding_from"] == 1 and result["unet_steps_done"] == 2
    with pytest.raises(ValueError, match=r"grounding_weight must be"):
        train_t2i("unused", grounding_weight=-1.0)
    with pytest.raises(ValueError, match=r"grounding_from must be an integer in \[0, 1000000\]"):
        train_t2i("unused", grounding_from=-1)


def test_shape_critic_loss_reads_true_latents_as_right_wrong_shapes_as_wrong_and_reaches_the_latent():
    """shape_critic_loss decodes clean latents with the pipeline's VAE and takes the critic's shape cross-entropy
    over the occupied cells: low for held-out stills with their own shapes, several times higher when every object's
    shape label is swapped for the next shape, and its gradient reaches the latent (so it trains the UNet)."""
    import torch

    from workbench.world.classifier import AttributeClassifier
    from workbench.world.diffusion import critic_cells, encode_latents, shape_critic_loss, to_pixels

    vae = load_pipeline().vae
    batch = load_scenes(HELD_START, HELD_N)
    x0 = (encode_latents(vae, to_pixels(batch.images)) * vae.config.scaling_factor).requires_grad_(True)
    critic = AttributeClassifier.load().network.requires_grad_(False)
    labels = torch.from_numpy(np.asarray(batch.labels["shape"])).long()
    empty = int(labels.max())
    swapped = torch.where(labels == empty, labels, (labels + 1) % empty)
    right = shape_critic_loss(vae, critic, x0, labels)
    wrong = shape_critic_loss(vae, critic, x0.detach(), swapped)
    right_value, wrong_value = float(right.detach()), float(wrong)
    assert right_value < 0.8 and wrong_value > 4 * right_value, (right_value, wrong_value)
    right.backward()
    assert x0.grad is not None and float(x0.grad.abs().sum()) > 0
    none = torch.full_like(labels, empty)
    assert float(shape_critic_loss(vae, critic, x0.detach(), none)) == 0.0
    # "features": the decoded guess's cell features against the true image's, in units of their spread
    with torch.no_grad():
        cells = critic_cells(critic, (to_pixels(batch.images) + 1) / 2)
    scale = cells.reshape(-1, cells.shape[-1]).std(0) + 1e-3
    own = float(shape_critic_loss(vae, critic, x0.detach(), true_cells=cells, cell_scale=scale))
    other = float(shape_critic_loss(vae, critic, x0.detach(), true_cells=cells.roll(1, 0), cell_scale=scale))
    blank = float(shape_critic_loss(vae, critic, torch.zeros_like(x0), true_cells=cells, cell_scale=scale))
    assert own < 0.1 and other > 10 * own and blank > 10 * own, (own, other, blank)


def test_the_shape_critic_trains_the_unet_on_fine_captions_below_its_timestep(tmp_path, monkeypatch):
    """With a shape weight the critic is called on the batch's fine, kept captions (object cells labelled) and its
    term changes the UNet: the same seeded run without it ends with other weights; the settings record it."""
    import torch
    from safetensors.torch import load_file

    import workbench.world.diffusion as diffusion
    from workbench.world.classifier import SHIPPED as SCORER

    calls: list = []
    real = diffusion.shape_critic_loss

    def recording(vae, critic, x0, labels=None, **features):
        calls.append((x0.shape[0], labels.clone() if labels is not None else features["true_cells"].clone()))
        return real(vae, critic, x0, labels, **features)

    monkeypatch.setattr(diffusion, "shape_critic_loss", recording)
    small = dict(n_train=32, vae_steps=1, unet_steps=3, vae_batch=4, batch_size=8, vae_channels=(16, 16), patch=2,
                 unet_channels=(16, 32, 32), n_heldout=0, text_scene_steps=1, log=lambda m: None)
    result = train_t2i(tmp_path / "s", shape_weight=1.0, shape_critic=SCORER, shape_t_max=1000,
                       shape_loss="labels", **small)
    assert result["shape_weight"] == 1.0 and result["shape_t_max"] == 1000 and result["shape_loss"] == "labels"
    assert result["shape_critic"] == "assets/world/classifier"
    assert len(calls) == 3 and all(0 < n <= 8 and labels.shape == (n, 9) for n, labels in calls)
    assert all(bool((labels < 9).any(1).all()) for _, labels in calls)  # every world scene has an object
    features = train_t2i(tmp_path / "f", shape_weight=1.0, shape_critic=SCORER, shape_t_max=1000, **small)
    assert features["shape_loss"] == "features" and len(calls) == 6
    assert all(0 < n <= 8 and cells.shape == (n, 9, 128) for n, cells in calls[3:])
    off = train_t2i(tmp_path / "o", **small)
    assert off["shape_weight"] == 0.0 and "shape_critic" not in off and len(calls) == 6
    on_w, off_w = (load_file(str(tmp_path / f / "unet" / "diffusion_pytorch_model.safetensors")) for f in "so")
    assert any(not torch.equal(on_w[k], off_w[k]) for k in on_w)
    with pytest.raises(ValueError, match=r"shape_weight must be .*\[0, 100\]"):
        train_t2i("unused", shape_weight=-1.0)
    with pytest.raises(ValueError, match="shape_critic must be a folder"):
        train_t2i("unused", shape_weight=1.0, shape_critic=tmp_path)
    with pytest.raises(ValueError, match=r"shape_t_max must be an integer in \[1, 1000\]"):
        train_t2i("unused", shape_t_max=0)
    with pytest.raises(ValueError, match=r"shape_loss must be one of \('features', 'labels'\)"):
        train_t2i("unused", shape_loss="logits")
