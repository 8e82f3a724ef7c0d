"""ImageReward (Xu et al. 2023, THUDM/ImageReward): BLIP's ViT-L/16 image encoder and its BERT text encoder with
cross-attention to the image, and an MLP head on the [CLS] feature, normalised by the authors' mean and std.

Its PyPI package (`image-reward`) imports torchvision, timm and fairscale, which this project does not install, so
the authors' checkpoint (`ImageReward.pt` with `med_config.json`, hub repo THUDM/ImageReward) is loaded into
transformers' BLIP classes (`BlipVisionModel`, `BlipTextModel`) with this key mapping (the one transformers' own
BLIP conversion uses for the vision tower; the text encoder's keys are the same BERT names):

| ImageReward.pt | here |
|---|---|
| `blip.visual_encoder.cls_token` / `.pos_embed` | `vision.embeddings.class_embedding` / `.position_embedding` |
| `blip.visual_encoder.patch_embed.proj.*` | `vision.embeddings.patch_embedding.*` |
| `blip.visual_encoder.blocks.i.norm1/norm2.*` | `vision.encoder.layers.i.layer_norm1/layer_norm2.*` |
| `blip.visual_encoder.blocks.i.attn.qkv.*` / `attn.proj.*` | `vision.encoder.layers.i.self_attn.qkv.*` / `self_attn.projection.*` |
| `blip.visual_encoder.blocks.i.mlp.fc1/fc2.*` | `vision.encoder.layers.i.mlp.fc1/fc2.*` |
| `blip.visual_encoder.norm.*` | `vision.post_layernorm.*` |
| `blip.text_encoder.<name>` | `text.<name>` (unchanged BERT names) |
| `mlp.layers.{0,2,4,6,7}.*` | `mlp.{0,2,4,6,7}.*` (Linear 768-1024-128-64-16-1, dropouts between) |

Score as the authors compute it: the prompt tokenised by BLIP's BERT tokenizer (padding to 35 tokens), the image
at 224 px with CLIP's normalisation, reward = (MLP([CLS] feature) - 0.16717362830052426) / 1.0333394966054072.
Other BLIP checkpoint keys (the text decoder, the projections) are not used by the score and are skipped.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from backends.base import Capabilities, ModelSpec, free_accelerator_memory, module_bytes
from backends.devices import torch_dtype
from backends.sources import resolve_file, resolve_source

CHECKPOINT = "hf:THUDM/ImageReward/ImageReward.pt"
MED_CONFIG = "hf:THUDM/ImageReward/med_config.json"
TOKENIZER = "Salesforce/blip-itm-large-coco"  # bert-base-uncased plus BLIP's [DEC] and [ENC], as BLIP builds it
REWARD_MEAN, REWARD_STD = 0.16717362830052426, 1.0333394966054072
MAX_TEXT_TOKENS = 35
# BLIP ViT-L/16 at 224 px as ImageReward builds it (BLIP_Pretrain(image_size=224, vit='large'))
VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
              patch_size=16, layer_norm_eps=1e-6, hidden_act="gelu")

_VISION_RULES = [
    (re.compile(r"^cls_token$"), "embeddings.class_embedding"),
    (re.compile(r"^pos_embed$"), "embeddings.position_embedding"),
    (re.compile(r"^patch_embed\.proj\.(weight|bias)$"), r"embeddings.patch_embedding.\1"),
    (re.compile(r"^blocks\.(\d+)\.norm1\.(weight|bias)$"), r"encoder.layers.\1.layer_norm1.\2"),
    (re.compile(r"^blocks\.(\d+)\.norm2\.(weight|bias)$"), r"encoder.layers.\1.layer_norm2.\2"),
    (re.compile(r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$"), r"encoder.layers.\1.self_attn.qkv.\2"),
    (re.compile(r"^blocks\.(\d+)\.attn\.proj\.(weight|bias)$"), r"encoder.layers.\1.self_attn.projection.\2"),
    (re.compile(r"^blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)$"), r"encoder.layers.\1.mlp.\2.\3"),
    (re.compile(r"^norm\.(weight|bias)$"), r"post_layernorm.\1"),
]


def convert_image_reward(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ImageReward.pt's state dict split and renamed for ("vision", "text", "mlp") (the module docstring's
    table). A vision or head key it cannot map is an error naming it."""
    out: dict[str, dict[str, Any]] = {"vision": {}, "text": {}, "mlp": {}}
    unknown = []
    for key, tensor in state.items():
        if key.startswith("blip.visual_encoder."):
            rest = key[len("blip.visual_encoder."):]
            for pattern, target in _VISION_RULES:
                if pattern.match(rest):
                    out["vision"][pattern.sub(target, rest)] = tensor
                    break
            else:
                unknown.append(key)
        elif key.startswith("blip.text_encoder."):
            rest = key[len("blip.text_encoder."):]
            if not rest.endswith("position_ids"):
                out["text"][rest] = tensor
        elif key.startswith("mlp.layers."):
            out["mlp"][key[len("mlp.layers."):]] = tensor
        elif not key.startswith("blip."):
            unknown.append(key)
    if unknown:
        raise ValueError(f"not an ImageReward checkpoint: cannot map {unknown[:5]}")
    return out


def reward_head(in_features: int) -> Any:
    """ImageReward's MLP: Linear layers 768-1024-128-64-16-1 with dropouts between (no activations)."""
    import torch

    nn = torch.nn
    return nn.Sequential(nn.Linear(in_features, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                         nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))


