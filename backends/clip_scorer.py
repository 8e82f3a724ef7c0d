"""CLIP-family image-text scorer with the LAION linear aesthetic head.

Alignment is the cosine similarity of CLIP image and text embeddings (CLIPScore without its 2.5 scale).
The aesthetic head (LAION-AI/aesthetic-predictor, `sa_0_4_vit_l_14_linear.pth`: an nn.Linear state dict
over L2-normalised CLIP ViT-L/14 image embeddings, roughly a 1-10 scale) is read with
`torch.load(weights_only=True)` or from safetensors; never a full pickle.
"""

from __future__ import annotations

from typing import Any, Sequence

from backends.base import Capabilities, ModelSpec, free_accelerator_memory, module_bytes
from backends.devices import torch_dtype
from backends.sources import resolve_file, resolve_source


def read_tensors(ref: str) -> dict[str, Any]:
    """A state dict from a weights file (see `resolve_file`): safetensors, or `torch.load(weights_only=True)`,
    which refuses anything but tensors and plain containers (never an arbitrary pickle)."""
    import torch

    file = resolve_file(ref)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    return torch.load(str(file), map_location="cpu", weights_only=True)


def load_linear_head(path: str, in_features: int) -> Any:
    import torch

    file = resolve_file(path)
    state = read_tensors(str(file))
    if "weight" not in state or tuple(state["weight"].shape) != (1, in_features):
        raise ValueError(
            f"aesthetic head '{file}' must hold a Linear({in_features}, 1) state dict; got keys {sorted(state)}"
        )
    head = torch.nn.Linear(in_features, 1)
    head.load_state_dict(state)
    return head


class ClipScorer:
    default_processor: str | None = None  # a checkpoint whose processor lives elsewhere names it (PickScore)

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        # tiny CLIPs come with a random head; hub models only when the profile names a head file
        aesthetic = bool(spec.option("aesthetic_head")) or spec.model_id.startswith("tiny:")
        return Capabilities(kinds=("image_text",), aesthetic=aesthetic)

    def __init__(self, spec: ModelSpec, device: str, dtype: str, model: Any, processor: Any, head: Any,
                 random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.model, self.processor, self.head = model, processor, head
        self.random_weights = random_weights

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "ClipScorer":
        from transformers import AutoProcessor

        source = resolve_source(spec.model_id)
        random_weights = spec.random_weights
        head = None
        if source.kind == "tiny":
            from backends import tiny

            model, processor, head = tiny.build(source.location, source.params)
            random_weights = True
            model = cls._tiny_model(spec, model)
        else:
            common = spec.hub_kwargs()
            model = cls._hub_model(spec, source.location, dtype)
            processor = AutoProcessor.from_pretrained(
                spec.option("processor", cls.default_processor or source.location), **common)
            if spec.option("aesthetic_head"):
                head = load_linear_head(str(spec.option("aesthetic_head")), model.config.projection_dim)
        model.to(device=device, dtype=torch_dtype(dtype)).eval()
        if head is not None:
            head.to(device=device, dtype=torch_dtype(dtype)).eval()
        for module in (model, head):
            if module is not None:
                for p in module.parameters():
                    p.requires_grad_(False)
        return cls(spec, device, dtype, model, processor, head, random_weights)

    @classmethod
    def _hub_model(cls, spec: ModelSpec, location: str, dtype: str) -> Any:
        """The CLIPModel of a hub checkpoint (a subclass whose weights come in another format overrides this)."""
        from transformers import CLIPModel

        return CLIPModel.from_pretrained(location, dtype=torch_dtype(dtype), **spec.hub_kwargs())

    @classmethod
    def _tiny_model(cls, spec: ModelSpec, model: Any) -> Any:
        return model

    def unload(self) -> None:
        self.model = self.head = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(self.model, self.head)

    def text_token_limit(self) -> int:
        return int(self.model.config.text_config.max_position_embeddings)

    def image_embeddings(self, images: Sequence[Any]) -> Any:
        import torch

        with torch.inference_mode():
            pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
            feats = self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))
            feats = getattr(feats, "pooler_output", feats)
            return torch.nn.functional.normalize(feats.float(), dim=-1)

    def text_embeddings(self, texts: Sequence[str]) -> Any:
        import torch

        with torch.inference_mode():
            batch = self.processor(text=list(texts), return_tensors="pt", padding=True, truncation=True,
                                   max_length=self.text_token_limit())
            feats = self.model.get_text_features(input_ids=batch["input_ids"].to(self.device),
                                                 attention_mask=batch["attention_mask"].to(self.device))
            feats = getattr(feats, "pooler_output", feats)
            return torch.nn.functional.normalize(feats.float(), dim=-1)

    def image_text_similarity(self, images: Sequence[Any], texts: Sequence[str]) -> Any:
        """Cosine similarity of image i with text i (texts past 77 tokens are truncated by CLIP itself)."""
        if len(images) != len(texts):
            raise ValueError(f"need one text per image, got {len(images)} images and {len(texts)} texts")
        if not images:
            import numpy as np

            return np.zeros(0, dtype=np.float32)
        img = self.image_embeddings(images)
        txt = self.text_embeddings(texts)
        return (img * txt).sum(-1).cpu().numpy()

    def aesthetic(self, images: Sequence[Any]) -> Any:
        """LAION linear aesthetic score per image, or None when the profile names no head."""
        import torch

        if self.head is None:
            return None
        emb = self.image_embeddings(images)
        with torch.inference_mode():
            return self.head(emb.to(self.head.weight.dtype)).squeeze(-1).float().cpu().numpy()
