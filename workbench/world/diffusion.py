"""The world's text-to-image model: a small latent diffusion model trained on CPU on world stills and captions
(`python -m workbench.world train-t2i`; assets/world/t2i/TRAINING.md).

Three parts, all diffusers / transformers classes, packaged with `save_pretrained` as a standard
`StableDiffusionPipeline` folder so the project's `diffusers-t2i` backend loads it unchanged:

- an `AutoencoderTiny` (64x64x3 stills <-> 32x32x12 latents) whose encoder is fixed to a rearrangement of 2x2
  pixel patches (all 12 values, rotated onto their principal components: lossless), and whose decoder is trained
  first, on reconstruction (a learned AutoencoderKL lost the world's small shapes within the CPU budget, and 4x4
  patches cut to 12 components capped what the classifier could read; see PATCHES);
- the small CLIP's `CLIPTextModel` with its tokenizer (assets/world/clip), by default first fine-tuned to read the
  scene cell by cell (text_scene.py) and then frozen while the UNet trains (`text_init`, `text_lr`; see TEXT_LR);
- a small `UNet2DConditionModel` on the latents with cross-attention over the text encoder's hidden states,
  trained with DDPM's noise-prediction loss (min-SNR weighted), fine and coarse captions, and 10% of captions
  dropped to "" so classifier-free guidance works; an exponential moving average of its weights is what ships.

Sampling uses DPM-Solver++ (`DPMSolverMultistepScheduler`) at a few steps.

`render_faithfulness` measures a renderer on held-out fine captions with the attribute classifier (the world's
ground-truth scorer): does the image show the caption's shape, colour and grid cell. Uses torch and diffusers
directly, never a backend module (the import-linter contract: the world stays below every tab)."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from workbench.world.data import HELDOUT_SEED0, concat_batches, load_scenes, simple_scenes
from workbench.world.train import _check_float, _check_int, _cosine_lr, _versions

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = REPO_ROOT / "assets" / "world" / "t2i"
CLIP_DIR = REPO_ROOT / "assets" / "world" / "clip"
IMAGE_SIZE = 64
DEFAULT_STEPS = 12
DEFAULT_GUIDANCE = 3.0
CAPTION_DROP = 0.1  # share of training captions replaced by "" (the unconditional branch of guidance)
COARSE_SHARE = 0.2  # share of training captions at the coarse level ("a red star"); the rest are fine
MIN_SNR_GAMMA = 5.0
PREDICTION_TYPES = ("epsilon", "v_prediction")
# How each timestep's error counts, stated as the weight of the error of the implied clean latent x0 (the noise
# error is snr times it, the velocity error snr + 1 times it): "min_snr" weighs x0 by min(snr, gamma), which at high
# noise (snr ~ 0.005 at t = 999) leaves almost no gradient on where objects go and what colour they are, the
# layout that only the caption can tell; "x0_floor" weighs it by min(snr + 1, gamma), never below plain x0
# regression. A UNet trained 2,403 steps with min_snr (epsilon) did not follow captions: its noise error was
# 0.0056 with the true caption against 0.0058 with an empty one.
LOSS_WEIGHTINGS = ("min_snr", "x0_floor")
OBJECT_WEIGHT = 3.0  # extra loss weight on latent positions in grid cells that hold an object (then renormalised)
MAX_EVAL = 2_000
# The small CLIP (assets/world/clip), trained contrastively, tells scenes apart by colours, shapes and backgrounds
# but barely by place: its hidden states for "a large red circle in the top left / top right, on a plain blue
# background" differ by 0.16 per token (norm 9.8), against 7-13 when only the colour changes. Frozen, it gave the
# UNet almost nothing to place objects by; trained with the UNet (text_lr, from the CLIP or from fresh weights), no
# run placed an object within 1,600 steps either (README). Fine-tuned first to read the scene (text_init "scene"),
# and frozen, it did (TRAINING.md). TEXT_LR: the peak rate when the text encoder trains with the UNet.
TEXT_LR = 1e-3
# "scene" (the default): the CLIP's text encoder is first fine-tuned to read scenes cell by cell (text_scene.py),
# then frozen (text_lr 0) while the UNet trains; "clip": the CLIP's weights as they are; "random": fresh weights.
TEXT_INITS = ("clip", "random", "scene")
TEXT_SCENE_STEPS = 600
HIGH_NOISE_T0 = 800
HIGH_NOISE_SHARE = 0.0
SHAPE_CRITIC = REPO_ROOT / "assets" / "world" / "shape_critic"  # train-t2i --shape-weight's reader (not the scorer)
SHAPE_LOSSES = ("features", "labels")  # what the shape critic compares (shape_critic_loss)
SHAPE_T_MAX = 700  # the shape critic judges clean-latent guesses from timesteps below this
N_SIMPLE = 3_000  # one-object scenes of the curriculum (train-t2i --simple-share)
# A fresh text encoder's token embeddings start at this standard deviation, not CLIP's 0.02: with 0.02 its hidden
# states for "top left" and "top right" differ by 2.0 at the word "left" (norm 9.8) and by 0.2-0.7 at the 62
# padding positions that fill the 77; with 1.0 by 12.0, each word its own direction from the first step.
TEXT_TOKEN_STD = 1.0
# The latent: a learned AutoencoderKL (3 blocks, 16x16 latents) did not keep the world's small shapes within the
# CPU budget (held-out reconstructions read by the classifier: 4 channels, 700 steps: shape 0.095, colour 0.307;
# 16 channels, 1,000 steps on crops: shape 0.185, colour 0.389), so the encoder is a fixed, lossless rearrangement
# of 4x4 patches (AutoencoderTiny with its weights set) and only the decoder is trained. With all 48 patch values
# as latent channels the UNet (48 channels wide at the top) could not even pass its input through (noise-prediction
# error 0.147 at t=999 against 0.008 for returning x_t, after 1,000 steps; measured), so the latent keeps the
# patches' 12 principal components. Those 12 of 48 components, even after the decoder's training, capped the
# classifier's shape reading of held-out reconstructions at 0.388 (stills: 0.861), so the default is now 2x2
# patches with all 12 values (lossless, 32x32 latents): 600 decoder steps already read shape 0.683, colour 0.975,
# position 0.990 (200 held-out stills, 401 objects; stills 0.865 / 0.990 / 0.998). The UNet then runs at 32x32
# with no attention at that level (ATTENTION_MAX_SIDE): 1.35 s a training step at batch 32 on one core (4.18 M
# parameters, widths 32, 64, 128), against 2.84 s for the former layout (attention on the 32x32 and 16x16 levels)
PATCHES = (2, 4)  # pixel patch sides the fixed encoder can rearrange (one or two halvings)
LATENT_CHANNELS = 12  # principal components of the patches kept as latent channels
PATCH_GAIN = 0.25
ATTENTION_MAX_SIDE = 16  # UNet levels with a larger map have no attention (see unet_config)
VAE_CROP = 32  # the decoder trains on 32x32 crops (4x cheaper a step than whole stills)


# -- the parts ------------------------------------------------------------------------------------------------
def patch_values(patch: int) -> int:
    """Values in one patch x patch pixel patch (3 colours)."""
    return 3 * patch * patch


def _check_patch(patch) -> int:
    if patch not in PATCHES:
        raise ValueError(f"patch must be one of {PATCHES}, got {patch!r}")
    return patch


def vae_config(channels: Sequence[int] = (48, 48, 48), patch: int = 4, latent_channels: int = LATENT_CHANNELS) -> dict:
    """diffusers' AutoencoderTiny: the encoder is linear convolutions (no blocks), one per halving, that
    `set_patch_encoder` fixes to a rearrangement of each patch x patch pixel patch into 3 * patch**2 channels followed by
    a projection onto the patches' principal components; the decoder (blocks of conv-ReLU, nearest upsampling) is
    trained. `channels`: the decoder's width (DecoderTiny keeps one), one entry per level (log2(patch) + 1)."""
    _check_patch(patch)
    levels = patch.bit_length()  # 2 -> 2 levels (one halving), 4 -> 3 levels
    if len(channels) != levels:
        raise ValueError(f"vae_channels must hold {levels} widths for patch {patch}, got {tuple(channels)!r}")
    return dict(in_channels=3, out_channels=3, latent_channels=latent_channels,
                encoder_block_out_channels=(patch_values(patch),) * levels, num_encoder_blocks=(0,) * levels,
                decoder_block_out_channels=tuple(channels), num_decoder_blocks=(1,) * levels, act_fn="relu",
                upsampling_scaling_factor=2, upsample_fn="nearest", scaling_factor=1.0)


