"""Behaviour-shift core on a tiny random pair (tiny:causal-lm seed 0 vs seed 1): spans, pairs, attribution,
completeness, hooks, gradients, memory, attention, feed-forward concepts, adapters."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import ROOT, spec
from workbench.shift.limits import METHODS as ALL_METHODS

BASE = "tiny:causal-lm?seed=0"
INSTRUCT = "tiny:causal-lm?seed=1"


@pytest.fixture()
def tiny_backend(manager):
    return manager.get(spec("lm_base", "transformers-lm", BASE))


@pytest.fixture()
def layout(tiny_backend):
    from workbench.shift.spans import build_layout

    return build_layout(tiny_backend.tokenizer, "write a short poem about the sea")


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory):
    """A LoRA adapter (q/k/v/o) for the tiny model, with random non-zero B so that it changes the outputs."""
    from peft import LoraConfig, get_peft_model

    from backends import tiny

    model, _ = tiny.build("causal-lm", (("seed", "0"),))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                                  init_lora_weights=False, task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(str(out), safe_serialization=True)
    return out


# ---------------------------------------------------------------------------- spans


def test_instruction_span_from_chat_template(tiny_backend, layout):
    tok = tiny_backend.tokenizer
    assert layout.source == "chat template"
    assert layout.text == tok.apply_chat_template([{"role": "user", "content": "write a short poem about the sea"}],
                                                  tokenize=False, add_generation_prompt=True)
    assert "".join(layout.instruction_tokens()) == "write a short poem about the sea"
    assert layout.input_ids == tok(layout.text)["input_ids"]
    # template markup is not part of the instruction
    assert not layout.instruction_mask[0] and layout.tokens[0] == "<|user|>"
    assert not layout.instruction_mask[-1]


def test_instruction_span_plain_template_and_marks(tiny_backend):
    from backends.transformers_lm import PLAIN_CHAT_TEMPLATE
    from workbench.shift.spans import build_layout

    tok = tiny_backend.tokenizer
    saved = tok.chat_template
    tok.chat_template = PLAIN_CHAT_TEMPLATE  # what Gemma-3-270M base gets
    try:
        lay = build_layout(tok, "the sea is wide. [[summarise the text]]")
        assert lay.text.startswith("### Instruction:\nthe sea is wide. summarise the text\n\n### Response:\n")
        assert "".join(lay.instruction_tokens()).strip() == "summarise the text"
        assert lay.source == "user-marked inside the chat template"
    finally:
        tok.chat_template = saved
    plain = build_layout(tok, "the sea is wide. [[summarise the text]] now", use_chat_template=False)
    assert plain.text == "the sea is wide. summarise the text now"
    assert "".join(plain.instruction_tokens()).strip() == "summarise the text"


@pytest.mark.parametrize("prompt, template, message", [
    ("no marks here", False, "mark the instruction"),
    ("[[one]] [[two]]", True, "exactly one"),
    ("   ", True, "non-empty"),
    ("a [[ ]] b", True, "empty"),
])
def test_bad_prompts_raise(tiny_backend, prompt, template, message):
    from workbench.shift.spans import build_layout

    with pytest.raises(ValueError, match=message):
        build_layout(tiny_backend.tokenizer, prompt, use_chat_template=template)


# ---------------------------------------------------------------------------- pairs


def test_refuses_mismatched_tokenizers(manager):
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.pairs import check_same_tokenizer
    from backends.tiny import tiny_lm_tokenizer

    with pytest.raises(ValueError, match="tokenizers differ"):
        check_same_tokenizer(tiny_lm_tokenizer(600), tiny_lm_tokenizer(500), "a", "b")
    check_same_tokenizer(tiny_lm_tokenizer(600), tiny_lm_tokenizer(600), "a", "b")
    other = spec("lm_instruct", "transformers-lm", "tiny:causal-lm?seed=1&vocab_size=500")
    with pytest.raises(ValueError, match="tokenizers differ.*600 tokens.*500"):
        analyse_pair(manager, spec("lm_base", "transformers-lm", BASE), other, "hello world")


def test_pair_kinds(tiny_adapter):
    from workbench.shift.pairs import make_pair

    base = spec("lm_base", "transformers-lm", BASE)
    assert make_pair(base, spec("lm_instruct", "transformers-lm", INSTRUCT)).kind == "two models"
    pair = make_pair(base, spec("lm_instruct", "transformers-lm", BASE, adapter=str(tiny_adapter)))
    assert pair.kind == "adapter" and pair.spec("base") == pair.spec("instruct") == pair.instruct
    with pytest.raises(ValueError, match="same model"):
        make_pair(base, base)


def test_adapter_on_off_gives_different_outputs(manager, tiny_adapter):
    import torch

    from workbench.shift.analysis import analyse_pair
    from workbench.shift.limits import ShiftSettings

    base = spec("lm_base", "transformers-lm", BASE)
    instruct = spec("lm_instruct", "transformers-lm", BASE, adapter=str(tiny_adapter))
    backend = manager.get(instruct)
    ids = torch.tensor([backend.tokenizer("the sea is wide")["input_ids"]])
    with torch.inference_mode():
        with backend.adapter_enabled(False):
            off = backend.model(input_ids=ids).logits
        with backend.adapter_enabled(True):
            on = backend.model(input_ids=ids).logits
    assert (off - on).abs().max() > 1e-3
    result = analyse_pair(manager, base, instruct, "write a short poem", settings=ShiftSettings(
        max_new_tokens=3, methods=("gradient_x_input",)), parts=("attribution", "attention", "ffn"))
    assert result.pair_kind == "adapter"
    assert not manager.is_loaded(base), "the adapter pair must load the model once"
    a, b = result.sides["base"], result.sides["instruct"]
    assert not np.allclose(a.attributions["gradient_x_input"].scores, b.attributions["gradient_x_input"].scores)
    assert not np.allclose(a.attention.instruction_share, b.attention.instruction_share)
    assert result.ffn_overlap() == [1.0, 1.0]  # LoRA on q/k/v/o leaves the feed-forward weights alone
    assert b.provenance.settings["adapter_enabled"] is True and a.provenance.settings["adapter_enabled"] is False


def test_adapter_path_relative_to_repo_root(tiny_adapter, tmp_path, monkeypatch):
    from backends.transformers_lm import TransformersCausalLM

    relative = os.path.relpath(tiny_adapter, ROOT)
    monkeypatch.chdir(tmp_path)  # the path must not depend on where the app was started
    backend = TransformersCausalLM.load(spec("lm_instruct", "transformers-lm", BASE, adapter=relative),
                                        device="cpu", dtype="float32")
    assert backend.has_adapter


# ---------------------------------------------------------------------------- attribution


@pytest.mark.numerical
def test_attribution_shapes_and_ig_completeness(tiny_backend, layout):
    from workbench.shift.attribution import attribute
    from workbench.shift.limits import METHODS, ShiftSettings

    out_ids = [5, 17, 42]
    res = attribute(tiny_backend, layout.input_ids, out_ids, layout.special_mask, ShiftSettings(methods=ALL_METHODS, ig_steps=128))
    assert set(res) == set(METHODS)
    for r in res.values():
        assert r.scores.shape == (3, layout.n_tokens)
        assert np.isfinite(r.scores).all() and np.abs(r.scores).sum() > 0
        assert ((r.target_prob > 0) & (r.target_prob < 1)).all()
    ig = res["integrated_gradients"]
    assert ig.completeness_rel.shape == (3,)
    assert ig.completeness_ok(0.05), ig.completeness_rel
    # feature ablation on token i is f(x) - f(x with token i -> pad): check one entry by hand
    import torch

    pad = tiny_backend.tokenizer.pad_token_id
    ids = list(layout.input_ids)
    ablated = ids[:]
    ablated[3] = pad
    with torch.inference_mode():
        p = lambda seq: torch.softmax(tiny_backend.model(input_ids=torch.tensor([seq])).logits[0, -1], -1)[out_ids[0]]
        p_full, p_ablated = float(p(ids)), float(p(ablated))
    # a difference of two float32 probabilities computed along two paths (cached prefix vs whole sequence): its
    # rounding follows the probabilities (1e-4 of them, ~800 float32 ulps), not the difference's own size
    assert abs(p_full - p_ablated) > 1e-3 * p_full  # the check below is not of a vanishing difference
    assert res["feature_ablation"].scores[0, 3] == pytest.approx(p_full - p_ablated, abs=1e-4 * max(p_full, p_ablated))


def test_no_hooks_and_no_parameter_grads_after_run_and_error(tiny_backend, layout, monkeypatch):
    from workbench.shift.attribution import attribute, hook_counts, hooks_removed_on_exit
    from workbench.shift.limits import ShiftSettings

    model = tiny_backend.model
    assert hook_counts(model) == 0
    flags = [p.requires_grad for p in model.parameters()]
    attribute(tiny_backend, layout.input_ids, [5, 6], layout.special_mask, ShiftSettings(methods=ALL_METHODS, ig_steps=4))
    assert hook_counts(model) == 0
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags

    # an error in the middle of a forward pass (after captum has hooked the embedding layer)
    norm = model.model.norm
    calls = {"n": 0}
    original = norm.forward

    def failing(*args, **kwargs):
        calls["n"] += 1
        raise RuntimeError("injected failure")

    monkeypatch.setattr(norm, "forward", failing)
    for method in ("gradient_x_input", "integrated_gradients", "feature_ablation"):
        with pytest.raises(RuntimeError, match="injected"):
            attribute(tiny_backend, layout.input_ids, [5], layout.special_mask, ShiftSettings(ig_steps=4), [method])
        assert hook_counts(model) == 0, method
    assert calls["n"] >= 3
    monkeypatch.setattr(norm, "forward", original)
    assert all(p.grad is None for p in model.parameters())

    # the guard itself removes hooks that a failing block left behind
    with pytest.raises(KeyError):
        with hooks_removed_on_exit(model):
            model.model.layers[0].register_forward_hook(lambda *a: None)
            model.model.embed_tokens.register_full_backward_hook(lambda *a: None)
            assert hook_counts(model) == 2
            raise KeyError("boom")
    assert hook_counts(model) == 0


def test_importance_density_follows_the_paper():
    from workbench.shift.attribution import importance_density, instruction_share, position_profile

    scores = np.array([[1.0, 0.9, 0.2, -3.0],   # -> 10, 9, 0 (2 <= 7), 0 (negative)
                       [0.0, 0.0, 0.5, 0.45]])  # -> 0, 0, 10, 9
    d = importance_density(scores, scale=10, threshold=7, p=4)
    assert d.sparse.tolist() == [[10, 9, 0, 0], [0, 0, 10, 9]]
    l1, l4 = 19.0, (10**4 + 9**4) ** 0.25
    assert d.per_output == pytest.approx([l1 / l4, l1 / l4], rel=1e-6)
    assert d.per_input == pytest.approx([1.0, 1.0, 1.0, 1.0], rel=1e-6)  # each input is important to one output
    share = instruction_share(scores, [False, True, True, False], [True, False, False, False])
    assert share == pytest.approx([(0.9 + 0.2) / (0.9 + 0.2 + 3.0), 0.5 / 0.95])
    prof = position_profile(np.array([[1.0, 1.0, 2.0, 0.0]]), [False] * 4, bins=2)
    assert prof == pytest.approx([0.5, 0.5])


# ---------------------------------------------------------------------------- attention and FFN


def test_attentions_non_empty_and_shares(tiny_backend, layout):
    from workbench.shift.attention import attention_to_instruction

    from workbench.shift.attribution import hook_counts

    res = attention_to_instruction(tiny_backend, layout.input_ids + [5, 6], layout.n_tokens, layout.instruction_mask)
    assert hook_counts(tiny_backend.model) == 0  # transformers' output-capturing hooks are taken off again
    again = attention_to_instruction(tiny_backend, layout.input_ids + [5, 6], layout.n_tokens, layout.instruction_mask)
    assert np.allclose(again.instruction_share, res.instruction_share) and hook_counts(tiny_backend.model) == 0
    assert res.shape == (2, 4)
    assert ((res.instruction_share > 0) & (res.instruction_share < 1)).all()
    view = res.head_view(1, 3)
    assert view.shape == (layout.n_tokens + 2,) * 2
    assert np.allclose(view.sum(-1), 1.0, atol=1e-2)
    with pytest.raises(ValueError, match="head must be between 0 and 3"):
        res.head_view(0, 4)


def test_empty_attentions_are_an_error(tiny_backend, layout, monkeypatch):
    import contextlib
    from types import SimpleNamespace

    from workbench.shift.attention import read_attentions

    import torch

    class NoAttentions(torch.nn.Module):  # what SDPA gives in transformers 5: no attention weights
        def forward(self, **kwargs):
            return SimpleNamespace(attentions=None)

    monkeypatch.setattr(tiny_backend, "model", NoAttentions())
    monkeypatch.setattr(tiny_backend, "eager_attention", contextlib.nullcontext)
    with pytest.raises(RuntimeError, match="no attention weights"):
        read_attentions(tiny_backend, layout.input_ids)


def test_ffn_concepts(manager):
    from workbench.shift.ffn import concept_overlap, ffn_concepts

    a = ffn_concepts(manager.get(spec("lm_base", "transformers-lm", BASE)), components=2, top_tokens=5)
    b = ffn_concepts(manager.get(spec("lm_instruct", "transformers-lm", INSTRUCT)), components=2, top_tokens=5)
    assert [l.layer for l in a.layers] == [0, 1]
    assert all(len(l.tokens) == 2 and all(len(row) == 5 for row in l.tokens) for l in a.layers)
    assert all(0 < e < 1 for l in a.layers for e in l.explained)
    assert concept_overlap(a, a) == [1.0, 1.0]
    assert all(0 <= o < 1 for o in concept_overlap(a, b))


@pytest.mark.numerical
def test_ffn_concepts_match_svd_reference_and_are_cached(manager):
    """The Gram-matrix eigenvectors give the SVD's top directions (same tokens, same variance shares); a second
    call reads the per-layer cache (no new computation), and a LoRA delta on the down-projection is not cached."""
    import torch

    from workbench.shift import ffn as ffn_mod
    from workbench.shift.spans import display_token

    backend = manager.get(spec("lm_base", "transformers-lm", BASE))
    got = ffn_mod.ffn_concepts(backend, components=2, top_tokens=5)
    found, layout = ffn_mod._down_projections(backend.model)
    vocab = torch.nn.functional.normalize(backend.model.get_output_embeddings().weight.detach().float(), dim=-1)
    for (index, module, _), layer in zip(found, got.layers):
        vectors = ffn_mod._effective_weight(module, layout)
        _, s, vh = torch.linalg.svd(vectors - vectors.mean(0, keepdim=True), full_matrices=False)
        top = (vh[:2] @ vocab.T).abs().topk(5, dim=-1).indices.tolist()
        assert layer.tokens == [[display_token(backend.tokenizer, t) for t in row] for row in top]
        np.testing.assert_allclose(layer.explained, ((s**2) / (s**2).sum())[:2].tolist(), rtol=1e-4)
    calls = []
    real_eigh = torch.linalg.eigh
    try:
        torch.linalg.eigh = lambda m: calls.append(1) or real_eigh(m)
        again = ffn_mod.ffn_concepts(backend, components=2, top_tokens=5)
    finally:
        torch.linalg.eigh = real_eigh
    assert calls == [] and [l.tokens for l in again.layers] == [l.tokens for l in got.layers]
    again.layers[0].tokens[0][0] = "edited"  # a caller editing its copy leaves the cache alone
    assert ffn_mod.ffn_concepts(backend, components=2, top_tokens=5).layers[0].tokens == got.layers[0].tokens


def test_ffn_concepts_follow_a_lora_delta_on_the_down_projection():
    """A LoRA adapter on the feed-forward output: adapter on gives other concepts than off, both ways round
    (the cache never serves the adapted weights for the base or the other way)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from backends.tiny import tiny_causal_lm
    from workbench.shift.ffn import ffn_concepts

    base, tokenizer = tiny_causal_lm(seed=3)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["down_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 2.0)
    view = type("B", (), {"model": model, "tokenizer": tokenizer,
                          "input_embeddings": lambda self: model.get_input_embeddings()})()
    on = ffn_concepts(view, components=2, top_tokens=5)
    with model.disable_adapter():
        off = ffn_concepts(view, components=2, top_tokens=5)
    on_again = ffn_concepts(view, components=2, top_tokens=5)
    assert [l.tokens for l in on.layers] != [l.tokens for l in off.layers]
    assert [l.tokens for l in on_again.layers] == [l.tokens for l in on.layers]


# ---------------------------------------------------------------------------- settings and training recipe


def test_settings_and_limits_raise_named_errors(manager):
    from workbench.shift.analysis import analyse_pair
    from workbench.shift.limits import LIMITS, ShiftSettings, check_page

    with pytest.raises(ValueError, match="max_new_tokens must be between 1 and"):
        ShiftSettings(max_new_tokens=LIMITS.max_new_tokens + 1).check()
    with pytest.raises(ValueError, match="methods must be"):
        ShiftSettings(methods=("saliency",)).check()
    with pytest.raises(ValueError, match="page must be between 1 and 2"):
        check_page(3, 4, 8)
    long_prompt = "the sea " * (LIMITS.max_prompt_tokens + 10)
    with pytest.raises(ValueError, match=f"at most {LIMITS.max_prompt_tokens}"):
        analyse_pair(manager, spec("lm_base", "transformers-lm", BASE), spec("lm_instruct", "transformers-lm", INSTRUCT),
                     long_prompt, settings=ShiftSettings(max_new_tokens=1))


def test_train_adapter_recipe_on_tiny_model(manager, tmp_path):
    from workbench.shift.train_adapter import TrainSettings, encode_example, train

    backend = manager.get(spec("lm_base", "transformers-lm", "tiny:causal-lm?seed=2"))
    ids, labels = encode_example(backend.tokenizer, "### Instruction:\nhi\n\n### Response:\n", "hello", 64)
    n_prompt = labels.count(-100)
    assert ids[n_prompt:] == labels[n_prompt:] and labels[-1] == backend.tokenizer.eos_token_id
    summary = train(backend, TrainSettings(max_steps=2, batch_size=2), tmp_path, log=lambda m: None)
    assert summary["steps"] == 2 and np.isfinite(summary["final_loss"])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors"]
    assert all(not p.requires_grad and p.grad is None for p in backend.model.parameters())
