"""python -m workbench.world sample --n 8 --out DIR: PNG stills and GIF videos with a JSONL of captions and
attributes (seed, generator version and vocabulary digest on every line).

python -m workbench.world pairs: the T2I rewriter's coarse -> fine caption pairs (assets/world/rewriter_pairs);
python -m workbench.world train-classifier | train-clip | train-t2i (| train-t2i-decoder) | train-t2v: train the world's models on CPU (assets/world/*/TRAINING.md);
python -m workbench.world eval: the held-out table, each shipped model beside random weights; with --t2i MODEL (a
diffusers pipeline folder, a hub id, or `tiny` for the tiny random pipeline; repeatable) also the ground-truth rows
of that text-to-image model (workbench/world/groundtruth.py): heatmap pointing game and IoU, and the UF-FGTG question.

The CLI is the one place of the world that loads a backend (pyproject's import contract names the exception): the
world's modules take a loaded backend and never import one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.world import GENERATOR_VERSION, load_vocabulary, render, render_video, sample_scene

MAX_N = 10_000
ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "world"
CLASSIFIER_DIR, CLIP_DIR, T2I_DIR = ASSETS / "classifier", ASSETS / "clip", ASSETS / "t2i"


def sample(n: int, out: str | Path, seed: int = 0, size: int = 64, kind: str = "both", frames: int = 8) -> Path:
    if not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise ValueError(f"n must be an integer in [1, {MAX_N}], got {n!r}")
    if kind not in ("image", "video", "both"):
        raise ValueError(f"kind must be one of image, video, both; got {kind!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    v = load_vocabulary()
    lines = []
    for video in ([False] if kind == "image" else [True] if kind == "video" else [False, True]):
        for i in range(n):
            scene = sample_scene(seed + i, video=video)
            if video:
                images, masks = render_video(scene, size, frames)
                name = f"video_{seed + i:05d}.gif"
                Image.fromarray(images[0]).save(out / name, save_all=True, duration=120, loop=0,
                                                append_images=[Image.fromarray(im) for im in images[1:]])
                mask_pixels = [[int(m.sum()) for m in frame] for frame in masks]
            else:
                image, masks = render(scene, size)
                name = f"image_{seed + i:05d}.png"
                Image.fromarray(image).save(out / name)
                np.savez_compressed(out / name.replace(".png", "_masks.npz"), masks=np.stack(masks))
                mask_pixels = [int(m.sum()) for m in masks]
            lines.append({"file": name, "seed": seed + i, "video": video, "size": size,
                          "frames": frames if video else 1, "coarse": scene.caption("coarse"),
                          "fine": scene.caption("fine"), "stated_fine": scene.stated("fine"),
                          "scene": scene.to_dict(), "mask_pixels": mask_pixels,
                          "generator_version": GENERATOR_VERSION, "vocabulary_digest": v.digest})
    path = out / "captions.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench.world", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="write sample scenes, their masks and captions")
    s.add_argument("--n", type=int, default=8)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--frames", type=int, default=8)
    s.add_argument("--kind", choices=["image", "video", "both"], default="both")
    w = sub.add_parser("pairs", help="write the T2I rewriter's coarse -> fine world caption pairs and held-out ids")
    w.add_argument("--out", default=str(ASSETS / "rewriter_pairs"))
    w.add_argument("--n-train", type=int, default=2_000, help="training pairs, from training seeds 0..")
    w.add_argument("--n-heldout", type=int, default=200, help="held-out pairs, from the held-out seeds")
    w.add_argument("--n-partial", type=int, default=2_000,
                   help="training pairs whose prompt is a fine caption with some attributes left out (the fine "
                        "caption keeps them), from the training seeds after --n-train")
    w.add_argument("--n-partial-heldout", type=int, default=200,
                   help="held-out partial pairs, from the held-out seeds after --n-heldout")
    c = sub.add_parser("train-classifier", help="train the attribute classifier (ground-truth scorer) on CPU")
    c.add_argument("--out", default=str(CLASSIFIER_DIR))
    c.add_argument("--n-train", type=int, default=6_000)
    c.add_argument("--n-heldout", type=int, default=2_000)
    c.add_argument("--epochs", type=int, default=12)
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--lr", type=float, default=2e-3)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--workers", type=int, default=1, help="processes rendering the scenes not yet cached")
    c.add_argument("--channels", type=int, nargs=5, default=[16, 32, 64, 128, 128],
                   help="the five convolutions' widths (the shipped scorer's by default)")
    c.add_argument("--train-start", type=int, default=0,
                   help="first training seed (a second reader, e.g. the shape critic, trains on other scenes)")
    k = sub.add_parser("train-clip", help="train the small CLIP contrastively on world stills and fine captions")
    k.add_argument("--out", default=str(CLIP_DIR))
    k.add_argument("--n-train", type=int, default=7_000)
    k.add_argument("--n-heldout", type=int, default=2_000)
    k.add_argument("--epochs", type=int, default=9)
    k.add_argument("--batch-size", type=int, default=64)
    k.add_argument("--lr", type=float, default=1e-3)
    k.add_argument("--hidden", type=int, default=96)
    k.add_argument("--text-layers", type=int, default=2)
    k.add_argument("--vision-layers", type=int, default=3)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--hard-negatives", type=int, default=4,
                   help="one-change captions per scene added to the batch's texts as negatives (0: none)")
    k.add_argument("--workers", type=int, default=1, help="processes rendering the scenes not yet cached")
    d = sub.add_parser("train-t2i", help="train the latent text-to-image model (VAE + UNet over the small CLIP's "
                                         "text encoder) and save it as a diffusers pipeline")
    d.add_argument("--out", default=str(T2I_DIR))
    d.add_argument("--n-train", type=int, default=7_000)
    d.add_argument("--vae-steps", type=int, default=2_000, help="decoder training steps")
    d.add_argument("--unet-steps", type=int, default=3_000)
    d.add_argument("--vae-batch", type=int, default=32)
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--vae-lr", type=float, default=1.5e-3)
    d.add_argument("--lr", type=float, default=1e-3)
    d.add_argument("--vae-channels", type=int, nargs="+", default=[48, 48],
                   help="decoder widths, one per level: log2(patch) + 1 of them (equal: DecoderTiny)")
    d.add_argument("--unet-channels", type=int, nargs="+", default=[32, 64, 128],
                   help="UNet widths, one per level: 3 levels (32x32 down to 8x8) or 4 (down to 4x4)")
    d.add_argument("--checkpoint-every", type=int, default=600, help="UNet steps between saved pipelines")
    d.add_argument("--n-heldout", type=int, default=100, help="held-out captions rendered and scored at the end")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--clip", default=str(CLIP_DIR), help="the small CLIP whose text encoder conditions the UNet")
    d.add_argument("--workers", type=int, default=1, help="processes rendering the scenes not yet cached")
    d.add_argument("--patch", type=int, default=2, help="pixel patch side the fixed encoder rearranges (2 or 4)")
    d.add_argument("--latent-channels", type=int, default=12, help="principal components of the patches kept")
    d.add_argument("--resume", default=None, metavar="FOLDER",
                   help="continue the UNet (EMA, raw weights, optimizer) of a folder an earlier run wrote, up to "
                        "--unet-steps in all; its VAE and architecture are kept")
    d.add_argument("--max-minutes", type=float, default=None, help="stop the UNet after this long and save")
    d.add_argument("--prediction-type", choices=["epsilon", "v_prediction"], default="v_prediction",
                   help="the UNet's target (a resumed run keeps its folder's)")
    d.add_argument("--loss-weighting", choices=["min_snr", "x0_floor"], default="x0_floor",
                   help="per-timestep weight of the error (see workbench.world.diffusion.LOSS_WEIGHTINGS)")
    d.add_argument("--object-weight", type=float, default=3.0,
                   help="extra loss weight on grid cells that hold an object (0: none)")
    d.add_argument("--zero-snr", action=argparse.BooleanOptionalAction, default=True,
                   help="the noise schedule ends in pure noise (needs v_prediction; --no-zero-snr: DDPM's own)")
    d.add_argument("--text-lr", type=float, default=0.0,
                   help="peak learning rate of the text encoder, trained with the UNet (0: frozen)")
    d.add_argument("--text-init", choices=["scene", "clip", "random"], default="scene",
                   help="the text encoder: the CLIP's fine-tuned to read scenes cell by cell (scene, see "
                        "workbench/world/text_scene.py), the CLIP's as is, or fresh weights (see diffusion.TEXT_LR)")
    d.add_argument("--high-noise-steps", type=int, default=None,
                   help="the high-noise share applies to UNet steps before this one only (default: all)")
    d.add_argument("--high-noise-share-after", type=float, default=0.0,
                   help="the high-noise share from --high-noise-steps on")
    d.add_argument("--grounding-weight", type=float, default=0.0,
                   help="weight of the token grounding loss (workbench/world/grounding.py; 0: off)")
    d.add_argument("--grounding-from", type=int, default=0, help="UNet step the grounding loss starts at")
    d.add_argument("--simple-share", type=float, default=0.0,
                   help="share of each batch from one-object scenes on plain backgrounds (a curriculum for shapes; "
                        "0: world scenes only)")
    d.add_argument("--shape-weight", type=float, default=0.0,
                   help="weight of the shape critic's loss on the decoded clean-latent guess (0: off)")
    d.add_argument("--shape-critic", default=None,
                   help="folder of the shape critic, an attribute classifier trained apart from the scorer "
                        "(default assets/world/shape_critic)")
    d.add_argument("--shape-t-max", type=int, default=700, help="the critic judges timesteps below this")
    d.add_argument("--shape-loss", choices=("features", "labels"), default="features",
                   help="features: the guess's cell features should match the true image's (default); labels: "
                        "the critic's shape reading should be the caption's (measured to teach marks, not shapes)")
    d.add_argument("--text-scene-steps", type=int, default=600, help="scene-reading steps of --text-init scene")
    d.add_argument("--whiten", action="store_true",
                   help="give every latent channel the same spread (the patch components differ 36-fold; see "
                        "diffusion.whiten_latents); with --vae-from, the decoder takes the inverse gains")
    d.add_argument("--vae-from", default=None, metavar="FOLDER",
                   help="reuse the VAE (trained decoder) of a folder an earlier run wrote instead of training one")
    d.add_argument("--high-noise-share", type=float, default=0.0,
                   help="share of each batch whose timesteps come from [800, 999], where only the caption places "
                        "objects (0: all uniform)")
    r = sub.add_parser("train-t2i-decoder", help="continue training the decoder of a train-t2i pipeline folder "
                                                 "(the encoder is fixed, so the UNet stays valid)")
    r.add_argument("--folder", default=str(T2I_DIR))
    r.add_argument("--steps", type=int, default=2_000)
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--lr", type=float, default=5e-4)
    r.add_argument("--n-heldout", type=int, default=500, help="held-out stills reconstructed before and after")
    r.add_argument("--seed", type=int, default=1)
    v = sub.add_parser("train-t2v", help="train the latent text-to-video model (a UNet3DConditionModel, or AnimateDiff "
                                         "motion modules, started from a train-t2i folder's UNet) on world videos; "
                                         "saves a TextToVideoSDPipeline or an AnimateDiffPipeline")
    v.add_argument("--t2i", required=True, metavar="FOLDER",
                   help="a train-t2i pipeline folder: its VAE, tokenizer and text encoder are reused (frozen), its UNet "
                        "initialises the video UNet's spatial layers")
    v.add_argument("--out", required=True, metavar="FOLDER", help="where the TextToVideoSDPipeline folder goes")
    v.add_argument("--n-train", type=int, default=1_600, help="training videos (seeds 0..N-1, 8 frames of 64x64)")
    v.add_argument("--steps", type=int, default=3_000)
    v.add_argument("--batch-size", type=int, default=2, help="videos per step")
    v.add_argument("--lr", type=float, default=5e-4)
    v.add_argument("--ema-decay", type=float, default=0.999)
    v.add_argument("--checkpoint-every", type=int, default=300, help="steps between saved pipelines")
    v.add_argument("--n-heldout", type=int, default=40,
                   help="held-out video captions rendered at the end for motion-direction accuracy (0: skip)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--frames", type=int, default=8)
    v.add_argument("--object-weight", type=float, default=3.0,
                   help="extra loss weight on grid cells an object visits (0: none)")
    v.add_argument("--zero-snr", action=argparse.BooleanOptionalAction, default=True,
                   help="the noise schedule ends in pure noise (needs v_prediction)")
    v.add_argument("--prediction-type", choices=["epsilon", "v_prediction"], default="v_prediction")
    v.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps in all")
    v.add_argument("--max-minutes", type=float, default=None, help="stop training after this long and save")
    v.add_argument("--temporal-only", action="store_true",
                   help="train only the temporal layers (and spatial attention whose head split differs from the image "
                        "model's); the rest keeps the image model's weights, frozen")
    v.add_argument("--motion-weight", type=float, default=0.0,
                   help="extra loss weight on the frame-to-frame change of the prediction's error (0: none)")
    v.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                   help="stop after this step and save (the learning-rate schedule still spans --steps)")
    v.add_argument("--high-noise-share", type=float, default=0.0,
                   help="share of each batch whose timesteps come from [800, 999], where only the caption says where "
                        "objects go (0: all uniform)")
    v.add_argument("--simple-share", type=float, default=0.0,
                   help="share of each batch from videos of one moving object on a plain background (a curriculum "
                        "for motion; 0: world videos only)")
    v.add_argument("--path-weight", type=float, default=0.0,
                   help="weight of the path critic's loss: each object's colour in the decoded clean-latent guess "
                        "should travel as the caption says (0: off)")
    v.add_argument("--init-from", default=None, metavar="FOLDER",
                   help="start the video UNet from a folder train-t2v wrote instead of inflating the image UNet")
    v.add_argument("--arch", choices=["unet3d", "motion"], default=None,
                   help="unet3d: a UNet3DConditionModel (TextToVideoSDPipeline); motion: the image UNet with AnimateDiff "
                        "motion modules, whose temporal attention knows each frame's position (AnimateDiffPipeline); "
                        "default: unet3d, or the folder's own with --resume / --init-from")
    e = sub.add_parser("eval", help="held-out table: the shipped models beside random weights")
    e.add_argument("--n", type=int, default=1_000, help="held-out scenes")
    e.add_argument("--classifier", default=str(CLASSIFIER_DIR))
    e.add_argument("--clip", default=str(CLIP_DIR))
    e.add_argument("--workers", type=int, default=1, help="processes rendering the scenes not yet cached")
    e.add_argument("--t2i", action="append", default=[], metavar="PATH_OR_TINY",
                   help="a text-to-image pipeline to check against ground truth (a diffusers folder, a hub id, or "
                        "`tiny` for the tiny random pipeline); repeat to compare several")
    e.add_argument("--t2i-n", type=int, default=8, help="held-out scenes per T2I check (each rendered 3 times)")
    e.add_argument("--t2i-faithfulness-n", type=int, default=100,
                   help="held-out fine captions rendered once each for render faithfulness (0: skip those rows)")
    # defaults: the world profile's render settings for its own model (assets/profiles.yaml, t2i_render)
    e.add_argument("--t2i-steps", type=int, default=12)
    e.add_argument("--t2i-size", type=int, default=64, help="image side in pixels (the world's models: 64)")
    e.add_argument("--t2i-guidance", type=float, default=3.0)
    e.add_argument("--t2i-seed", type=int, default=0, help="the generator seed of every render")
    e.add_argument("--t2i-only", action="store_true", help="skip the classifier and CLIP rows (with --t2i or --t2v)")
    e.add_argument("--t2v", action="append", default=[], metavar="PATH_OR_TINY",
                   help="a text-to-video pipeline to check for motion direction (a train-t2v folder, a hub id, or "
                        "`tiny` for the tiny random AnimateDiff pipeline); repeat to compare several")
    e.add_argument("--t2v-n", type=int, default=40, help="held-out video captions in which something moves")
    # defaults: the world T2V model's preview (workbench/world/video.py, PREVIEW)
    e.add_argument("--t2v-steps", type=int, default=8)
    e.add_argument("--t2v-size", type=int, default=64)
    e.add_argument("--t2v-frames", type=int, default=8)
    e.add_argument("--t2v-guidance", type=float, default=3.0)
    e.add_argument("--t2v-seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        if a.command == "sample":
            path = sample(a.n, a.out, a.seed, a.size, a.kind, a.frames)
            print(f"wrote {path} and the images beside it")
        elif a.command == "pairs":
            from workbench.world.rewriter import write_rewriter_pairs

            path = write_rewriter_pairs(a.out, a.n_train, a.n_heldout, a.n_partial, a.n_partial_heldout)
            print(f"wrote {path} and {path.parent / 'heldout_ids.txt'}")
        elif a.command == "train-classifier":
            from workbench.world.train import train_classifier

            _threads()
            train_classifier(a.out, a.n_train, a.n_heldout, a.epochs, a.batch_size, a.lr, a.seed, a.workers,
                             channels=a.channels, train_start=a.train_start, log=_log())
        elif a.command == "eval":
            from workbench.world.evaluate import evaluate_models, format_table

            _threads()
            if not a.t2i_only:
                print(format_table(evaluate_models(a.n, a.classifier, a.clip, a.workers)))
            if a.t2i:
                print(t2i_table(a.t2i, a.t2i_n, a.t2i_steps, a.t2i_size, a.t2i_guidance, a.t2i_seed, a.classifier,
                                a.t2i_faithfulness_n))
            if a.t2v:
                print(t2v_table(a.t2v, a.t2v_n, a.t2v_steps, a.t2v_size, a.t2v_frames, a.t2v_guidance, a.t2v_seed))
            if a.t2i_only and not (a.t2i or a.t2v):
                p.error("--t2i-only needs at least one --t2i or --t2v")
        elif a.command == "train-t2i":
            from workbench.world.diffusion import train_t2i

            _threads()
            train_t2i(a.out, a.n_train, a.vae_steps, a.unet_steps, a.vae_batch, a.batch_size, a.vae_lr, a.lr,
                      tuple(a.vae_channels), tuple(a.unet_channels), checkpoint_every=a.checkpoint_every,
                      n_heldout=a.n_heldout, seed=a.seed, clip_dir=a.clip, workers=a.workers, patch=a.patch,
                      latent_channels=a.latent_channels, resume=a.resume, max_minutes=a.max_minutes,
                      prediction_type=a.prediction_type, loss_weighting=a.loss_weighting,
                      object_weight=a.object_weight, zero_snr=a.zero_snr, text_lr=a.text_lr,
                      text_init=a.text_init, high_noise_share=a.high_noise_share,
                      text_scene_steps=a.text_scene_steps, vae_from=a.vae_from, whiten=a.whiten,
                      high_noise_steps=a.high_noise_steps, high_noise_share_after=a.high_noise_share_after,
                      grounding_weight=a.grounding_weight, grounding_from=a.grounding_from,
                      simple_share=a.simple_share, shape_weight=a.shape_weight,
                      shape_t_max=a.shape_t_max, shape_loss=a.shape_loss,
                      **({"shape_critic": a.shape_critic} if a.shape_critic else {}), log=_log())
        elif a.command == "train-t2v":
            from workbench.world.video import train_t2v

            _threads()
            train_t2v(a.t2i, a.out, a.n_train, a.steps, a.batch_size, a.lr, a.ema_decay, a.checkpoint_every,
                      a.n_heldout, a.seed, a.frames, a.object_weight, a.prediction_type, a.zero_snr, a.resume,
                      a.max_minutes, a.temporal_only, a.motion_weight, a.stop_at, a.high_noise_share, a.init_from,
                      a.arch, simple_share=a.simple_share, path_weight=a.path_weight, log=_log())
        elif a.command == "train-t2i-decoder":
            from workbench.world.diffusion import train_decoder

            _threads()
            train_decoder(a.folder, a.steps, a.batch_size, a.lr, n_heldout=a.n_heldout, seed=a.seed, log=_log())
        elif a.command == "train-clip":
            from workbench.world.train import train_clip

            _threads()
            train_clip(a.out, a.n_train, a.n_heldout, a.epochs, a.batch_size, a.lr, a.hidden, a.text_layers,
                       a.vision_layers, a.seed, a.hard_negatives,
                       a.workers, log=_log())
    except ValueError as e:
        p.error(str(e))
    return 0


def load_t2i(name: str):
    """A T2I backend for the ground-truth rows: `tiny` is the tiny random pipeline, else a diffusers pipeline folder
    or hub id, loaded by the `diffusers-t2i` backend on the best device present."""
    from backends.base import ModelSpec
    from workbench.models import load_standalone

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"--t2i must name a pipeline folder, a hub id or `tiny`, got {name!r}")
    if name in ("tiny", "tiny:sd"):
        spec = ModelSpec("t2i", "diffusers-t2i", "tiny:sd", random_weights=True)
    else:
        spec = ModelSpec("t2i", "diffusers-t2i", name, options=(("pipeline_class", "StableDiffusionPipeline"),))
    return load_standalone(spec)


def t2i_table(models: list[str], n: int, steps: int, size: int, guidance: float, seed: int,
              classifier_dir: str | Path, faithfulness_n: int = 0) -> str:
    """The ground-truth rows of each T2I model, on the same held-out scenes and seed; with `faithfulness_n`, first
    its render faithfulness on that many held-out fine captions (workbench.world.diffusion.render_faithfulness)."""
    from workbench.world.diffusion import MAX_EVAL, render_faithfulness
    from backends.base import ImageSettings
    from workbench.world.classifier import AttributeClassifier
    from workbench.world.groundtruth import format_groundtruth, groundtruth_rows, heatmap_scores, refinement_scores

    settings = ImageSettings(steps=steps, guidance_scale=guidance, width=size, height=size, seed=seed).check()
    if not isinstance(faithfulness_n, int) or isinstance(faithfulness_n, bool) or not 0 <= faithfulness_n <= MAX_EVAL:
        raise ValueError(f"--t2i-faithfulness-n must be an integer in [0, {MAX_EVAL}], got {faithfulness_n!r}")
    clf = AttributeClassifier.load(classifier_dir)
    rows, refiner = [], ""
    for name in models:
        t2i = load_t2i(name)
        try:
            faith = None
            if faithfulness_n:
                def render_fn(prompts: list[str], chunk: int = 16) -> list:
                    return [r.image for i in range(0, len(prompts), chunk)
                            for r in t2i.generate(prompts[i:i + chunk], settings)]

                faith = render_faithfulness(render_fn, faithfulness_n, classifier=clf)
            heat = heatmap_scores(t2i, settings, clf, n)
            refinement = refinement_scores(t2i, settings, clf, n)
        finally:
            t2i.unload()
        label = "tiny random pipeline" if name in ("tiny", "tiny:sd") else name if len(name) <= 22 else "…" + name[-21:]
        rows += groundtruth_rows(label, heat, refinement, faith)
        refiner = refinement.refiner
    return (format_groundtruth(rows, refiner) +
            f"\nSettings: {steps} steps, {size} px, guidance {guidance}, seed {seed}; {n} held-out scenes "
            f"(seeds from the held-out range), each rendered with its fine caption (heatmaps) and with its coarse "
            f"caption and its refinement (same seed)"
            + (f"; render faithfulness on {faithfulness_n} held-out fine captions (the classifier reads the "
               f"named cell: an object there, its shape, its colour)." if faithfulness_n else "."))


def load_t2v(name: str):
    """A T2V backend for the motion rows: `tiny` is the tiny random AnimateDiff pipeline, else a diffusers pipeline
    folder or hub id, loaded by the `diffusers-t2v` backend on the best device present."""
    from backends.base import ModelSpec
    from workbench.models import load_standalone

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"--t2v must name a pipeline folder, a hub id or `tiny`, got {name!r}")
    if name in ("tiny", "tiny:animatediff"):
        return load_standalone(ModelSpec("t2v", "diffusers-t2v", "tiny:animatediff", random_weights=True))
    return load_standalone(ModelSpec("t2v", "diffusers-t2v", name))


def t2v_table(models: list[str], n: int, steps: int, size: int, frames: int, guidance: float, seed: int) -> str:
    """Motion-direction rows (workbench/world/motion.py) of each T2V model on the same `n` held-out video captions,
    under the world's own renders of those scenes (what a perfect model would draw)."""
    from backends.base import VideoSettings
    from workbench.world.motion import CHANCE, MAX_CAPTIONS, motion_direction_accuracy, world_renderer

    settings = VideoSettings(steps=steps, guidance_scale=guidance, width=size, height=size, num_frames=frames,
                             seed=seed).check()
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CAPTIONS:
        raise ValueError(f"--t2v-n must be an integer in [1, {MAX_CAPTIONS}], got {n!r}")
    results = [("world renders (truth)", motion_direction_accuracy(world_renderer(size, frames), n))]
    for name in models:
        t2v = load_t2v(name)
        try:
            def render_fn(prompts: list[str]) -> list:
                return [r.frames for r in t2v.generate(prompts, settings)]

            res = motion_direction_accuracy(render_fn, n)
        finally:
            t2v.unload()
        label = "tiny random pipeline" if name in ("tiny", "tiny:animatediff") else name if len(name) <= 22 else "…" + name[-21:]
        results.append((label, res))
    head = f"{'T2V model':<22} {'metric (held-out)':<44} {'value':>7} {'reference':>22} {'n':>5}"
    lines = [head, "-" * len(head)]
    for label, r in results:
        for metric, value, ref in (("motion direction accuracy", r["accuracy"], f"{CHANCE:.3f} (chance)"),
                                   ("moving object's colour found", r["found"], ""),
                                   ("moving object read as still", r["still"], "")):
            lines.append(f"{label[:22]:<22} {metric:<44} {value:>7.3f} {ref:>22} {r['objects']:>5}")
    return "\n".join(lines) + (
        f"\nSettings: {steps} steps, {size} px, {frames} frames, guidance {guidance}, seed {seed}; {n} held-out video "
        f"captions (seeds from the held-out range) in which an object moves left, right, up or down; each such object "
        f"is tracked by its named colour frame by frame (workbench/world/motion.py).")


def _threads() -> None:
    import os

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))


def _log():
    import time

    t0 = time.time()
    return lambda m: print(f"[{time.time() - t0:7.1f}s] {m}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
