"""The `offline` profile for real: the three models that install from PyPI load and produce real text and
embeddings; every other role loads its tiny random model and says so."""

import numpy as np
import pytest

from backends.base import GenerationSettings

pytestmark = [pytest.mark.real_models, pytest.mark.slow]


@pytest.fixture(scope="module")
def offline_ctx(real_manager, profiles):
    from workbench.context import AppContext

    return AppContext(manager=real_manager, profiles=profiles, default_profile="offline")


def test_smollm2_instruct_answers_a_chat_question(real_manager, offline_profile):
    chat = real_manager.get(offline_profile.spec("chat"))
    assert not chat.random_weights and chat.dtype == "float32"
    conv = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    (gen,), = chat.generate([conv], GenerationSettings(max_new_tokens=8, do_sample=False))
    assert "Paris" in gen.text
    assert gen.prompt.startswith("<|im_start|>")  # SmolLM2's own chat template from the GGUF file
    assert "".join(chat.stream(conv, GenerationSettings(max_new_tokens=8, do_sample=False))).strip() == gen.text


def test_gemma_base_continues_text(real_manager, offline_profile):
    base = real_manager.get(offline_profile.spec("lm_base"))
    assert base.model.config.model_type.startswith("gemma3")
    prompt = "The capital of France is Paris. The capital of Italy is"
    (gen,), = base.generate([prompt], GenerationSettings(max_new_tokens=6, do_sample=False))
    assert gen.text.startswith("Rome") and gen.num_tokens == 6 and gen.finish_reason == "length", gen.text
    assert not base.random_weights and gen.provenance.model_id == offline_profile.spec("lm_base").model_id
    assert "### Response:" in base.format_chat([{"role": "user", "content": "hi"}])  # no template of its own


def test_minilm_embeddings_rank_paraphrases_first(real_manager, offline_profile):
    emb = real_manager.get(offline_profile.spec("embeddings"))
    vectors = emb.embed(["a cat on a sofa", "a kitten lying on a couch", "a rocket launch at night"]).vectors
    assert vectors.shape == (3, 384)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.6 > sims[0, 2]
    assert np.allclose(np.diag(sims), 1.0, atol=1e-5)


def test_every_offline_role_loads_from_the_models_tab(offline_ctx):
    from workbench import model_table as mt

    for role in offline_ctx.profile("offline").roles:
        message = mt.load_role(offline_ctx, "offline", role)
        assert message.startswith(f"Loaded {role}:"), message
    records = mt.model_records(offline_ctx, "offline")
    for record in records:
        assert record["state"] == "loaded"
        # images, videos, image scores and the ViT come from trained weights (issue 20)
        assert record["weights"] != mt.RANDOM_BADGE, record["role"]
    # one row per base model: SmolLM2 serves chat and the T2I and T2V rewriters' adapters, Gemma the behaviour-shift
    # pair
    by_roles = {r["role"]: r for r in records}
    smollm2 = by_roles["chat, t2i_rewriter, t2v_rewriter"]["adapter"]
    assert smollm2.startswith("smollm2-135m-t2i-rewriter-lora for t2i_rewriter (loaded")
    assert "smollm2-135m-t2v-rewriter-lora for t2v_rewriter (loaded" in smollm2
    assert by_roles["lm_base, lm_instruct"]["adapter"].startswith("gemma3-270m-instruct-lora for lm_instruct (loaded")
    # one row per loaded base; the session's manager may also hold a tiny random model another file's code-path
    # test loaded (no offline role is a tiny model any more)
    bases = [s for s, _ in offline_ctx.manager.loaded_bases() if not s.model_id.startswith("tiny:")]
    assert len(bases) == len(records)
