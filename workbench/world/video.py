"""The world's text-to-video model (issue 20): the text-to-image model's approach over frames, trained on CPU on
world videos and their captions (`python -m workbench.world train-t2v --t2i FOLDER --out FOLDER`).

It starts from a folder that `train-t2i` wrote: its VAE (a fixed patch encoder, applied to each frame) and its
tokenizer and text encoder are reused, frozen; its `UNet2DConditionModel`'s weights initialise the spatial layers of
a diffusers `UNet3DConditionModel` of the same widths wherever the parameter names match (`inflate_unet` reports
what matched), and the temporal layers (a temporal transformer after conv_in, a temporal convolution after every
ResNet, a temporal transformer after every spatial one) start fresh with their output projections at zero, so the
untrained video model is the image model applied to each frame (as AnimateDiff zero-initialises its motion modules).
The loss and schedule are the image trainer's (velocity prediction, zero terminal SNR, the x0-floor timestep weights,
grid cells holding an object weighted up, 10% of captions dropped for guidance), with EMA weights and resumable
checkpoints. The folder it writes is a standard `TextToVideoSDPipeline` (safetensors; fp16 UNet shards of at most
10 MB) that the project's `diffusers-t2v` backend loads unchanged. With `arch="motion"` the video UNet is instead the
image UNet with AnimateDiff's motion modules (temporal attention that knows each frame's position), written as an
`AnimateDiffPipeline`, which the same backend loads. Uses torch and diffusers directly, never a backend
module (the world stays below every tab)."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from workbench.world.data import HELDOUT_SEED0
from workbench.world.diffusion import (CAPTION_DROP, COARSE_SHARE, HIGH_NOISE_T0, OBJECT_WEIGHT, PREDICTION_TYPES,
                                       TRAIN_STATE, _check_range, batch_indices, caption_probe, cell_rows, decode_clean,
                                       encode_texts, implied_x0, load_pipeline, load_train_state, sample_scheduler,
                                       sample_timesteps, save_pipeline, save_train_state, timestep_weights, to_pixels,
                                       tokenize, train_scheduler)
from workbench.world.train import _check_float, _check_int, _cosine_lr, _versions
from workbench.world.video_data import FRAMES, MAX_VIDEOS, concat_videos, load_videos, simple_videos

# The preview a world video is rendered at (bench/bench_world_t2v.py times it; the eval's defaults): the world's
# 64x64 frames, 8 of them (the minimum), few DPM-Solver++ steps, the image model's guidance.
PREVIEW = {"width": 64, "height": 64, "num_frames": FRAMES, "steps": 8, "guidance": 3.0, "fps": 8}
N_SIMPLE_VIDEOS = 800  # one-object videos of the curriculum (train-t2v --simple-share)
MAX_SHARD = "10MB"  # fp16 UNet weights per safetensors file (the issue: at most 10 MiB a file)
TEMPORAL_PARTS = ("transformer_in", "temp_convs", "temp_attentions")  # UNet3DConditionModel's temporal layers
PROBE_EVERY = 200
# The video UNet's architecture (train-t2v --arch): diffusers' UNet3DConditionModel inflated from the image UNet
# (TextToVideoSDPipeline), or the image UNet with AnimateDiff's motion modules (UNetMotionModel, AnimateDiffPipeline),
# whose temporal transformers carry sinusoidal frame-position embeddings (UNet3DConditionModel's have none: frame
# order reaches them only through the temporal convolutions' zero padding).
ARCHS = ("unet3d", "motion")
PIPELINE_OF = {"unet3d": "TextToVideoSDPipeline", "motion": "AnimateDiffPipeline"}
UNET_OF = {"unet3d": "UNet3DConditionModel", "motion": "UNetMotionModel"}
MOTION_HEADS = 4  # heads of each motion module's temporal attention
MOTION_MAX_FRAMES = 32  # frame positions the motion modules' sinusoidal embeddings cover
# The direction probe's timesteps: at t = 500 an object is visible in every noised frame, so its path can be read
# from x_t and the caption's direction barely matters; at t = 900 only the caption can say where it goes.
PROBE_TIMESTEPS = (500, 900)


def direction_key(t: int) -> str:
    """The probes' record key of the direction gain at timestep `t` (t = 500 keeps the key earlier runs used)."""
    return "direction_gain" if t == 500 else f"direction_gain_t{t}"


# -- the model ------------------------------------------------------------------------------------------------
def unet3d_config(unet2d_config) -> dict:
    """A `UNet3DConditionModel` config with the 2D UNet's widths, blocks (2D -> 3D), attention heads, norm groups and
    cross-attention width, so that its spatial layers have the 2D UNet's parameter names and shapes."""
    c = dict(unet2d_config)
    blocks = {"DownBlock2D": "DownBlock3D", "CrossAttnDownBlock2D": "CrossAttnDownBlock3D",
              "UpBlock2D": "UpBlock3D", "CrossAttnUpBlock2D": "CrossAttnUpBlock3D"}
    unknown = [b for b in (*c["down_block_types"], *c["up_block_types"]) if b not in blocks]
    if unknown:
        raise ValueError(f"the T2I UNet's blocks must be among {sorted(blocks)}, got {unknown}")
    if c.get("mid_block_type", "UNetMidBlock2DCrossAttn") != "UNetMidBlock2DCrossAttn":
        raise ValueError(f"the T2I UNet's mid block must be UNetMidBlock2DCrossAttn, got {c['mid_block_type']!r}")
    return dict(sample_size=c["sample_size"], in_channels=c["in_channels"], out_channels=c["out_channels"],
                down_block_types=tuple(blocks[b] for b in c["down_block_types"]),
                up_block_types=tuple(blocks[b] for b in c["up_block_types"]),
                block_out_channels=tuple(c["block_out_channels"]), layers_per_block=c["layers_per_block"],
                norm_num_groups=c["norm_num_groups"], cross_attention_dim=c["cross_attention_dim"],
                attention_head_dim=head_dim_3d(c))


