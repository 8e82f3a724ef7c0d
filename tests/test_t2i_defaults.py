"""The T2I defaults (issue 24): facet-directed candidates are the default in the tab and the batch CLI, a
regenerated slot is written for a facet the other candidates do not show, chosen candidates are kept to their own
facet (focus), and the tab shows a metric weight only for the metrics the profile scores."""

from __future__ import annotations

import json

import pytest

from workbench.common import facets as wf
from workbench.common.refiner import RefineSettings, refine_candidates, regenerate_one, regeneration_facet
from workbench.models import ManagedModel


@pytest.fixture()
def tiny_models(manager, make_spec):
    return (ManagedModel(manager, make_spec("chat", "transformers-lm", "tiny:causal-lm")),
            ManagedModel(manager, make_spec("embeddings", "sentence-embeddings", "tiny:text-embedder")))


def test_the_tab_and_the_batch_cli_ask_for_every_facet_by_default():
    from workbench.t2i.defaults import FACET_DEFAULTS, parse_facets, t2i_refine_settings
    from workbench.t2i.forms import RewriterInputs

    _, settings, _ = RewriterInputs().parse()
    assert settings.facets == ("lighting", "composition", "style", "setting", "detail")
    assert settings.diversity == FACET_DEFAULTS["diversity"] and settings.focus_words == FACET_DEFAULTS["focus_words"]
    assert settings.facet_openers == FACET_DEFAULTS["facet_openers"]
    # refine-further: the kept start of the picked prompt is what the rewriter is asked to rewrite
    assert settings.further_keep_words == FACET_DEFAULTS["further_keep_words"] and settings.further_from_kept
    undirected = RewriterInputs(facets=[]).parse()[1]
    assert undirected.facets == () and undirected.focus_words == 0  # the shared defaults, measured undirected
    assert RefineSettings().facets == ()  # the shared settings (T2V refines with them) stay undirected
    assert parse_facets("all") == wf.facet_names() and parse_facets("none") == ()
    assert parse_facets("lighting+style") == ("lighting", "style") == parse_facets("lighting, style")
    with pytest.raises(ValueError, match=r"unknown facet\(s\) \['colour'\]"):
        parse_facets("lighting+colour")
    assert t2i_refine_settings(diversity=None).diversity == FACET_DEFAULTS["diversity"]  # unset: the default
    with pytest.raises(ValueError, match="focus_words must be 0 \\(off\\) or a whole number up to 200"):
        RefineSettings(focus_words=-1).check()
    with pytest.raises(ValueError, match="facet_openers must be 0, 1, 2 or 3"):
        RefineSettings(facet_openers=4).check()
    with pytest.raises(ValueError, match="facet_openers 0 starts the answer with the prompt alone"):
        RefineSettings(facets=("lighting",), facet_openers=0).check()  # prefix alone would ask for no facet


def test_batch_cli_takes_facets_and_records_each_candidates_facet(tmp_path, capsys, monkeypatch):
    from workbench.t2i.__main__ import main

    prompts = tmp_path / "p.txt"
    prompts.write_text("a lighthouse at dusk\n")
    monkeypatch.setenv("WORKBENCH_MEMORY_BUDGET_GB", "4")
    out = tmp_path / "o"
    assert main(["batch", str(prompts), "--out", str(out), "--profile", "fake", "--n", "2", "--no-render",
                 "--facets", "lighting+style"]) == 0
    record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    facets = [c["facet"] for c in record["candidates"]]
    # the fake chat model ignores the facet instruction, so its two rewrites may be one facet's; each records it
    assert facets and set(facets) <= {"lighting", "style"}
    assert all(c["provenance"]["settings"]["facet"] == c["facet"] for c in record["candidates"])
    default = tmp_path / "d"
    assert main(["batch", str(prompts), "--out", str(default), "--profile", "fake", "--n", "3", "--no-render"]) == 0
    record = json.loads((default / "results.jsonl").read_text().splitlines()[0])
    assert all(c["facet"] in wf.facet_names() for c in record["candidates"])  # every facet by default
    plain = tmp_path / "u"
    assert main(["batch", str(prompts), "--out", str(plain), "--profile", "fake", "--n", "2", "--no-render",
                 "--facets", "none"]) == 0
    record = json.loads((plain / "results.jsonl").read_text().splitlines()[0])
    assert [c["facet"] for c in record["candidates"]] == [None, None]
    capsys.readouterr()
    assert main(["batch", str(prompts), "--out", str(tmp_path / "x"), "--profile", "fake", "--facets", "colour"]) == 2
    assert "unknown facet(s) ['colour']; known: lighting, composition" in capsys.readouterr().err


