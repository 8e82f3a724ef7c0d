"""The LoRA rewriter recipe end to end on tiny models: SFT on coarse->fine pairs, then rejection sampling with
the tiny SD pipeline and tiny CLIP; the adapter loads by path through the chat spec option `adapter`."""

from __future__ import annotations

import json

import pytest

from backends.base import GenerationSettings, ImageSettings
from workbench.t2i.train import TrainConfig, train_rewriter


@pytest.mark.slow
def test_lora_recipe_with_rejection_sampling(tmp_path, manager, make_spec):
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "adapter"
    config = TrainConfig(
        base=make_spec("chat", "transformers-lm", "tiny:causal-lm"), out_dir=str(out), max_steps=2,
        limit_pairs=4, max_length=400, learning_rate=1e-2, rejection_k=2, rejection_prompts=2, rejection_steps=1,
        t2i=make_spec("t2i", "diffusers-t2i", "tiny:sd"), scorer=make_spec("image_text", "clip-scorer", "tiny:clip"),
        embedder=make_spec("embeddings", "sentence-embeddings", "tiny:text-embedder"),
        image=ImageSettings(steps=1, width=32, height=32), max_new_tokens=12,
    )
    result = train_rewriter(config, manager=manager)
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert len(result.losses) == 3  # 2 SFT steps + 1 step on the kept rewrites
    assert result.kept and all(k["best"] in [s["text"] for s in k["samples"]] for k in result.kept)
    assert all(k["best_total"] == max(s["total"] for s in k["samples"]) for k in result.kept)
    assert all(k["random_weights"] for k in result.kept)
    meta = json.loads((out / "training.json").read_text())
    assert meta["provenance"]["model_id"] == "tiny:causal-lm" and meta["provenance"]["settings"]["t2i"] == "tiny:sd"
    # shipped as the app ships adapters: the profile's model id as base, no empty model-card template
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny:causal-lm"
    assert not (out / "README.md").exists()
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert any("lora_B" in k and torch.count_nonzero(v) > 0 for k, v in weights.items())  # it trained
    # The tab's path: the chat spec with option adapter=<folder>.
    backend = manager.get(make_spec("chat", "transformers-lm", "tiny:causal-lm", adapter=str(out)))
    assert backend.has_adapter
    greedy = GenerationSettings(max_new_tokens=8, do_sample=False)
    tuned = backend.generate(["a cat"], greedy)[0][0]
    assert tuned.provenance.settings["adapter"] == str(out)
    with backend.adapter_enabled(False):
        base_logits = backend.model(**backend.encode(["a cat on a sofa"])).logits
    lora_logits = backend.model(**backend.encode(["a cat on a sofa"])).logits
    assert not torch.allclose(base_logits, lora_logits)
    # And through the tab's rewriter choice: the profile's chat model plus the adapter folder.
    from workbench.profiles import Profile
    from workbench.models import ManagedModel
    from workbench.common.refiner import RefineSettings, refine_candidates
    from workbench.t2i.service import RewriterChoice

    profile = Profile("tiny", "", {"chat": make_spec("chat", "transformers-lm", "tiny:causal-lm")})
    spec = RewriterChoice(adapter=str(out)).spec(profile)
    assert spec.option("adapter") == str(out.resolve())
    embedder = ManagedModel(manager, make_spec("embeddings", "fake-embeddings", "fake/embeddings"))
    result = refine_candidates(ManagedModel(manager, spec), embedder, "a cat", RefineSettings(n=1, max_new_tokens=8, few_shot=0))
    assert result.candidates[0].provenance.settings["adapter"] == str(out.resolve())


def test_train_config_checks():
    from backends.base import ModelSpec

    base = ModelSpec.from_dict("chat", {"backend": "transformers-lm", "model": "tiny:causal-lm"})
    with pytest.raises(ValueError, match="rejection sampling needs t2i, scorer and embedder"):
        TrainConfig(base=base, out_dir="x", rejection_k=2).check()
    with pytest.raises(ValueError, match="rejection_k must be 0 \\(off\\) or at least 2"):
        TrainConfig(base=base, out_dir="x", rejection_k=1).check()
    with pytest.raises(ValueError, match="lora_r must be a whole number between 1 and 256"):
        TrainConfig(base=base, out_dir="x", lora_r=0).check()
    with pytest.raises(ValueError, match="transformers-lm backend"):
        TrainConfig(base=ModelSpec.from_dict("chat", {"backend": "fake-chat", "model": "f"}), out_dir="x").check()