def _attention_widths(c: dict) -> list[int]:
    """The width of each spatial attention layer of a UNet2DConditionModel config (down, mid, up)."""
    widths = list(c["block_out_channels"])
    n = c["layers_per_block"]
    out = [w for w, b in zip(widths, c["down_block_types"]) if b.startswith("CrossAttn") for _ in range(n)]
    out.append(widths[-1])  # the mid block
    out += [w for w, b in zip(widths[::-1], c["up_block_types"]) if b.startswith("CrossAttn") for _ in range(n + 1)]
    return out


def head_dim_3d(c: dict) -> int:
    """UNet3DConditionModel's `attention_head_dim` (one number, as its first temporal transformer takes it too) is
    the head *width* of its spatial attention (heads = layer width / it), while UNet2DConditionModel's is the head
    *count* (diffusers' naming quirk, issue 2011). The 2D UNet's head width differs per level (e.g. 4 heads: 16 at
    width 64, 32 at width 128), so one level keeps its head split and the others' attention is not the image
    model's function at the start (their weights are still copied; `inflate_unet` reports which). The narrowest
    level's head width is taken: the first temporal transformer (8 heads of this width at the full 32x32 latent)
    costs more with a wider one (a training step of 4 videos of 8 frames: 14 s with 16, 20 s with 32; measured)."""
    heads = c["attention_head_dim"]
    if not isinstance(heads, int):
        raise ValueError(f"the T2I UNet's attention_head_dim must be one integer, got {heads!r}")
    return min(w // heads for w in _attention_widths(c))


def is_temporal(name: str) -> bool:
    """Whether a UNet3DConditionModel parameter belongs to one of its temporal layers (TEMPORAL_PARTS)."""
    return any(part == name.split(".")[0] or f".{part}." in name for part in TEMPORAL_PARTS)


def motion_trainable(unet3d, t2i_heads: int) -> set[str]:
    """The parameters `--temporal-only` trains: the temporal layers, and the spatial attention layers whose head
    split differs from the image model's `t2i_heads` (head_dim_3d: their copied weights compute another function,
    so they must adapt; the rest of the spatial layers keep the image model's function, frozen)."""
    from diffusers.models.attention_processor import Attention

    resplit = [name for name, m in unet3d.named_modules()
               if isinstance(m, Attention) and not is_temporal(name) and m.heads != t2i_heads]
    return {name for name, _ in unet3d.named_parameters()
            if is_temporal(name) or any(name.startswith(r + ".") for r in resplit)}


def zero_temporal_outputs(unet3d) -> int:
    """Zero the output projection of every temporal transformer (its residual then passes the frames through
    unchanged; diffusers already zeroes each temporal convolution's last layer). Returns how many were zeroed."""
    import torch

    n = 0
    with torch.no_grad():
        for name, module in unet3d.named_modules():
            if (name == "transformer_in" or ".temp_attentions." in name) and name.count(".") <= 3 \
                    and isinstance(getattr(module, "proj_out", None), torch.nn.Module):
                module.proj_out.weight.zero_()
                module.proj_out.bias.zero_()
                n += 1
    return n


def inflate_unet(unet2d, seed: int = 0):
    """(UNet3DConditionModel, report): a video UNet whose spatial parameters are copied from `unet2d` where the names
    match (a 1x1 convolution's weight onto the linear layer of the same name is reshaped), its temporal layers fresh
    (seeded) with zero output projections. The report counts matched, reshaped and fresh parameters and lists any 2D
    parameter left unused or any fresh parameter that is not temporal (both must be empty: else ValueError)."""
    import torch
    from diffusers import UNet3DConditionModel

    torch.manual_seed(seed)
    unet3d = UNet3DConditionModel(**unet3d_config(unet2d.config))
    zeroed = zero_temporal_outputs(unet3d)
    s2, s3 = unet2d.state_dict(), unet3d.state_dict()
    new, matched, reshaped, unused = {}, 0, [], []
    for k, w in s2.items():
        if k not in s3:
            unused.append(k)
        elif s3[k].shape == w.shape:
            new[k], matched = w.float(), matched + 1
        elif s3[k].numel() == w.numel() and w.dim() == 4 and w.shape[2:] == (1, 1):
            new[k] = w.float().reshape(s3[k].shape)
            reshaped.append(k)
        else:
            unused.append(k)
    fresh = [k for k in s3 if k not in new]
    not_temporal = [k for k in fresh if not is_temporal(k)]
    c2 = dict(unet2d.config)
    widths, dim = _attention_widths(c2), head_dim_3d(c2)
    split = [{"width": w, "t2i_heads": c2["attention_head_dim"], "video_heads": w // dim} for w in widths]
    report = {"unet2d_parameters": len(s2), "unet3d_parameters": len(s3), "matched": matched,
              "attention_layers_with_the_t2i_head_split": sum(s["t2i_heads"] == s["video_heads"] for s in split),
              "attention_layers": len(split), "attention_head_split": split,
              "reshaped_1x1_conv_to_linear": len(reshaped), "fresh_temporal": len(fresh),
              "temporal_output_projections_zeroed": zeroed, "unused_2d": unused, "fresh_not_temporal": not_temporal}
    if unused or not_temporal:
        raise ValueError(f"the T2I UNet does not map onto the video UNet: 2D parameters without a match {unused[:5]}, "
                         f"non-temporal video parameters without a source {not_temporal[:5]}")
    missing, unexpected = unet3d.load_state_dict(new, strict=False)
    assert not unexpected and set(missing) == set(fresh)
    return unet3d, report


def motion_unet(unet2d, seed: int = 0):
    """(UNetMotionModel, report): the image UNet with AnimateDiff motion modules (diffusers' MotionAdapter: a temporal
    transformer with sinusoidal frame positions after every ResNet of every level and in the middle block), fresh
    (seeded) with their output projections at zero, so the untrained video UNet is the image UNet applied to each
    frame. Its text states are one per frame (per_frame_text)."""
    import torch
    from diffusers import MotionAdapter, UNetMotionModel

    c = unet2d.config
    bad = [w for w in c.block_out_channels if w % MOTION_HEADS or w % c.norm_num_groups]
    if bad:
        raise ValueError(f"the T2I UNet's widths must be multiples of {MOTION_HEADS} motion heads and "
                         f"{c.norm_num_groups} norm groups for motion modules, got {tuple(c.block_out_channels)!r}")
    torch.manual_seed(seed)
    adapter = MotionAdapter(block_out_channels=tuple(c.block_out_channels), motion_layers_per_block=c.layers_per_block,
                            motion_mid_block_layers_per_block=1, motion_num_attention_heads=MOTION_HEADS,
                            motion_norm_num_groups=c.norm_num_groups, motion_max_seq_length=MOTION_MAX_FRAMES,
                            use_motion_mid_block=True)
    unet = UNetMotionModel.from_unet2d(unet2d.float(), adapter)
    zeroed = 0
    with torch.no_grad():
        for name, module in unet.named_modules():
            if "motion_modules" in name and name.endswith("proj_out"):
                module.weight.zero_()
                module.bias.zero_()
                zeroed += 1
    motion = sum(p.numel() for n, p in unet.named_parameters() if "motion_modules" in n)
    report = {"arch": "motion", "spatial_parameters": sum(p.numel() for p in unet2d.parameters()),
              "motion_parameters": motion, "motion_heads": MOTION_HEADS, "max_frames": MOTION_MAX_FRAMES,
              "motion_output_projections_zeroed": zeroed, "frame_positions": "sinusoidal"}
    return per_frame_text(unet), report


def per_frame_text(unet):
    """UNetMotionModel reads one text state per frame (AnimateDiffPipeline repeats the prompt's for every frame);
    the trainer and its probes pass one per video, as to UNet3DConditionModel. A forward pre-hook repeats them per
    frame when there is one per video (the pipeline's own calls, one per frame already, pass unchanged; every caller
    passes them as `encoder_hidden_states=`). Returns `unet`; a UNet3DConditionModel is returned as it is."""
    if type(unet).__name__ != "UNetMotionModel" or getattr(unet, "_per_frame_text", False):
        return unet

    def hook(module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        states = kwargs.get("encoder_hidden_states")
        if states is not None and states.shape[0] == sample.shape[0]:
            kwargs = {**kwargs, "encoder_hidden_states": states.repeat_interleave(sample.shape[2], dim=0)}
        return args, kwargs

    unet.register_forward_pre_hook(hook, with_kwargs=True)
    unet._per_frame_text = True
    return unet


def arch_of(folder: Path) -> str | None:
    """The architecture of a pipeline folder train-t2v wrote (from model_index.json), None for any other folder."""
    index = Path(folder) / "model_index.json"
    if not index.exists() or not (Path(folder) / "unet" / "config.json").exists():
        return None
    name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    return next((a for a, p in PIPELINE_OF.items() if p == name), None)


def load_video_unet(folder: Path, arch: str):
    import diffusers
    import torch

    return per_frame_text(getattr(diffusers, UNET_OF[arch]).from_pretrained(str(Path(folder) / "unet"),
                                                                             torch_dtype=torch.float32))


def build_video_pipeline(vae, unet, tok, enc, prediction_type: str = "v_prediction", zero_snr: bool = True):
    """A TextToVideoSDPipeline around a UNet3DConditionModel, an AnimateDiffPipeline around a UNetMotionModel."""
    from diffusers import AnimateDiffPipeline, TextToVideoSDPipeline

    scheduler = sample_scheduler(prediction_type, zero_snr)
    if type(unet).__name__ == "UNetMotionModel":
        pipe = AnimateDiffPipeline(vae=vae, text_encoder=enc, tokenizer=tok, unet=unet, motion_adapter=None,
                                   scheduler=scheduler)
    else:
        pipe = TextToVideoSDPipeline(vae=vae, text_encoder=enc, tokenizer=tok, unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_video_pipeline(path: str | Path):
    arch = arch_of(Path(path))
    return load_pipeline(path, PIPELINE_OF[arch or "unet3d"])


def video_latents(vae, frames: np.ndarray, batch: int = 256):
    """(N, F, H, W, 3) uint8 videos -> (N, C, F, h, w) float16 latents, each frame through the VAE's encoder, times
    its scaling factor (the pipeline's latent space)."""
    import torch

    n, f = frames.shape[:2]
    flat = frames.reshape(n * f, *frames.shape[2:])
    out = []
    with torch.inference_mode():
        for i in range(0, len(flat), batch):
            out.append((vae.encode(to_pixels(flat[i:i + batch])).latents * vae.config.scaling_factor).half())
    lat = torch.cat(out)
    return lat.reshape(n, f, *lat.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()


def decode_video(vae, latents) -> np.ndarray:
    """(N, C, F, h, w) latents (scaled) -> (N, F, H, W, 3) uint8 frames."""
    import torch

    n, c, f = latents.shape[:3]
    flat = latents.permute(0, 2, 1, 3, 4).reshape(n * f, c, *latents.shape[3:]).float()
    with torch.inference_mode():
        x = vae.decode(flat / vae.config.scaling_factor).sample
    x = ((x.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return x.reshape(n, f, *x.shape[1:])


def object_cell_weights(occupied: np.ndarray, side: int, object_weight: float):
    """(N, 9) occupied grid cells (row-major) -> (N, 1, side, side) loss weights, 1 + object_weight on those cells,
    1 elsewhere, each map scaled to mean 1 (the image trainer's object weighting, over the cells a moving object's
    centre visits in any frame)."""
    import torch

    occ = torch.as_tensor(np.asarray(occupied)).float().reshape(-1, 3, 3)
    rows = cell_rows(side)
    w = 1 + object_weight * occ[:, rows][:, :, rows]
    return (w / w.mean((1, 2), keepdim=True))[:, None]


def flip_directions(scene_dict: dict) -> str | None:
    """The fine caption of the scene with every "moving <direction>" reversed, or None when nothing in it moves."""
    from workbench.world.scene import Motion, Scene

    scene = Scene.from_dict(scene_dict)
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}
    if not any(o.motion and o.motion.kind == "move" for o in scene.objects):
        return None
    objs = tuple(dataclasses.replace(o, motion=Motion("move", opposite[o.motion.direction], o.motion.speed))
                 if o.motion and o.motion.kind == "move" else o for o in scene.objects)
    return dataclasses.replace(scene, objects=objs).caption("fine")


def direction_probe(lat, scenes: list[dict], tok, enc, seed: int, n: int = 16, t: int = 500):
    """A fixed batch of up to `n` training videos in which something moves, noised at timestep `t` with fixed noise:
    probe(unet, sched, prediction_type) -> the direction gain, mean x0 error with the caption whose directions are
    reversed / with the own caption - 1 (0: the model ignores which way things move)."""
    import torch

    from workbench.world.scene import Scene

    idx, own, flipped = [], [], []
    for i, d in enumerate(scenes):
        f = flip_directions(d)
        if f is not None:
            idx.append(i)
            own.append(Scene.from_dict(d).caption("fine"))
            flipped.append(f)
        if len(idx) == n:
            break
    if not idx:
        return None
    gen = torch.Generator().manual_seed(seed + 13)
    z0 = lat[idx].float()
    noise = torch.randn(z0.shape, generator=gen)
    ts = torch.full((len(idx),), t, dtype=torch.long)
    states = [encode_texts(tok, enc, own).float(), encode_texts(tok, enc, flipped).float()]

    def probe(unet, sched, prediction_type: str) -> float:
        zt = sched.add_noise(z0, noise, ts)
        errs = []
        was = unet.training
        unet.eval()
        with torch.inference_mode():
            for cond in states:
                x0 = implied_x0(zt, unet(zt, ts, encoder_hidden_states=cond).sample, sched, t, prediction_type)
                errs.append(float(((x0 - z0) ** 2).mean()))
        unet.train(was)
        return errs[1] / errs[0] - 1

    return probe


def _reshard_unet(pipe, folder: Path) -> None:
    """Rewrite the saved UNet as safetensors shards of at most MAX_SHARD (diffusers loads the index)."""
    shutil.rmtree(folder / "unet")
    pipe.unet.save_pretrained(str(folder / "unet"), safe_serialization=True, max_shard_size=MAX_SHARD)


# -- training -------------------------------------------------------------------------------------------------
def train_t2v(t2i: str | Path, out: str | Path, n_train: int = 1_600, steps: int = 3_000, batch_size: int = 2,
              lr: float = 5e-4, ema_decay: float = 0.999, checkpoint_every: int = 300, n_heldout: int = 40,
              seed: int = 0, frames: int = FRAMES, object_weight: float = OBJECT_WEIGHT,
              prediction_type: str = "v_prediction", zero_snr: bool = True, resume: bool = False,
              max_minutes: float | None = None, temporal_only: bool = False, motion_weight: float = 0.0,
              stop_at: int | None = None, high_noise_share: float = 0.0, init_from: str | Path | None = None,
              arch: str | None = None, simple_share: float = 0.0, n_simple: int = N_SIMPLE_VIDEOS,
              path_weight: float = 0.0, log: Callable[[str], None] = print) -> dict:
    """Train the video UNet on `n_train` world videos (seeds 0..n_train-1, `frames` frames of 64x64) from the T2I
    pipeline folder `t2i`, writing a TextToVideoSDPipeline to `out` every `checkpoint_every` steps (EMA weights) and
    at the end, with training.json (settings, the inflation report, losses, probes, held-out motion-direction
    accuracy on `n_heldout` captions) and train_state.safetensors (raw UNet + AdamW moments; never shipped).

    `resume`: continue the run in `out` (EMA and raw weights, optimizer, step, history) up to `steps` in all.
    `max_minutes`: stop early after this long and write the final checkpoint there; `stop_at`: stop after that
    step (the learning-rate schedule still spans `steps`), so a run stopped early is one command to repeat.
    `high_noise_share`: that share of each batch's timesteps from [800, 999] (diffusion.sample_timesteps), where only
    the caption can say where an object goes in each frame. `init_from`: a folder train-t2v wrote, whose video UNet
    starts this run (in place of inflating the image UNet); the VAE and text encoder still come from `t2i`.
    `arch` (ARCHS): "unet3d" inflates the image UNet into a UNet3DConditionModel and writes a TextToVideoSDPipeline;
    "motion" adds AnimateDiff motion modules to it (motion_unet: temporal attention with frame positions) and writes
    an AnimateDiffPipeline. None: "unet3d" for a new run, the folder's own for `resume` and `init_from`.
    `temporal_only`: the spatial
    layers keep the image model's weights (frozen) and only the temporal layers train (as AnimateDiff trains its
    motion modules): the frames keep what the image model draws, and a step skips the spatial weights' gradients.
    `motion_weight`: adds that times the loss on the frame-to-frame change of the prediction's error (zero for an
    error that is the same in every frame), so that where and how far things move counts apart from how they look:
    a video that keeps an object still where the caption moves it errs mostly in what changes between frames, a
    small share of the plain loss. Every PROBE_EVERY steps the
    log shows the caption gain (x0 error with another video's caption / own - 1) and the direction gain (with the
    caption's directions reversed / own - 1). `simple_share`: that share of each batch comes from `n_simple` videos
    of one moving object on a plain background (video_data.simple_videos), a curriculum where the way it moves is
    all there is to learn; 0: world videos only. `path_weight`: weight of the path critic's loss
    (path_critic_loss: in the video the UNet's clean-latent guess decodes to, each object's colour should make the
    shift it makes in the true video, i.e. travel the way and as far as its caption says and stay put where it
    does not move; 0: off)."""
    import torch

    _check_int("n_train", n_train, 8, 50_000)
    _check_int("steps", steps, 1, 1_000_000)
    _check_int("batch_size", batch_size, 1, 256)
    _check_float("lr", lr, 0.0, 1.0)
    _check_float("ema_decay", ema_decay, 0.0, 1.0)
    _check_int("checkpoint_every", checkpoint_every, 1, 1_000_000)
    _check_int("n_heldout", n_heldout, 0, 2_000)
    _check_int("seed", seed, 0, 2**31 - 1)
    _check_int("frames", frames, FRAMES, 32)
    _check_range("object_weight", object_weight, 0, 100)
    _check_range("motion_weight", motion_weight, 0, 100)
    _check_range("high_noise_share", high_noise_share, 0, 1)
    _check_range("simple_share", simple_share, 0, 0.9, " (0: world videos only)")
    _check_int("n_simple", n_simple, 8, MAX_VIDEOS)
    _check_range("path_weight", path_weight, 0, 100, " (0: off)")
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
    if zero_snr not in (True, False):
        raise ValueError(f"zero_snr must be true or false, got {zero_snr!r}")
    if zero_snr and prediction_type != "v_prediction":
        raise ValueError(f"zero_snr needs prediction_type v_prediction, got {prediction_type!r}")
    if resume not in (True, False):
        raise ValueError(f"resume must be true or false, got {resume!r}")
    if temporal_only not in (True, False):
        raise ValueError(f"temporal_only must be true or false, got {temporal_only!r}")
    if max_minutes is not None:
        _check_float("max_minutes", max_minutes, 0.0, 100_000.0)
    if stop_at is not None:
        _check_int("stop_at", stop_at, 1, steps)
    if init_from is not None and resume:
        raise ValueError("init_from starts a new run; resume continues the one in out: pass one of them")
    if arch is not None and arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    t2i, out = Path(t2i), Path(out)
    if not (t2i / "model_index.json").exists() or not (t2i / "unet").is_dir():
        raise ValueError(f"t2i must be a pipeline folder that train-t2i wrote (model_index.json, unet/), got {str(t2i)!r}")
    if json.loads((t2i / "model_index.json").read_text(encoding="utf-8")).get("_class_name") != "StableDiffusionPipeline":
        raise ValueError(f"t2i must hold a StableDiffusionPipeline (what train-t2i writes), got {str(t2i)!r}")
    previous = None
    if resume:
        if not (out / "training.json").exists() or not (out / "model_index.json").exists():
            raise ValueError(f"resume needs a folder that train-t2v wrote at out (model_index.json and training.json), "
                             f"got {str(out)!r}")
        previous = json.loads((out / "training.json").read_text(encoding="utf-8"))
        was = previous.get("arch", "unet3d")  # folders written before the option are unet3d
        if arch is not None and arch != was:
            raise ValueError(f"arch must stay {was!r} (the resumed run's), got {arch!r}")
        arch = was
        if previous["steps_done"] >= steps:
            raise ValueError(f"steps must exceed the {previous['steps_done']} steps {str(out)!r} has done, got {steps}")
        for k, v in (("n_train", n_train), ("frames", frames)):
            if previous[k] != v:
                raise ValueError(f"{k} must stay {previous[k]} (the resumed run's), got {v}")
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"out must be a new or empty folder (or pass resume to continue it), got {str(out)!r}")
    if init_from is not None:
        init_from = Path(init_from)
        init_arch = arch_of(init_from)
        if init_arch is None:
            raise ValueError(f"init_from must be a folder train-t2v wrote (a {' or '.join(PIPELINE_OF.values())} "
                             f"with unet/), got {str(init_from)!r}")
        if arch is not None and arch != init_arch:
            raise ValueError(f"arch must be {init_arch!r} (init_from's UNet), got {arch!r}")
        arch = init_arch
    arch = arch or "unet3d"

    t_all = time.time()
    image_pipe = load_pipeline(t2i)
    vae, tok, enc = image_pipe.vae.eval(), image_pipe.tokenizer, image_pipe.text_encoder.eval()
    vae.requires_grad_(False)
    enc.requires_grad_(False)
    t2i_training = (json.loads((t2i / "training.json").read_text(encoding="utf-8"))
                    if (t2i / "training.json").exists() else {})
    if image_pipe.unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1) != 64:
        raise ValueError(f"t2i must render 64x64 images (the world's videos), got a UNet of side "
                         f"{image_pipe.unet.config.sample_size} over a VAE of {len(vae.config.block_out_channels)} levels")
    train = load_videos(0, n_train, 64, frames, log=log)
    n_simple = n_simple if simple_share else 0
    if n_simple:  # the curriculum's videos sit after the world's: indices n_train.. of every array below
        train = concat_videos([train, simple_videos(n_simple, 64, frames)])
        log(f"{n_simple} simple videos rendered; {simple_share:.0%} of each batch comes from them")
    lat = video_latents(vae, train.frames)
    log(f"latents {tuple(lat.shape[1:])} per video (C, F, h, w), {time.time() - t_all:.0f}s")
    fine = encode_texts(tok, enc, train.fine)
    coarse = encode_texts(tok, enc, train.coarse)
    empty = encode_texts(tok, enc, [""])[0]
    cell_map = object_cell_weights(train.occupied, lat.shape[-1], object_weight)

    if previous is None and init_from is not None:
        unet = load_video_unet(init_from, arch)
        init_training = json.loads((init_from / "training.json").read_text(encoding="utf-8"))
        inflation = {"init_from": str(init_from), "init_steps_done": init_training.get("steps_done")}
        log(f"video UNet from {init_from}/unet (step {inflation['init_steps_done']} of that run)")
    elif previous is None and arch == "motion":
        unet, inflation = motion_unet(image_pipe.unet, seed)
        log(f"video UNet from {t2i}/unet with {inflation['motion_output_projections_zeroed']} motion modules "
            f"({inflation['motion_parameters'] / 1e6:.2f}M parameters, output projections zeroed)")
    elif previous is None:
        unet, inflation = inflate_unet(image_pipe.unet, seed)
        log(f"video UNet from {t2i}/unet: {inflation['matched']} parameters matched by name, "
            f"{inflation['reshaped_1x1_conv_to_linear']} reshaped (1x1 conv -> linear), {inflation['fresh_temporal']} "
            f"temporal ones fresh ({inflation['temporal_output_projections_zeroed']} output projections zeroed)")
    if previous is None:
        ema = copy.deepcopy(unet)
        history: dict[str, list] = {"loss": [], "probes": []}
        settings = {"command": "python -m workbench.world train-t2v", "t2i": str(t2i),
                    "t2i_unet_steps_done": t2i_training.get("unet_steps_done"),
                    "t2i_prediction_type": t2i_training.get("prediction_type"),
                    "t2i_zero_snr": t2i_training.get("zero_snr", False),
                    "n_train": n_train, "train_seeds": [0, n_train - 1], "video_scenes": True, "frames": frames,
                    "size": 64, "steps": steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay,
                    "caption_drop": CAPTION_DROP, "coarse_share": COARSE_SHARE, "object_weight": object_weight,
                    "prediction_type": prediction_type, "zero_snr": zero_snr, "loss_weighting": "x0_floor",
                    "seed": seed, "arch": arch, "inflation": inflation, "frozen": ["vae", "text_encoder"],
                    "temporal_only": temporal_only, "motion_weight": motion_weight,
                    "high_noise_share": high_noise_share, "high_noise_t0": HIGH_NOISE_T0, "preview": PREVIEW,
                    "simple_share": simple_share, "n_simple": n_simple, "path_weight": path_weight}
        start, seconds_before = 0, 0.0
    else:
        history = previous["history"]
        settings = {k: v for k, v in previous.items()
                    if k not in ("steps_done", "train_seconds", "total_seconds", "history", "final", "heldout")}
        settings.update({"steps": steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay,
                         "temporal_only": temporal_only, "motion_weight": motion_weight,
                         "high_noise_share": high_noise_share, "simple_share": simple_share, "n_simple": n_simple,
                         "path_weight": path_weight})
        settings["resumed"] = [*previous.get("resumed", []), {"at_step": previous["steps_done"]}]
        ema = load_video_unet(out, arch)
        unet = copy.deepcopy(ema)
        start, seconds_before = previous["steps_done"], previous["train_seconds"]
        log(f"resuming {out} at step {start}")
    settings.update({"unet_parameters": sum(p.numel() for p in unet.parameters()), "torch_threads":
                     torch.get_num_threads(), "versions": {**_versions(), "diffusers": _diffusers_version()}})
    ema.eval().requires_grad_(False)
    unet.train().requires_grad_(True)
    if temporal_only and arch == "motion":  # AnimateDiff's recipe: the motion modules only
        for name, p in unet.named_parameters():
            p.requires_grad_("motion_modules" in name)
        settings["frozen"] = sorted({*settings["frozen"], "unet_spatial"})
    elif temporal_only:
        keep = motion_trainable(unet, image_pipe.unet.config.attention_head_dim)
        for name, p in unet.named_parameters():
            p.requires_grad_(name in keep)
        settings["frozen"] = sorted({*settings["frozen"], "unet_spatial_except_resplit_attention"})
    trained = [p for p in unet.parameters() if p.requires_grad]
    log(f"video UNet {settings['unet_parameters'] / 1e6:.2f}M parameters")
    sched = train_scheduler(settings["prediction_type"], settings["zero_snr"])
    snr = sched.alphas_cumprod / (1 - sched.alphas_cumprod)
    weight_t = timestep_weights(snr, settings["prediction_type"], "x0_floor")
    caption_gain = caption_probe(lat[:64].float(), tokenize(tok, train.fine[:64]), seed, n=min(16, n_train))
    direction_gains = {t: direction_probe(lat[:n_train], train.scenes[:n_train], tok, enc, seed, n=min(16, n_train), t=t)
                       for t in PROBE_TIMESTEPS}
    opt = torch.optim.AdamW(trained, lr=lr, weight_decay=1e-2)
    if path_weight:
        paths = path_targets(train.scenes, train.frames)
        log(f"path critic weight {path_weight:g}: {int(paths[2].sum())} objects' paths in {len(train.scenes)} videos")
    if previous is not None:
        if (out / TRAIN_STATE).exists():
            load_train_state(out / TRAIN_STATE, {"unet": unet}, opt)
            log(f"raw UNet weights and optimizer state from {out / TRAIN_STATE}")
        else:
            log(f"{out / TRAIN_STATE} missing: the raw UNet starts from the EMA weights, the optimizer afresh")
    gen = torch.Generator().manual_seed(seed * 1_000_003 + start + 1)  # a resumed run draws a fresh stream
    t0, running, k_run, running_path = time.time(), 0.0, 0, 0.0

    def checkpoint(step: int, final: bool) -> dict:
        training = {**settings, "steps_done": step, "train_seconds": round(seconds_before + time.time() - t0),
                    "total_seconds": round(time.time() - t_all), "history": history, "final": final}
        if final and n_heldout:
            from workbench.world.motion import motion_direction_accuracy, video_pipeline_renderer

            pipe = build_video_pipeline(vae, ema, tok, enc, settings["prediction_type"], settings["zero_snr"])
            res = motion_direction_accuracy(video_pipeline_renderer(pipe), n_heldout)
            training["heldout"] = {k: v for k, v in res.items() if k != "rows"}
            log("held-out motion: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items() if isinstance(v, float)))
        half = build_video_pipeline(vae, copy.deepcopy(ema).half(), tok, enc, settings["prediction_type"],
                                    settings["zero_snr"])

        def extra(folder: Path) -> None:
            _reshard_unet(half, folder)
            save_train_state(folder / TRAIN_STATE, {"unet": unet}, opt, step)

        save_pipeline(half, out, training, state=extra)
        log(f"saved {out} at step {step}")
        return training

    def probes(step: int) -> dict:
        entry = {"step": step, "caption_gain": round(caption_gain(ema, enc, sched, settings["prediction_type"]), 4)}
        for t, gain in direction_gains.items():
            if gain is not None:
                entry[direction_key(t)] = round(gain(ema, sched, settings["prediction_type"]), 4)
        gains = ", ".join(f"at t = {t} {entry.get(direction_key(t), float('nan')):+.4f}" for t in PROBE_TIMESTEPS)
        log(f"step {step}: EMA caption gain {entry['caption_gain']:+.4f}, direction gain {gains} (x0 error with "
            f"another caption / with the directions reversed, over the own - 1; 0 = ignored)")
        return entry

    step = start
    while step < steps:
        unet.train()
        for g in opt.param_groups:
            g["lr"] = _cosine_lr(step, steps, lr, warmup=min(100, steps // 10 + 1))
        idx = batch_indices(batch_size, n_train, n_simple, simple_share, gen)
        u = torch.rand(batch_size, generator=gen)
        cond = torch.where((u < COARSE_SHARE)[:, None, None], coarse[idx], fine[idx])
        cond = torch.where((u > 1 - CAPTION_DROP)[:, None, None], empty.expand_as(cond), cond).float()
        z0 = lat[idx].float()
        noise = torch.randn(z0.shape, generator=gen)
        t = sample_timesteps(batch_size, sched.config.num_train_timesteps, settings["high_noise_share"], gen)
        zt = sched.add_noise(z0, noise, t)
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        target = sched.get_velocity(z0, noise, t) if settings["prediction_type"] == "v_prediction" else noise
        err = pred - target
        loss = ((err ** 2).mean(1) * cell_map[idx]).mean((1, 2, 3))
        if settings.get("motion_weight"):  # the error's frame-to-frame change (see the docstring)
            change = ((err[:, :, 1:] - err[:, :, :-1]) ** 2).mean(1)
            loss = loss + settings["motion_weight"] * (change * cell_map[idx]).mean((1, 2, 3))
        loss = (loss * weight_t[t]).mean()
        if path_weight:
            kept = ~(u > 1 - CAPTION_DROP)
            if bool(kept.any()):
                x0 = implied_x0(zt[kept], pred[kept], sched, t[kept], settings["prediction_type"])
                critique = path_critic_loss(vae, x0, *(p[idx[kept]] for p in paths))
                loss = loss + path_weight * critique
                running_path += float(critique.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.mul_(decay).add_(p.detach(), alpha=1 - decay)
        running, k_run = running + float(loss.detach()), k_run + 1
        step += 1
        if step % 25 == 0 or step == steps:
            history["loss"].append({"step": step, "loss": round(running / k_run, 4),
                                    **({"path_critic": round(running_path / k_run, 4)} if path_weight else {}),
                                    "seconds": round(seconds_before + time.time() - t0)})
            log(f"step {step}/{steps} loss {running / k_run:.4f} "
                + (f"(path critic {running_path / k_run:.4f}) " if path_weight else "")
                + f"({time.time() - t0:.0f}s, {(step - start) / (time.time() - t0):.2f} steps/s)")
            running, k_run, running_path = 0.0, 0, 0.0
        if step % PROBE_EVERY == 0 or step == start + 1:
            history["probes"].append(probes(step))
        if max_minutes is not None and time.time() - t0 > 60 * max_minutes:
            log(f"stopping at step {step}: max_minutes {max_minutes} reached")
            break
        if stop_at is not None and step >= stop_at:
            log(f"stopping at step {step}: stop_at reached")
            break
        if step % checkpoint_every == 0 and step < steps:
            checkpoint(step, final=False)
    if not history["probes"] or history["probes"][-1]["step"] != step:  # the last state's probes, for the record
        history["probes"].append(probes(step))
    return checkpoint(step, final=True)


MAX_OBJECTS = 3  # a world scene holds 1-3 objects
PATH_SHARPNESS = 100.0  # softmax temperature over the palette's chroma directions (a pixel's soft colour)
PATH_CHROMA, PATH_CHROMA_SLOPE = 0.08, 40.0  # a pixel counts where its chroma is this long (soft threshold)
PATH_SCALE = 0.12  # the path error is measured in units of a slow object's travel
PATH_MIN_MASS = 8.0  # pixels: an object whose colour covers fewer in the true video (on average) is not followed


def _chroma(rgb):
    """RGB (..., 3) -> its deviation from grey (..., 3): the direction is the hue, the length the saturation."""
    return rgb - rgb.mean(-1, keepdim=True)


def palette_chroma():
    """(8, 3) unit chroma vectors of the world's colours, in the vocabulary's order, and their names."""
    import torch

    from workbench.world.vocabulary import load_vocabulary

    colours = load_vocabulary().colours
    c = _chroma(torch.tensor([colours[n] for n in colours], dtype=torch.float32))
    return c / c.norm(dim=-1, keepdim=True), list(colours)


def soft_paths(frames, which):
    """frames (N, F, 3, H, W) in [0, 1], which (N, K) palette indices -> each colour's centre in each frame (N, K,
    F, 2; x, y image fractions) and its mass (N, K, F; pixels). A pixel's soft colour is a softmax over the
    palette of its chroma's cosine with each colour's (the nearest hue, as motion.track reads it, made smooth),
    gated by its saturation; a colour missing from a frame puts its centre in the middle (one pixel's worth of
    weight sits there). The differentiable counterpart of motion.track."""
    import torch

    palette, _ = palette_chroma()
    chroma = _chroma(frames.movedim(2, -1))  # (N, F, H, W, 3)
    length = chroma.norm(dim=-1)
    # the cosine's denominator has a floor (PATH_CHROMA): near grey the hue is undefined, and 1 / length would
    # give those pixels gradients hundreds of times larger than an object's (measured: UNet gradient norms of 230)
    soft = torch.softmax(PATH_SHARPNESS * torch.einsum("nfhwc,pc->nfhwp", chroma, palette)
                         / (length[..., None] + PATH_CHROMA), -1)
    gate = torch.sigmoid((length - PATH_CHROMA) * PATH_CHROMA_SLOPE)
    w = torch.gather(soft * gate[..., None], -1, which[:, None, None, None, :].expand(*soft.shape[:-1], which.shape[1]))
    w = w.movedim(-1, 1)  # (N, K, F, H, W)
    h, wd = frames.shape[-2:]
    ys = (torch.arange(h, dtype=frames.dtype) + 0.5) / h
    xs = (torch.arange(wd, dtype=frames.dtype) + 0.5) / wd
    mass = w.sum((-1, -2))
    cx = ((w.sum(-2) * xs).sum(-1) + 0.5) / (mass + 1.0)
    cy = ((w.sum(-1) * ys).sum(-1) + 0.5) / (mass + 1.0)
    return torch.stack([cx, cy], -1), mass


def path_slopes(centres):
    """(N, K, F, 2) centres -> (N, K, 2): the least-squares slope over progress 0..1, i.e. the shift over the whole
    video (as motion.read_direction fits it)."""
    import torch

    f = centres.shape[-2]
    tt = torch.linspace(0.0, 1.0, f, dtype=centres.dtype)
    tt = tt - tt.mean()
    return (centres * tt[:, None]).sum(-2) / (tt ** 2).sum()


def path_targets(scenes: list[dict], frames: np.ndarray, batch: int = 64):
    """What the path critic asks for, per training video (Scene.to_dict() and its uint8 frames (N, F, H, W, 3)):
    for each of up to MAX_OBJECTS objects its colour's palette index (N, K), the shift its colour makes over the
    true video as soft_paths reads it (N, K, 2; a move's direction and distance, about 0 for still, bouncing and
    rotating objects, less where an object leaves the image), and which slots are followed (N, K): an object whose
    colour covers at least PATH_MIN_MASS pixels of the true frames on average."""
    import torch

    _, names = palette_chroma()
    which = torch.zeros(len(scenes), MAX_OBJECTS, dtype=torch.long)
    present = torch.zeros(len(scenes), MAX_OBJECTS, dtype=torch.bool)
    for i, scene in enumerate(scenes):
        for k, o in enumerate(scene["objects"][:MAX_OBJECTS]):
            which[i, k], present[i, k] = names.index(o["colour"]), True
    shifts, mass = torch.zeros(len(scenes), MAX_OBJECTS, 2), torch.zeros(len(scenes), MAX_OBJECTS)
    for s in range(0, len(scenes), batch):
        x = torch.from_numpy(np.ascontiguousarray(frames[s:s + batch])).float().permute(0, 1, 4, 2, 3) / 255.0
        centres, m = soft_paths(x, which[s:s + batch])
        shifts[s:s + batch], mass[s:s + batch] = path_slopes(centres), m.mean(-1)
    return which, shifts, present & (mass >= PATH_MIN_MASS)


def path_critic_loss(vae, x0, which, shifts, valid):
    """The path critic: clean video latents `x0` (N, C, F, h, w, scaled as the UNet sees them) are decoded frame by
    frame, each object's colour is followed with soft_paths, and the squared difference between the shift it makes
    and the one it makes in the true video (path_targets), in units of PATH_SCALE, is averaged over the followed
    objects. Differentiable in x0 (the decoder is frozen)."""
    n, c, f, h, w = x0.shape
    if not bool(valid.any()):
        return x0.sum() * 0.0
    images = decode_clean(vae, x0.movedim(2, 1).reshape(n * f, c, h, w))
    frames = images.reshape(n, f, *images.shape[1:])
    centres, _ = soft_paths(frames, which)
    err = ((path_slopes(centres) - shifts) ** 2).sum(-1) / PATH_SCALE ** 2
    return err[valid].mean()


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__


__all__ = ["PREVIEW", "train_t2v", "inflate_unet", "unet3d_config", "build_video_pipeline", "load_video_pipeline",
           "video_latents", "decode_video", "flip_directions", "direction_probe", "HELDOUT_SEED0"]