def test_a_regenerated_slot_gets_a_facet_no_other_candidate_shows(tiny_models):
    facets = wf.facet_names()
    # the others show lighting, style and detail; the slot had composition: the new one takes setting
    assert regeneration_facet(facets, ["lighting", "style", "detail"], "composition") == "setting"
    # every other facet shown: the slot keeps its own facet
    assert regeneration_facet(facets, ["lighting", "style", "detail", "setting"], "composition") == "composition"
    assert regeneration_facet((), ["lighting"], None) is None  # an undirected refine stays undirected
    chat, embedder = tiny_models
    settings = RefineSettings(n=4, max_new_tokens=10, few_shot=1, guard=False, facets=facets, seed=5)
    others = ["a red fox, golden hour light", "a red fox, oil painting", "a red fox, with fine fur"]
    new = regenerate_one(chat, embedder, "a red fox", others, settings,
                         others_facets=["lighting", "style", "detail"], current_facet="composition")
    assert new.facet == "setting" and new.provenance.settings["facet"] == "setting"
    opener = wf.load_facets()["setting"].opener(settings.seed)
    assert new.text.startswith(f"a red fox, {opener}"), new.text
    with pytest.raises(ValueError, match="others_facets must give one facet"):
        regenerate_one(chat, embedder, "a red fox", others, settings, others_facets=["lighting"])


def test_regenerate_in_the_tab_names_the_new_facet(fake_ctx):
    from workbench.t2i import flows
    from workbench.t2i.forms import REWRITER_LABELS, RewriterInputs

    inputs = RewriterInputs(kind=REWRITER_LABELS["profile:chat"], n=3, facets=["lighting", "style", "detail",
                                                                               "setting"])
    state, view = flows.refine(fake_ctx, "fake", "a lighthouse at dusk", inputs)
    shown = [s.facet for s in view.slots]
    state, slot, message = flows.regenerate(fake_ctx, "fake", state, 1, [s.text for s in view.slots], inputs)
    others = {shown[0], shown[2]}
    labels = {f.label for f in wf.load_facets().values()}
    assert slot.facet in labels and slot.facet not in others
    assert message == f"Candidate 2 regenerated, written for the facet {slot.facet}."
    assert slot.caption.startswith(f"**Facet: {slot.facet}**")


def test_focus_keeps_each_candidate_to_its_own_facet():
    texts = ["a red fox, golden hour light, 85mm lens, in a misty forest, highly detailed",
             "a red fox, oil painting, warm lamp light, highly detailed fur",
             "a red fox, wide-angle view, by the sea, soft colours"]
    heads = ["a red fox, golden hour light", "a red fox, oil painting", "a red fox, wide-angle view"]
    out = wf.focus(texts, ["lighting", "style", "composition"], heads, 3)
    # "85mm lens" is composition (another candidate's facet), "highly detailed" is in two candidates;
    # "warm lamp light" is lighting; each candidate's head stays whole
    assert out == ["a red fox, golden hour light, in a misty forest", "a red fox, oil painting",
                   "a red fox, wide-angle view, by the sea, soft colours"]
    # the floor: never fewer words than asked
    kept = wf.focus(texts, ["lighting", "style", "composition"], heads, 12)
    assert kept[0] == "a red fox, golden hour light, 85mm lens, in a misty forest" and all(
        len(k.split()) >= min(12, len(t.split())) for k, t in zip(kept, texts))
    assert wf.focus(texts, [None, None, None], heads, 3) == texts  # undirected candidates stay as they are
    with pytest.raises(ValueError, match="one entry per candidate"):
        wf.focus(texts, ["lighting"], heads)


