"""Facet-directed candidates: the facet table (data), labelling phrases by facet, MMR among facets, steering by a
started answer on a white-box model (and by instruction where the answer cannot be started), and a refine-further
that keeps the picked prompt's start and changes one facet per candidate."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.models import ManagedModel
from workbench.common import facets as wf
from workbench.common.diversity import mmr_select
from workbench.t2i.evaluate import parse_overrides
from workbench.common.refiner import RefineSettings, refine_candidates


def test_facet_table_is_data_with_five_facets():
    table = wf.load_facets()
    assert list(table) == ["lighting", "composition", "style", "setting", "detail"]
    assert [f.label for f in table.values()] == ["lighting", "composition / camera", "style / medium",
                                                 "setting / mood", "subject detail"]
    for facet in table.values():
        assert len(facet.openers) >= 5 and facet.instruction.endswith(".")
        assert facet.opener(3) == facet.opener(3) and facet.opener(3) in facet.openers
    with pytest.raises(ValueError, match=r"unknown facet\(s\) \['colour'\]; known: lighting, composition"):
        RefineSettings(facets=("lighting", "colour")).check()
    with pytest.raises(ValueError, match="lists a facet twice"):
        RefineSettings(facets=("style", "style")).check()
    with pytest.raises(ValueError, match="facet_steering must be one or more of prefix, instruction, examples"):
        RefineSettings(facet_steering="prefix+magic").check()
    assert parse_overrides("facets=lighting+style,facet_steering=prefix+examples") == {
        "facets": ("lighting", "style"), "facet_steering": "prefix+examples"}


@pytest.mark.parametrize("phrase, facet", [
    ("golden hour light", "lighting"), ("soft window-frame shadows", "lighting"),
    ("85mm lens", "composition"), ("shallow depth of field", "composition"),
    ("oil painting, visible brushstrokes", "style"), ("35mm film photograph", "style"),
    ("in a misty forest", "setting"), ("quiet nocturnal atmosphere", "setting"),
    ("thick rust-orange fur", "detail"), ("weathered wooden hull", "detail"),
    ("a red fox", None),
])
def test_phrases_are_labelled_by_facet_vocabulary(phrase, facet):
    assert wf.phrase_facet(phrase) == facet


def test_facets_present_and_without_facet_keep_the_subject():
    text = "a red fox, golden hour light, 85mm lens, in a misty forest, oil painting"
    assert wf.facets_present(text) == ["lighting", "composition", "setting", "style"]
    assert wf.without_facet(text, "lighting", 30) == "a red fox, 85mm lens, in a misty forest, oil painting"
    assert wf.without_facet(text, "style", 8) == "a red fox, golden hour light, 85mm lens"  # whole phrases, 8 words
    assert wf.steer_prefix("a red fox, ", wf.load_facets()["style"], 0).startswith("a red fox, ")


def test_mmr_with_groups_picks_one_per_group_first():
    query = np.array([1.0, 0.0, 0.0])
    # two near-copies of group a are the most relevant; groups make MMR take b and c before a second a
    cands = np.array([[1.0, 0.01, 0], [1.0, 0.02, 0], [0.8, 0.6, 0], [0.8, 0, 0.6]])
    groups = ["a", "a", "b", "c"]
    chosen = mmr_select(query, cands, 3, 0.0, groups=groups)
    assert sorted(groups[i] for i in chosen) == ["a", "b", "c"]
    assert sorted(mmr_select(query, cands, 3, 0.0)[:2]) == [0, 1]  # without groups: the near-copies first
    assert len(mmr_select(query, cands, 4, 0.0, groups=groups)) == 4  # more than the groups: repeats allowed after
    with pytest.raises(ValueError, match="one label per candidate"):
        mmr_select(query, cands, 2, 0.5, groups=["a"])


@pytest.fixture()
def tiny_models(manager, make_spec):
    return (ManagedModel(manager, make_spec("chat", "transformers-lm", "tiny:causal-lm")),
            ManagedModel(manager, make_spec("embeddings", "sentence-embeddings", "tiny:text-embedder")))


def test_each_candidate_starts_with_its_facet_on_a_white_box_model(tiny_models):
    chat, embedder = tiny_models
    facets = ("lighting", "composition", "style", "setting")
    settings = RefineSettings(n=4, max_new_tokens=10, few_shot=1, guard=False, facets=facets)
    result = refine_candidates(chat, embedder, "a cat on a sofa", settings)
    table = wf.load_facets()
    assert sorted(c.facet for c in result.candidates) == sorted(facets)  # MMR picked among facets
    for c in result.candidates:
        opener = table[c.facet].opener(settings.seed + facets.index(c.facet))
        assert c.text.startswith(f"a cat on a sofa, {opener}"), (c.facet, c.text)
        assert c.provenance.settings["facet"] == c.facet and c.provenance.settings["facet_steering"] == "prefix"
        assert c.to_dict()["facet"] == c.facet
    assert not any("instruction instead" in n for n in result.notes)


def test_a_rewriter_that_cannot_be_given_its_start_is_steered_by_instruction(manager, make_spec):
    chat = ManagedModel(manager, make_spec("chat", "fake-chat", "fake/chat"))
    embedder = ManagedModel(manager, make_spec("embeddings", "fake-embeddings", "fake/embeddings"))
    result = refine_candidates(chat, embedder, "a lighthouse at dusk",
                               RefineSettings(n=3, facets=("lighting", "style", "detail")))
    assert any("cannot be given the start of its answer, so each facet is asked for by instruction" in n
               for n in result.notes)
    # the fake model ignores instructions, so its rewrites may repeat across facets; each still records its facet
    assert {c.facet for c in result.candidates} <= {"detail", "lighting", "style"}
    assert all(c.provenance.settings["facet_steering"] == "instruction" for c in result.candidates)


def test_no_openers_starts_each_answer_with_the_prompt_and_asks_for_the_facet_by_instruction(tiny_models,
                                                                                           monkeypatch):
    """facet_openers 0 with prefix+instruction: each answer is started with the prompt alone (in a refine-further:
    the picked prompt's kept start, without the candidate's facet) and its request carries the facet's instruction."""
    import dataclasses

    chat, embedder = tiny_models
    sent: list = []
    real = chat.generate
    monkeypatch.setattr(chat, "generate", lambda requests, settings: sent.extend(requests) or real(requests, settings))
    facets = ("lighting", "composition", "style")
    settings = RefineSettings(n=3, max_new_tokens=10, few_shot=1, guard=False, facets=facets,
                              facet_steering="prefix+instruction", facet_openers=0)
    result = refine_candidates(chat, embedder, "a cat on a sofa", settings)
    table = wf.load_facets()
    assert sorted(c.facet for c in result.candidates) == sorted(facets)
    for c in result.candidates:
        assert c.text.startswith("a cat on a sofa") and c.text != "a cat on a sofa", c.text
        assert c.provenance.settings["facet_steering"] == "prefix+instruction"
    for name in facets:  # one request per facet: its instruction, and the answer started with the prompt alone
        asked = [r for r in sent if table[name].instruction in r]
        assert asked and all(r.endswith("a cat on a sofa") for r in asked), asked
    assert not any(r.endswith(o) for r in sent for f in facets for o in table[f].openers)
    sent.clear()
    picked = "a red fox, golden hour light, 85mm lens, in a misty forest, oil painting"
    further = refine_candidates(chat, embedder, picked, dataclasses.replace(settings, further_keep_words=30),
                                further=True)
    for c in further.candidates:
        head = wf.without_facet(picked, c.facet, 30)
        assert c.text.startswith(head), (c.facet, c.text)
    for name in facets:
        asked = [r for r in sent if table[name].instruction in r]
        assert asked and all(r.endswith(wf.without_facet(picked, name, 30)) for r in asked)


