"""Transformers ViT / DINO / DINOv2 backbone returning CLS, patch tokens and eager attention maps
(the frozen backbone Prompt-CAM trains class prompts on)."""

from __future__ import annotations

from typing import Any, Sequence

from backends.base import Capabilities, ModelSpec, VisionOutput, free_accelerator_memory, module_bytes
from backends.devices import torch_dtype
from backends.provenance import Provenance
from backends.sources import resolve_source


def patch_grid(config: Any, pixel_height: int, pixel_width: int) -> tuple[int, int]:
    """Patch grid from the config and the actual input size, never a hard-coded 14x14."""
    patch = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    return pixel_height // patch, pixel_width // patch


class VisionTransformer:
    # options that change what `load` builds (none: a Prompt-CAM `checkpoint` is read by the tab, on top of the
    # loaded backbone), so the manager keys the backbone by model id alone
    LOAD_OPTIONS: tuple[str, ...] = ()
    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("vision",), eager_attention=True, load_options=cls.LOAD_OPTIONS)

    def __init__(self, spec: ModelSpec, device: str, dtype: str, model: Any, processor: Any, random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.model, self.processor = model, processor
        self.random_weights = random_weights

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "VisionTransformer":
        from transformers import AutoImageProcessor, AutoModel

        source = resolve_source(spec.model_id)
        random_weights = spec.random_weights
        if source.kind == "tiny":
            from backends import tiny

            model, processor = tiny.build(source.location, source.params)
            random_weights = True
        else:
            common = spec.hub_kwargs()
            model = AutoModel.from_pretrained(source.location, dtype=torch_dtype(dtype), **common)
            processor = AutoImageProcessor.from_pretrained(source.location, **common)
        model.set_attn_implementation("eager")
        model.to(device=device, dtype=torch_dtype(dtype)).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return cls(spec, device, dtype, model, processor, random_weights)

    def unload(self) -> None:
        self.model = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(self.model)

    def forward(self, images: Sequence[Any]) -> VisionOutput:
        import torch

        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        pixels = pixels.to(self.device, self.model.dtype)
        with torch.inference_mode():
            out = self.model(pixel_values=pixels, output_attentions=True)
        if not out.attentions or any(a is None for a in out.attentions):
            raise RuntimeError(f"model '{self.spec.model_id}' returned no attentions; eager attention is required")
        grid = patch_grid(self.model.config, pixels.shape[-2], pixels.shape[-1])
        n_patches = grid[0] * grid[1]
        hidden = out.last_hidden_state
        prov = Provenance.of(self, settings={"input_size": list(pixels.shape[-2:]), "attn_implementation": "eager"})
        return VisionOutput(
            cls_embedding=hidden[:, 0], patch_tokens=hidden[:, -n_patches:], attentions=tuple(out.attentions),
            grid=grid, provenance=prov,
        )