def test_focus_floor_counts_from_the_prompt_when_the_answer_was_not_started(tiny_models):
    """A rewrite asked for by instruction alone has no started answer: its floor counts from its own wording of the
    prompt (as many phrases as the prompt has), so focus keeps `focus_words` words beyond the prompt, not in all."""
    from workbench.common import refiner as R

    _, embedder = tiny_models
    prompt = "a majestic lion resting on a rock at sunset"  # 9 words
    texts = [prompt + ", golden hour light, dramatic rim lighting, highly detailed fur",
             prompt + ", oil painting, highly detailed fur, golden light"]
    pool = R._Pool()
    pool.facet_of, pool.prefix_of = {texts[0]: "lighting", texts[1]: "style"}, {t: "" for t in texts}
    pool.query = embedder.embed([prompt]).vectors[0]
    settings = RefineSettings(facets=("lighting", "style"), facet_steering="instruction", focus_words=4)
    vectors = embedder.embed(texts).vectors
    shown, _, _, dropped = R._focused(embedder, pool, prompt, texts, vectors, [0.5, 0.5], settings)
    # the shared "highly detailed fur" goes from the first; the second loses the other facet's "golden light" and
    # then stops: dropping "highly detailed fur" too would leave 2 words beyond the prompt, under the floor of 4
    assert shown == ["a majestic lion resting on a rock at sunset, golden hour light, dramatic rim lighting",
                     "a majestic lion resting on a rock at sunset, oil painting, highly detailed fur"]
    assert dropped == [["highly detailed fur"], ["golden light"]]


def test_refine_with_focus_records_what_it_dropped(tiny_models):
    chat, embedder = tiny_models
    facets = ("lighting", "composition", "style", "setting")
    settings = RefineSettings(n=4, max_new_tokens=24, few_shot=1, guard=False, facets=facets, focus_words=1,
                              facet_openers=2)
    result = refine_candidates(chat, embedder, "a cat on a sofa", settings)
    table = wf.load_facets()
    for c in result.candidates:
        first, second = table[c.facet].openers_for(settings.seed + facets.index(c.facet), 2)
        assert c.text.startswith(f"a cat on a sofa, {first}, {second}"), (c.facet, c.text)
        focus = c.provenance.settings.get("focus")
        if focus:  # the rewrite before focus and the phrases dropped from it
            assert focus["rewrite"] != c.text and all(p in focus["rewrite"] for p in focus["dropped"])
            assert not any(p in wf.phrases(c.text) for p in focus["dropped"])


def test_weight_sliders_are_the_metrics_the_profile_scores(fake_ctx):
    from workbench.t2i.flows import weight_metrics

    base = ["align_original", "align_refined", "aesthetic", "intent", "image_diversity"]
    # the world CLIP has no aesthetic head: offline scores no aesthetic, and shows no slider for it
    assert weight_metrics(fake_ctx, "offline") == [m for m in base if m != "aesthetic"]
    assert weight_metrics(fake_ctx, "fake") == base
    assert weight_metrics(fake_ctx, "cpu") == base + ["pickscore", "image_reward", "hps"]
    assert weight_metrics(fake_ctx, "gpu") == base + ["pickscore", "image_reward", "hps"]


def _streamlit_page(profile: str) -> None:
    import streamlit as st

    from pages import t2i
    from workbench.context import AppContext
    from workbench.models import ModelManager
    from workbench.profiles import load_profiles

    @st.cache_resource
    def context():
        return AppContext(ModelManager(budget_bytes=2 * 1024**3, device="cpu"), load_profiles(), "fake")

    st.session_state.setdefault("profile", profile)
    t2i.render_streamlit(context())


def test_streamlit_shows_reward_weights_only_where_the_profile_has_them():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_streamlit_page, kwargs={"profile": "fake"}, default_timeout=60)
    at.run()
    at.text_area(key="t2i_prompt").set_value("a cat on a sofa").run()
    at.button(key="t2i_refine").click().run()
    assert not at.exception
    keys = {s.key for s in at.slider}
    assert {"t2i_w_align_original", "t2i_w_aesthetic", "t2i_w_intent"} <= keys
    assert not {"t2i_w_pickscore", "t2i_w_image_reward", "t2i_w_hps"} & keys  # the fake profile has none
    at.session_state["profile"] = "cpu"  # the cpu profile names PickScore, ImageReward and HPSv2.1
    at.run()
    assert {"t2i_w_pickscore", "t2i_w_image_reward", "t2i_w_hps"} <= {s.key for s in at.slider}
