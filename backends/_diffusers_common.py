"""Shared by the two diffusers backends: pipeline loading and the text encoder's token limit."""

from __future__ import annotations

from typing import Any

from backends.base import ModelSpec
from backends.devices import torch_dtype
from backends.sources import resolve_source


def load_pipeline(spec: ModelSpec, device: str, dtype: str, pipeline_class: str) -> tuple[Any, bool]:
    """(pipeline, random_weights). `pipeline_class` is the diffusers Auto/Pipeline class to use for hub ids;
    profiles may override it with options.pipeline_class (e.g. CogVideoXPipeline)."""
    import diffusers

    source = resolve_source(spec.model_id)
    if source.kind == "tiny":
        from backends import tiny

        pipe = tiny.build(source.location, source.params)
        random_weights = True
    else:
        cls = getattr(diffusers, spec.option("pipeline_class", pipeline_class))
        kwargs: dict[str, Any] = {"torch_dtype": torch_dtype(dtype), **spec.hub_kwargs()}
        if spec.option("variant"):
            kwargs["variant"] = spec.option("variant")
        pipe = cls.from_pretrained(source.location, **kwargs)
        random_weights = spec.random_weights
    if device != "cpu" and spec.option("cpu_offload"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device=device, dtype=torch_dtype(dtype))
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe, random_weights


def pipeline_modules(pipe: Any) -> list[Any]:
    import torch

    return [c for c in pipe.components.values() if isinstance(c, torch.nn.Module)]


def split_at_token_limit(tokenizer: Any, prompt: str) -> tuple[str, str]:
    """(what the text encoder sees, the tail it never sees). CLIP encoders stop at 77 tokens; the tail is
    returned so the UI can flag it instead of cutting silently."""
    limit = token_limit(tokenizer)
    if limit is None:
        return prompt, ""
    encoded = tokenizer(prompt, add_special_tokens=True, truncation=False, return_offsets_mapping=False)
    ids = encoded["input_ids"]
    if len(ids) <= limit:
        return prompt, ""
    specials = len(tokenizer.build_inputs_with_special_tokens([])) if hasattr(tokenizer, "build_inputs_with_special_tokens") else 2
    content = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    kept_ids = content[: max(0, limit - specials)]
    kept = tokenizer.decode(kept_ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
    # Map back onto the original text by word count so the user sees their own words, not BPE decoding.
    kept_words = len(kept.split())
    words = prompt.split()
    return " ".join(words[:kept_words]), " ".join(words[kept_words:])


def token_limit(tokenizer: Any) -> int | None:
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0) if tokenizer is not None else 0
    return limit if 0 < limit <= 100_000 else None


class TokenizerWindow:
    """The `PromptWindow` of a pipeline's text encoder, from its tokenizer alone."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.limit = token_limit(tokenizer)

    def split(self, prompt: str) -> tuple[str, str]:
        return split_at_token_limit(self.tokenizer, prompt) if self.tokenizer is not None else (prompt, "")


def load_prompt_window(spec: ModelSpec) -> TokenizerWindow:
    """The text encoder's window without loading the pipeline: the tokenizer subfolder only (kilobytes)."""
    source = resolve_source(spec.model_id)
    if source.kind == "tiny":
        from backends import tiny

        return TokenizerWindow(tiny.tokenizer(source.location, source.params))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.location, subfolder=spec.option("tokenizer_subfolder", "tokenizer"),
                                              **spec.hub_kwargs())
    return TokenizerWindow(tokenizer)
