"""Diffusers text-to-image backend (Stable Diffusion family via AutoPipelineForText2Image)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from backends._cross_attention import recording, word_tokens
from backends._diffusers_common import load_pipeline, load_prompt_window, pipeline_modules, split_at_token_limit, token_limit
from backends.base import (Capabilities, ImageResult, ImageSettings, ModelSpec, TokenAttention, free_accelerator_memory,
                           module_bytes)
from backends.provenance import Provenance


class DiffusersTextToImage:
    def __init__(self, spec: ModelSpec, device: str, dtype: str, pipe: Any, random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.pipe = pipe
        self.random_weights = random_weights

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("t2i",), prompt_window=True, token_heatmaps=True)

    @classmethod
    def load_prompt_window(cls, spec: ModelSpec):
        return load_prompt_window(spec)

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "DiffusersTextToImage":
        pipe, random_weights = load_pipeline(spec, device, dtype, "AutoPipelineForText2Image")
        return cls(spec, device, dtype, pipe, random_weights)

    def unload(self) -> None:
        self.pipe = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        return module_bytes(*pipeline_modules(self.pipe)) if self.pipe is not None else 0

    def token_limit(self) -> int | None:
        return token_limit(getattr(self.pipe, "tokenizer", None))

    def split_at_token_limit(self, prompt: str) -> tuple[str, str]:
        tokenizer = getattr(self.pipe, "tokenizer", None)
        return split_at_token_limit(tokenizer, prompt) if tokenizer is not None else (prompt, "")

    def generate(self, prompts: Sequence[str], settings: ImageSettings,
                 on_step: Callable[[int, int], None] | None = None) -> list[ImageResult]:
        """One batched pipeline call; image i uses generator seed `settings.seed` so every prompt is rendered
        from the same starting noise (the original and its refinements compare fairly)."""
        settings.check()
        if not prompts:
            return []
        return self._generate(list(prompts), settings, on_step)

    def attend(self, prompt: str, settings: ImageSettings,
               on_step: Callable[[int, int], None] | None = None) -> tuple[ImageResult, TokenAttention]:
        """Render `prompt` as `generate` does (same seed, same image) while recording the UNet's cross-attention:
        the image and its per-token maps (DAAM), summed over layers, heads (averaged) and steps."""
        settings.check()
        unet = getattr(self.pipe, "unet", None)
        if unet is None:
            raise ValueError(f"{type(self.pipe).__name__} has no UNet: no token heatmaps")
        words = word_tokens(self.pipe.tokenizer, prompt)
        factor = getattr(self.pipe, "vae_scale_factor", 8)
        with recording(unet, 1, settings.height // factor, settings.width // factor) as store:
            result = self._generate([prompt], settings, on_step)[0]
        maps = store.total[0].cpu().numpy()
        steps = store.calls // max(1, len(store.layers))
        result.provenance.settings["heatmap"] = {"method": "DAAM: cross-attention, heads averaged, summed over "
                                                           "layers and steps", "layers": len(store.layers),
                                                 "steps": steps}
        return result, TokenAttention(maps=maps, words=words, window=self.token_limit(), layers=len(store.layers),
                                      steps=steps)

    def _generate(self, prompts: list[str], settings: ImageSettings,
                  on_step: Callable[[int, int], None] | None) -> list[ImageResult]:
        import torch

        generators = [torch.Generator(device="cpu").manual_seed(settings.seed) for _ in prompts]
        kwargs: dict[str, Any] = dict(
            prompt=list(prompts), num_inference_steps=settings.steps, guidance_scale=settings.guidance_scale,
            width=settings.width, height=settings.height, generator=generators, output_type="pil",
        )
        if settings.negative_prompt:
            kwargs["negative_prompt"] = [settings.negative_prompt] * len(prompts)
        if on_step is not None:
            def step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
                on_step(step + 1, settings.steps)  # raising here (a cancel) stops the pipeline at this step
                return tensors

            kwargs["callback_on_step_end"] = step_end
        with torch.inference_mode():
            images = self.pipe(**kwargs).images
        results = []
        for prompt, image in zip(prompts, images):
            _, tail = self.split_at_token_limit(prompt)
            prov = Provenance.of(self, seed=settings.seed,
                                 settings={**vars(settings), "scheduler": type(self.pipe.scheduler).__name__,
                                           "pipeline": type(self.pipe).__name__})
            results.append(ImageResult(image=image, prompt=prompt, provenance=prov, truncated_tail=tail))
        return results
