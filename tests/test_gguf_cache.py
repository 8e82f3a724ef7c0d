"""The safetensors copy that the first load of a GGUF model writes to the cache (backends/transformers_lm.py)
is the same model: per packaged GGUF model, every weight equals the GGUF file's read directly, and on one prompt the
greedy text is the same and the next-token logits agree to float tolerance."""

from pathlib import Path

import pytest

from backends.base import GenerationSettings

pytestmark = [pytest.mark.real_models, pytest.mark.slow]

PROMPTS = {  # role in the offline profile -> prompt
    "chat": [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
    "lm_base": "The capital of France is Paris. The capital of Italy is",
}


@pytest.mark.numerical
@pytest.mark.parametrize("role", sorted(PROMPTS))
def test_cached_safetensors_copy_equals_the_gguf(real_manager, offline_profile, monkeypatch, role):
    import torch

    from backends.sources import resolve_source
    from backends.transformers_lm import TransformersCausalLM, _converted_gguf

    spec = offline_profile.spec(role)
    source = resolve_source(spec.model_id)
    assert source.gguf_file, "the offline profile's language models ship as GGUF files"
    session_model = real_manager.get(spec)  # the run's first load of this model wrote the copy if it was missing
    copy = _converted_gguf(source.location, source.gguf_file)
    assert copy is not None and (copy / "complete").exists() and list(copy.glob("*.safetensors"))
    # Whichever of the two the session's model came from, load the other one (the GGUF read is the slow one).
    if Path(session_model.model.name_or_path) == copy:
        monkeypatch.setenv("WORKBENCH_GGUF_CACHE", "0")
        from_copy, from_gguf = session_model, TransformersCausalLM.load(spec, device="cpu", dtype="float32")
        extra = from_gguf
    else:
        from_gguf, from_copy = session_model, TransformersCausalLM.load(spec, device="cpu", dtype="float32")
        extra = from_copy
    try:
        assert Path(from_copy.model.name_or_path) == copy
        assert Path(from_gguf.model.name_or_path) == Path(source.location)
        prompt = PROMPTS[role]
        text = from_gguf.format_chat(prompt)
        assert from_copy.format_chat(prompt) == text  # the chat template came across too
        ids_gguf, ids_copy = from_gguf.encode([text]), from_copy.encode([text])
        assert torch.equal(ids_gguf["input_ids"], ids_copy["input_ids"])
        # the same model: every weight bit for bit
        weights_gguf, weights_copy = _base_weights(from_gguf.model), _base_weights(from_copy.model)
        assert weights_gguf.keys() == weights_copy.keys()
        differ = [k for k in weights_gguf if not torch.equal(weights_gguf[k], weights_copy[k])]
        assert not differ, differ[:5]
        with torch.inference_mode():
            logits_gguf = from_gguf.model(**ids_gguf).logits[0, -1]
            logits_copy = from_copy.model(**ids_copy).logits[0, -1]
        # Equal weights in two separately allocated models can still take different CPU kernel paths (summation
        # order): once in CI the last-token logits differed by 0.0026 (of about 20), not reproduced in three reruns,
        # so the logits get a float tolerance; the weights above are the exact check.
        assert torch.allclose(logits_gguf, logits_copy, rtol=1e-4, atol=1e-2), (logits_gguf - logits_copy).abs().max()
        greedy = GenerationSettings(max_new_tokens=6, do_sample=False)
        (a,), = from_gguf.generate([prompt], greedy)
        (b,), = from_copy.generate([prompt], greedy)
        assert a.text == b.text and a.num_tokens == b.num_tokens and a.text
    finally:
        extra.unload()


def _base_weights(model) -> dict:
    """The model's own weights by their plain names: the session's model may carry the profile's LoRA adapters
    (peft wraps it: "base_model.model." before each name, ".base_layer" inside each adapted layer, and the adapters'
    own lora_* weights, which are not the GGUF's)."""
    out = {}
    for key, value in model.state_dict().items():
        if ".lora_" in key:
            continue
        key = key.removeprefix("base_model.model.").replace(".base_layer.", ".")
        out[key] = value
    return out
