"""Diffusers text-to-video backend (CogVideoX, AnimateDiff, Wan, ModelScope T2V via DiffusionPipeline)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from backends._diffusers_common import load_pipeline, load_prompt_window, pipeline_modules, split_at_token_limit, token_limit
from backends.base import Capabilities, ModelSpec, VideoResult, VideoSettings, free_accelerator_memory, module_bytes
from backends.provenance import Provenance


class DiffusersTextToVideo:
    def __init__(self, spec: ModelSpec, device: str, dtype: str, pipe: Any, random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self.pipe = pipe
        self.random_weights = random_weights

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("t2v",), prompt_window=True)

    @classmethod
    def load_prompt_window(cls, spec: ModelSpec):
        return load_prompt_window(spec)

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "DiffusersTextToVideo":
        pipe, random_weights = load_pipeline(spec, device, dtype, "DiffusionPipeline")
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

    def generate(self, prompts: Sequence[str], settings: VideoSettings,
                 on_step: Callable[[int, int, int], None] | None = None) -> list[VideoResult]:
        """One pipeline call per prompt (video pipelines batch poorly in memory); same seed for each.
        `on_step(prompt_index, step, steps)` is called after each denoising step (diffusers'
        callback_on_step_end); an exception it raises (a user's cancel) stops the render there."""
        import torch

        settings.check()
        results = []
        for prompt in prompts:
            generator = torch.Generator(device="cpu").manual_seed(settings.seed)
            kwargs: dict[str, Any] = dict(
                prompt=prompt, num_inference_steps=settings.steps, guidance_scale=settings.guidance_scale,
                width=settings.width, height=settings.height, num_frames=settings.num_frames,
                generator=generator, output_type="pil",
            )
            if settings.negative_prompt:
                kwargs["negative_prompt"] = settings.negative_prompt
            if on_step is not None:
                kwargs.update(_step_callback(self.pipe, on_step, len(results), settings.steps))
            with torch.inference_mode():
                frames = self.pipe(**kwargs).frames[0]
            _, tail = self.split_at_token_limit(prompt)
            prov = Provenance.of(self, seed=settings.seed,
                                 settings={**vars(settings), "scheduler": type(self.pipe.scheduler).__name__,
                                           "pipeline": type(self.pipe).__name__})
            results.append(VideoResult(frames=list(frames), fps=settings.fps, prompt=prompt, provenance=prov,
                                       truncated_tail=tail))
        return results


def _step_callback(pipe: Any, on_step: Callable[[int, int, int], None], index: int, steps: int) -> dict:
    """The pipeline's per-step callback argument for `on_step(index, step, steps)`: diffusers'
    `callback_on_step_end`, or the older `callback` + `callback_steps` for pipelines without it
    (TextToVideoSDPipeline, the world's text-to-video folders)."""
    import inspect

    if "callback_on_step_end" in inspect.signature(pipe.__call__).parameters:
        def step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
            on_step(index, step + 1, steps)
            return tensors

        return {"callback_on_step_end": step_end}

    def callback(step: int, timestep: Any, latents: Any) -> None:
        on_step(index, step + 1, steps)

    return {"callback": callback, "callback_steps": 1}