def test_refine_further_from_kept_asks_to_rewrite_the_kept_start_alone(tiny_models, monkeypatch):
    """further_from_kept: each request of a refine-further shows the kept start of the picked prompt, not the whole
    picked prompt, so the rewriter cannot copy the dropped phrases back in; without it the request shows them."""
    import dataclasses

    chat, embedder = tiny_models
    sent: list = []
    real = chat.generate
    monkeypatch.setattr(chat, "generate", lambda requests, settings: sent.extend(requests) or real(requests, settings))
    picked = "a red fox, golden hour light, 85mm lens, in a misty forest, oil painting"
    settings = RefineSettings(n=3, max_new_tokens=10, few_shot=0, guard=False, facets=("lighting", "composition",
                              "style"), further_keep_words=4, further_from_kept=True)
    result = refine_candidates(chat, embedder, picked, settings, further=True)
    for c in result.candidates:
        assert c.text.startswith(wf.without_facet(picked, c.facet, 4) + ", "), (c.facet, c.text)
    assert sent and not any("misty forest" in r or "85mm lens" in r for r in sent)
    sent.clear()
    refine_candidates(chat, embedder, picked, dataclasses.replace(settings, further_from_kept=False), further=True)
    assert sent and all(picked in r for r in sent)
    with pytest.raises(ValueError, match="further_from_kept must be true or false"):
        RefineSettings(further_from_kept="yes").check()


def test_refine_further_keeps_the_picked_start_and_changes_one_facet_each(tiny_models):
    chat, embedder = tiny_models
    picked = "a red fox, golden hour light, 85mm lens, in a misty forest, oil painting"
    facets = ("lighting", "composition", "style")
    settings = RefineSettings(n=3, max_new_tokens=10, few_shot=1, guard=False, facets=facets, further_keep_words=30)
    result = refine_candidates(chat, embedder, picked, settings, further=True)
    assert result.settings["refine_further"] is True
    for c in result.candidates:
        head = wf.without_facet(picked, c.facet, 30)
        assert c.text.startswith(head + ", "), (c.facet, c.text)
        # the facet's old phrase is gone from the kept start (it is the one that changes)
        old = {"lighting": "golden hour light", "composition": "85mm lens", "style": "oil painting"}[c.facet]
        assert old not in head
        assert c.provenance.settings["refine_further"] is True


