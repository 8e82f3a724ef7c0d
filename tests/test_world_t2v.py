"""The world's text-to-video trainer and its motion evaluation (issue 20, workbench/world/video.py, motion.py): a
few training steps from a tiny train-t2i folder write a TextToVideoSDPipeline folder that the project's diffusers-t2v
backend loads unchanged and renders 8 decoded 64x64 frames from; the video UNet starts as the image UNet applied to
each frame; a run resumes from the folder it wrote; bad arguments give a clear ValueError naming the allowed range;
the motion reading gets true world renders right and still or reversed videos wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.recorder import IndexRecorder

from workbench.world.data import HELDOUT_SEED0

HELD_START = HELDOUT_SEED0 + 200_000  # far from the seeds any README figure was measured on
TINY_T2V = dict(n_train=8, batch_size=1, checkpoint_every=100, n_heldout=0, log=lambda m: None)


@pytest.fixture(scope="module")
def t2i_folder(tmp_path_factory):
    """A tiny train-t2i folder (2x2 patches: 32x32 latents for 64x64 images, UNet widths 16/32/32)."""
    from workbench.world.diffusion import train_t2i

    out = tmp_path_factory.mktemp("world_t2v") / "t2i"
    train_t2i(out, n_train=32, vae_steps=2, unet_steps=2, vae_batch=4, batch_size=4, vae_channels=(16, 16), patch=2,
              unet_channels=(16, 32, 32), checkpoint_every=100, n_heldout=0, text_scene_steps=2, log=lambda m: None)
    return out


def test_training_writes_a_video_pipeline_the_t2v_backend_loads_and_renders_8_frames(t2i_folder, tmp_path):
    import torch
    from safetensors.torch import load_file

    from backends.base import ModelSpec, VideoSettings
    from backends.diffusers_t2v import DiffusersTextToVideo
    from workbench.world.video import train_t2v

    out = tmp_path / "t2v"
    result = train_t2v(t2i_folder, out, steps=2, **TINY_T2V)
    assert result["steps_done"] == 2 and result["final"] is True
    saved = json.loads((out / "training.json").read_text())
    assert saved["t2i"] == str(t2i_folder) and saved["frames"] == 8 and saved["seed"] == 0
    assert {"torch", "transformers", "diffusers", "generator_version"} <= set(saved["versions"])
    assert saved["inflation"]["matched"] > 100 and saved["inflation"]["unused_2d"] == []
    assert saved["inflation"]["fresh_not_temporal"] == [] and saved["history"]["loss"][-1]["step"] == 2
    # safetensors only, fp16 UNet shards of at most 10 MB
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))
    shards = list((out / "unet").glob("*.safetensors"))
    assert shards and all(f.stat().st_size <= 10 * 1000 ** 2 for f in shards)
    assert all(t.dtype == torch.float16 for f in shards for t in load_file(str(f)).values())
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "TextToVideoSDPipeline"

    model = DiffusersTextToVideo.load(ModelSpec("t2v", "diffusers-t2v", str(out)), device="cpu", dtype="float32")
    assert type(model.pipe).__name__ == "TextToVideoSDPipeline" and model.random_weights is False
    assert type(model.pipe.unet).__name__ == "UNet3DConditionModel"
    # the T2I folder's text encoder and VAE come back unchanged (frozen, reused)
    t2i_enc = load_file(str(t2i_folder / "text_encoder" / "model.safetensors"))
    enc = model.pipe.text_encoder.state_dict()
    assert all(torch.equal(enc[k].float(), v.float()) for k, v in t2i_enc.items() if k in enc)
    steps_seen = []  # the T2V tab's progress: TextToVideoSDPipeline has no callback_on_step_end, only callback
    video = model.generate(["a large red star in the top left moving right fast, on a plain blue background"],
                           VideoSettings(steps=2, width=64, height=64, num_frames=8, guidance_scale=3.0, seed=0),
                           on_step=lambda i, step, steps: steps_seen.append((i, step, steps)))[0]
    assert steps_seen == [(0, 1, 2), (0, 2, 2)]
    frames = np.stack([np.asarray(f) for f in video.frames])
    assert frames.shape == (8, 64, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 1.0  # decoded pictures, not a constant fill
    # eight frames of their own: the video latents the pipeline denoised differ from frame to frame
    with torch.inference_mode():
        latents = model.pipe(prompt="a red star moving left", num_inference_steps=2, height=64, width=64,
                             num_frames=8, generator=torch.Generator().manual_seed(0), output_type="latent").frames
    assert latents.shape == (1, 12, 8, 32, 32) and float(latents.std(2).mean()) > 0.05


def test_the_inflated_video_unet_is_the_image_unet_applied_to_each_frame():
    import torch
    from diffusers import UNet2DConditionModel, UNet3DConditionModel

    from workbench.world.diffusion import unet_config
    from workbench.world.video import inflate_unet, unet3d_config

    torch.manual_seed(0)
    # every attention level 32 wide: one head width, so the video UNet keeps the image UNet's head split everywhere
    unet2d = UNet2DConditionModel(**unet_config((16, 32, 32), cross_attention_dim=32, sample_size=32))
    with torch.no_grad():
        for p in unet2d.parameters():  # trained-looking weights (diffusers zero-initialises some output layers)
            p.add_(0.05 * torch.randn_like(p))
    unet3d, report = inflate_unet(unet2d, seed=0)
    assert report["attention_layers_with_the_t2i_head_split"] == report["attention_layers"]
    assert report["fresh_not_temporal"] == [] and report["unused_2d"] == []
    x = torch.randn(2, 12, 3, 32, 32)
    text = torch.randn(2, 77, 32)
    t = torch.tensor([700, 100])
    with torch.no_grad():
        video = unet3d(x, t, encoder_hidden_states=text).sample  # (2, 12, 3, 16, 16)
        frames = unet2d(x.permute(0, 2, 1, 3, 4).reshape(6, 12, 32, 32), t.repeat_interleave(3),
                        encoder_hidden_states=text.repeat_interleave(3, 0)).sample
    assert torch.allclose(video.permute(0, 2, 1, 3, 4).reshape(6, 12, 32, 32), frames, atol=1e-4)
    fresh = UNet3DConditionModel(**unet3d_config(unet2d.config))
    with torch.no_grad():
        assert not torch.allclose(fresh(x, t, encoder_hidden_states=text).sample, video, atol=1e-2)


def test_resume_continues_the_run_from_the_folder_it_wrote(t2i_folder, tmp_path):
    import torch
    from safetensors.torch import load_file

    from workbench.world.diffusion import TRAIN_STATE
    from workbench.world.video import train_t2v

    out = tmp_path / "t2v"
    train_t2v(t2i_folder, out, steps=2, **TINY_T2V)
    before = {k: v.clone() for k, v in load_file(str(out / TRAIN_STATE)).items()}
    assert int(before["step"][0]) == 2 and any(k.startswith("exp_avg_sq.") for k in before)
    result = train_t2v(t2i_folder, out, steps=3, resume=True, **TINY_T2V)
    assert result["steps_done"] == 3 and result["resumed"] == [{"at_step": 2}]
    assert [h["step"] for h in result["history"]["loss"]] == [2, 3]
    after = load_file(str(out / TRAIN_STATE))
    assert int(after["step"][0]) == 3
    # AdamW went on from its saved moments: its step count per parameter is 3, not a fresh 1
    assert all(float(v[0]) == 3.0 for k, v in after.items() if k.startswith("adam_step."))
    changed = [k for k in before if k.startswith("unet.") and not torch.equal(before[k], after[k])]
    assert changed
    with pytest.raises(ValueError, match=r"steps must exceed the 3 steps"):
        train_t2v(t2i_folder, out, steps=3, resume=True, **TINY_T2V)


def test_temporal_only_trains_the_temporal_layers_and_saves_a_checkpoint_every_n_steps(t2i_folder, tmp_path):
    import torch
    from safetensors.torch import load_file

    from workbench.world.diffusion import TRAIN_STATE, load_pipeline
    from workbench.world.video import inflate_unet, is_temporal, motion_trainable, train_t2v

    out, lines = tmp_path / "t2v", []
    result = train_t2v(t2i_folder, out, steps=5, temporal_only=True, motion_weight=1.0, stop_at=3,
                       **{**TINY_T2V, "checkpoint_every": 1, "log": lines.append})
    assert result["steps_done"] == 3 and "stopping at step 3: stop_at reached" in lines
    assert result["temporal_only"] is True and "unet_spatial_except_resplit_attention" in result["frozen"]
    assert result["motion_weight"] == 1.0 and all(np.isfinite(h["loss"]) for h in result["history"]["loss"])
    # a checkpoint after steps 1 and 2 (the folder is rewritten each time), and the final one at stop_at, step 3
    assert [m.split(" at step ")[1] for m in lines if m.startswith("saved ")] == ["1", "2", "3"]
    image_unet = load_pipeline(t2i_folder).unet
    start = inflate_unet(image_unet, seed=0)[0].state_dict()
    trained = motion_trainable(inflate_unet(image_unet, seed=0)[0], image_unet.config.attention_head_dim)
    raw = {k[len("unet."):]: v for k, v in load_file(str(out / TRAIN_STATE)).items() if k.startswith("unet.")}
    frozen = [k for k in start if k not in trained]
    assert frozen and all(not is_temporal(k) for k in frozen)
    assert all(torch.equal(raw[k], start[k]) for k in frozen)  # the image model's layers, untouched
    assert any(not torch.equal(raw[k], start[k]) for k in trained if is_temporal(k))


def test_init_from_starts_a_new_run_from_another_runs_video_unet(t2i_folder, tmp_path):
    import torch
    from safetensors.torch import load_file

    from workbench.world.diffusion import TRAIN_STATE
    from workbench.world.video import PROBE_TIMESTEPS, load_video_pipeline, train_t2v

    first = tmp_path / "first"
    train_t2v(t2i_folder, first, steps=1, **TINY_T2V)
    start = {k: v.float() for k, v in load_video_pipeline(first).unet.state_dict().items()}
    lines = []
    result = train_t2v(t2i_folder, tmp_path / "second", steps=1, lr=1e-9, high_noise_share=1.0, init_from=first,
                       **{**TINY_T2V, "n_train": 16, "log": lines.append})
    assert result["inflation"] == {"init_from": str(first), "init_steps_done": 1}
    assert result["high_noise_share"] == 1.0 and result["high_noise_t0"] == 800
    assert any(m.startswith(f"video UNet from {first}/unet (step 1") for m in lines)
    raw = {k[len("unet."):]: v for k, v in load_file(str(tmp_path / "second" / TRAIN_STATE)).items()
           if k.startswith("unet.")}
    # with a learning rate of 1e-9 the raw weights are the first run's (fp16-stored), not a fresh inflation's
    assert raw.keys() == start.keys() and all(torch.allclose(raw[k], start[k], atol=1e-6) for k in start)
    # both direction probes are recorded (whether the model reads "moving left" where only the caption can tell)
    probe = result["history"]["probes"][-1]
    assert 500 in PROBE_TIMESTEPS and 900 in PROBE_TIMESTEPS
    assert np.isfinite(probe["direction_gain"]) and np.isfinite(probe["direction_gain_t900"])


def test_bad_arguments_give_clear_messages(t2i_folder, tmp_path):
    from workbench.world.__main__ import main
    from workbench.world.motion import motion_direction_accuracy, read_direction, track
    from workbench.world.video import train_t2v

    cases = [(dict(steps=0), r"steps must be an integer in \[1, 1000000\], got 0"),
             (dict(batch_size=300), r"batch_size must be an integer in \[1, 256\], got 300"),
             (dict(frames=4), r"frames must be an integer in \[8, 32\], got 4"),
             (dict(lr=0.0), r"lr must be a number in \(0.0, 1.0\], got 0.0"),
             (dict(object_weight=-1), r"object_weight must be a number in \[0, 100\]"),
             (dict(motion_weight=101), r"motion_weight must be a number in \[0, 100\]"),
             (dict(stop_at=3), r"stop_at must be an integer in \[1, 2\], got 3"),
             (dict(temporal_only="yes"), r"temporal_only must be true or false"),
             (dict(high_noise_share=1.5), r"high_noise_share must be a number in \[0, 1\], got 1.5"),
             (dict(init_from=tmp_path / "nowhere"), r"init_from must be a folder train-t2v wrote"),
             (dict(init_from=t2i_folder), r"init_from must be a folder train-t2v wrote"),  # an image pipeline
             (dict(init_from=tmp_path, resume=True), r"init_from starts a new run; resume continues the one in out: pass one of them"),
             (dict(prediction_type="epsilon"), r"zero_snr needs prediction_type v_prediction"),
             (dict(prediction_type="x0"), r"prediction_type must be one of \('epsilon', 'v_prediction'\)")]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            train_t2v(t2i_folder, tmp_path / "bad", **{**TINY_T2V, "steps": 2, **kwargs})
    with pytest.raises(ValueError, match=r"t2i must be a pipeline folder that train-t2i wrote"):
        train_t2v(tmp_path / "nowhere", tmp_path / "bad", steps=2, **TINY_T2V)
    with pytest.raises(ValueError, match=r"t2i must hold a StableDiffusionPipeline"):
        (tmp_path / "other" / "unet").mkdir(parents=True)
        (tmp_path / "other" / "model_index.json").write_text('{"_class_name": "TextToVideoSDPipeline"}')
        train_t2v(tmp_path / "other", tmp_path / "bad", steps=2, **TINY_T2V)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"out must be a new or empty folder \(or pass resume"):
        train_t2v(t2i_folder, tmp_path / "full", steps=2, **TINY_T2V)
    with pytest.raises(ValueError, match=r"resume needs a folder that train-t2v wrote"):
        train_t2v(t2i_folder, tmp_path / "empty", steps=2, resume=True, **TINY_T2V)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 2000\], got 0"):
        motion_direction_accuracy(lambda p: [], 0)
    with pytest.raises(ValueError, match=r"start must be an integer >= 1000000"):
        motion_direction_accuracy(lambda p: [], 2, start=5)
    with pytest.raises(ValueError, match=r"render_fn returned 0 videos for 2 prompts"):
        motion_direction_accuracy(lambda p: [], 2, HELD_START)
    with pytest.raises(ValueError, match=r"colour must be one of"):
        track([np.zeros((8, 8, 3), np.uint8)] * 2, "mauve")
    assert read_direction(np.full((8, 2), np.nan))[0] == "not found"
    with pytest.raises(SystemExit) as exit_info:
        main(["train-t2v", "--t2i", str(t2i_folder), "--out", str(tmp_path / "cli"), "--steps", "0"])
    assert exit_info.value.code == 2


def test_motion_reading_gets_true_renders_right_and_still_or_reversed_videos_wrong():
    from workbench.world.motion import CHANCE, heldout_video_captions, motion_direction_accuracy, world_renderer

    captions, moving = heldout_video_captions(8, HELD_START)
    assert len(captions) == 8 and all(moving) and all("moving" in c for c in captions)
    assert all(o["direction"] in ("left", "right", "up", "down") for objs in moving for o in objs)
    rendered = dict(zip(captions, world_renderer(start=HELD_START)(captions)))  # rendered once, reused below

    def truth(prompts):
        return [rendered[p] for p in prompts]

    right = motion_direction_accuracy(truth, 8, HELD_START)
    assert right["accuracy"] >= 0.9 and right["found"] == 1.0 and right["chance"] == CHANCE == 0.25, right
    still = motion_direction_accuracy(lambda p: [[v[0]] * 8 for v in truth(p)], 8, HELD_START)
    assert still["accuracy"] == 0.0 and still["still"] == 1.0, still
    backwards = motion_direction_accuracy(lambda p: [v[::-1] for v in truth(p)], 8, HELD_START)
    assert backwards["accuracy"] == 0.0 and backwards["still"] == 0.0, backwards
    rng = np.random.default_rng(0)
    noise = motion_direction_accuracy(
        lambda p: [[rng.integers(0, 256, (64, 64, 3), np.uint8) for _ in range(8)] for _ in p], 8, HELD_START)
    assert noise["accuracy"] <= 0.25, noise


def test_eval_prints_the_motion_rows_for_the_tiny_random_pipeline(capsys):
    from workbench.world.__main__ import main

    assert main(["eval", "--t2i-only", "--t2v", "tiny", "--t2v-n", "2", "--t2v-steps", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "motion direction accuracy" in line]
    assert len(rows) == 2 and rows[0].startswith("world renders (truth)") and "0.250 (chance)" in rows[0]
    truth_value, tiny_value = (float(r.split()[-4]) for r in rows)
    assert truth_value >= 0.5 and 0.0 <= tiny_value <= 1.0


def test_motion_arch_adds_frame_aware_motion_modules_and_writes_an_animatediff_pipeline(t2i_folder, tmp_path):
    """--arch motion: the image UNet with AnimateDiff motion modules (temporal attention with sinusoidal frame
    positions). Untrained, it is the image UNet applied to each frame; trained, it writes an AnimateDiffPipeline that
    the diffusers-t2v backend renders 8 frames from; resume and init_from keep the architecture; temporal_only trains
    the motion modules alone."""
    import torch
    from safetensors.torch import load_file

    from backends.base import ModelSpec, VideoSettings
    from backends.diffusers_t2v import DiffusersTextToVideo
    from workbench.world.diffusion import TRAIN_STATE, load_pipeline
    from workbench.world.video import arch_of, load_video_pipeline, motion_unet, train_t2v

    image_unet = load_pipeline(t2i_folder).unet.float()
    unet, report = motion_unet(image_unet, seed=0)
    assert report["motion_output_projections_zeroed"] > 0 and report["frame_positions"] == "sinusoidal"
    z = torch.randn(2, 12, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    states = torch.randn(2, 77, image_unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([500, 900])
    with torch.inference_mode():
        video = unet(z, t, encoder_hidden_states=states).sample  # one text state per video, repeated per frame
        frames = image_unet(z.permute(0, 2, 1, 3, 4).reshape(16, 12, 32, 32), t.repeat_interleave(8),
                            encoder_hidden_states=states.repeat_interleave(8, dim=0)).sample
    assert torch.allclose(video.permute(0, 2, 1, 3, 4).reshape(16, 12, 32, 32), frames, atol=1e-4)

    out = tmp_path / "motion"
    result = train_t2v(t2i_folder, out, steps=2, arch="motion", **TINY_T2V)
    assert result["arch"] == "motion" and result["inflation"]["arch"] == "motion"
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "AnimateDiffPipeline"
    assert arch_of(out) == "motion" and not list(out.rglob("*.bin"))
    model = DiffusersTextToVideo.load(ModelSpec("t2v", "diffusers-t2v", str(out)), device="cpu", dtype="float32")
    assert type(model.pipe).__name__ == "AnimateDiffPipeline" and type(model.pipe.unet).__name__ == "UNetMotionModel"
    steps_seen = []
    video = model.generate(["a large red star in the top left moving right fast, on a plain blue background"],
                           VideoSettings(steps=2, width=64, height=64, num_frames=8, guidance_scale=3.0, seed=0),
                           on_step=lambda i, step, steps: steps_seen.append((i, step, steps)))[0]
    frames = np.stack([np.asarray(f) for f in video.frames])
    assert steps_seen == [(0, 1, 2), (0, 2, 2)]
    assert frames.shape == (8, 64, 64, 3) and frames.dtype == np.uint8 and frames.std() > 1.0

    resumed = train_t2v(t2i_folder, out, steps=3, resume=True, **TINY_T2V)
    assert resumed["steps_done"] == 3 and resumed["arch"] == "motion"
    with pytest.raises(ValueError, match=r"arch must stay 'motion' \(the resumed run's\), got 'unet3d'"):
        train_t2v(t2i_folder, out, steps=4, resume=True, arch="unet3d", **TINY_T2V)
    with pytest.raises(ValueError, match=r"arch must be 'motion' \(init_from's UNet\), got 'unet3d'"):
        train_t2v(t2i_folder, tmp_path / "x", steps=1, init_from=out, arch="unet3d", **TINY_T2V)
    with pytest.raises(ValueError, match=r"arch must be one of \('unet3d', 'motion'\), got 'dit'"):
        train_t2v(t2i_folder, tmp_path / "x", steps=1, arch="dit", **TINY_T2V)

    second = train_t2v(t2i_folder, tmp_path / "second", steps=1, init_from=out, temporal_only=True, lr=1e-2,
                       **{**TINY_T2V, "n_train": 16})
    assert second["arch"] == "motion" and "unet_spatial" in second["frozen"]
    start = {f"unet.{k}": v.float() for k, v in load_video_pipeline(out).unet.state_dict().items()}  # init_from's
    raw = {k: v.float() for k, v in load_file(str(tmp_path / "second" / TRAIN_STATE)).items() if k.startswith("unet.")}
    spatial = [k for k in raw if "motion_modules" not in k]
    motion = [k for k in raw if "motion_modules" in k]
    assert spatial and motion
    assert all(torch.equal(raw[k], start[k]) for k in spatial)  # the image layers, frozen
    assert any(not torch.equal(raw[k], start[k]) for k in motion)


def test_simple_videos_move_one_object_and_the_curriculum_draws_its_share(t2i_folder, tmp_path, monkeypatch):
    import torch

    from workbench.world import video
    from workbench.world.motion import read_direction, track
    from workbench.world.video_data import simple_videos

    batch = simple_videos(12)
    assert batch.frames.shape == (12, 8, 64, 64, 3) and simple_videos(12).fine == batch.fine  # seeds alone
    for frames, scene, caption in zip(batch.frames, batch.scenes, batch.fine):
        (obj,) = scene["objects"]
        assert scene["background"] == "plain" and obj["motion"]["kind"] == "move" and "moving" in caption
        assert read_direction(track(list(frames), obj["colour"]))[0] == obj["motion"]["direction"]  # it truly moves

    maps = []
    real = video.object_cell_weights
    monkeypatch.setattr(video, "object_cell_weights", lambda *a: (maps.append(IndexRecorder(real(*a))), maps[-1])[1])
    result = video.train_t2v(t2i_folder, tmp_path / "t2v", steps=3, simple_share=0.5, n_simple=8,
                             **{**TINY_T2V, "batch_size": 2})
    assert result["simple_share"] == 0.5 and result["n_simple"] == 8 and len(maps[0].t) == 8 + 8
    assert [sum(i >= 8 for i in rows) for rows in maps[0].rows] == [1, 1, 1]
    with pytest.raises(ValueError, match=r"simple_share must be .*\[0, 0.9\]"):
        video.train_t2v(t2i_folder, tmp_path / "bad", steps=2, simple_share=1.0, **TINY_T2V)
    assert torch.is_tensor(maps[0].t)


def test_the_path_critic_reads_true_videos_as_on_their_paths_and_reversed_or_held_ones_as_off():
    """path_targets follows each object's colour in the true frames (a move's shift is its direction times its
    distance, a bouncing object's is about 0); path_critic_loss decodes clean latents and is low for the world's own
    videos, high for the same videos played backwards or with the first frame held, and reaches the latent."""
    import torch

    from workbench.world.diffusion import load_pipeline
    from workbench.world.scene import DIR_VECTORS
    from workbench.world.video import path_critic_loss, path_targets, video_latents
    from workbench.world.video_data import load_videos
    from workbench.world.vocabulary import load_vocabulary

    vae = load_pipeline().vae
    batch = load_videos(HELD_START, 16, 64, 8)
    which, shifts, valid = path_targets(batch.scenes, batch.frames)
    distance = load_vocabulary().distance
    moves = 0
    for i, scene in enumerate(batch.scenes):
        for k, obj in enumerate(scene["objects"]):
            m = obj.get("motion")
            if valid[i, k] and m and m["kind"] == "move":
                moves += 1
                dx, dy = shifts[i, k].tolist()
                want = np.array(DIR_VECTORS[m["direction"]]) * distance[m["speed"]]
                # along its way at least half its distance (it may leave the image), hardly across it
                assert float(np.dot([dx, dy], want)) > 0.5 * float(np.dot(want, want)), (scene, dx, dy)
                assert abs(float(np.cross(want / np.linalg.norm(want), [dx, dy]))) < 0.03, (scene, dx, dy)
            elif valid[i, k] and m and m["kind"] in ("bounce", "rotate"):
                assert float(shifts[i, k].abs().max()) < 0.03, (scene, shifts[i, k])
    assert moves >= 5 and int(valid.sum()) >= 0.9 * sum(len(s["objects"]) for s in batch.scenes)
    lat = video_latents(vae, batch.frames).float().requires_grad_(True)
    right = path_critic_loss(vae, lat, which, shifts, valid)
    with torch.no_grad():
        backwards = float(path_critic_loss(vae, lat.flip(2), which, shifts, valid))
        held = float(path_critic_loss(vae, lat[:, :, :1].expand_as(lat).contiguous(), which, shifts, valid))
    assert float(right.detach()) < 0.15 and backwards > 10 * float(right.detach()) and held > 5 * float(right.detach())
    right.backward()
    assert float(lat.grad.abs().sum()) > 0
    assert float(path_critic_loss(vae, lat.detach(), which, shifts, torch.zeros_like(valid))) == 0.0


def test_the_path_critic_trains_the_video_unet_on_kept_captions(t2i_folder, tmp_path, monkeypatch):
    from workbench.world import video

    calls: list = []
    real = video.path_critic_loss

    def recording(vae, x0, which, shifts, valid):
        calls.append((x0.shape, x0.requires_grad, int(valid.sum())))
        return real(vae, x0, which, shifts, valid)

    monkeypatch.setattr(video, "path_critic_loss", recording)
    tiny = {**TINY_T2V, "batch_size": 2}
    on = video.train_t2v(t2i_folder, tmp_path / "on", steps=2, path_weight=1.0, **tiny)
    # the clean-latent guess the critic reads is the UNet's output (its gradient reaches the UNet), 8 frames
    assert on["path_weight"] == 1.0 and len(calls) == 2
    assert all(shape[0] <= 2 and shape[2] == 8 and grad and n >= 1 for shape, grad, n in calls)
    off = video.train_t2v(t2i_folder, tmp_path / "off", steps=2, **tiny)
    assert off["path_weight"] == 0.0 and len(calls) == 2

    with pytest.raises(ValueError, match=r"path_weight must be a number in \[0, 100\]"):
        video.train_t2v(t2i_folder, tmp_path / "bad", steps=2, path_weight=-1.0, **TINY_T2V)
