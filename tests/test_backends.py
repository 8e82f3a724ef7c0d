"""Every backend on tiny models built in code (no downloads), through the same ModelManager the app uses."""

import numpy as np
import pytest
from PIL import Image

from backends.base import (
    ChatBackend, EmbeddingBackend, GenerationSettings, ImageSettings, ImageTextScorer, TextToImageBackend,
    TextToVideoBackend, VideoSettings, VisionBackbone, WhiteBoxLM,
)

GREEDY = GenerationSettings(max_new_tokens=6, do_sample=False)


@pytest.fixture()
def tiny_lm(manager, make_spec):
    return manager.get(make_spec("chat", "transformers-lm", "tiny:causal-lm"))


def test_causal_lm_batched_generation_with_chat_template(tiny_lm):
    assert isinstance(tiny_lm, ChatBackend) and isinstance(tiny_lm, WhiteBoxLM)
    convs = [[{"role": "user", "content": "a cat on a sofa"}], "a photo of a dog", "hello"]
    out = tiny_lm.generate(convs, GenerationSettings(max_new_tokens=5, do_sample=True, num_return_sequences=2))
    assert [len(g) for g in out] == [2, 2, 2]
    assert out[0][0].prompt.startswith("<|user|>\na cat on a sofa")  # the chat template was applied
    assert all(g.num_tokens <= 5 and g.finish_reason in ("stop", "length") for gens in out for g in gens)
    prov = out[0][0].provenance
    assert prov.random_weights and prov.model_id == "tiny:causal-lm" and prov.versions["torch"]
    assert prov.settings["num_return_sequences"] == 2


@pytest.mark.numerical
def test_batched_greedy_matches_one_by_one(tiny_lm):
    prompts = ["a cat", "a photo of a dog on the beach at sunset"]
    batched = [g[0].text for g in tiny_lm.generate(prompts, GREEDY)]
    single = [tiny_lm.generate([p], GREEDY)[0][0].text for p in prompts]
    assert batched == single


def test_samples_of_one_conversation_share_one_prefill(tiny_lm, monkeypatch):
    """n samples of one conversation prefill its prompt once (batch 1, cache repeated n times) and give the same
    samples as n separate prefills; several conversations keep the plain path."""
    from backends.transformers_lm import TransformersCausalLM

    conv = [{"role": "user", "content": "a lighthouse on a cliff at night, stormy sea"}]
    settings = GenerationSettings(max_new_tokens=10, do_sample=True, temperature=0.9, num_return_sequences=4, seed=5,
                                  repetition_penalty=1.2)
    calls = []
    real = TransformersCausalLM._prefill

    def spy(self, prefix, rows):
        calls.append((tuple(prefix.shape), rows))
        return real(self, prefix, rows)

    monkeypatch.setattr(TransformersCausalLM, "_prefill", spy)
    shared = [(g.text, g.num_tokens, g.finish_reason) for g in tiny_lm.generate([conv], settings)[0]]
    prompt_len = tiny_lm.encode([tiny_lm.format_chat(conv)])["input_ids"].shape[1]
    assert calls == [((1, prompt_len - 1), 4)]
    tiny_lm.generate([conv, "a dog"], settings)
    assert len(calls) == 1  # two conversations: no shared prefill
    monkeypatch.setattr(TransformersCausalLM, "_prefill", lambda self, prefix, rows: None)  # generate prefills n rows
    separate = [(g.text, g.num_tokens, g.finish_reason) for g in tiny_lm.generate([conv], settings)[0]]
    assert shared == separate and len(set(shared)) > 1


def test_streaming_yields_the_greedy_text(tiny_lm):
    conv = [{"role": "user", "content": "hello world"}]
    streamed = "".join(tiny_lm.stream(conv, GREEDY))
    assert streamed.strip() == tiny_lm.generate([conv], GREEDY)[0][0].text


def test_same_seed_same_sample(tiny_lm):
    s = GenerationSettings(max_new_tokens=8, do_sample=True, seed=7)
    assert tiny_lm.generate(["a cat"], s)[0][0].text == tiny_lm.generate(["a cat"], s)[0][0].text


def test_white_box_access_gives_eager_attentions_and_input_grads(tiny_lm):
    import torch

    batch = tiny_lm.encode(["a photo of a cat"])
    with tiny_lm.eager_attention():
        out = tiny_lm.model(**batch, output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape[1] == 4
    embeds = tiny_lm.input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    logits = tiny_lm.model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
    logits[0, -1].max().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_lm.model.parameters())


