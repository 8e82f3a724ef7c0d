"""A behaviour-shift pair: a base LM and its instruction-tuned sibling (Wu et al., NAACL'24).

Either two models of one architecture and tokenizer, or one base model with a LoRA adapter switched off
(base) and on (instruct), which costs the memory of one model. Pairs whose tokenizers differ are refused:
attributions and attention maps are only comparable token by token over the same token ids.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

from backends.base import ModelSpec

SIDES = ("base", "instruct")
PAIR_ROLES = {"base": "lm_base", "instruct": "lm_instruct"}  # the profile roles the behaviour-shift tab pairs


@dataclass(frozen=True)
class ModelPair:
    base: ModelSpec
    instruct: ModelSpec
    kind: str  # "two models" | "adapter"

    def spec(self, side: str) -> ModelSpec:
        """The spec to load for one side: the adapter pair loads only the adapter model, once."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        if self.kind == "adapter":
            return self.instruct
        return self.base if side == "base" else self.instruct

    def label(self, side: str) -> str:
        if self.kind == "adapter":
            return f"{self.base.model_id} (adapter {'on' if side == 'instruct' else 'off'})"
        return self.spec(side).model_id


def make_pair(base: ModelSpec, instruct: ModelSpec) -> ModelPair:
    """Classify the pair: the instruct spec is the base spec plus `options.adapter` -> one model, adapter off/on."""
    if base.key == instruct.key:
        raise ValueError(f"lm_base and lm_instruct are the same model '{base.model_id}'; a behaviour-shift pair "
                         "needs an instruction-tuned sibling or an adapter (options.adapter)")
    if (instruct.option("adapter") and not base.option("adapter")
            and base.without_option("adapter").key == instruct.without_option("adapter").key):
        return ModelPair(base, instruct, "adapter")
    return ModelPair(base, instruct, "two models")


def check_same_tokenizer(base_tok: Any, instruct_tok: Any, base_name: str, instruct_name: str) -> None:
    """Refuse pairs whose vocabularies differ (same tokens must have the same ids)."""
    a, b = base_tok.get_vocab(), instruct_tok.get_vocab()
    if a == b:
        return
    differing = len(set(a.items()) ^ set(b.items()))
    raise ValueError(
        f"the pair's tokenizers differ: lm_base '{base_name}' has {len(a)} tokens and lm_instruct '{instruct_name}' "
        f"has {len(b)} ({differing} token/id entries differ). Attribution and attention are compared token by token, "
        "so both models must split the prompt into the same token ids: choose a base/instruct pair of one "
        "architecture and tokenizer, or one base model with an adapter."
    )


def _check_white_box(manager: Any, spec: ModelSpec) -> None:
    """The backend's declared capabilities, asked before any load."""
    if "white_box" not in manager.capabilities(spec).kinds:
        raise ValueError(f"role {spec.role} uses backend '{spec.backend}', which gives no access to the model's "
                         "weights and gradients; the behaviour-shift tab needs the 'transformers-lm' backend")


def check_pair(manager: Any, pair: ModelPair) -> None:
    """Load the pair (once per model) and check it: white-box backends, same tokenizer, an adapter to switch."""
    if pair.kind == "adapter":
        _check_white_box(manager, pair.instruct)
        if not manager.capabilities(pair.instruct).adapter:
            raise ValueError(f"lm_instruct '{pair.instruct.model_id}' has no adapter to switch off")
        manager.get(pair.instruct)
        return
    _check_white_box(manager, pair.base)
    _check_white_box(manager, pair.instruct)
    base, instruct = manager.get(pair.base), manager.get(pair.instruct)
    check_same_tokenizer(base.tokenizer, instruct.tokenizer, pair.base.model_id, pair.instruct.model_id)


@contextlib.contextmanager
def use_side(manager: Any, pair: ModelPair, side: str) -> Iterator[Any]:
    """Hold one side's backend (its device queue taken), with the adapter switched to match the side."""
    spec = pair.spec(side)
    _check_white_box(manager, spec)
    with manager.use(spec) as backend:
        if pair.kind == "adapter":
            with backend.adapter_enabled(side == "instruct"):
                yield backend
        else:
            yield backend
