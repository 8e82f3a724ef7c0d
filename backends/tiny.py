"""Tiny random models built in code with fixed seeds (diffusers `get_dummy_components` style).

They stand in for roles whose weights cannot be obtained offline (diffusion, CLIP, ViT) and make
every backend testable without downloads. Their outputs are not meaningful, and every result they
produce is marked `random_weights`.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

# A small fixed corpus for the tiny tokenisers: prompt-engineering words so tiny tokens look sane.
_CORPUS = """
a photo of a cat on a sofa, soft light, detailed fur, shallow depth of field
a watercolor painting of a lighthouse at dusk, warm colors, calm sea, highly detailed
an astronaut riding a horse on the moon, cinematic lighting, wide angle, 8k
portrait of an old fisherman, dramatic lighting, oil painting, textured brushstrokes
a cozy cabin in a snowy forest at night, glowing windows, digital art, trending
a red sports car on a mountain road, sunset, motion blur, professional photography
a bowl of ramen with steam rising, food photography, macro, vibrant colors
a futuristic city skyline with flying cars, neon lights, cyberpunk, rain
a dog running on the beach, golden hour, action shot, sharp focus
a castle on a hill surrounded by clouds, fantasy art, epic scale, matte painting
rewrite the prompt with more detail about subject, style, lighting and composition
the user wants an image of the following scene. describe it for a text to image model
instruction: answer the question. question: what is the capital of france? answer: paris
write a short poem about the sea. the sea is wide and blue and deep
summarise the text in one sentence. translate the sentence into french
list three fruits: apple, banana, cherry. name two colors: red and blue
the quick brown fox jumps over the lazy dog. hello world. thank you very much
a video of waves crashing on rocks, slow motion, drone shot, cinematic
a timelapse of clouds moving over mountains, dramatic sky, high quality video
""".strip().splitlines()

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


_BUILD_LOCK = threading.RLock()


def _seeded(seed: int):
    """Seed weight initialisation. Only called inside `_isolated` builders, whose RNG state is forked and
    restored, so no caller's random state is touched."""
    import torch

    torch.manual_seed(seed)


def _isolated(builder):
    """Run a builder with the process-wide RNG forked and restored afterwards (torch.random.fork_rng), one
    build at a time: weights depend only on the builder's seed, and the global RNG is left as it was, so no
    other user's run can be changed by a model load."""

    @functools.wraps(builder)
    def build(*args: Any, **kwargs: Any):
        import torch

        with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
            return builder(*args, **kwargs)

    return build


@functools.lru_cache(maxsize=4)
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    return tok.to_str()


def tiny_lm_tokenizer(vocab_size: int = 600):
    """A byte-level BPE trained on a fixed corpus, with a chat template; deterministic."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


@_isolated
def tiny_causal_lm(seed: int = 0, layers: int = 2, hidden: int = 32, vocab_size: int = 600):
    """(model, tokenizer): a 2-layer Llama with eager attention."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_lm_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    config._attn_implementation = "eager"
    _seeded(seed)
    model = LlamaForCausalLM(config).eval()
    return model, tok


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@functools.lru_cache(maxsize=1)
def _clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-style BPE vocabulary: byte characters, their word-final forms, and whole-word merges."""
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    words = sorted({w.strip(",.?:") for line in _CORPUS for w in line.lower().split() if w.strip(",.?:")})
    known = set(vocab_list)
    for word in words:
        if len(word) < 2 or not word.isascii():
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
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab_list)}, merges


@functools.lru_cache(maxsize=1)
def _openai_clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]] | None:
    """OpenAI CLIP's own BPE (49,408 tokens), rebuilt from the merges file that the `clip-anytorch` package ships
    (found with find_spec, never imported: its module imports torchvision). None when it is not installed."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        return None
    lines = gzip.open(path, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab_list)}, merges


@functools.lru_cache(maxsize=4)  # building 49k-token BPE takes seconds; the tokenizer is never mutated after this
def tiny_clip_tokenizer(max_length: int = 77, real: bool = True):
    """The tokenizer of the tiny CLIP text encoders: OpenAI CLIP's real BPE when `clip-anytorch` is installed
    (requirements-offline.txt), so the 77-token window and the rewrite budget count real CLIP tokens; else a toy
    BPE over a small corpus (counts about 3x as many tokens per word)."""
    from transformers import CLIPTokenizer

    found = _openai_clip_vocab_and_merges() if real else None
    vocab, merges = found if found is not None else _clip_vocab_and_merges()
    tok = CLIPTokenizer(vocab=vocab, merges=list(merges))
    tok.model_max_length = max_length
    return tok


def _tiny_text_encoder(hidden: int, vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=hidden, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=vocab_size,
        max_position_embeddings=77,
    )
    return CLIPTextModel(config)


@_isolated
def tiny_sd_pipeline(seed: int = 0):
    """A StableDiffusionPipeline with a 2-block UNet, a tiny VAE and a tiny CLIP text encoder."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tok = tiny_clip_tokenizer()
    _seeded(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
    )
    text_encoder = _tiny_text_encoder(32, len(tok))
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet, scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tok,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@_isolated
def tiny_animatediff_pipeline(seed: int = 0):
    """An AnimateDiffPipeline (UNet + MotionAdapter) small enough to render a few frames on CPU."""
    from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel

    tok = tiny_clip_tokenizer()
    channels = (8, 8)
    _seeded(seed)
    unet = UNet2DConditionModel(
        block_out_channels=channels, layers_per_block=2, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8, norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=channels, in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, norm_num_groups=2,
    )
    text_encoder = _tiny_text_encoder(8, len(tok))
    adapter = MotionAdapter(
        block_out_channels=channels, motion_layers_per_block=2, motion_norm_num_groups=2, motion_num_attention_heads=4
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False, steps_offset=1)
    pipe = AnimateDiffPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet, motion_adapter=adapter, scheduler=scheduler,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@_isolated
def tiny_clip(seed: int = 0, image_size: int = 32):
    """(CLIPModel, CLIPProcessor, aesthetic head) with random weights."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = tiny_clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                         vocab_size=len(tok), max_position_embeddings=77, bos_token_id=0, eos_token_id=2, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                           image_size=image_size, patch_size=8),
        projection_dim=32,
    )
    _seeded(seed)
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": image_size},
                                           crop_size={"height": image_size, "width": image_size}),
        tokenizer=tok,
    )
    head = torch.nn.Linear(config.projection_dim, 1)
    return model, processor, head