def test_lora_adapter_switches_off_and_on(tmp_path, manager, make_spec):
    import torch
    from peft import LoraConfig, get_peft_model

    from backends import tiny

    model, tok = tiny.tiny_causal_lm()
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    lm = manager.get(make_spec("lm_instruct", "transformers-lm", "tiny:causal-lm", adapter=str(tmp_path / "adapter")))
    batch = lm.encode(["a cat on a sofa"])
    with torch.inference_mode():
        on = lm.model(**batch).logits
        with lm.adapter_enabled(False):
            off = lm.model(**batch).logits
    assert not torch.allclose(on, off)
    base = manager.get(make_spec("lm_base", "transformers-lm", "tiny:causal-lm"))
    with torch.inference_mode():
        assert torch.allclose(base.model(**base.encode(["a cat on a sofa"])).logits, off, atol=1e-5)
    with pytest.raises(ValueError, match="no adapter"):
        with base.adapter_enabled(False):
            pass


def test_bad_generation_settings_name_the_argument(tiny_lm):
    with pytest.raises(ValueError, match="max_new_tokens must be between 1 and 4096"):
        tiny_lm.generate(["x"], GenerationSettings(max_new_tokens=0))
    with pytest.raises(ValueError, match="top_p must be between 0.0 and 1.0"):
        tiny_lm.generate(["x"], GenerationSettings(top_p=1.5))


def test_sentence_embeddings(manager, make_spec):
    emb = manager.get(make_spec("embeddings", "sentence-embeddings", "tiny:text-embedder"))
    assert isinstance(emb, EmbeddingBackend)
    out = emb.embed(["a cat", "a dog on a sofa", "rain"])
    assert out.vectors.shape == (3, 32)
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.provenance.random_weights and out.provenance.settings["pooling"] == "mean"
    with pytest.raises(ValueError, match="list of strings"):
        emb.embed("a cat")


def test_text_to_image_same_seed_same_image_and_token_limit(manager, make_spec):
    t2i = manager.get(make_spec("t2i", "diffusers-t2i", "tiny:sd"))
    assert isinstance(t2i, TextToImageBackend) and t2i.token_limit() == 77
    settings = ImageSettings(steps=2, width=32, height=32, seed=3)
    a, b = t2i.generate(["a cat on a sofa", "a cat on a sofa"], settings)
    assert a.image.size == (32, 32) and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.provenance.seed == 3 and a.provenance.settings["pipeline"] == "StableDiffusionPipeline"
    long = " ".join(["a very detailed photo of a cat on a sofa"] * 12)
    kept, tail = t2i.split_at_token_limit(long)
    assert tail and kept and (kept + " " + tail).split() == long.split()
    assert t2i.generate([long], settings)[0].truncated_tail == tail
    assert t2i.split_at_token_limit("a cat") == ("a cat", "")
    with pytest.raises(ValueError, match="width must be a multiple of 8"):
        t2i.generate(["a cat"], ImageSettings(width=33, height=32))


def test_text_to_video(manager, make_spec):
    t2v = manager.get(make_spec("t2v", "diffusers-t2v", "tiny:animatediff"))
    assert isinstance(t2v, TextToVideoBackend)
    (video,) = t2v.generate(["waves on rocks"], VideoSettings(steps=2, width=32, height=32, num_frames=3, fps=4))
    assert len(video.frames) == 3 and video.frames[0].size == (32, 32) and video.fps == 4
    assert video.provenance.random_weights
    with pytest.raises(ValueError, match="num_frames must be between 1 and 257"):
        t2v.generate(["x"], VideoSettings(num_frames=0))


@pytest.mark.numerical
def test_clip_scorer_alignment_and_aesthetic(manager, make_spec):
    clip = make_spec("image_text", "clip-scorer", "tiny:clip")
    scorer = manager.get(clip)
    assert isinstance(scorer, ImageTextScorer) and manager.capabilities(clip).aesthetic
    images = [Image.new("RGB", (40, 40), c) for c in ("red", "blue")]
    texts = ["a red square", "a blue square"]
    sims = scorer.image_text_similarity(images, texts)
    img, txt = scorer.image_embeddings(images).numpy(), scorer.text_embeddings(texts).numpy()
    assert np.allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5) and np.allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    full = img @ txt.T  # cosine of every image with every text
    assert sims == pytest.approx(np.diag(full), abs=1e-5)  # image i is scored against text i
    swapped = scorer.image_text_similarity(images, texts[::-1])
    assert swapped == pytest.approx([full[0, 1], full[1, 0]], abs=1e-5)
    assert abs(full[0, 0] - full[0, 1]) > 1e-4  # the text changes the score (random weights, but not constant)
    aesthetic = scorer.aesthetic(images)
    head = scorer.head
    assert aesthetic == pytest.approx((img @ head.weight.detach().numpy().T + head.bias.detach().numpy()).ravel(), abs=1e-5)
    with pytest.raises(ValueError, match="one text per image"):
        scorer.image_text_similarity(images, ["only one"])


