"""HPSv2.1 (Wu et al. 2023, tgxs002/HPSv2): open_clip's ViT-H-14 fine-tuned on Human Preference Dataset v2.
Its authors load `HPS_v2.1_compressed.pt` (hub repo xswu/HPSv2) into open_clip's `ViT-H-14` and score
`cos(image, text)` of the normalised embeddings (0.2-0.35 for ordinary images). open_clip imports torchvision,
which this project never installs, so the same weights go into transformers' `CLIPModel` built from the config
of `laion/CLIP-ViT-H-14-laion2B-s32B-b79K` (open_clip's ViT-H-14 in transformers' layout; GELU, LayerNorm eps
1e-5, text pooled at the end-of-text token, which is the highest id: the same computation) through
`open_clip_to_transformers`, a documented key mapping:

| open_clip | transformers CLIPModel |
|---|---|
| `visual.conv1.weight` | `vision_model.embeddings.patch_embedding.weight` |
| `visual.class_embedding` | `vision_model.embeddings.class_embedding` |
| `visual.positional_embedding` | `vision_model.embeddings.position_embedding.weight` |
| `visual.ln_pre.*` / `visual.ln_post.*` | `vision_model.pre_layrnorm.*` / `vision_model.post_layernorm.*` |
| `visual.proj` (width x dim) | `visual_projection.weight` (its transpose) |
| `token_embedding.weight`, `positional_embedding` | `text_model.embeddings.token_embedding.weight`, `.position_embedding.weight` |
| `ln_final.*` | `text_model.final_layer_norm.*` |
| `text_projection` (width x dim) | `text_projection.weight` (its transpose) |
| `logit_scale` | `logit_scale` |
| `[visual.]transformer.resblocks.i.ln_1/ln_2.*` | `{vision,text}_model.encoder.layers.i.layer_norm1/2.*` |
| `...resblocks.i.attn.in_proj_weight/bias` (q, k, v stacked) | `...layers.i.self_attn.q_proj/k_proj/v_proj.*` (split in 3) |
| `...resblocks.i.attn.out_proj.*` | `...layers.i.self_attn.out_proj.*` |
| `...resblocks.i.mlp.c_fc.*` / `mlp.c_proj.*` | `...layers.i.mlp.fc1.*` / `mlp.fc2.*` |
"""

from __future__ import annotations

import re
from typing import Any

from backends.base import Capabilities, ModelSpec
from backends.clip_scorer import ClipScorer, read_tensors
from backends.devices import torch_dtype

CHECKPOINT = "hf:xswu/HPSv2/HPS_v2.1_compressed.pt"  # the HPSv2 README's v2.1 weights

_BLOCK = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")
_BLOCK_PARTS = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
                "attn.out_proj": "self_attn.out_proj"}
_TOP = {
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
}


def open_clip_to_transformers(state: dict[str, Any]) -> dict[str, Any]:
    """An open_clip CLIP state dict (keys as in open_clip's `CLIP.state_dict()`, optionally under `module.`)
    as transformers `CLIPModel` keys (the table in this module's docstring). A key it does not know is an error
    naming it, so a different architecture never loads half-converted."""
    out: dict[str, Any] = {}
    unknown = []
    for key, tensor in state.items():
        key = key.removeprefix("module.")
        if key in ("attn_mask", "visual.attn_mask"):  # buffers rebuilt by the model
            continue
        if key in _TOP:
            out[_TOP[key]] = tensor
        elif key == "visual.proj":
            out["visual_projection.weight"] = tensor.t().contiguous()
        elif key == "text_projection":
            out["text_projection.weight"] = tensor.t().contiguous()
        elif match := _BLOCK.match(key):
            tower = "vision_model" if match.group(1) else "text_model"
            prefix, rest = f"{tower}.encoder.layers.{match.group(2)}.", match.group(3)
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = "weight" if rest.endswith("weight") else "bias"
                for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                    out[f"{prefix}self_attn.{name}.{kind}"] = part.contiguous()
                continue
            module, _, leaf = rest.rpartition(".")
            if module not in _BLOCK_PARTS:
                unknown.append(key)
                continue
            out[f"{prefix}{_BLOCK_PARTS[module]}.{leaf}"] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"not an open_clip CLIP state dict: unknown keys {unknown[:5]}")
    return out


def load_open_clip_weights(model: Any, state: dict[str, Any]) -> Any:
    """Load an open_clip state dict (or a checkpoint holding one under `state_dict`) into a CLIPModel; every
    weight of the model must be given (position-id buffers aside)."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    converted = open_clip_to_transformers(state)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"the open_clip checkpoint does not fit this CLIP: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model


class HPSv2(ClipScorer):
    """image_text_similarity is the HPS score (the cosine, as its authors compute it)."""

    default_processor = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("image_text",), aesthetic=False)

    @classmethod
    def _hub_model(cls, spec: ModelSpec, location: str, dtype: str) -> Any:
        """The architecture from the hub config, the weights from the HPS checkpoint (never the base weights)."""
        from transformers import CLIPConfig, CLIPModel

        model = CLIPModel(CLIPConfig.from_pretrained(location, **spec.hub_kwargs()))
        load_open_clip_weights(model, read_tensors(str(spec.option("checkpoint", CHECKPOINT))))
        return model.to(torch_dtype(dtype))

    @classmethod
    def _tiny_model(cls, spec: ModelSpec, model: Any) -> Any:
        """A tiny CLIP; with a `checkpoint` option, an open_clip-format file of the same shapes loaded into it
        (the conversion's test)."""
        if spec.option("checkpoint"):
            load_open_clip_weights(model, read_tensors(str(spec.option("checkpoint"))))
        return model

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "HPSv2":
        scorer = super().load(spec, device=device, dtype=dtype)
        scorer.head = None  # HPS has no aesthetic head (a tiny CLIP brings a random one)
        return scorer

    def aesthetic(self, images: Any) -> Any:
        return None