@_isolated
def tiny_blip_reward(seed: int = 0, image_size: int = 32):
    """(BlipVisionModel, BlipTextModel with cross-attention, ImageReward's MLP head, image processor, tokenizer):
    ImageReward's architecture classes at 2 layers, hidden 32, random weights."""
    from transformers import BlipImageProcessor, BlipTextConfig, BlipTextModel, BlipVisionConfig, BlipVisionModel

    from backends.image_reward import reward_head

    tok = tiny_lm_tokenizer()
    _seeded(seed)
    vision = BlipVisionModel(BlipVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                              num_attention_heads=4, image_size=image_size, patch_size=8,
                                              layer_norm_eps=1e-6))
    text = BlipTextModel(BlipTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=64, encoder_hidden_size=32,
                                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                        eos_token_id=tok.eos_token_id, sep_token_id=tok.eos_token_id),
                         add_pooling_layer=False)
    processor = BlipImageProcessor(size={"height": image_size, "width": image_size}, resample=3)
    return vision.eval(), text.eval(), reward_head(32).eval(), processor, tok


@_isolated
def tiny_vit(seed: int = 0, image_size: int = 32, patch_size: int = 8, kind: str = "vit"):
    """(model, image processor): a 2-layer ViT (or DINOv2) with eager attention."""
    from transformers import Dinov2Config, Dinov2Model, ViTConfig, ViTImageProcessor, ViTModel

    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  image_size=image_size, patch_size=patch_size)
    _seeded(seed)
    if kind == "dinov2":
        config = Dinov2Config(**common)
        config._attn_implementation = "eager"
        model = Dinov2Model(config)
    else:
        config = ViTConfig(**common)
        config._attn_implementation = "eager"
        model = ViTModel(config, add_pooling_layer=False)
    processor = ViTImageProcessor(size={"height": image_size, "width": image_size})
    return model.eval(), processor


@_isolated
def tiny_text_embedder(seed: int = 0):
    """(BertModel, tokenizer) for mean-pooled sentence embeddings."""
    from transformers import BertConfig, BertModel

    tok = tiny_lm_tokenizer()
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=512, pad_token_id=tok.pad_token_id)
    _seeded(seed)
    return BertModel(config, add_pooling_layer=False).eval(), tok


# A stand-in for Llama Guard 3's chat template (the real one ships with its tokenizer): the task, the category
# list and the conversation, with content given as a list of typed parts, as the model card sends it.
GUARD_TEMPLATE = (
    "<|user|>\nTask: Check if there is unsafe content in 'User' messages in conversations according to our safety "
    "policy with the below categories.\n<BEGIN UNSAFE CONTENT CATEGORIES>\nS1: Violent Crimes.\nS9: Indiscriminate "
    "Weapons.\n<END UNSAFE CONTENT CATEGORIES>\n<BEGIN CONVERSATION>\n"
    "{% for message in messages %}User: {% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{{ part['text'] }}{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}"
    "<END CONVERSATION>\nProvide your safety assessment for ONLY THE LAST User message.</s>\n<|assistant|>\n"
)


@_isolated
def tiny_guard_lm(seed: int = 0):
    """(model, tokenizer): the tiny Llama (the class Llama Guard 3 1B is) with a guard-format chat template."""
    model, tok = tiny_causal_lm(seed)
    tok.chat_template = GUARD_TEMPLATE
    return model, tok


BUILDERS: dict[str, Any] = {
    "causal-lm": tiny_causal_lm,
    "guard-lm": tiny_guard_lm,
    "sd": tiny_sd_pipeline,
    "animatediff": tiny_animatediff_pipeline,
    "clip": tiny_clip,
    "blip-reward": tiny_blip_reward,
    "vit": tiny_vit,
    "text-embedder": tiny_text_embedder,
}


# The tokenizer of each builder alone (token windows are read without building the model).
TOKENIZERS: dict[str, Any] = {
    "causal-lm": lambda vocab_size=600, **_: tiny_lm_tokenizer(vocab_size),
    "guard-lm": lambda **_: tiny_lm_tokenizer(),
    "sd": lambda **_: tiny_clip_tokenizer(),
    "animatediff": lambda **_: tiny_clip_tokenizer(),
    "clip": lambda **_: tiny_clip_tokenizer(),
    "text-embedder": lambda **_: tiny_lm_tokenizer(),
}


def _kwargs(params: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {key: int(value) if value.lstrip("-").isdigit() else value for key, value in params}


def build(name: str, params: tuple[tuple[str, str], ...] = ()) -> Any:
    if name not in BUILDERS:
        raise ValueError(f"unknown tiny model '{name}'; known: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[name](**_kwargs(params))


def tokenizer(name: str, params: tuple[tuple[str, str], ...] = ()) -> Any:
    """The tokenizer the tiny model `name` would be built with, without building the model."""
    if name not in TOKENIZERS:
        raise ValueError(f"tiny model '{name}' has no tokenizer; those with one: {', '.join(sorted(TOKENIZERS))}")
    return TOKENIZERS[name](**_kwargs(params))
