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
    with pytest.raises(ValueError, match="init_adapter must be a peft adapter folder"):
        TrainConfig(base=base, out_dir="x", init_adapter="/no/such/adapter").check()


def test_training_goes_on_from_a_saved_adapter(tmp_path, make_spec):
    """--init-adapter: a run stopped by its time limit continues from its saved adapter instead of a new LoRA. At a
    learning rate too small to move the weights, one more step leaves the first run's LoRA weights where they were
    (a new LoRA starts with lora_B at zero), and the provenance names the adapter it started from."""
    import torch
    from safetensors.torch import load_file

    base = make_spec("chat", "transformers-lm", "tiny:causal-lm")
    common = dict(base=base, limit_pairs=4, max_length=400, target_modules="all-linear")
    first = tmp_path / "first"
    train_rewriter(TrainConfig(out_dir=str(first), max_steps=2, learning_rate=1e-2, **common))
    went_on = tmp_path / "went_on"
    train_rewriter(TrainConfig(out_dir=str(went_on), max_steps=1, learning_rate=1e-9, seed=1,
                               init_adapter=str(first), **common))
    fresh = tmp_path / "fresh"
    train_rewriter(TrainConfig(out_dir=str(fresh), max_steps=1, learning_rate=1e-9, seed=1, **common))
    trained, continued, new = (load_file(str(d / "adapter_model.safetensors")) for d in (first, went_on, fresh))
    lora_b = [k for k in trained if "lora_B" in k]
    assert lora_b and set(trained) == set(continued) == set(new)
    assert max(float(trained[k].abs().max()) for k in lora_b) > 1e-3  # the first run moved lora_B off zero
    assert all(torch.allclose(trained[k], continued[k], atol=1e-6) for k in trained)  # and the next run kept it
    assert max(float(new[k].abs().max()) for k in lora_b) < 1e-6  # a new LoRA would have started at zero
    meta = json.loads((went_on / "training.json").read_text())
    assert meta["provenance"]["settings"]["init_adapter"] == str(first)
    assert json.loads((went_on / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny:causal-lm"


def test_shipped_facet_pairs_each_show_one_facet_and_keep_the_prompt():
    """assets/t2i_pairs/facet_pairs.jsonl, as a person reading it would check it: built from training pairs only,
    each target the coarse prompt (every content word of it) and then phrases about its facet alone, no word said
    twice, within the offline rewriter's 30-word budget."""
    from workbench.common.facets import facet_names, phrase_facet, phrases
    from workbench.common.refiner import heldout_ids, load_pairs
    from workbench.t2i.facet_pairs import FACET_PAIRS_FILE, VALIDATION_FILE, _content

    rows = [json.loads(line) for line in FACET_PAIRS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    left_out = heldout_ids() | heldout_ids(VALIDATION_FILE)
    coarse_of = {p.id: p.coarse for p in load_pairs()}
    assert len(rows) > 1000 and {r["facet"] for r in rows} == set(facet_names())
    assert not {r["source"] for r in rows} & left_out
    for row in rows:
        assert row["coarse"] == coarse_of[row["source"]]
        assert _content(row["coarse"]) <= _content(row["fine"]), row
        assert len(row["fine"].split()) <= 30 and len(row["fine"].split()) - len(row["coarse"].split()) >= 8, row
        if row["facet"] != "detail":  # subject detail may start with the pair's own fuller subject phrase
            assert row["fine"].startswith(row["coarse"] + ", "), row
        head = len(phrases(row["coarse"])) if row["fine"].startswith(row["coarse"] + ", ") else 1
        added = phrases(row["fine"])[head:]
        assert added or head == 1 and row["facet"] == "detail", row  # or only the fuller subject phrase
        assert all(phrase_facet(p) == row["facet"] for p in added), row
        words = [w for p in added for w in _content(p)]
        assert len(words) == len(set(words)) and not set(words) & _content(", ".join(phrases(row["fine"])[:head])), row


def test_facet_rows_are_asked_for_with_the_refiners_facet_instruction(tmp_path, manager, make_spec):
    from workbench.common.facets import load_facets
    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE
    from workbench.common.rewriter_train import _examples, _facet_rows

    path = tmp_path / "facet_pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "p9001-lighting", "source": "p9001", "facet": "lighting", "coarse": "a red fox",
         "fine": "a red fox, cold blue morning light, long soft shadows"},
        {"id": "p9002-style", "source": "p9002", "facet": "style", "coarse": "an old barn",
         "fine": "an old barn, watercolor illustration, loose washes"},
        {"id": "p9003-style", "source": "p9003", "facet": "style", "coarse": "a held-out ship",
         "fine": "a held-out ship, oil painting, visible brushstrokes"}]) + "\n", encoding="utf-8")
    from backends.base import ModelSpec

    config = TrainConfig(base=ModelSpec.from_dict("chat", {"backend": "transformers-lm", "model": "tiny:causal-lm"}),
                         out_dir=str(tmp_path / "out"), facet_pairs_file=str(path))
    rows = _facet_rows(config, held={"p9003"})
    assert rows == [("a red fox", "a red fox, cold blue morning light, long soft shadows", "lighting"),
                    ("an old barn", "an old barn, watercolor illustration, loose washes", "style")]
    backend = manager.get(make_spec("chat", "transformers-lm", "tiny:causal-lm"))
    data = _examples(backend, rows + [("a blue kite", "a blue kite over a beach, kite festival", None)],
                     DEFAULT_SYSTEM_TEMPLATE, 400)
    lighting, style = load_facets()["lighting"].instruction, load_facets()["style"].instruction
    assert lighting in data["prompt"][0] and style not in data["prompt"][0] and "a red fox" in data["prompt"][0]
    assert style in data["prompt"][1] and lighting not in data["prompt"][1]
    assert lighting not in data["prompt"][2] and style not in data["prompt"][2]  # an undirected pair: no facet
    assert data["completion"][1] == "an old barn, watercolor illustration, loose washes"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"source": "p1", "facet": "sound", "coarse": "a", "fine": "a, b"}) + "\n")
    with pytest.raises(ValueError, match="unknown facet"):
        _facet_rows(TrainConfig(base=config.base, out_dir="x", facet_pairs_file=str(bad)), held=set())