def test_aesthetic_head_loads_only_plain_state_dicts(tmp_path):
    import pickle

    import torch

    from backends.clip_scorer import load_linear_head

    good = tmp_path / "head.pth"
    torch.save(torch.nn.Linear(8, 1).state_dict(), good)
    assert load_linear_head(str(good), 8).weight.shape == (1, 8)
    with pytest.raises(ValueError, match=r"Linear\(16, 1\)"):
        load_linear_head(str(good), 16)
    evil = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1, 8), "bias": torch.zeros(1), "x": Image.new("RGB", (1, 1))}, evil)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):  # weights_only=True refuses objects
        load_linear_head(str(evil), 8)


@pytest.mark.parametrize("kind,patch", [("vit", 8), ("dinov2", 4)])
def test_vit_attentions_and_grid_from_config(manager, make_spec, kind, patch):
    vit = manager.get(make_spec("vit", "vit", f"tiny:vit?kind={kind}&patch_size={patch}"))
    assert isinstance(vit, VisionBackbone)
    out = vit.forward([Image.new("RGB", (50, 60), "green")] * 2)
    side = 32 // patch
    assert out.grid == (side, side)
    assert out.patch_tokens.shape == (2, side * side, 32)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 1 + side * side, 1 + side * side)
    assert out.provenance.random_weights


def test_fake_backends_are_deterministic(fake_ctx):
    profile = fake_ctx.profile("fake")
    chat = fake_ctx.manager.get(profile.spec("chat"))
    s = GenerationSettings(max_new_tokens=30, num_return_sequences=3, seed=1)
    first = chat.generate(["a cat on a sofa"], s)
    assert [g.text for g in first[0]] == [g.text for g in chat.generate(["a cat on a sofa"], s)[0]]
    assert all(g.text.startswith("a cat on a sofa") for g in first[0])
    assert "".join(chat.stream("a cat", GenerationSettings(max_new_tokens=30))).startswith("a cat")
    emb = fake_ctx.manager.get(profile.spec("embeddings")).embed(["a cat", "a cat", "rocket"]).vectors
    assert emb[0] @ emb[1] == pytest.approx(1.0) and emb[0] @ emb[2] < 0.5
    img = fake_ctx.manager.get(profile.spec("t2i")).generate(["a cat"], ImageSettings(width=64, height=64))[0]
    assert img.image.size == (64, 64) and img.provenance.random_weights


def test_openai_compatible_backend_against_a_local_server(manager, make_spec):
    """openai-chat over HTTP to workbench.openai_server serving the tiny LM: batched, n>1, same text as local."""
    from backends.openai_chat import OpenAIChat, RemoteModelError
    from tests.app_process import free_port
    from workbench.openai_server import serve

    local_spec = make_spec("chat", "transformers-lm", "tiny:causal-lm")
    handle = serve(manager, local_spec, model_name="tiny")
    try:
        remote = manager.get(make_spec("chat", "openai-chat", "tiny", base_url=handle.url))
        assert remote.memory_bytes() == 0 and manager.status(remote.spec).device == "remote"
        convs = [[{"role": "user", "content": "a cat"}], [{"role": "user", "content": "a dog"}]]
        out = remote.generate(convs, GenerationSettings(max_new_tokens=5, do_sample=True, num_return_sequences=3))
        assert [len(g) for g in out] == [3, 3]
        greedy = remote.generate(convs[:1], GREEDY)[0][0].text
        assert greedy == manager.get(local_spec).generate(convs[:1], GREEDY)[0][0].text
        assert out[0][0].provenance.settings["base_url"] == handle.url
    finally:
        handle.close()
    dead = OpenAIChat.load(make_spec("chat", "openai-chat", "x", base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(RemoteModelError, match="could not reach the rewriter server"):
        dead.generate(["hi"], GREEDY)
    with pytest.raises(ValueError, match="needs a base_url starting with http"):
        OpenAIChat.load(make_spec("chat", "openai-chat", "x", base_url="ftp://nope"))
