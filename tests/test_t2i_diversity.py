"""MMR selection, pairwise diversity, the word diff, the keyword baseline and the refinement tree."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.common import diff as wdiff
from workbench.t2i.baseline import keyword_candidates
from workbench.common import diversity as wdiversity
from workbench.common.diversity import mmr_select, pairwise_diversity, set_objective, set_select
from workbench.common.session import RefinementSession


def test_mmr_never_picks_both_duplicates():
    query = np.array([1.0, 0.0, 0.0])
    cands = np.array([
        [0.95, 0.31, 0.0],   # 0: most relevant
        [0.95, 0.31, 0.0],   # 1: exact duplicate of 0
        [0.80, 0.0, 0.60],   # 2: relevant, different direction
        [0.70, -0.71, 0.0],  # 3
    ])
    picked = mmr_select(query, cands, k=3, diversity=0.5)
    assert len(picked) == 3 and len(set(picked)) == 3
    assert not {0, 1} <= set(picked)
    # Pure relevance (diversity 0) would take both duplicates: the slider matters.
    assert {0, 1} <= set(mmr_select(query, cands, k=2, diversity=0.0))


def test_mmr_with_fixed_vectors_avoids_what_is_shown():
    query = np.array([1.0, 0.0])
    cands = np.array([[1.0, 0.0], [0.7, 0.7]])
    assert mmr_select(query, cands, 1, 0.6, fixed=np.array([[1.0, 0.0]])) == [1]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_diversity_slider_range(bad):
    with pytest.raises(ValueError, match="diversity"):
        mmr_select(np.ones(2), np.ones((2, 2)), 1, bad)


def test_set_select_scores_whole_sets_where_mmr_goes_greedy():
    query = np.array([1.0, 0.0, 0.0])
    cands = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.6, -0.8, 0.0]])
    # MMR takes the closest first and then the best partner for it; the pair seen together is the two opposites
    assert 0 in mmr_select(query, cands, 2, 0.5)
    best = set_select(query, cands, 2, 0.5)
    assert best == [[1, 2]]
    assert set_objective(query, cands[[1, 2]], 0.5) == pytest.approx(0.5 * 0.6 + 0.5 * (1 - (0.36 - 0.64)))
    # diversity 0 is relevance alone
    assert set_select(query, cands, 1, 0.0) == [[0]]


def test_set_select_is_the_best_set_and_keeps_groups_apart():
    import itertools

    rng = np.random.default_rng(3)
    query, cands = rng.normal(size=8), rng.normal(size=(9, 8))
    groups = ["a", "a", "a", "b", "b", "c", "c", "d", "d"]
    ranked = set_select(query, cands, 4, 0.6, groups=groups, top=5)
    assert len(ranked) == 5 and all(len({groups[i] for i in s}) == 4 for s in ranked)
    values = [set_objective(query, cands[s], 0.6) for s in ranked]
    assert values == sorted(values, reverse=True)
    brute = max(set_objective(query, cands[list(c)], 0.6) for c in itertools.combinations(range(9), 4)
                if len({groups[i] for i in c}) == 4)
    assert values[0] == pytest.approx(brute)


def test_set_select_local_search_beyond_the_limit(monkeypatch):
    rng = np.random.default_rng(5)
    query, cands = rng.normal(size=8), rng.normal(size=(12, 8))
    exact = set_select(query, cands, 4, 0.6)[0]
    monkeypatch.setattr(wdiversity, "SET_SEARCH_LIMIT", 0)
    local = set_select(query, cands, 4, 0.6)[0]
    greedy = mmr_select(query, cands, 4, 0.6)
    assert set_objective(query, cands[local], 0.6) >= set_objective(query, cands[greedy], 0.6)
    assert set_objective(query, cands[local], 0.6) >= set_objective(query, cands[exact], 0.6) - 0.02
    with pytest.raises(ValueError, match="groups"):
        set_select(query, cands, 4, 0.6, groups=["a"])


def test_pairwise_diversity():
    report = pairwise_diversity(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    assert report.matrix[0][1] == pytest.approx(1.0) and report.matrix[0][2] == pytest.approx(0.0)
    assert report.mean == pytest.approx(2 / 3)
    assert pairwise_diversity(np.array([[1.0, 0.0]])).mean == 0.0


def test_word_diff_marks_added_and_removed_words():
    pieces = wdiff.word_diff("a cat on a sofa", "a tabby Cat on a velvet sofa, oil painting")
    added = " ".join(p.text for p in pieces if p.op == "insert")
    assert "tabby" in added and "velvet" in added and "oil painting" in added
    assert not any(p.op == "delete" for p in pieces)  # "Cat" matches "cat"
    removed = wdiff.word_diff("a red car", "a blue car")
    assert [p.text for p in removed if p.op == "delete"] == ["red"]
    assert "<del" in wdiff.to_html(removed) and "~~red~~" in wdiff.to_markdown(removed)
    assert ("blue ", "added") in wdiff.highlighted(removed)


def test_word_diff_markdown_shows_a_prompts_markup_literally():
    """Streamlit draws the diff with st.markdown: a candidate typed as markup stays text (the browser probe found
    `**bold**` drawn bold there)."""
    md = wdiff.to_markdown(wdiff.word_diff("a fox", "a fox **bold** [x](javascript:alert(1)) <img src=x>"))
    assert "**bold**" not in md and "](javascript" not in md and "<img" not in md
    assert "\\*\\*bold\\*\\*" in md and "&lt;img src=x&gt;" in md and md.startswith("a fox **+")


def test_keyword_baseline_is_subject_plus_modifiers_and_seeded():
    a = keyword_candidates("a cat on a sofa", 5, seed=3)
    b = keyword_candidates("a cat on a sofa", 5, seed=3)
    assert [c.text for c in a] == [c.text for c in b]
    assert len({c.text for c in a}) == 5
    assert all(c.text.startswith("a cat on a sofa, ") and c.source == "baseline" for c in a)
    assert a[0].provenance.model_id == "keyword-baseline"


def test_refinement_tree_pick_refine_go_back():
    s = RefinementSession.start("a cat", [{"text": "a cat, oil"}, {"text": "a cat, photo"}], "fake")
    s.set_candidates(["a cat, oil painting", "a cat, photo"])
    assert s.round().candidate_info[0]["source"] == "edited"
    child = s.refine_further(0, [{"text": "a cat, oil painting, dusk"}])
    assert child.prompt == "a cat, oil painting" and child.parent == 0 and s.current == 1
    s.go_back(0)
    s.refine_further(1, [{"text": "a cat, photo, 35mm"}])
    assert s.path() == [0, 2] and [r.parent for r in s.rounds] == [None, 0, 0]
    tree = s.tree_markdown()
    lines = tree.split("  \n")
    assert len(lines) == 3 and lines[0].startswith("• round 0") and "current" in lines[2]
    assert all(line.lstrip("\u00a0").startswith("↳ round") and line.startswith("\u00a0" * 6) for line in lines[1:])
    again = RefinementSession.from_dict(s.to_dict())
    assert again.to_dict() == s.to_dict()
    with pytest.raises(ValueError, match="round must be between 0 and 2"):
        s.go_back(7)
    with pytest.raises(ValueError, match="pick must be between 1 and 1"):
        s.pick(4)
