"""The world's small CLIP: transformers' `CLIPModel` with a CLIP BPE tokenizer whose merges spell every word of the
world's vocabulary as one token (any other word falls apart into byte-level pieces, never an unknown token), and a
`CLIPImageProcessor` at 64x64. `save_pretrained` writes a folder that `CLIPModel.from_pretrained` and
`AutoProcessor.from_pretrained` read offline, so the project's image_text backend (backends/clip_scorer.py) loads
it unchanged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from workbench.world.vocabulary import Vocabulary, load_vocabulary

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = REPO_ROOT / "assets" / "world" / "clip"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_TOKENS = 77
IMAGE_SIZE = 64


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table (CLIP's BPE works on these characters)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def world_words(v: Vocabulary | None = None) -> list[str]:
    """Every word a world caption may use, sorted."""
    v = v or load_vocabulary()
    phrases = [*v.shapes, *v.colours, *v.sizes, *v.positions, *v.relations, *v.finishes, *v.backgrounds,
               *v.effects, *v.styles, *v.directions, *v.speeds, *v.other_motions, *v.function_words]
    return sorted({w for p in phrases for w in re.findall(r"[a-z0-9']+", p.lower())})


def vocab_and_merges(v: Vocabulary | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP BPE tables: the 256 byte characters and their word-final forms, then the merges that build each world
    word left to right (so each is one token), then the start and end tokens."""
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    known = set(vocab_list)
    merges: list[tuple[str, str]] = []
    for word in world_words(v):
        if len(word) < 2:
            continue
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            merged = current + piece
            if (current, piece) not in merges:
                merges.append((current, piece))
            if merged not in known:
                known.add(merged)
                vocab_list.append(merged)
            current = merged
    # a later word's pieces can be taken by an earlier word's merges ("cyan" -> "cy" + "an</w>", as "an" ranks
    # first): join what is left with merges of lower rank until every world word is one token
    for _ in range(8):
        ranks = {m: i for i, m in enumerate(merges)}
        split = [(w, _bpe(w, ranks)) for w in world_words(v) if len(w) > 1]
        split = [(w, p) for w, p in split if len(p) > 1]
        if not split:
            break
        for _, pieces in split:
            current = pieces[0]
            for piece in pieces[1:]:
                if (current, piece) not in merges:
                    merges.append((current, piece))
                current += piece
                if current not in known:
                    known.add(current)
                    vocab_list.append(current)
    vocab_list += [BOS, EOS]
    return {t: i for i, t in enumerate(vocab_list)}, merges


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE on one word: merge the adjacent pair of lowest rank until none is left."""
    pieces = list(word[:-1]) + [word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(pieces, pieces[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2:]
    return pieces


def build_tokenizer(v: Vocabulary | None = None) -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = vocab_and_merges(v)
    tok = CLIPTokenizer(vocab=vocab, merges=list(merges))
    tok.model_max_length = MAX_TOKENS
    return tok


def build_processor(v: Vocabulary | None = None) -> Any:
    from transformers import CLIPImageProcessor, CLIPProcessor

    images = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return CLIPProcessor(image_processor=images, tokenizer=build_tokenizer(v))


def build_model(tokenizer: Any, hidden: int = 96, text_layers: int = 2, vision_layers: int = 3, heads: int = 4,
                projection: int = 96, seed: int = 0) -> Any:
    import torch
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(hidden_size=hidden, intermediate_size=4 * hidden, num_attention_heads=heads,
                         num_hidden_layers=text_layers, vocab_size=len(tokenizer), max_position_embeddings=MAX_TOKENS,
                         bos_token_id=tokenizer.convert_tokens_to_ids(BOS),
                         eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=hidden, intermediate_size=4 * hidden, num_attention_heads=heads,
                           num_hidden_layers=vision_layers, image_size=IMAGE_SIZE, patch_size=8),
        projection_dim=projection,
    )
    torch.manual_seed(seed)
    return CLIPModel(config)


def pixel_values(images: np.ndarray, processor: Any) -> Any:
    """(N, 64, 64, 3) uint8 -> the tensor the processor makes of the same images (rescale and CLIP's normalisation;
    at 64x64 its resize and crop change nothing), computed in one batched step for training."""
    import torch

    ip = processor.image_processor
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() * float(ip.rescale_factor)
    mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
    return (x - mean) / std


def retrieval_top1(model: Any, processor: Any, images: np.ndarray, captions: list[str], group: int = 16,
                   rng_seed: int = 0) -> float:
    """Top-1 caption retrieval among `group`: each held-out image against its own caption and `group - 1` captions of
    other held-out scenes drawn at random (seeded); the share of images whose own caption scores highest."""
    import torch

    if not isinstance(group, int) or not 2 <= group <= len(captions):
        raise ValueError(f"group must be an integer in [2, {len(captions)}], got {group!r}")
    with torch.inference_mode():
        img = []
        for i in range(0, len(images), 256):
            f = model.get_image_features(pixel_values=pixel_values(images[i:i + 256], processor))
            img.append(torch.nn.functional.normalize(getattr(f, "pooler_output", f), dim=-1))
        img = torch.cat(img)
        txt = []
        for i in range(0, len(captions), 256):
            b = processor.tokenizer(captions[i:i + 256], padding=True, truncation=True, max_length=MAX_TOKENS,
                                    return_tensors="pt")
            f = model.get_text_features(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            txt.append(torch.nn.functional.normalize(getattr(f, "pooler_output", f), dim=-1))
        txt = torch.cat(txt)
    sim = (img @ txt.T).numpy()
    rng = np.random.default_rng(rng_seed)
    hits = 0
    n = len(captions)
    for i in range(n):
        others = rng.choice(np.delete(np.arange(n), i), size=group - 1, replace=False)
        hits += int(sim[i, i] > sim[i, others].max())
    return hits / n


def one_change_captions(scene, k: int = 15, rng_seed: int = 0, v: Vocabulary | None = None) -> list[str]:
    """`k` distinct fine captions of the scene with exactly one attribute changed (one object's shape, colour, size
    or cell, or the background's kind or colour, the effect or the style): the hardest distractors, which a model
    that reads only some attributes cannot tell from the truth."""
    import dataclasses

    v = v or load_vocabulary()
    rng = np.random.default_rng([rng_seed, scene.seed or 0])
    own = scene.caption("fine", v)
    used_cells = {o.cell for o in scene.objects}
    used_colours = {o.colour for o in scene.objects} | {scene.background_colour}
    out: list[str] = []
    for _ in range(50 * k):
        if len(out) == k:
            break
        what = rng.choice(["shape", "colour", "size", "cell", "background", "background_colour", "effect", "style"])
        s = scene
        i = int(rng.integers(len(scene.objects)))
        o = scene.objects[i]
        if what in ("shape", "colour", "size", "cell"):
            if what == "shape":
                o = dataclasses.replace(o, shape=str(rng.choice([x for x in v.shapes if x != o.shape])))
            elif what == "colour":
                o = dataclasses.replace(o, colour=str(rng.choice([c for c in v.colours if c not in used_colours])))
            elif what == "size":
                o = dataclasses.replace(o, size=str(rng.choice([z for z in v.sizes if z != o.size])))
            else:
                free = [(c, r) for r in range(3) for c in range(3) if (c, r) not in used_cells]
                o = dataclasses.replace(o, cell=free[int(rng.integers(len(free)))])
            s = dataclasses.replace(scene, objects=scene.objects[:i] + (o,) + scene.objects[i + 1:])
        elif what == "background":
            s = dataclasses.replace(scene, background=str(rng.choice([b for b in v.backgrounds
                                                                     if b != scene.background])))
        elif what == "background_colour":
            s = dataclasses.replace(scene, background_colour=str(rng.choice([c for c in v.colours
                                                                            if c not in used_colours])))
        elif what == "effect":
            s = dataclasses.replace(scene, effect=str(rng.choice([e for e in ["none", *v.effects.values()]
                                                                 if e != scene.effect])))
        else:
            s = dataclasses.replace(scene, style=str(rng.choice([x for x in ["none", *v.styles] if x != scene.style])))
        c = s.caption("fine", v)
        if c != own and c not in out:
            out.append(c)
    return out


def one_change_top1(model: Any, processor: Any, images: np.ndarray, scenes: list, k: int = 15) -> float:
    """Share of images whose own fine caption scores above all `k` one-change captions of the same scene."""
    return one_change_scores(model, processor, images, scenes, k)[0]


def one_change_scores(model: Any, processor: Any, images: np.ndarray, scenes: list,
                      k: int = 15) -> tuple[float, float]:
    """(share of images whose own fine caption scores above all `k` one-change captions of the same scene, share of
    (image, one-change caption) pairs where the own caption scores higher)."""
    import torch

    hits, pair_hits, pairs = 0, 0, 0
    with torch.inference_mode():
        f = model.get_image_features(pixel_values=pixel_values(images, processor))
        img = torch.nn.functional.normalize(getattr(f, "pooler_output", f), dim=-1)
        for n, scene in enumerate(scenes):
            caps = [scene.caption("fine"), *one_change_captions(scene, k)]
            b = processor.tokenizer(caps, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            t = model.get_text_features(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            t = torch.nn.functional.normalize(getattr(t, "pooler_output", t), dim=-1)
            sim = t @ img[n]
            hits += int(sim[0] > sim[1:].max())
            pair_hits += int((sim[0] > sim[1:]).sum())
            pairs += len(sim) - 1
    return hits / len(scenes), pair_hits / pairs