def test_set_selection_keeps_the_best_set_as_it_is_shown(tiny_models, monkeypatch):
    import dataclasses
    import itertools

    import workbench.common.refiner as refiner
    from workbench.common.diversity import pairwise_diversity, set_objective

    chat, embedder = tiny_models
    facets = ("lighting", "composition", "style", "setting", "detail")
    settings = RefineSettings(n=3, max_new_tokens=10, few_shot=1, guard=False, facets=facets, overgenerate=2.0,
                              selection="set", diversity=0.7)
    seen = {}
    real = refiner._select

    def spy(embedder_, pool, prompt, passed, vectors, groups, settings_):
        seen.update(passed=list(passed), vectors=np.asarray(vectors), groups=list(groups), query=pool.query)
        return real(embedder_, pool, prompt, passed, vectors, groups, settings_)

    monkeypatch.setattr(refiner, "_select", spy)
    result = refine_candidates(chat, embedder, "a cat on a sofa", settings)
    texts = [c.text for c in result.candidates]
    facets_shown = [c.facet for c in result.candidates]
    assert len(set(facets_shown)) == 3
    # no other set of three facets scores higher (focus is off here, so what is shown is what was scored)
    vectors = np.asarray(embedder.embed(texts).vectors)
    best = set_objective(seen["query"], vectors, 0.7)
    for c in itertools.combinations(range(len(seen["passed"])), 3):
        if len({seen["groups"][i] for i in c}) == 3:
            assert set_objective(seen["query"], seen["vectors"][list(c)], 0.7) <= best + 1e-6
    assert result.diversity.mean == pytest.approx(pairwise_diversity(vectors).mean, abs=1e-6)
    relevance = [c.relevance for c in result.candidates]
    assert relevance == sorted(relevance, reverse=True)  # the closest first, as MMR's first pick
    assert all(c.provenance.settings["selection"] == "set" for c in result.candidates)
    with pytest.raises(ValueError, match="selection must be one of mmr, set"):
        dataclasses.replace(settings, selection="greedy").check()


def test_refine_further_is_not_sampled_as_the_first_round_was(tiny_models, monkeypatch):
    import workbench.common.refiner as refiner

    chat, embedder = tiny_models
    # no few-shot examples, as the shipped adapter is asked (so the request for the kept start alone is the first
    # round's request for the prompt)
    settings = RefineSettings(n=2, max_new_tokens=10, few_shot=0, guard=False, facets=("lighting", "style"),
                              further_keep_words=1, further_from_kept=True)
    first = refine_candidates(chat, embedder, "a cat on a sofa", settings)
    sampled = set(first.pool)

    def children() -> set[str]:  # every rewrite the round sampled (any of them may be the one shown)
        return set(refine_candidates(chat, embedder, first.candidates[0].text, settings, further=True).pool)

    # a child whose kept start is the prompt alone, sampled with the first round's seed, is one of the first
    # round's rewrites word for word (the walkthrough showed one)
    with monkeypatch.context() as m:
        m.setattr(refiner, "further_seed", lambda seed, picked: seed)
        assert children() & sampled
    assert not children() & sampled
    assert refiner.further_seed(0, "a") == refiner.further_seed(0, "a") != refiner.further_seed(0, "b")


def test_the_dev_split_is_prompts_no_pair_holds():
    from workbench.common.refiner import load_pairs
    from workbench.t2i.evaluate import heldout_prompts, split_ids

    dev = heldout_prompts(split="dev")
    assert len(dev) == 30 and split_ids("dev") == set()
    coarse = {p.coarse.lower() for p in load_pairs()}
    assert not coarse & {d.lower() for d in dev}
    assert heldout_prompts(3, offset=2, split="dev") == dev[2:5]


def test_eval_has_the_facet_row_and_a_refine_further_column(fake_ctx):
    from workbench.t2i.evaluate import evaluate, heldout_prompts, table

    assert heldout_prompts(2, offset=10) == heldout_prompts()[10:12]  # confirm on prompts not tuned on
    with pytest.raises(ValueError, match="offset must be a whole number of at least 0"):
        heldout_prompts(2, offset=-1)
    rows = evaluate(fake_ctx, "fake", n=3, limit=2, offset=10,
                    systems=("keyword baseline", "guarded refiner", "guarded refiner + adapter + facets"))
    keyword, plain, faceted = rows
    assert faceted.system == "guarded refiner + adapter + facets" and faceted.prompts == 2
    assert faceted.facets_shown is not None and plain.facets_shown is None  # the plain row stays undirected
    for row in rows:
        assert row.further_diversity is not None and 0 <= row.further_diversity <= 2
    assert [e["prompt"] for e in faceted.examples] == heldout_prompts(2, offset=10)
    assert all(len(e["further"]) >= 2 for e in faceted.examples)
    text = table(rows, 77)
    assert "refine-further diversity ↑" in text and "| guarded refiner + adapter + facets |" in text
    skipped = evaluate(fake_ctx, "fake", n=3, limit=1, systems=("keyword baseline",), further=False)
    assert skipped[0].further_diversity is None and "| n/a |" in table(skipped, 77)
