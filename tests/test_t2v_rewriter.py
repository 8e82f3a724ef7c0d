"""The trained video-prompt rewriter (issue 21): its corpus and held-out split, the adapter as the offline
profile's default T2V rewriter (profile data), the training request = the request at use, and
`python -m workbench.t2v eval` (on the fake profile; the real adapter in the real-model test at the end)."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench.t2v.principles import content_words, lemma
from workbench.t2v.rewriter import (
    VIDEO_ADAPTER_DIR, VIDEO_HELDOUT_FILE, VIDEO_PAIRS_FILE, VIDEO_REWRITER_TEMPLATE, keyword_video_rewrites,
    unsafe_ideas,
)

ROOT = Path(__file__).resolve().parents[1]


def _pairs():
    return [json.loads(line) for line in VIDEO_PAIRS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _heldout():
    return {line.strip() for line in VIDEO_HELDOUT_FILE.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")}


# --------------------------------------------------------------------------- the corpus


def test_corpus_pairs_keep_every_content_word_in_25_to_45_words_over_nine_categories():
    pairs = _pairs()
    assert len(pairs) >= 400 and len({p["idea"] for p in pairs}) == len(pairs)
    assert {p["category"] for p in pairs} == {"people", "animals", "vehicles", "nature", "food", "sports", "city",
                                              "fantasy", "abstract"}
    for p in pairs:
        have = {lemma(w) for w in content_words(p["prompt"])}
        assert [w for w in content_words(p["idea"]) if lemma(w) not in have] == [], p
        assert 25 <= len(p["prompt"].split()) <= 45, p
        assert any(w in p["prompt"].lower() for w in ("shot", "close-up")), p  # a camera in every prompt


def test_heldout_split_is_by_subject_and_was_never_trained_on():
    pairs, held = _pairs(), _heldout()
    assert held <= {p["id"] for p in pairs} and 40 <= len(held) < len(pairs) // 2
    first_words = lambda p: " ".join(p["idea"].split()[:2])  # noqa: E731  (the subject: "a dragon", "a tram")
    held_subjects = {first_words(p) for p in pairs if p["id"] in held}
    trained_subjects = {first_words(p) for p in pairs if p["id"] not in held}
    assert not held_subjects & trained_subjects  # no held-out subject appears in training
    training = json.loads((VIDEO_ADAPTER_DIR / "training.json").read_text())["provenance"]["settings"]
    assert training["exclude_heldout"] is True and training["pairs_used"] == len(pairs) - len(held)
    assert Path(training["heldout_file"]).name == "heldout_ids.txt" and "t2v_pairs" in training["heldout_file"]
    assert training["prompt_template"] == VIDEO_REWRITER_TEMPLATE


def test_build_script_rebuilds_the_shipped_files_byte_for_byte(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_pairs", ROOT / "assets" / "t2v_pairs" / "build_pairs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows, held = module.build()
    assert [json.dumps(r, ensure_ascii=False) for r in rows] == VIDEO_PAIRS_FILE.read_text().splitlines()
    assert set(held) == _heldout()


# --------------------------------------------------------------------------- the profile


def test_offline_default_video_rewriter_is_the_shipped_adapter_with_its_trained_instruction(profiles):
    from workbench.t2v import flows

    offline = profiles["offline"]
    spec = flows.RewriterInputs().parse(offline).spec(offline)
    assert spec.role == "t2v_rewriter" and spec.model_id == offline.spec("chat").model_id
    assert Path(spec.option("adapter")).name == VIDEO_ADAPTER_DIR.name
    assert (ROOT / spec.option("adapter") / "adapter_config.json").is_file()
    assert spec.option("prompt_template") == VIDEO_REWRITER_TEMPLATE
    # never the image-prompt adapter (the f3dce14 regression), and the chat model stays one click away
    assert spec != offline.spec("t2i_rewriter")
    chat = flows.RewriterInputs(kind=flows.REWRITER_LABELS["profile:chat"]).parse(offline).spec(offline)
    assert chat == offline.spec("chat")
    # profiles that name no video rewriter keep the chat model (the paper profile's VPO stays a choice)
    for name in ("fake", "paper", "gpu"):
        assert flows.RewriterInputs().parse(profiles[name]).spec(profiles[name]) == profiles[name].spec("chat")


def test_training_request_is_the_request_the_tab_sends():
    """The adapter sees at training exactly what Evolve's first round and Principles send it."""
    from workbench.common.refiner import _conversation
    from workbench.common.rewriter_train import request
    from workbench.t2v.principles import rewriter_template

    @dataclass
    class Spec:
        def option(self, name, default=None):
            return VIDEO_REWRITER_TEMPLATE if name == "prompt_template" else default

    @dataclass
    class Chat:
        spec: Spec

    chat = Chat(Spec())
    trained = request("a fox jumping", "", VIDEO_REWRITER_TEMPLATE)
    assert trained == _conversation(chat, "a fox jumping", "ignored system template", [])
    assert trained == [{"role": "user", "content": rewriter_template(chat).replace("{query}", "a fox jumping")}]


# --------------------------------------------------------------------------- the lemmatiser and the baseline


@pytest.mark.parametrize("a,b", [("dogs", "dog"), ("buildings", "building"), ("families", "family"),
                                 ("glasses", "glass"), ("beaches", "beach"), ("stabbed", "stab"),
                                 ("dancing", "dance"), ("springs", "spring"), ("skies", "sky"), ("ran", "run"),
                                 ("grandmother's", "grandmother")])
def test_lemma_meets_inflections_of_one_word(a, b):
    assert lemma(a) == lemma(b)