def load_parts(parts: dict[str, dict[str, Any]], vision: Any, text: Any, mlp: Any) -> None:
    """Load converted weights strictly: every weight of the three modules must be given."""
    for name, module in (("vision", vision), ("text", text), ("mlp", mlp)):
        missing, unexpected = module.load_state_dict(parts[name], strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(f"ImageReward {name} weights do not fit: missing {missing[:5]}, unexpected "
                             f"{unexpected[:5]}")


class ImageReward:
    """image_text_similarity is the ImageReward score; image_embeddings are BLIP's image [CLS] features and
    text_embeddings its text [CLS] features without the image (used only for image diversity; not a shared
    space: cross-modal cosine is not meaningful here and nothing computes it)."""

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("image_text",), aesthetic=False)

    def __init__(self, spec: ModelSpec, device: str, dtype: str, vision: Any, text: Any, mlp: Any,
                 image_processor: Any, tokenizer: Any, random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.vision, self.text, self.mlp = vision, text, mlp
        self.image_processor, self.tokenizer = image_processor, tokenizer
        self.random_weights = random_weights

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "ImageReward":
        source = resolve_source(spec.model_id)
        random_weights = spec.random_weights
        if source.kind == "tiny":
            from backends import tiny

            vision, text, mlp, image_processor, tokenizer = tiny.build(source.location, source.params)
            random_weights = True
        else:
            vision, text, mlp, image_processor, tokenizer = cls._hub_parts(spec)
        if spec.option("checkpoint") or source.kind != "tiny":
            from backends.clip_scorer import read_tensors

            load_parts(convert_image_reward(read_tensors(str(spec.option("checkpoint", CHECKPOINT)))),
                       vision, text, mlp)
        for module in (vision, text, mlp):
            module.to(device=device, dtype=torch_dtype(dtype)).eval()
            for p in module.parameters():
                p.requires_grad_(False)
        return cls(spec, device, dtype, vision, text, mlp, image_processor, tokenizer, random_weights)

    @classmethod
    def _hub_parts(cls, spec: ModelSpec) -> tuple[Any, ...]:
        import json

        from transformers import (AutoTokenizer, BlipImageProcessor, BlipTextConfig, BlipTextModel, BlipVisionConfig,
                                  BlipVisionModel)

        med = json.loads(resolve_file(str(spec.option("med_config", MED_CONFIG))).read_text(encoding="utf-8"))
        text_config = BlipTextConfig(vocab_size=med["vocab_size"], hidden_size=med["hidden_size"],
                                     intermediate_size=med["intermediate_size"],
                                     num_hidden_layers=med["num_hidden_layers"],
                                     num_attention_heads=med["num_attention_heads"],
                                     max_position_embeddings=med["max_position_embeddings"],
                                     encoder_hidden_size=med.get("encoder_width", VISION["hidden_size"]),
                                     layer_norm_eps=med.get("layer_norm_eps", 1e-12), hidden_act=med["hidden_act"])
        vision = BlipVisionModel(BlipVisionConfig(**VISION))
        text = BlipTextModel(text_config, add_pooling_layer=False)
        size = VISION["image_size"]
        image_processor = BlipImageProcessor(size={"height": size, "width": size}, resample=3)  # bicubic
        tokenizer = AutoTokenizer.from_pretrained(spec.option("tokenizer", TOKENIZER), **spec.hub_kwargs())
        return vision, text, reward_head(text_config.hidden_size), image_processor, tokenizer

    def unload(self) -> None:
        self.vision = self.text = self.mlp = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(self.vision, self.text, self.mlp)

    def text_token_limit(self) -> int:
        return MAX_TEXT_TOKENS

    def _pixels(self, images: Sequence[Any]) -> Any:
        pixels = self.image_processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, next(self.vision.parameters()).dtype)

    def image_embeddings(self, images: Sequence[Any]) -> Any:
        import torch

        with torch.inference_mode():
            feats = self.vision(pixel_values=self._pixels(images)).last_hidden_state[:, 0, :]
            return torch.nn.functional.normalize(feats.float(), dim=-1)

    def text_embeddings(self, texts: Sequence[str]) -> Any:
        import torch

        with torch.inference_mode():
            batch = self._tokens(texts)
            feats = self.text(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            return torch.nn.functional.normalize(feats[:, 0, :].float(), dim=-1)

    def _tokens(self, texts: Sequence[str]) -> Any:
        batch = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=MAX_TEXT_TOKENS,
                               return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def image_text_similarity(self, images: Sequence[Any], texts: Sequence[str]) -> Any:
        """ImageReward of image i for prompt i (prompts past 35 tokens are cut, as the authors' code does)."""
        import numpy as np
        import torch

        if len(images) != len(texts):
            raise ValueError(f"need one text per image, got {len(images)} images and {len(texts)} texts")
        if not images:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            image_embeds = self.vision(pixel_values=self._pixels(images)).last_hidden_state
            batch = self._tokens(texts)
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
            out = self.text(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            encoder_hidden_states=image_embeds, encoder_attention_mask=image_atts)
            features = out.last_hidden_state[:, 0, :].float()
            rewards = (self.mlp.float()(features).squeeze(-1) - REWARD_MEAN) / REWARD_STD
        return rewards.cpu().numpy()

    def aesthetic(self, images: Sequence[Any]) -> Any:
        return None
