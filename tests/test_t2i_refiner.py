"""The refiner: few-shot retrieval by embedding similarity, parsing model output into N candidates, the
keyword baseline, regenerate-one, and (once) the real offline SmolLM2."""

from __future__ import annotations

import json

import pytest

from workbench.models import ManagedModel
from workbench.common.guard import repeated_phrase, story_reason
from workbench.common.refiner import (
    Candidate, RefineSettings, load_pairs, parse_candidate, refine_candidates, regenerate_one, retrieve_examples,
)


@pytest.fixture()
def fake_models(manager, make_spec):
    return (ManagedModel(manager, make_spec("chat", "fake-chat", "fake/chat")),
            ManagedModel(manager, make_spec("embeddings", "fake-embeddings", "fake/embeddings")))


def test_corpus_has_three_buckets_and_300_pairs():
    pairs = load_pairs()
    assert len(pairs) >= 300
    assert {p.bucket for p in pairs} == {"1-5", "6-10", "11-15"}
    for p in pairs:
        lo, hi = map(int, p.bucket.split("-"))
        assert lo <= len(p.coarse.split()) <= hi


def test_few_shot_retrieval_picks_similar_pairs(tmp_path, fake_models):
    _, embedder = fake_models
    rows = [
        {"id": "p0001", "coarse": "a red fox in the snow", "fine": "a red fox in deep snow, telephoto", "bucket": "6-10"},
        {"id": "p0002", "coarse": "a bowl of ramen", "fine": "a steaming bowl of ramen, macro", "bucket": "1-5"},
        {"id": "p0003", "coarse": "a fox sleeping in snow", "fine": "a fox curled asleep in snow, soft light", "bucket": "1-5"},
        {"id": "p0004", "coarse": "a castle on a hill", "fine": "a castle on a misty hill, matte painting", "bucket": "1-5"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    got = retrieve_examples(embedder, "a fox in snow at dawn", k=2, pairs_path=path)
    assert {p.id for p, _ in got} == {"p0001", "p0003"}
    assert got[0][1] >= got[1][1]
    # On the shipped corpus, a fox prompt retrieves fox pairs first.
    top = retrieve_examples(embedder, "a red fox", k=3)
    assert any("fox" in p.coarse for p, _ in top[:1])


@pytest.mark.parametrize("raw, expected", [
    ("Prompt: a cat on a velvet sofa, soft light", "a cat on a velvet sofa, soft light"),
    ("Here is the rewritten prompt:\n\n\"a cat, oil painting\"", "a cat, oil painting"),
    ("1. a cat, 35mm photo\n2. another", "a cat, 35mm photo"),
    ("  \n\x11\ufffd\n", ""),
    ("a cat\x07 on a sofa", "a cat on a sofa"),
])
def test_parse_candidate(raw, expected):
    assert parse_candidate(raw) == expected


def test_refine_parses_n_distinct_candidates_with_provenance(fake_models):
    chat, embedder = fake_models
    result = refine_candidates(chat, embedder, "a cat on a sofa", RefineSettings(n=4, few_shot=2))
    assert len(result.candidates) == 4
    texts = [c.text for c in result.candidates]
    assert len(set(texts)) == 4 and all(t.startswith("a cat on a sofa") for t in texts)
    assert len(result.pool) >= 4
    assert len(result.examples) == 2 and result.messages[0]["role"] == "system"
    assert result.messages[-1] == {"role": "user", "content": "a cat on a sofa"}
    for c in result.candidates:
        assert isinstance(c, Candidate) and c.source == "llm"
        assert c.provenance.model_id == "fake/chat" and c.provenance.random_weights
        assert c.provenance.settings["few_shot_ids"] == [e["id"] for e in result.examples]
    vectors = embedder.embed(texts).vectors  # the reported diversity is the candidates' mean pairwise 1 - cosine
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    expected = sum(1 - float(vectors[i] @ vectors[j]) for i, j in pairs) / len(pairs)
    assert result.diversity.mean == pytest.approx(expected, abs=1e-5) and result.diversity.mean > 0


def test_refine_on_tiny_causal_lm(manager, make_spec):
    chat = ManagedModel(manager, make_spec("chat", "transformers-lm", "tiny:causal-lm"))
    embedder = ManagedModel(manager, make_spec("embeddings", "sentence-embeddings", "tiny:text-embedder"))
    settings = RefineSettings(n=3, max_new_tokens=12, few_shot=1, guard=False)  # the guard: test_t2i_guard.py
    result = refine_candidates(chat, embedder, "a cat on a sofa", settings)
    texts = [c.text for c in result.candidates]
    assert len(texts) == 3 and len({t.lower() for t in texts}) == 3  # the tiny model gives 6 distinct rewrites
    assert all(t and t == t.strip() and t in result.pool for t in texts)
    assert all(c.provenance.random_weights and c.provenance.model_id == "tiny:causal-lm" for c in result.candidates)
    # Every candidate cut at the token limit, and only those, is named in the notes.
    cut = [f"candidate {k + 1} hit the 12-token limit and may be cut short"
           for k, c in enumerate(result.candidates) if c.finish_reason == "length"]
    assert cut and [n for n in result.notes if "token limit" in n] == cut
    # Seeded: the same settings give the same candidates, another seed others.
    assert [c.text for c in refine_candidates(chat, embedder, "a cat on a sofa", settings).candidates] == texts
    other = refine_candidates(chat, embedder, "a cat on a sofa",
                              RefineSettings(n=3, max_new_tokens=12, few_shot=1, seed=5, guard=False))
    assert [c.text for c in other.candidates] != texts


def test_regenerate_one_differs_from_the_others(fake_models):
    chat, embedder = fake_models
    first = refine_candidates(chat, embedder, "a lighthouse at dusk", RefineSettings(n=3))
    others = [c.text for c in first.candidates[1:]]
    new = regenerate_one(chat, embedder, "a lighthouse at dusk", others, RefineSettings(n=3, seed=11))
    assert new.text.startswith("a lighthouse at dusk, ") and new.text not in others
    assert new.provenance.settings["regenerated"] is True and new.provenance.seed is not None
    assert new.provenance.settings["few_shot_ids"] == [e["id"] for e in first.examples]


def test_promptist_style_suffix_rewriter_gets_plain_text(manager, make_spec, fake_models):
    _, embedder = fake_models
    chat = ManagedModel(manager, make_spec("t2i_rewriter", "fake-chat", "fake/promptist", prompt_suffix=" Rephrase:"))
    result = refine_candidates(chat, embedder, "a cat", RefineSettings(n=2))
    assert result.messages == "a cat Rephrase:"


@pytest.mark.real_models
def test_refine_with_real_smollm2(real_manager, offline_profile):
    # the T2I tab's offline rewriter: SmolLM2 with the shipped adapter (the bare chat model writes so many
    # invented words and stories at this seed that the guard drops every rewrite and only the fallback is left)
    chat = ManagedModel(real_manager, offline_profile.spec("t2i_rewriter"))
    embedder = ManagedModel(real_manager, offline_profile.spec("embeddings"))
    result = refine_candidates(chat, embedder, "a cat on a sofa",
                               RefineSettings(n=2, overgenerate=1.5, max_new_tokens=32, few_shot=1, seed=1))
    texts = [c.text for c in result.candidates]
    assert 1 <= len(texts) <= 2 and len(set(texts)) == len(texts)
    if len(texts) < 2:  # the gate may leave fewer than asked: the status says so, never silently
        assert any(n.startswith(f"only {len(texts)} usable rewrite(s) of the 2") for n in result.notes), result.notes
    for c in result.candidates:  # a real rewrite passed the guard: close to the prompt, adds detail, no story
        assert c.relevance >= RefineSettings().intent_floor and len(c.text.split()) > 4, c.text
        assert story_reason(c.text) is None and repeated_phrase(c.text) is None, c.text
        assert not c.provenance.random_weights and c.provenance.model_id.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert any(w in c.text.lower() for c in result.candidates for w in ("cat", "kitten", "sofa", "couch"))
    # MiniLM retrieval puts a pair about a cat or a sofa first.
    assert any(w in result.examples[0]["coarse"].lower() for w in ("cat", "sofa", "kitten", "couch"))


def test_offline_default_rewriter_is_the_shipped_adapter(real_manager, offline_profile):
    """The offline profile's T2I default is SmolLM2 plus the shipped rewriter adapter (found from the repository
    root), and its rewrites of a held-out prompt fit CLIP's window and keep the subject."""
    from workbench.t2i.evaluate import heldout_prompts
    from workbench.common.guard import repeated_phrase
    from workbench.common.refiner import heldout_ids, rewriter_name
    from workbench.t2i.service import RewriterChoice, default_rewriter_role


    assert default_rewriter_role(offline_profile) == "t2i_rewriter"
    spec = RewriterChoice().spec(offline_profile)
    assert spec.option("adapter").endswith("smollm2-135m-t2i-rewriter-lora")
    chat = ManagedModel(real_manager, spec)
    embedder = ManagedModel(real_manager, offline_profile.spec("embeddings"))
    prompt = heldout_prompts(1)[0]
    window = real_manager.prompt_window(offline_profile.spec("t2i"))
    result = refine_candidates(chat, embedder, prompt, RefineSettings(n=2, seed=0), window=window,
                               exclude_ids=frozenset(heldout_ids()))
    assert real_manager.get(spec).has_adapter and result.settings["rewriter"] == rewriter_name(spec)
    assert "+ adapter smollm2-135m-t2i-rewriter-lora" in result.settings["rewriter"]
    assert 1 <= len(result.candidates) <= 2, result.notes  # the loop below must check at least one rewrite
    for c in result.candidates:
        assert not window.split(c.text)[1] and repeated_phrase(c.text) is None, c.text
        assert c.relevance >= RefineSettings().intent_floor and len(c.text.split()) > len(prompt.split()) + 5, c.text
        assert len(c.text.split()) <= 30, c.text  # the role's word budget (profiles.yaml: max_words)
    assert result.settings["max_words"] == 30
    assert not any("shortened" in n for n in result.notes) or any(
        "fit the rewriter's 30-word budget and the image model's 77-token text window" in n for n in result.notes)