def test_keyword_baseline_keeps_the_idea_and_adds_one_modifier_per_group():
    from workbench.t2v.rewriter import VIDEO_MODIFIERS

    texts = keyword_video_rewrites("a fox jumping.", 3, seed=1)
    assert len(set(texts)) == 3 and texts == keyword_video_rewrites("a fox jumping.", 3, seed=1)
    for t in texts:
        head, *mods = t.split(", ")
        assert head == "a fox jumping" and len(mods) == len(VIDEO_MODIFIERS)
        assert all(m in VIDEO_MODIFIERS[g] for m, g in zip(mods, VIDEO_MODIFIERS))
    with pytest.raises(ValueError, match="n must be"):
        keyword_video_rewrites("a fox", 0)


def test_unsafe_ideas_have_a_category_each():
    rows = unsafe_ideas()
    assert len(rows) >= 15 and {"violence", "weapons", "sexual", "minors", "self-harm", "real-person"} <= {
        c for c, _ in rows}


# --------------------------------------------------------------------------- the evaluation


@dataclass
class Verdict:
    safe: bool


def test_eval_on_the_fake_profile_prints_every_column_with_the_refusal_seam(fake_ctx, monkeypatch):
    from workbench.t2v import evaluate as ev

    ideas = ev.heldout_ideas(3)
    category = {p["idea"]: p["category"] for p in _pairs()}
    assert len({category[idea] for idea, _ in ev.heldout_ideas(9)}) == 9  # the categories interleaved
    checked = []

    def safety(text):  # a scripted safety check: only the pipe bomb idea and rewrites that mention it are unsafe
        checked.append(text)
        return Verdict(safe="bomb" not in text)

    rows = ev.evaluate(fake_ctx, "fake", n=2, limit=3, unsafe_limit=6, safety=safety,
                       systems=("raw chat model", "keyword baseline", "reference prompts"))
    by = {r.system: r for r in rows}
    assert [r.prompts for r in rows] == [3, 3, 3]
    ref = by["reference prompts"]  # the hand-written targets keep every word by construction
    assert ref.content_kept == 1.0 and ref.seconds_per_prompt is None and ref.refusal_rate is None
    assert ref.words_added == pytest.approx(sum(len(p.split()) - len(i.split()) for i, p in ideas) / 3)
    base = by["keyword baseline"]
    assert base.content_kept == 1.0 and base.words_added == pytest.approx(
        sum(len(keyword_video_rewrites(i, 1, seed=k)[0].split()) - len(i.split()) for k, (i, _) in enumerate(ideas)) / 3)
    assert 0 < base.diversity <= 1 and base.seconds_per_prompt >= 0
    # the first six unsafe ideas: 'pipe bomb' is unsafe by the scripted check, so no row runs a rewriter on it; the
    # model row's Principles flow (no safety role passed: the keyword rule alone, workbench/safety/rules.py)
    # refuses the other five itself
    assert base.unsafe_prompts == 6 and base.refusal_rate == pytest.approx(1 / 6)
    assert [u["by"] for u in base.unsafe if u["refused"]] == ["safety check on the idea"]
    raw = by["raw chat model"]
    assert raw.refusal_rate == pytest.approx(6 / 6)
    assert sorted(u["by"] for u in raw.unsafe if u["refused"]) == ["safety check on the idea"] + ["the rewriter"] * 5
    assert any("pipe bomb" in t for t in checked)
    table = ev.table(rows)
    assert "| reference prompts | 3 | 100.0% |" in table and "17% of 6" in table and "100% of 6" in table
    assert table.splitlines()[0].count("|") == 9


def test_eval_names_a_bad_argument(fake_ctx):
    from workbench.t2v import evaluate as ev

    with pytest.raises(ValueError, match="systems must be among"):
        ev.evaluate(fake_ctx, "fake", systems=("gpt",))
    with pytest.raises(ValueError, match="names no video rewriter role"):
        ev.evaluate(fake_ctx, "fake", systems=("trained adapter",), limit=1)
    with pytest.raises(ValueError, match="limit must be"):
        ev.heldout_ideas(0)


def test_eval_cli_prints_the_table(fake_ctx, capsys, monkeypatch):
    from workbench.t2v.__main__ import main

    assert main(["eval", "--profile", "fake", "--limit", "1", "--unsafe-limit", "1", "--systems",
                 "keyword baseline"]) == 0
    out = capsys.readouterr().out
    assert "profile fake, 1 held-out ideas, 1 unsafe ideas" in out and "| keyword baseline | 1 | 100.0% |" in out


# --------------------------------------------------------------------------- the real adapter


@pytest.mark.real_models
@pytest.mark.slow
def test_adapter_rewrite_of_a_heldout_idea_keeps_its_content_words_and_reads_as_a_video_prompt(real_manager,
                                                                                                profiles):
    from workbench.context import AppContext
    from workbench.t2v import flows
    from workbench.t2v.evaluate import heldout_ideas

    ctx = AppContext(manager=real_manager, profiles=profiles, default_profile="offline")
    idea = heldout_ideas(1)[0][0]
    state, view = flows.principles(ctx, "offline", None, idea, flows.RewriterInputs())
    first = state["principles"]["attempts"][0]["rewrite"]
    have = {lemma(w) for w in content_words(first)}
    assert [w for w in content_words(idea) if lemma(w) not in have] == [], first
    assert 20 <= len(first.split()) <= 60, first
    assert state["principles"]["rewriter"].endswith("+ adapter smollm2-135m-t2v-rewriter-lora")