def _vae_patch(vae) -> int:
    return 2 ** (len(vae.config.encoder_block_out_channels) - 1)


def set_space_to_depth(vae) -> None:
    """Set the encoder's convolutions so that they map a 64x64 still in [-1, 1] to its grid of p x p patches (p = 2
    or 4, from the encoder's number of halvings); for p = 4, channel 12 * (2 * a2 + b2) + 3 * (2 * a1 + b1) + c =
    pixel (4i + 2 a2 + a1, 4j + 2 b2 + b1), colour c (for p = 2, channel 3 * (2 * a1 + b1) + c = pixel
    (2i + a1, 2j + b1)), in [0, 1] minus 0.5 (lossless); the last one to the identity on the first channels."""
    import torch

    conv_in, *downs, conv_out = vae.encoder.layers
    with torch.no_grad():
        for conv in (conv_in, *downs, conv_out):
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
        for c in range(3):
            conv_in.weight[c, c, 1, 1] = 1.0
        for level, down in enumerate(downs):
            k = 3 * 4 ** level
            for a in range(2):
                for b in range(2):
                    for c in range(k):
                        down.weight[k * (2 * a + b) + c, c, 1 + a, 1 + b] = 1.0
        conv_in.bias[:3] = -0.5  # the encoder sees pixels in [0, 1]
        for c in range(min(conv_out.out_channels, conv_out.in_channels)):
            conv_out.weight[c, c, 1, 1] = 1.0
    vae.encoder.requires_grad_(False)


def patches_of(images: np.ndarray, patch: int):
    """(N, 64, 64, 3) uint8 -> (N * (64 / patch)**2, 3 * patch**2) doubles in [-0.5, 0.5], each row one patch in
    the channel order `set_space_to_depth` gives."""
    x = (to_pixels(images) + 1) / 2 - 0.5  # (N, 3, 64, 64)
    n, levels, g = x.shape[0], patch.bit_length() - 1, IMAGE_SIZE // patch
    x = x.reshape(n, 3, g, *([2] * levels), g, *([2] * levels))
    # axes: 0 n, 1 c, 2 i, 3.. a_L..a_1, then j, then b_L..b_1 -> n, i, j, a_L, b_L, ..., a_1, b_1, c
    a_axes, j_axis = list(range(3, 3 + levels)), 3 + levels
    b_axes = list(range(j_axis + 1, j_axis + 1 + levels))
    order = [0, 2, j_axis] + [ax for pair in zip(a_axes, b_axes) for ax in pair] + [1]
    return x.permute(*order).reshape(-1, patch_values(patch)).double()


def set_patch_encoder(vae, images: np.ndarray) -> dict:
    """`set_space_to_depth`, then the last convolution projects each patch onto the encoder's latent_channels
    principal components of the training stills' patches (centred, scaled by PATCH_GAIN so the decoder's input
    clamp, tanh(x / 3) * 3, stays near linear). Returns the share of patch variance the components keep."""
    import torch

    set_space_to_depth(vae)
    conv_out = vae.encoder.layers[-1]
    k = conv_out.out_channels
    with torch.no_grad():
        conv_out.weight.zero_()
        p = patches_of(images, _vae_patch(vae))
        mean = p.mean(0)
        u, sv, vt = torch.linalg.svd(p - mean, full_matrices=False)
        comps = vt[:k]  # (k, values)
        kept = float((sv[:k] ** 2).sum() / (sv ** 2).sum())
        conv_out.weight[:, :, 1, 1] = (PATCH_GAIN * comps).float()
        conv_out.bias[:] = (-PATCH_GAIN * comps @ mean).float()
    vae.encoder.requires_grad_(False)
    return {"patch": _vae_patch(vae), "latent_channels": k, "patch_variance_kept": kept}


def whiten_latents(vae, images: np.ndarray) -> dict:
    """Scale each latent channel of a patch-encoder VAE to the same spread (the mean of the channels' standard
    deviations over `images`), and undo the scale in the decoder's first convolution, so the decoded image is
    unchanged (up to the decoder's input clamp, tanh(x / 3) * 3, near linear at these sizes). Why: the patches'
    principal components differ 36-fold in spread (colour means ~0.13, edge components down to ~0.004), and with one
    noise level for all channels the edge channels are drowned early in the forward process and barely count in the
    loss; the UNet then leaves noise in them (generated edge channels 1.4-3.4 times the true spread) and draws
    blobs. Returns the channels' spreads before, the target and the gains. Whitening a whitened VAE changes nothing."""
    import torch

    std = encode_latents(vae, to_pixels(images)).double().std((0, 2, 3))
    target = float(std.mean())
    gain = (target / std).float()
    with torch.no_grad():
        conv = vae.encoder.layers[-1]
        conv.weight.mul_(gain[:, None, None, None])
        conv.bias.mul_(gain)
        vae.decoder.layers[0].weight.div_(gain[None, :, None, None])
    return {"std_before": [round(float(v), 5) for v in std], "target": round(target, 5),
            "gains": [round(float(v), 4) for v in gain]}


def unet_config(channels: Sequence[int] = (64, 96, 128), cross_attention_dim: int = 96, sample_size: int = 16,
                latent_channels: int = LATENT_CHANNELS) -> dict:
    """One level per width (3 or 4), one ResNet layer each; cross-attention (with self-attention) on the levels whose
    map side is at most ATTENTION_MAX_SIDE (at 32x32, attention over 1,024 positions would cost more than the rest
    of the step). A fourth level takes the 32x32 latents down to 4x4, where a 3x3 convolution's zero padding tells a
    corner from an edge from the middle: the absolute place a caption's "in the top left" needs, which the
    convolutions and attention (no position embedding) otherwise have to infer from far-away borders."""
    sides = [sample_size // 2 ** i for i in range(len(channels))]
    attend = [side <= ATTENTION_MAX_SIDE for side in sides]
    return dict(sample_size=sample_size, in_channels=latent_channels, out_channels=latent_channels, layers_per_block=1,
                block_out_channels=tuple(channels),
                down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attend),
                up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attend)),
                cross_attention_dim=cross_attention_dim, attention_head_dim=4, norm_num_groups=16)


def train_scheduler(prediction_type: str = "epsilon", zero_snr: bool = False):
    """DDPM's scaled-linear betas; `zero_snr` rescales them so the last timestep is pure noise (Lin et al. 2024,
    "Common diffusion noise schedules and sample steps are flawed"). Without it x_999 keeps sqrt(0.0047) = 0.068 of
    the latent: a faint copy of the scene's layout that a UNet can read instead of the caption, and at sampling,
    which starts from pure noise, it then places objects where the noise happens to look like them."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         prediction_type=prediction_type, clip_sample=False, rescale_betas_zero_snr=zero_snr)


def sample_scheduler(prediction_type: str = "epsilon", zero_snr: bool = False):
    """DPM-Solver++ (2nd order) on the training betas; with `zero_snr`, trailing timesteps so the first step is
    t = 999, the pure-noise step the model was trained on."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", prediction_type=prediction_type,
                                       algorithm_type="dpmsolver++", solver_order=2,
                                       timestep_spacing="trailing" if zero_snr else "linspace",
                                       steps_offset=0 if zero_snr else 1, rescale_betas_zero_snr=zero_snr)


def load_text_encoder(clip_dir: str | Path = CLIP_DIR):
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(clip_dir))
    enc = CLIPTextModel.from_pretrained(str(clip_dir)).eval()
    enc.requires_grad_(False)
    return tok, enc


def to_pixels(images: np.ndarray):
    """(N, H, W, 3) uint8 -> (N, 3, H, W) floats in [-1, 1] (the VAE's range)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def encode_latents(vae, pixels, batch_size: int = 256):
    """(N, 3, 64, 64) pixels in [-1, 1] -> the VAE encoder's latents (unscaled), in batches, without gradients."""
    import torch

    with torch.inference_mode():
        return torch.cat([vae.encode(pixels[i:i + batch_size]).latents for i in range(0, len(pixels), batch_size)])


def tokenize(tok, texts: Sequence[str]):
    """Token ids (N, 77) as the pipeline computes them: padded to the tokenizer's 77 positions, truncated there."""
    return tok(list(texts), padding="max_length", max_length=tok.model_max_length, truncation=True,
               return_tensors="pt").input_ids


def encode_texts(tok, enc, texts: Sequence[str], batch_size: int = 256):
    """Hidden states (N, 77, hidden) as the pipeline computes them (padded to the tokenizer's 77 positions)."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            out.append(enc(tokenize(tok, texts[i:i + batch_size]))[0].half())
    return torch.cat(out)


def build_pipeline(vae, unet, tok, enc, prediction_type: str = "epsilon", zero_snr: bool = False):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=enc, tokenizer=tok, unet=unet,
                                   scheduler=sample_scheduler(prediction_type, zero_snr),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_pipeline(pipe, out: str | Path, training: dict, state: Callable[[Path], None] | None = None) -> Path:
    """Write the pipeline folder (safetensors only) plus training.json (and whatever `state(folder)` writes into
    it); replaces `out` as a whole, so a reader never sees half a checkpoint's files."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    keep = [f for f in out.iterdir() if f.suffix == ".md"] if out.exists() else []  # TRAINING.md stays
    for f in keep:
        shutil.copy2(f, tmp / f.name)
    (tmp / "training.json").write_text(json.dumps(training, indent=1) + "\n", encoding="utf-8")
    if state is not None:
        state(tmp)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def load_pipeline(path: str | Path = SHIPPED, pipeline_class: str = "StableDiffusionPipeline"):
    """A pipeline folder the world's trainers wrote, in float32, progress bars off. `pipeline_class`: the diffusers
    class that loads it (the video trainer's folders are TextToVideoSDPipeline)."""
    import diffusers
    import torch

    path = Path(path)
    if not (path / "model_index.json").exists():
        raise ValueError(f"path must be a diffusers pipeline folder holding model_index.json, got {str(path)!r}")
    pipe = getattr(diffusers, pipeline_class).from_pretrained(str(path), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -- training -------------------------------------------------------------------------------------------------
def fit_decoder(vae, lat, x_all, steps: int, batch_size: int, lr: float, seed: int,
                log: Callable[[str], None] = print) -> tuple[list, float]:
    """Train `vae`'s decoder on L1 + MSE reconstruction of random VAE_CROP x VAE_CROP crops of the stills `x_all`
    from the matching crops of their latents `lat` (the encoder is fixed). Returns (loss history, seconds)."""
    import torch
    import torch.nn.functional as F

    vae.decoder.train().requires_grad_(True)
    opt = torch.optim.AdamW(vae.decoder.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    c, f = VAE_CROP, IMAGE_SIZE // lat.shape[-1]
    t0, running, history = time.time(), 0.0, []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = _cosine_lr(step, steps, lr, warmup=min(50, steps // 10 + 1))
        idx = torch.randint(0, len(x_all), (batch_size,), generator=gen)
        oy, ox = (f * torch.randint(0, (IMAGE_SIZE - c) // f + 1, (2,), generator=gen)).tolist()
        rec = vae.decode(lat[idx, :, oy // f:(oy + c) // f, ox // f:(ox + c) // f]).sample
        x = x_all[idx, :, oy:oy + c, ox:ox + c]
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.decoder.parameters(), 1.0)
        opt.step()
        running += float(loss.detach())
        if (step + 1) % 50 == 0 or step + 1 == steps:
            k = 50 if (step + 1) % 50 == 0 else (step + 1) % 50
            history.append({"step": step + 1, "loss": round(running / k, 4), "seconds": round(time.time() - t0)})
            log(f"decoder step {step + 1}/{steps} loss {running / k:.4f} ({time.time() - t0:.0f}s)")
            running = 0.0
    vae.eval().requires_grad_(False)
    return history, time.time() - t0


def train_t2i(out: str | Path = SHIPPED, n_train: int = 7_000, vae_steps: int = 2_000, unet_steps: int = 3_000,
              vae_batch: int = 32, batch_size: int = 32, vae_lr: float = 1.5e-3, lr: float = 1e-3,
              vae_channels: Sequence[int] = (48, 48), unet_channels: Sequence[int] = (32, 64, 128),
              ema_decay: float = 0.999, checkpoint_every: int = 600, n_heldout: int = 100, seed: int = 0,
              clip_dir: str | Path = CLIP_DIR, workers: int = 1, patch: int = 2,
              latent_channels: int = LATENT_CHANNELS, resume: str | Path | None = None,
              max_minutes: float | None = None, prediction_type: str = "v_prediction",
              loss_weighting: str = "x0_floor", object_weight: float = OBJECT_WEIGHT, zero_snr: bool = True,
              text_lr: float = 0.0, text_init: str = "scene", high_noise_share: float = HIGH_NOISE_SHARE,
              text_scene_steps: int = TEXT_SCENE_STEPS, vae_from: str | Path | None = None,
              high_noise_steps: int | None = None, high_noise_share_after: float = 0.0,
              grounding_weight: float = 0.0, grounding_from: int = 0, whiten: bool = False,
              simple_share: float = 0.0, n_simple: int = N_SIMPLE, shape_weight: float = 0.0,
              shape_critic: str | Path = SHAPE_CRITIC, shape_t_max: int = SHAPE_T_MAX,
              shape_loss: str = "features", log: Callable[[str], None] = print) -> dict:
    """Train the VAE, then the UNet on its latents; writes the pipeline to `out` every `checkpoint_every` UNet
    steps (the EMA weights) and at the end, with training.json (settings, losses, times, held-out results) and
    train_state.safetensors (the raw UNet and AdamW's moments, so a run can continue; never shipped).

    `resume`: a folder an earlier run wrote; its VAE (decoder trained), UNet (EMA and raw weights), optimizer state,
    step count, history and architecture are taken from it (vae_steps, the widths, patch and latent_channels
    are then ignored) and training continues to `unet_steps` in all, on the same cosine schedule.
    `max_minutes`: stop the UNet early after this much time and write the final checkpoint there.
    `prediction_type`: what the UNet predicts, "epsilon" (the noise) or "v_prediction" (the velocity, which keeps
    weight on the scene's layout at high noise, where the noise error barely depends on the caption).
    `loss_weighting`: see LOSS_WEIGHTINGS. `object_weight`: latent positions in the grid cells that hold an object
    weigh 1 + object_weight against 1 elsewhere (each image's map renormalised to mean 1), so the objects, a small
    share of the pixels, are not drowned by the background. Every 200 steps the log shows the caption gain: how
    much larger the x0 error is with another scene's caption than with the own (0 = the caption is ignored), and
    the place hits: at how many of the nine places the caption's place moves the t=999 prediction (place_probe).
    `zero_snr`: the noise schedule ends in pure noise (see train_scheduler); needs v_prediction.
    `whiten`: give every latent channel the same spread (whiten_latents), the fresh patch encoder's or the one
    `vae_from` brings (whose decoder then takes the inverse gains).
    `text_lr`: the text encoder (the small CLIP's, which the pipeline ships) is fine-tuned with the UNet at this
    peak learning rate (0: frozen, as Stable Diffusion keeps CLIP). See TEXT_LR for why it is not frozen here;
    its EMA weights ship with the UNet's. `text_init`: the text encoder starts from the CLIP's weights ("clip") or
    from fresh random weights of the same architecture ("random"; needs text_lr > 0). `high_noise_share`: that share
    of each batch draws its timestep from [HIGH_NOISE_T0, 999], where only the caption can tell where objects go
    (see sample_timesteps); the rest from all 1,000. `high_noise_steps`: the share applies to UNet steps before
    this one only (counted over resumes; None: all), `high_noise_share_after` from there on (the layout is learned
    early at a high share, the shapes later at a low one). `grounding_weight`: weight of the token grounding loss
    (grounding.py: each object's colour and shape word should draw its cross-attention into the object's cell; 0:
    off), from UNet step `grounding_from` on (counted over resumes). `text_init` "scene" first fine-tunes the
    CLIP's text encoder `text_scene_steps` steps to read each grid cell's object from the caption
    (text_scene.pretrain_scene_text; its held-out reading accuracy is recorded). `vae_from`: a folder an earlier
    run wrote whose VAE (trained decoder, scaling factor) is reused instead of training one (vae_steps is then
    ignored; the encoder is the same fixed rearrangement of the same stills).
    `simple_share`: that share of each batch comes from `n_simple` one-object scenes on plain backgrounds
    (data.simple_scenes), a curriculum where the shape is all there is to draw; 0: world scenes only.
    `shape_weight`: weight of the shape critic's loss (shape_critic_loss: the image the UNet's clean-latent guess
    decodes to is read by the attribute-classifier network in `shape_critic`; `shape_loss` "features": its cell
    features should match the true image's, "labels": its shape reading should be the caption's), for fine
    captions at timesteps below `shape_t_max`; 0: off. The critic is a second reader trained
    apart from the shipped scorer (other seeds, widths and scenes), so that the scorer still measures the renders."""
    import torch
    from diffusers import AutoencoderTiny, UNet2DConditionModel

    _check_int("n_train", n_train, 16, 200_000)
    _check_int("vae_steps", vae_steps, 1, 1_000_000)
    _check_int("unet_steps", unet_steps, 1, 1_000_000)
    _check_int("vae_batch", vae_batch, 1, 1024)
    _check_int("batch_size", batch_size, 1, 1024)
    _check_float("vae_lr", vae_lr, 0.0, 1.0)
    _check_float("lr", lr, 0.0, 1.0)
    _check_float("ema_decay", ema_decay, 0.0, 1.0)
    _check_range("text_lr", text_lr, 0, 1, " (0: the text encoder stays frozen)")
    _check_range("high_noise_share", high_noise_share, 0, 1)
    if not isinstance(whiten, bool):
        raise ValueError(f"whiten must be true or false, got {whiten!r}")
    _check_range("high_noise_share_after", high_noise_share_after, 0, 1)
    _check_range("grounding_weight", grounding_weight, 0, 100, " (0: off)")
    _check_range("simple_share", simple_share, 0, 0.9, " (0: world scenes only)")
    _check_int("n_simple", n_simple, 16, 200_000)
    _check_int("grounding_from", grounding_from, 0, 1_000_000)
    _check_range("shape_weight", shape_weight, 0, 100, " (0: off)")
    _check_int("shape_t_max", shape_t_max, 1, 1_000)
    if shape_loss not in SHAPE_LOSSES:
        raise ValueError(f"shape_loss must be one of {SHAPE_LOSSES}, got {shape_loss!r}")
    if shape_weight and not (Path(shape_critic) / "config.json").exists():
        raise ValueError(f"shape_critic must be a folder that train-classifier wrote (config.json and "
                         f"model.safetensors), got {str(shape_critic)!r}")
    if high_noise_steps is not None:
        _check_int("high_noise_steps", high_noise_steps, 1, 1_000_000)
    if text_init not in TEXT_INITS:
        raise ValueError(f"text_init must be one of {TEXT_INITS}, got {text_init!r}")
    _check_int("text_scene_steps", text_scene_steps, 1, 1_000_000)
    if vae_from is not None and not (Path(vae_from) / "vae" / "config.json").exists():
        raise ValueError(f"vae_from must be a folder that train-t2i wrote (with vae/), got {str(vae_from)!r}")
    if text_init == "random" and not text_lr:
        raise ValueError("text_init 'random' needs text_lr > 0 (a frozen random text encoder would ship untrained)")
    _check_int("checkpoint_every", checkpoint_every, 1, 1_000_000)
    _check_int("n_heldout", n_heldout, 0, MAX_EVAL)
    _check_int("seed", seed, 0, 2**31 - 1)
    _check_patch(patch)
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
    if zero_snr not in (True, False):
        raise ValueError(f"zero_snr must be true or false, got {zero_snr!r}")
    if zero_snr and prediction_type != "v_prediction":
        raise ValueError(f"zero_snr needs prediction_type v_prediction (the noise cannot be predicted from pure "
                         f"noise), got {prediction_type!r}")
    if loss_weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {loss_weighting!r}")
    _check_range("object_weight", object_weight, 0, 100)
    _check_int("latent_channels", latent_channels, 1, patch_values(patch))
    if max_minutes is not None:
        _check_float("max_minutes", max_minutes, 0.0, 100_000.0)
    for name, ch, counts in (("vae_channels", vae_channels, (patch.bit_length(),)),
                             ("unet_channels", unet_channels, (3, 4))):
        if (len(ch) not in counts or not all(isinstance(c, int) and 8 <= c <= 1024 and c % 8 == 0 for c in ch)):
            n = " or ".join(map(str, counts))
            raise ValueError(f"{name} must be {n} integers in [8, 1024], each a multiple of 8, got {tuple(ch)!r}")
    if len(set(vae_channels)) != 1:
        raise ValueError(f"vae_channels must be equal widths (DecoderTiny keeps one width), got {tuple(vae_channels)!r}")
    if any(c % 16 for c in unet_channels):
        raise ValueError(f"unet_channels must be multiples of 16 (16 norm groups), got {tuple(unet_channels)!r}")
    previous = None
    if resume is not None:
        resume = Path(resume)
        if not (resume / "model_index.json").exists() or not (resume / "training.json").exists():
            raise ValueError(f"resume must be a folder that train-t2i wrote (model_index.json and training.json), "
                             f"got {str(resume)!r}")
        previous = json.loads((resume / "training.json").read_text(encoding="utf-8"))
        if previous["unet_steps_done"] >= unet_steps:
            raise ValueError(f"unet_steps must exceed the {previous['unet_steps_done']} steps {str(resume)!r} has "
                             f"done, got {unet_steps}")
        if previous["n_train"] != n_train:
            raise ValueError(f"n_train must stay {previous['n_train']} (the resumed run's), got {n_train}")
    t_all = time.time()
    train = load_scenes(0, n_train, workers=workers, log=log)
    tok, enc = load_text_encoder(clip_dir)
    if text_init == "random" and previous is None:
        torch.manual_seed(seed + 2)
        enc = type(enc)(enc.config).eval().requires_grad_(False)  # the CLIP's architecture, fresh weights
        torch.nn.init.normal_(enc.get_input_embeddings().weight, std=TEXT_TOKEN_STD)
    text_scene = None
    if text_init == "scene" and previous is None:
        from workbench.world.text_scene import pretrain_scene_text

        held = load_scenes(HELDOUT_SEED0, min(500, 5 * n_heldout), workers=workers, log=log) if n_heldout else None
        text_scene = pretrain_scene_text(enc, tokenize(tok, train.fine), train, text_scene_steps, seed,
                                         tokenize(tok, held.fine) if held else None, held, log=log)
        enc.requires_grad_(False)
    n_simple = n_simple if simple_share else 0
    if n_simple:  # the curriculum's scenes sit after the world's: indices n_train.. of every array below
        train = concat_batches([train, simple_scenes(n_simple)])
        log(f"{n_simple} simple scenes rendered; {simple_share:.0%} of each batch comes from them")
    x_all = to_pixels(train.images)
    if previous is None:
        history: dict[str, list] = {"vae": [], "unet": []}
        settings = {"command": "python -m workbench.world train-t2i", "n_train": n_train,
                    "train_seeds": [0, n_train - 1], "vae_steps": vae_steps, "unet_steps": unet_steps,
                    "vae_batch": vae_batch, "batch_size": batch_size, "vae_lr": vae_lr, "lr": lr,
                    "vae_channels": list(vae_channels), "unet_channels": list(unet_channels), "ema_decay": ema_decay,
                    "caption_drop": CAPTION_DROP, "coarse_share": COARSE_SHARE, "min_snr_gamma": MIN_SNR_GAMMA,
                    "patch": patch, "latent_channels": latent_channels, "vae_crop": VAE_CROP, "seed": seed,
                    "prediction_type": prediction_type, "loss_weighting": loss_weighting,
                    "object_weight": object_weight, "zero_snr": zero_snr,
                    "torch_threads": torch.get_num_threads(), "text_lr": text_lr, "text_init": text_init,
                    "high_noise_share": high_noise_share, "high_noise_t0": HIGH_NOISE_T0,
                    "high_noise_steps": high_noise_steps, "high_noise_share_after": high_noise_share_after,
                    "grounding_weight": grounding_weight, "grounding_from": grounding_from,
                    "simple_share": simple_share, "n_simple": n_simple, **_shape_settings(shape_weight,
                                                                                          shape_critic, shape_t_max,
                                                                                          shape_loss),
                    "text_encoder": (f"{clip_dir}'s architecture and tokenizer, fresh weights trained with the UNet"
                                     if text_init == "random" else
                                     f"{clip_dir}, fine-tuned to read scenes ({text_scene_steps} steps), then "
                                     f"{'fine-tuned with the UNet' if text_lr else 'frozen'}"
                                     if text_init == "scene" else
                                     f"{clip_dir} ({'fine-tuned with the UNet' if text_lr else 'frozen'})"),
                    "text_scene": text_scene,
                    "versions": _versions()}
        # 1. the autoencoder: the encoder fixed (space to depth + principal components), the decoder trained on
        #    reconstruction of random crops (their latents are the matching crops of the image's latent)
        torch.manual_seed(seed)
        if vae_from is not None:
            vae = AutoencoderTiny.from_pretrained(str(Path(vae_from) / "vae")).eval().requires_grad_(False)
            earlier = json.loads((Path(vae_from) / "training.json").read_text(encoding="utf-8"))
            for key in ("vae_steps", "vae_batch", "vae_lr", "vae_channels", "patch", "latent_channels",
                        "patch_encoder", "vae_heldout"):
                if key in earlier:
                    settings[key] = earlier[key]
            settings["vae_from"] = str(vae_from)
            history["vae"], vae_seconds = earlier.get("history", {}).get("vae", []), earlier.get("vae_seconds", 0)
            n_heldout_vae = 0  # its held-out reconstructions were measured by the run that trained it
            if whiten:  # the decoder's first convolution absorbs the gains; measure the reconstructions again
                settings["whiten"] = whiten_latents(vae, train.images[:2_000])
                log(f"latent channels whitened: {settings['whiten']}")
                n_heldout_vae = n_heldout
            lat = encode_latents(vae, x_all)
        else:
            vae = AutoencoderTiny(**vae_config(vae_channels, patch, latent_channels))
            settings["patch_encoder"] = set_patch_encoder(vae, train.images[:2_000])
            log(f"patch encoder: {settings['patch_encoder']}")
            if whiten:
                settings["whiten"] = whiten_latents(vae, train.images[:2_000])
                log(f"latent channels whitened: {settings['whiten']}")
            lat = encode_latents(vae, x_all)
            history["vae"], vae_seconds = fit_decoder(vae, lat, x_all, vae_steps, vae_batch, vae_lr, seed, log)
            n_heldout_vae = n_heldout
        if n_heldout_vae:
            settings["vae_heldout"] = reconstruction_faithfulness(vae, min(n_heldout, 500))
            log("held-out reconstructions read by the classifier: "
                + ", ".join(f"{k} {v:.3f}" for k, v in settings["vae_heldout"].items() if isinstance(v, float)))
        # 2. the scale that makes the latents unit variance (the pipeline divides by it before decoding)
        scale = float(1.0 / lat.std())
        vae.register_to_config(scaling_factor=scale)
        lat = (lat * scale).contiguous()
        unet_seconds_before, start = 0.0, 0
    else:
        history = previous["history"]
        settings = {k: v for k, v in previous.items()
                    if k not in ("unet_steps_done", "vae_seconds", "unet_seconds", "total_seconds", "history",
                                 "final", "heldout")}
        settings.update({"unet_steps": unet_steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay,
                         "text_lr": text_lr, "high_noise_share": high_noise_share, "high_noise_t0": HIGH_NOISE_T0,
                         "high_noise_steps": high_noise_steps, "high_noise_share_after": high_noise_share_after,
                         "grounding_weight": grounding_weight, "grounding_from": grounding_from,
                         "simple_share": simple_share, "n_simple": n_simple,
                         **_shape_settings(shape_weight, shape_critic, shape_t_max, shape_loss),
                         "torch_threads": torch.get_num_threads(), "versions": _versions()})
        if text_lr and "frozen" in settings.get("text_encoder", "frozen"):
            settings["text_encoder"] = (f"{settings.get('text_encoder', CLIP_DIR)}, fine-tuned with the UNet from "
                                        f"step {previous['unet_steps_done']}")
        settings.setdefault("prediction_type", "epsilon")  # folders written before the option predicted the noise
        settings.setdefault("loss_weighting", "min_snr")  # ... and used min-SNR weights without object weights
        settings.setdefault("object_weight", 0.0)
        settings.setdefault("zero_snr", False)
        settings["resumed"] = [*previous.get("resumed", []),
                               {"from": str(resume), "at_step": previous["unet_steps_done"]}]
        vae = AutoencoderTiny.from_pretrained(str(resume / "vae")).eval().requires_grad_(False)
        scale = float(vae.config.scaling_factor)
        lat = encode_latents(vae, x_all) * scale
        vae_seconds, unet_seconds_before = previous["vae_seconds"], previous["unet_seconds"]
        start = previous["unet_steps_done"]
        log(f"resuming {resume} at UNet step {start}")
    log(f"latents {tuple(lat.shape[1:])}, scaling factor {scale:.4f}")

    # 3. captions -> token ids, fine and coarse, and the empty caption; the text encoder runs in every step (it
    #    may be trained), and a resumed run continues the text encoder it shipped (its EMA weights)
    if previous is not None:
        from transformers import CLIPTextModel

        enc = CLIPTextModel.from_pretrained(str(resume / "text_encoder"), torch_dtype=torch.float32)
    fine, coarse = tokenize(tok, train.fine), tokenize(tok, train.coarse)
    empty = tokenize(tok, [""])[0]
    train_text = text_lr > 0
    ema_enc = copy.deepcopy(enc).eval().requires_grad_(False)
    enc.train(train_text).requires_grad_(train_text)
    log(f"captions tokenized ({time.time() - t_all:.0f}s); text encoder "
        + (f"trained (peak lr {text_lr:g}, from {'fresh weights' if text_init == 'random' else 'the CLIP'})"
           if train_text else "frozen"))

    # 4. the UNet: DDPM noise prediction, min-SNR weighted; EMA weights ship
    if previous is None:
        torch.manual_seed(seed + 1)
        config = unet_config(settings["unet_channels"], enc.config.hidden_size, lat.shape[-1], lat.shape[1])
        unet = UNet2DConditionModel(**config)
        ema = UNet2DConditionModel(**config)
        ema.load_state_dict(unet.state_dict())
    else:
        ema = UNet2DConditionModel.from_pretrained(str(resume / "unet"), torch_dtype=torch.float32)
        unet = UNet2DConditionModel.from_config(ema.config)
        unet.load_state_dict(ema.state_dict())
    ema.eval().requires_grad_(False)
    n_params = sum(p.numel() for p in unet.parameters())
    log(f"UNet {n_params / 1e6:.2f}M parameters, VAE {sum(p.numel() for p in vae.parameters()) / 1e6:.2f}M")
    sched = train_scheduler(settings["prediction_type"], settings["zero_snr"])
    alphas = sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    weight_t = timestep_weights(snr, settings["prediction_type"], settings["loss_weighting"])
    cell_map = object_cells(train.labels["shape"], lat.shape[-1], settings["object_weight"])
    probe = caption_probe(lat[:n_train], fine[:n_train], seed)  # world scenes only
    places = place_probe(tok, seed)
    groups = [{"params": list(unet.parameters()), "peak_lr": lr}]
    if train_text:
        groups.append({"params": list(enc.parameters()), "peak_lr": text_lr})
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-2)
    trained = {"unet": unet, "text_encoder": enc} if train_text else {"unet": unet}
    pairs = [(ema, unet)] + ([(ema_enc, enc)] if train_text else [])
    if previous is not None:
        if (resume / TRAIN_STATE).exists():
            load_train_state(resume / TRAIN_STATE, trained, opt)
            log(f"raw UNet weights and optimizer state from {resume / TRAIN_STATE}")
        else:
            log(f"{resume / TRAIN_STATE} missing: the raw UNet starts from the EMA weights, the optimizer afresh")
    settings.update({"unet_parameters": n_params, "vae_parameters": sum(p.numel() for p in vae.parameters()),
                     "scaling_factor": scale})
    store: list = []
    if grounding_weight:
        from workbench.world.grounding import attach, grounding_loss, word_cells, word_ids

        layers = attach(unet, store)
        colour_of, shape_of = word_ids(tok)
        fine_words = word_cells(fine, train.labels["colour"], colour_of, shape_of)
        coarse_words = word_cells(coarse, train.labels["colour"], colour_of, shape_of)
        log(f"token grounding on {layers} cross-attention layers, weight {grounding_weight:g}; "
            f"{float((fine_words[0] >= 0).sum(1).float().mean()):.2f} words per fine caption")
    if shape_weight:
        from workbench.world.classifier import AttributeClassifier

        critic = AttributeClassifier.load(shape_critic).network.requires_grad_(False)
        shape_labels = torch.from_numpy(np.asarray(train.labels["shape"])).long()
        true_cells = cell_scale = None
        if shape_loss == "features":  # the critic's view of every training image, once
            with torch.no_grad():
                true_cells = torch.cat([critic_cells(critic, (x_all[i:i + 256] + 1) / 2)
                                        for i in range(0, len(x_all), 256)])
            cell_scale = true_cells.reshape(-1, true_cells.shape[-1]).std(0) + 1e-3
        log(f"shape critic {shape_critic} ({shape_loss}), weight {shape_weight:g}, fine captions at t < {shape_t_max}")
    # a resumed run draws a fresh stream of batches (seeded by the step it starts at), not the stream the
    # uninterrupted run would have drawn
    gen = torch.Generator().manual_seed(seed * 1_000_003 + start + 1)
    t0 = time.time()
    running = running_ground = running_shape = 0.0

    def checkpoint(step: int, final: bool) -> dict:
        pipe = build_pipeline(vae, ema, tok, ema_enc, settings["prediction_type"], settings["zero_snr"])
        training = {**settings, "unet_steps_done": step, "vae_seconds": round(vae_seconds),
                    "unet_seconds": round(unet_seconds_before + time.time() - t0),
                    "total_seconds": round(time.time() - t_all), "history": history, "final": final}
        if final and n_heldout:
            res = render_faithfulness(pipeline_renderer(pipe), n_heldout)
            training["heldout"] = {k: v for k, v in res.items() if k != "rows"}
            log("held-out render faithfulness: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()
                                                            if isinstance(v, float)))
        # the UNet's weights are stored in float16 (half the megabytes); loaders ask for float32 and get it
        save_pipeline(build_pipeline(vae, copy.deepcopy(ema).half(), tok, ema_enc, settings["prediction_type"],
                                     settings["zero_snr"]), out, training,
                      state=lambda folder: save_train_state(folder / TRAIN_STATE, trained, opt, step))
        log(f"saved {out} at UNet step {step}")
        return training

    step = start
    while step < unet_steps:
        unet.train()
        enc.train(train_text)
        for g in opt.param_groups:
            g["lr"] = _cosine_lr(step, unet_steps, g["peak_lr"], warmup=min(200, unet_steps // 10 + 1))
        idx = batch_indices(batch_size, n_train, n_simple, simple_share, gen)
        u = torch.rand(batch_size, generator=gen)
        is_coarse, dropped = (u < COARSE_SHARE)[:, None], u > 1 - CAPTION_DROP
        ids = torch.where(is_coarse, coarse[idx], fine[idx])
        ids = torch.where(dropped[:, None], empty.expand_as(ids), ids)
        with torch.set_grad_enabled(train_text):
            cond = enc(ids)[0]
        z0 = lat[idx]
        noise = torch.randn(z0.shape, generator=gen)
        t = sample_timesteps(batch_size, sched.config.num_train_timesteps, high_share_at(settings, step), gen)
        zt = sched.add_noise(z0, noise, t)
        store.clear()
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        target = sched.get_velocity(z0, noise, t) if settings["prediction_type"] == "v_prediction" else noise
        loss = (((pred - target) ** 2).mean(1) * cell_map[idx]).mean((1, 2))
        loss = (loss * weight_t[t]).mean()
        if grounding_weight and step >= grounding_from:
            pos = torch.where(is_coarse, coarse_words[0][idx], fine_words[0][idx])
            pos[dropped] = -1  # a dropped caption has no words
            ground = grounding_loss(store, pos, torch.where(is_coarse, coarse_words[1][idx], fine_words[1][idx]))
            loss = loss + grounding_weight * ground
            running_ground += float(ground.detach())
        if shape_weight:
            sel = (t < shape_t_max) & ~is_coarse[:, 0] & ~dropped
            if bool(sel.any()):
                x0 = implied_x0(zt[sel], pred[sel], sched, t[sel], settings["prediction_type"])
                rows = idx[sel]
                critique = (shape_critic_loss(vae, critic, x0, true_cells=true_cells[rows], cell_scale=cell_scale)
                            if true_cells is not None else shape_critic_loss(vae, critic, x0, shape_labels[rows]))
                loss = loss + shape_weight * critique
                running_shape += float(critique.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for averaged, raw in pairs:
                for pe, p in zip(averaged.parameters(), raw.parameters()):
                    pe.mul_(decay).add_(p.detach(), alpha=1 - decay)
        running += float(loss.detach())
        step += 1
        if step % 50 == 0:
            k = min(50, step - start)
            history["unet"].append({"step": step, "loss": round(running / k, 4),
                                    **({"grounding": round(running_ground / k, 4)} if grounding_weight else {}),
                                    **({"shape_critic": round(running_shape / k, 4)} if shape_weight else {}),
                                    "seconds": round(unet_seconds_before + time.time() - t0)})
            log(f"unet step {step}/{unet_steps} loss {running / k:.4f} "
                + (f"(grounding {running_ground / k:.4f}) " if grounding_weight else "")
                + (f"(shape critic {running_shape / k:.4f}) " if shape_weight else "")
                + f"({time.time() - t0:.0f}s, {(step - start) / (time.time() - t0):.2f} steps/s)")
            running = running_ground = running_shape = 0.0
        if step % 200 == 0 or step == start + 1:
            gain = probe(unet, enc, sched, settings["prediction_type"])
            hits = places(unet, enc, sched, settings["prediction_type"])
            history.setdefault("caption_gain", []).append({"step": step, "gain": round(gain, 4),
                                                           "place_hits": round(hits, 4)})
            log(f"unet step {step}: caption gain {gain:+.3f} (x0 error with another scene's caption / own - 1); "
                f"place hits {hits:.2f} of the nine places at t=999 (chance 0.11)")
        if max_minutes is not None and time.time() - t0 > 60 * max_minutes:
            log(f"stopping at UNet step {step}: max_minutes {max_minutes} reached")
            break
        if step % checkpoint_every == 0 and step < unet_steps:
            checkpoint(step, final=False)
    return checkpoint(step, final=True)


def high_share_at(settings: dict, step: int) -> float:
    """The high-noise share of UNet step `step` (0-based) under a run's settings (see train_t2i)."""
    until = settings.get("high_noise_steps")
    if until is None or step < until:
        return settings["high_noise_share"]
    return settings.get("high_noise_share_after", 0.0)


def sample_timesteps(n: int, num_train_timesteps: int, high_noise_share: float, gen):
    """`n` training timesteps: each, with probability `high_noise_share`, uniform over [HIGH_NOISE_T0, last], else
    uniform over all. Where objects go is decided at high noise only: with zero SNR, an object of 8x8 latent pixels
    is still detectable in x_t (its summed signal-to-noise above 1) up to about t = 850, so the caption alone places
    it in the last ~15% of timesteps, 15% of a uniform batch."""
    import torch

    t = torch.randint(0, num_train_timesteps, (n,), generator=gen)
    high = torch.randint(min(HIGH_NOISE_T0, num_train_timesteps - 1), num_train_timesteps, (n,), generator=gen)
    return torch.where(torch.rand(n, generator=gen) < high_noise_share, high, t)


def batch_indices(batch_size: int, n_world: int, n_simple: int, simple_share: float, gen):
    """One step's rows: `batch_size` drawn from the first `n_world` (the world's scenes), the last round(batch_size *
    simple_share) of them replaced by rows of the `n_simple` curriculum scenes stored after those (none when
    n_simple is 0). Both trainers' `--simple-share`."""
    import torch

    n_easy = int(round(batch_size * simple_share)) if n_simple else 0
    idx = torch.randint(0, n_world, (batch_size,), generator=gen)
    if n_easy:
        idx[batch_size - n_easy:] = n_world + torch.randint(0, n_simple, (n_easy,), generator=gen)
    return idx


def _check_range(name: str, value, lo: int, hi: int, note: str = "") -> None:
    """A number in [lo, hi], both included (train._check_float excludes lo); `note` follows the range."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}]{note}, got {value!r}")


def timestep_weights(snr, prediction_type: str, loss_weighting: str):
    """Per-timestep weights of the UNet's squared error, from each timestep's signal-to-noise ratio `snr`. The
    weight of the implied x0 error is min(snr, gamma) ("min_snr") or min(snr + 1, gamma) ("x0_floor"); the UNet's
    own error is snr (noise) or snr + 1 (velocity) times the x0 error, so that weight is divided by it."""
    import torch

    x0 = torch.clamp(snr if loss_weighting == "min_snr" else snr + 1, max=MIN_SNR_GAMMA)
    return x0 / (snr + (prediction_type == "v_prediction"))


def cell_rows(side: int):
    """The row (or column) of the 3x3 grid each of `side` latent rows (or columns) lies in, by its centre."""
    import torch

    return ((torch.arange(side) + 0.5) * 3 / side).floor().long().clamp(0, 2)


def implied_x0(zt, pred, sched, t: int, prediction_type: str):
    """The clean latent a UNet's output at timestep `t` implies: from the velocity, sqrt(a) z_t - sqrt(1 - a) v; from
    the noise, (z_t - sqrt(1 - a) eps) / sqrt(a) (a = the schedule's alphas_cumprod at t; kept above 1e-8 there)."""
    a = sched.alphas_cumprod[t]
    if a.ndim:  # one timestep per sample
        a = a.reshape(-1, *([1] * (zt.ndim - 1)))
    if prediction_type == "v_prediction":
        return a.sqrt() * zt - (1 - a).sqrt() * pred
    return (zt - (1 - a).sqrt() * pred) / a.clamp(min=1e-8).sqrt()


def _shape_settings(shape_weight: float, shape_critic, shape_t_max: int, shape_loss: str) -> dict:
    if not shape_weight:
        return {"shape_weight": 0.0}
    return {"shape_weight": shape_weight, "shape_t_max": shape_t_max, "shape_loss": shape_loss,
            "shape_critic": _repo_relative(shape_critic)}


def _repo_relative(path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def critic_cells(critic, images):
    """The critic's (an AttributeNet's) features of each grid cell, (N, 9, C), for images (N, 3, H, W) in [0, 1]:
    what its heads read shape, colour, size and finish from."""
    f = critic.features(images * 2 - 1)
    return critic.grid(f).flatten(2).transpose(1, 2)


def decode_clean(vae, x0):
    """Clean latents (scaled as the UNet sees them) -> images (N, 3, H, W) in [0, 1], differentiable."""
    return (vae.decode(x0 / vae.config.scaling_factor).sample.clamp(-1, 1) + 1) / 2


def shape_critic_loss(vae, critic, x0, shape_labels=None, true_cells=None, cell_scale=None):
    """The shape critic's loss on clean latents `x0` (scaled as the UNet sees them), decoded by the pipeline's VAE;
    differentiable in x0 (the decoder and critic are frozen). Two kinds (SHAPE_LOSSES):
    "labels" (shape_labels: (N, 9) shape class per cell, the last class "empty"): cross-entropy of the critic's
    shape reading over the cells that hold an object. Measured: the UNet then learns marks both readers take for a
    shape (bars for a triangle, specks in empty cells), not the outline (README, world section).
    "features" (true_cells: the critic's cell features of the true images, critic_cells; cell_scale: (C,) their
    spread): the mean squared difference, in units of that spread, between the cell features of the decoded guess
    and of the true image, over all nine cells: the guess should look to the critic as the true image does, empty
    cells included, rather than maximise one class."""
    import torch

    images = decode_clean(vae, x0)
    if true_cells is not None:
        return (((critic_cells(critic, images) - true_cells) / cell_scale) ** 2).mean()
    logits = critic(images)["shape"]
    n_classes = logits.shape[-1]
    occupied = shape_labels != n_classes - 1
    if not bool(occupied.any()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits[occupied], shape_labels[occupied])


def object_cells(shape_labels: np.ndarray, side: int, object_weight: float):
    """(N, 9) shape labels per grid cell (row-major; the vocabulary's last shape class is "empty") -> (N, side, side)
    loss weights: 1 + object_weight on the cells that hold an object, 1 elsewhere, each map scaled to mean 1."""
    import torch

    from workbench.world.data import label_names
    from workbench.world.vocabulary import load_vocabulary

    empty = label_names(load_vocabulary())["shape"].index("empty")
    occupied = torch.as_tensor(np.asarray(shape_labels) != empty).float().reshape(-1, 3, 3)
    rows = cell_rows(side)
    w = 1 + object_weight * occupied[:, rows][:, :, rows]
    return w / w.mean((1, 2), keepdim=True)


@contextlib.contextmanager
def evaluating(*modules):
    """Eval mode for `modules` inside the block, each back to its own mode after it."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)


def caption_probe(lat, ids, seed: int, n: int = 64, t: int = 700):
    """A fixed batch of `n` training latents (token ids `ids` of their captions), noised at timestep `t` with fixed
    noise: probe(unet, text_encoder, sched, prediction_type) -> the caption gain, mean x0 error with the next
    scene's caption / with the own - 1."""
    import torch

    gen = torch.Generator().manual_seed(seed + 7)
    idx = torch.randperm(len(lat), generator=gen)[:n]
    z0, own_ids = lat[idx], ids[idx]
    noise = torch.randn(z0.shape, generator=gen)
    ts = torch.full((len(idx),), t, dtype=torch.long)

    def probe(unet, enc, sched, prediction_type: str) -> float:
        zt = sched.add_noise(z0, noise, ts)
        errs = []
        with evaluating(unet, enc), torch.inference_mode():
            own = enc(own_ids)[0]
            for cond in (own, own.roll(1, 0)):
                x0 = implied_x0(zt, unet(zt, ts, encoder_hidden_states=cond).sample, sched, t, prediction_type)
                errs.append(float(((x0 - z0) ** 2).mean()))
        return errs[1] / errs[0] - 1

    return probe


def place_hits(x0, cells: Sequence[int]) -> float:
    """`x0`: (9, C, H, W) predictions for nine captions that differ only in the named grid cell, `cells[i]` the
    row-major cell caption i names. Each prediction's departure from their mean is summed per grid cell; a hit
    when its largest cell is the named one (a prediction that does not depart from the mean is a miss). Returns
    the share of hits (1/9 is chance for a model that moves objects at random)."""
    import torch

    dev = ((x0 - x0.mean(0, keepdim=True)) ** 2).sum(1)  # (9, H, W)
    rows = cell_rows(dev.shape[-1])
    cell_of = (rows[:, None] * 3 + rows[None, :]).flatten()  # latent position -> row-major cell
    per_cell = torch.zeros(len(dev), 9).index_add_(1, cell_of, dev.flatten(1))
    hits = [bool(per_cell[i].max() > 1e-12) and int(per_cell[i].argmax()) == int(c) for i, c in enumerate(cells)]
    return sum(hits) / len(hits)


def place_probe(tok, seed: int, t: int = 999):
    """probe(unet, text_encoder, sched, prediction_type) -> place_hits of the x0 predictions at timestep `t` (pure
    noise with zero_snr) for "a large red circle <place>, on a plain blue background" at each of the nine places,
    from the same fixed noise: does the caption's place move the object? (The caption gain can grow from backgrounds and colours
    alone; this reads the layout.)"""
    import torch

    from workbench.world.vocabulary import load_vocabulary

    places = load_vocabulary().positions
    texts = [f"a large red circle {phrase}, on a plain blue background" for phrase in places]
    cells = [c[1] * 3 + c[0] for c in places.values()]
    ids = tokenize(tok, texts)

    def probe(unet, enc, sched, prediction_type: str) -> float:
        gen = torch.Generator().manual_seed(seed + 11)
        shape = (1, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
        noise = torch.randn(shape, generator=gen).expand(len(texts), -1, -1, -1)
        a = sched.alphas_cumprod[t]
        zt = (1 - a).sqrt() * noise  # the mean latent (0) noised
        ts = torch.full((len(texts),), t, dtype=torch.long)
        with evaluating(unet, enc), torch.inference_mode():
            x0 = implied_x0(zt, unet(zt, ts, encoder_hidden_states=enc(ids)[0]).sample, sched, t, prediction_type)
        return place_hits(x0, cells)

    return probe


TRAIN_STATE = "train_state.safetensors"  # raw UNet + AdamW moments, for --resume; .gitignore'd, never shipped


def _state_keys(modules: dict):
    """(parameter, its key, its moments' key) for each trained module's parameters: "unet.<name>" with moments under
    "<name>" (the layout of folders written before the text encoder trained), "<module>.<name>" with moments under
    the same key for the others."""
    for prefix, module in modules.items():
        for name, p in module.named_parameters():
            key = f"{prefix}.{name}"
            yield p, key, (name if prefix == "unet" else key)


def save_train_state(path: Path, modules: dict, opt, step: int) -> None:
    """The raw (non-EMA) weights of the trained `modules` ({"unet": ..., "text_encoder": ...}) and AdamW's
    per-parameter moments as safetensors (no pickle)."""
    import torch
    from safetensors.torch import save_file

    tensors = {"step": torch.tensor([step], dtype=torch.int64)}
    for p, key, moments in _state_keys(modules):
        tensors[key] = p.detach().contiguous()
        st = opt.state.get(p)
        if st:
            tensors["exp_avg." + moments] = st["exp_avg"].contiguous()
            tensors["exp_avg_sq." + moments] = st["exp_avg_sq"].contiguous()
            tensors["adam_step." + moments] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    save_file(tensors, str(path))


def load_train_state(path: Path, modules: dict, opt) -> int:
    """Restore what `save_train_state` wrote into `modules` and `opt`; a module the file does not hold (a text
    encoder that was frozen until now) keeps its weights and starts its moments afresh. Returns the step it was
    saved at."""
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    with torch.no_grad():
        for p, key, moments in _state_keys(modules):
            if key not in tensors:
                continue
            p.copy_(tensors[key])
            if "exp_avg." + moments in tensors:
                opt.state[p] = {"step": tensors["adam_step." + moments].reshape(()).clone(),
                                "exp_avg": tensors["exp_avg." + moments].clone(),
                                "exp_avg_sq": tensors["exp_avg_sq." + moments].clone()}
    return int(tensors["step"][0])


def train_decoder(folder: str | Path = SHIPPED, steps: int = 2_000, batch_size: int = 32, lr: float = 5e-4,
                  n_train: int = 7_000, n_heldout: int = 500, seed: int = 1, workers: int = 1,
                  log: Callable[[str], None] = print) -> dict:
    """Continue training the decoder of a pipeline folder that `train_t2i` wrote (its encoder is fixed, so the
    UNet's latents do not change and the UNet needs no retraining); rewrites the folder's vae with the new decoder
    and adds a "decoder_continued" entry to its training.json."""
    _check_int("steps", steps, 1, 1_000_000)
    _check_int("batch_size", batch_size, 1, 1024)
    _check_float("lr", lr, 0.0, 1.0)
    _check_int("n_train", n_train, 16, 200_000)
    _check_int("n_heldout", n_heldout, 0, MAX_EVAL)
    _check_int("seed", seed, 0, 2**31 - 1)
    folder = Path(folder)
    pipe = load_pipeline(folder)
    training = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    vae = pipe.vae
    train = load_scenes(0, n_train, workers=workers, log=log)
    x_all = to_pixels(train.images)
    vae.eval()
    lat = encode_latents(vae, x_all)
    before = reconstruction_faithfulness(vae, n_heldout) if n_heldout else None
    history, seconds = fit_decoder(vae, lat, x_all, steps, batch_size, lr, seed, log)
    after = reconstruction_faithfulness(vae, n_heldout) if n_heldout else None
    if after:
        log("held-out reconstructions read by the classifier: "
            + ", ".join(f"{k} {v:.3f}" for k, v in after.items() if isinstance(v, float)))
    tmp = folder.with_name(folder.name + ".vae.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    vae.save_pretrained(str(tmp), safe_serialization=True)
    shutil.rmtree(folder / "vae")
    tmp.rename(folder / "vae")
    training.setdefault("decoder_continued", []).append(
        {"command": "python -m workbench.world train-t2i-decoder", "steps": steps, "batch_size": batch_size, "lr": lr,
         "seed": seed, "seconds": round(seconds), "heldout_before": before, "heldout_after": after,
         "history": history})
    (folder / "training.json").write_text(json.dumps(training, indent=1) + "\n", encoding="utf-8")
    return training


# -- measuring ------------------------------------------------------------------------------------------------
def reconstruction_faithfulness(vae, n: int = 200, start: int = HELDOUT_SEED0) -> dict:
    """The attribute classifier on held-out stills passed through the autoencoder (encode, decode) beside the
    stills themselves: the ceiling the latent model can reach."""
    import torch

    from workbench.world.classifier import AttributeClassifier, evaluate

    held = load_scenes(start, n)
    with torch.inference_mode():
        rec = torch.cat([vae.decode(vae.encode(to_pixels(held.images[i:i + 64])).latents).sample
                         for i in range(0, n, 64)])
    images = ((rec.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    clf = AttributeClassifier.load()
    import dataclasses

    a, b = evaluate(clf, dataclasses.replace(held, images=images)), evaluate(clf, held)
    out = {f"{k}": a[k] for k in ("position", "shape", "colour")}
    out.update({f"{k} (stills)": b[k] for k in ("position", "shape", "colour")})
    out["mean abs error (0-255)"] = float(np.abs(images.astype(np.float32) - held.images).mean())
    out["objects"] = a["objects"]
    return out


def pipeline_renderer(pipe, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE, size: int = IMAGE_SIZE,
                      seed: int = 0, batch_size: int = 16) -> Callable[[list[str]], list]:
    """prompts -> PIL images from a diffusers text-to-image pipeline, every prompt from the same seed's noise (as
    the diffusers-t2i backend renders)."""
    import torch

    _check_int("steps", steps, 1, 200)
    _check_float("guidance", guidance, 0.0, 50.0)
    _check_int("size", size, 16, 1024)

    def run(prompts: list[str]) -> list:
        images = []
        for i in range(0, len(prompts), batch_size):
            chunk = list(prompts[i:i + batch_size])
            gens = [torch.Generator().manual_seed(seed) for _ in chunk]
            with torch.inference_mode():
                images += pipe(prompt=chunk, num_inference_steps=steps, guidance_scale=guidance, height=size,
                               width=size, generator=gens, output_type="pil").images
        return images

    return run


def heldout_captions(n: int, start: int = HELDOUT_SEED0) -> tuple[list[str], list[dict]]:
    """Fine captions of held-out scenes that state their objects' grid cells (relation scenes state no cell and
    are skipped), with what each states."""
    from workbench.world.scene import sample_scene

    _check_int("n", n, 1, MAX_EVAL)
    if not isinstance(start, int) or start < HELDOUT_SEED0:
        raise ValueError(f"start must be an integer >= {HELDOUT_SEED0} (held-out seeds), got {start!r}")
    captions, stated = [], []
    seed = start
    while len(captions) < n:
        scene = sample_scene(seed)
        seed += 1
        if scene.relation is not None:
            continue
        captions.append(scene.caption("fine"))
        stated.append(scene.stated("fine"))
    return captions, stated


def render_faithfulness(render_fn: Callable[[list[str]], Sequence[Any]], n: int = 200, start: int = HELDOUT_SEED0,
                        classifier=None) -> dict:
    """The attribute classifier's reading of renders of `n` held-out fine captions (seeds from `start`, never
    trained on; scenes with a relation are skipped as they state no cell). Per object named in a caption:
    position = its stated cell is read as holding an object; shape / colour = the shape / colour read in that
    cell is the one named; and per caption, layout = the cells read as holding an object are exactly the named
    ones (an image of noise, read as objects everywhere, passes position but not layout). `render_fn(prompts) -> images` (PIL or uint8 arrays), e.g. `pipeline_renderer(pipe)`
    or a backend's generate wrapped in a lambda. Returns {"position", "shape", "colour", "all three", "layout",
    "objects", "captions", "seconds", "rows"}."""
    from workbench.world.classifier import AttributeClassifier

    if not callable(render_fn):
        raise ValueError(f"render_fn must be a callable prompts -> images, got {type(render_fn).__name__}")
    captions, stated = heldout_captions(n, start)
    clf = classifier or AttributeClassifier.load()
    t0 = time.time()
    images = list(render_fn(captions))
    seconds = time.time() - t0
    if len(images) != len(captions):
        raise ValueError(f"render_fn returned {len(images)} images for {len(captions)} prompts")
    from PIL import Image

    p = clf.probabilities([np.asarray(im.convert("RGB")) if isinstance(im, Image.Image) else np.asarray(im)
                           for im in images])
    names = clf.config["classes"]
    empty = names["shape"].index("empty")
    hits = {"position": 0, "shape": 0, "colour": 0, "all three": 0}
    rows, objects, exact = [], 0, 0
    for i, st in enumerate(stated):
        named = {o["position"][1] * 3 + o["position"][0] for o in st["objects"]}
        occupied = {cell for cell in range(9) if int(p["shape"][i, cell].argmax()) != empty}
        exact += int(occupied == named)
        for o in st["objects"]:
            cell = o["position"][1] * 3 + o["position"][0]
            shape = int(p["shape"][i, cell].argmax())
            colour = int(p["colour"][i, cell].argmax())
            ok = {"position": shape != empty, "shape": names["shape"][shape] == o["shape"],
                  "colour": names["colour"][colour] == o["colour"]}
            ok["all three"] = all(ok.values())
            for k, v in ok.items():
                hits[k] += int(v)
            objects += 1
            rows.append({"caption": captions[i], "object": f"{o['colour']} {o['shape']}", "cell": o["position"],
                         "read_shape": names["shape"][shape], "read_colour": names["colour"][colour], **ok})
    out: dict = {k: hits[k] / objects for k in hits}
    out["layout"] = exact / len(captions)
    out.update({"objects": objects, "captions": len(captions), "seconds": round(seconds, 1), "rows": rows})
    return out
