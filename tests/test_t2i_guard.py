"""Rewrites that fit the image encoder's window and read as prompts; render cost, progress and cancel; the eval."""

from __future__ import annotations

import pytest

from tests.conftest import spec
from workbench.context import AppContext
from workbench.models import ManagedModel, ModelManager
from workbench.common.guard import drop_invented, fit_to_window, invented_words, quality_gate, repeated_phrase, story_reason
from workbench.common.refiner import RefineSettings, refine_candidates


class WordWindow:
    """A 12-"token" window counting words (2 special tokens, as CLIP)."""

    limit = 12

    def split(self, prompt):
        words = prompt.split()
        return " ".join(words[:10]), " ".join(words[10:])


def test_invented_words_are_found_and_their_phrases_removed():
    assert invented_words("lamplakers crouched at the edge, 85mm lens, bokeh, Greg Rutkowski's art") == ["lamplakers"]
    assert invented_words("chiaroscuro, gouache, impasto, tilt-shift, 8k") == []
    head = "street food stall, with delicate"
    text = head + " plates of prosciutchetti, ham and beans, greens fried to cuspate, sundae stands"
    # the words that go on from the head's last phrase hold one: nothing is kept ("with delicate" would dangle)
    assert drop_invented(text, head, ["street", "food", "stall"]) == (head, ["prosciutchetti", "cuspate"])
    text = head + " plates, slices of prosciutchetti, ham and beans, greens fried to cuspate, sundae stands"
    kept, found = drop_invented(text, head, ["street", "food", "stall"])
    assert found == ["prosciutchetti", "cuspate"]
    # the phrase that goes on from the head stays attached to it
    assert kept == "street food stall, with delicate plates, ham and beans, sundae stands"
    # rare plurals of listed words are words
    assert invented_words("treens, cottangle") == ["cottangle"]
    # the user's own words are never counted (a name or a coinage of theirs), nor is the head
    assert drop_invented("a zorblax on a hill, foamey waves, soft light", "", ["a", "zorblax", "on", "hill"]) == (
        "a zorblax on a hill, soft light", ["foamey"])
    assert drop_invented("a zorblax, soft light", "a zorblax")[1] == []
    # nothing left after the head: the head alone (the sampler counts it as empty)
    assert drop_invented("a cat, lamplakers", "a cat") == ("a cat", ["lamplakers"])


def test_a_refine_removes_invented_phrases_and_says_so(manager):
    from backends.registry import Registry
    from backends import BACKENDS
    from tests.safety_fakes import COINED

    registry = Registry("backend")
    for name in BACKENDS.names():
        registry.register(name, BACKENDS.target(name))
    registry.register("coining-chat", "tests.safety_fakes:CoiningRewriter")
    local = ModelManager(budget_bytes=2**30, device="cpu", registry=registry)
    chat = ManagedModel(local, spec("chat", "coining-chat", "scripted/coining"))
    embedder = ManagedModel(local, spec("embeddings", "fake-embeddings", "fake/embeddings"))
    result = refine_candidates(chat, embedder, "a lighthouse at dusk", RefineSettings(n=2, few_shot=0))
    assert result.candidates and COINED not in [c.text for c in result.candidates]
    for c in result.candidates:
        assert "prosciutchetti" not in c.text and "lamplakers" not in c.text
        assert c.text.startswith("a lighthouse at dusk, golden light, crashing waves")
    assert any("invented word(s) (in no English word list) were removed" in n and "“prosciutchetti”" in n
               for n in result.notes)
    # unguarded, the rewriter's words are shown as written
    raw = refine_candidates(chat, embedder, "a lighthouse at dusk", RefineSettings(n=2, few_shot=0, guard=False))
    assert any("prosciutchetti" in c.text for c in raw.candidates)
    local.unload_all()


def test_the_gate_names_repeats_stories_and_drift():
    assert repeated_phrase("a bowl of ramen, red paper, a bowl of ramen") == "a bowl of"
    assert repeated_phrase("a red fox in snow, soft light, wide angle") is None
    # a word said twice in a row is a repeat too (seen in a walkthrough); across a comma it is two phrases
    assert repeated_phrase("a lone cabin, isolated isolated valley, dusk") == "isolated isolated"
    assert repeated_phrase("a lone cabin, Isolated  isolated. valley") == "isolated isolated"
    assert repeated_phrase("a lamp, soft light, light rays through dust") is None
    gate = quality_gate(["a lone cabin, isolated isolated valley, dusk"], [0.9], intent_floor=0.45)
    assert gate.dropped[0] == "repeats a phrase (“isolated isolated”)"
    assert "first or second person" in story_reason("I walked to the lighthouse at night")
    assert "first or second person" in story_reason("relentless sun on your skin, gold glow")
    assert "a question" in story_reason("a lighthouse, what do you say to that?".replace("you ", ""))
    assert "a statement" in story_reason("it's a cat, it's a beast, it's a sea monster")
    assert "past-tense narration" in story_reason("she opened the door and the wind howled")
    assert "past-tense narration" in story_reason("she lay flat on her back, tail out, purring")  # irregular verbs
    assert "dialogue" in story_reason('the knight said "onward" to the crowd')
    assert story_reason("weathered wooden cabin, detailed moss, golden hour, 35mm") is None  # -ed adjectives pass
    texts = ["a cat on a sofa, soft light", "a bowl of ramen, a bowl of ramen", "I saw a cat", "fresh soap, bathwater"]
    gate = quality_gate(texts, [0.8, 0.9, 0.9, 0.1], intent_floor=0.45)
    assert gate.kept == [0]
    assert gate.dropped[1].startswith("repeats a phrase") and gate.dropped[2].startswith("reads as a story")
    assert gate.dropped[3].startswith("drifts from the prompt (similarity 0.10 < 0.45)")
    assert gate.summary() == ("the quality gate dropped 3 of 4 rewrites: 1 repeats a phrase, 1 reads as a story, "
                              "1 drifts from the prompt")


def test_fitting_keeps_whole_phrases_inside_the_window():
    window = WordWindow()
    text = "a lighthouse on a cliff, stormy night sky, crashing waves below, oil painting"
    fitted = fit_to_window(text, window)
    assert fitted == "a lighthouse on a cliff, stormy night sky, crashing"[:0] + "a lighthouse on a cliff, stormy night sky"
    assert window.split(fitted)[1] == ""
    # cut by the generation limit: the unfinished last phrase goes
    assert fit_to_window("a cat on a sofa, soft light, detailed fu", None, cut_by_length=True) == \
        "a cat on a sofa, soft light"
    # one phrase longer than the window: the words the encoder sees
    assert fit_to_window(" ".join(["word"] * 30), window) == " ".join(["word"] * 10)
    # a word budget: whole phrases up to max_words, the first phrase always kept
    assert fit_to_window(text, None, max_words=8) == "a lighthouse on a cliff, stormy night sky"
    assert fit_to_window(text, None, max_words=7) == "a lighthouse on a cliff"
    assert fit_to_window("a very long first phrase of many words, more", None, max_words=3) == \
        "a very long first phrase of many words"


def test_word_budget_setting_is_checked_and_caps_the_generation_budget():
    from workbench.common.refiner import RefineSettings

    window = WordWindow()
    assert RefineSettings(max_words=30).budget(window) == min(RefineSettings().budget(window), 56)
    assert RefineSettings(max_words=30, guard=False).budget(window) == RefineSettings().max_new_tokens
    for bad in (5, 500, 2.5, True):
        with pytest.raises(ValueError, match="max_words must be 0 .* between 8 and 200"):
            RefineSettings(max_words=bad).check()


class LongWinded:
    """A rewriter that always uses its whole token budget: one word per token, a comma every four words."""

    spec = spec("chat", "fake-chat", "long-winded")
    budgets: list[int] = []

    def generate(self, conversations, settings):
        from backends.base import Generation
        from backends.provenance import Provenance

        self.budgets.append(settings.max_new_tokens)
        prov = Provenance(model_id="long-winded", backend="fake-chat")
        out = []
        for i in range(settings.num_return_sequences):
            words = [f"{['misty', 'golden', 'quiet', 'stormy', 'bright'][(i + k) % 5]}{k}" for k in
                     range(settings.max_new_tokens)]
            text = ", ".join(" ".join(words[j:j + 4]) for j in range(0, len(words), 4))
            out.append(Generation("a lighthouse on a cliff, " + text, "", settings.max_new_tokens, "length", prov))
        return [out]


def test_a_budgeted_rewrite_never_exceeds_the_encoder_window(manager):
    """With the guard, generation is budgeted by the real 77-token CLIP window and every candidate is cut back to
    whole phrases inside it; without it, the same rewriter runs past the window."""
    from backends.diffusers_t2i import DiffusersTextToImage

    embedder = ManagedModel(manager, spec("embeddings", "fake-embeddings", "fake/emb"))
    window = DiffusersTextToImage.load_prompt_window(spec("t2i", "diffusers-t2i", "tiny:sd"))
    assert window.limit == 77
    chat = LongWinded()
    settings = RefineSettings(n=4, seed=3, few_shot=0, intent_floor=0.0)
    result = refine_candidates(chat, embedder, "a lighthouse on a cliff", settings, window=window)
    assert chat.budgets[-1] == settings.budget(window) == 101  # 77 x 1.3 new tokens, then fitted back
    assert len(result.candidates) == 4
    for cand in result.candidates:
        assert window.split(cand.text)[1] == ""  # the encoder sees all of it
        assert all(len(phrase.split()) in (4, 3) for phrase in cand.text.split(", ")[2:])  # whole phrases only
    assert any("shortened at a phrase boundary to fit the image model's 77-token text window" in n for n in result.notes)
    loose = refine_candidates(chat, embedder, "a lighthouse on a cliff",
                              RefineSettings(n=4, seed=3, few_shot=0, guard=False, max_new_tokens=96), window=window)
    assert all(window.split(c.text)[1] for c in loose.candidates)


def test_refine_reports_what_the_gate_dropped(fake_ctx):
    class Looping:
        """A rewriter that loops for some seeds (the degenerate rewrites the gate must catch)."""

        spec = spec("chat", "fake-chat", "looping")

        def generate(self, conversations, settings):
            from backends.base import Generation
            from backends.provenance import Provenance

            texts = ["a bowl of ramen, a bowl of ramen, red paper", "a bowl of ramen, steam rising, macro photo",
                     "I ate a bowl of ramen", "a bowl of ramen, dark wood table, soft window light"]
            prov = Provenance(model_id="looping", backend="fake-chat")
            return [[Generation(texts[i % 4], "", 8, "stop", prov) for i in range(settings.num_return_sequences)]]

    embedder = ManagedModel(fake_ctx.manager, fake_ctx.profile("fake").spec("embeddings"))
    result = refine_candidates(Looping(), embedder, "a bowl of ramen", RefineSettings(n=2, few_shot=0))
    assert sorted(c.text for c in result.candidates) == ["a bowl of ramen, dark wood table, soft window light",
                                                         "a bowl of ramen, steam rising, macro photo"]
    note = next(n for n in result.notes if "quality gate" in n)
    assert "dropped 2 of 4 rewrites: 1 repeats a phrase, 1 reads as a story" in note
    assert result.settings["dropped_by_gate"] == 2 and result.settings["kept_by_gate"] == 2

    class OnlyLooping(Looping):
        def generate(self, conversations, settings):
            from backends.base import Generation
            from backends.provenance import Provenance

            texts = ["a bowl of ramen, a bowl of ramen, red paper", "I ate a bowl of ramen"]
            prov = Provenance(model_id="looping", backend="fake-chat")
            return [[Generation(texts[i % 2], "", 8, "stop", prov) for i in range(settings.num_return_sequences)]]

    # every rewrite failed: the closest are shown with a note, and the counts say none passed (eval-world's
    # "dropped by gate" reads them: the fallback candidates shown are not rewrites the gate kept)
    fallback = refine_candidates(OnlyLooping(), embedder, "a bowl of ramen", RefineSettings(n=2, few_shot=0))
    assert fallback.candidates and any("showing the closest ones anyway" in n for n in fallback.notes)
    assert fallback.settings["kept_by_gate"] == 0 and fallback.settings["dropped_by_gate"] == 2


def test_render_defaults_come_from_the_profile_and_a_huge_render_is_refused(fake_ctx):
    from workbench.t2i import cost, flows

    offline = fake_ctx.profiles["offline"]
    # the world model's training size and steps (assets/world/t2i/TRAINING.md)
    assert (offline.setting("t2i_render", "size"), offline.setting("t2i_render", "steps")) == (64, 12)
    assert flows.render_defaults(fake_ctx, "offline").size == 64
    estimate = cost.check_render_cost(offline, "world:unmeasured", 5, 12, 64, 64)
    assert estimate == pytest.approx(2.5 / 64 * 5 * 12)  # the profile's prior, scaled by pixels
    with pytest.raises(ValueError, match=r"about 250 s .*the 'offline' profile allows 60 s.*WORKBENCH_MAX_RENDER"):
        cost.check_render_cost(offline, "world:unmeasured", 5, 20, 512, 512)
    cost.record("tiny:sd-measured", 128, 128, 5, 4, 2.4)  # 0.12 s per image-step, as measured
    assert cost.per_image_step("tiny:sd-measured", 256, 256, 13.0)[0] == pytest.approx(0.48)


def test_render_shows_progress_and_cancel_keeps_finished_images_and_frees_the_model(profiles):
    from workbench.actions import run_action
    from workbench.t2i import flows

    slow = spec("t2i", "fake-t2i", "fake/slow-t2i", step_seconds=0.05)
    ctx = AppContext(ModelManager(budget_bytes=2**30, device="cpu"),
                     {"p": profiles["fake"].with_role("t2i", slow)}, "p")
    state, _ = flows.refine(ctx, "p", "a cat on a sofa", flows.RewriterInputs(n=4))
    from workbench.common.session import RefinementSession

    edited = RefinementSession.from_dict(state).round().candidates
    updates = []

    def on_progress(update):
        updates.append(update)
        if update.item.startswith("candidate 2 of 4") and update.done and update.done % 4 == 0:
            ctx.jobs.cancel("u")

    _, rendered, view = run_action(ctx, "t2i_render", flows.render,
                                   (ctx, "p", state, edited, flows.RenderInputs(steps=4, size=64)),
                                   session_id="u", job=True, on_progress=on_progress)
    assert any(u.item == "the original prompt, denoising step 1/4" for u in updates)
    assert any(u.item == "candidate 1 of 4, denoising step 4/4" for u in updates)
    assert len(rendered.images) == 1 and rendered.stopped.startswith("stopped by the user after 1 of 4")
    assert "⏹ stopped by the user" in view.results.summary and len(view.results.grid) == 2
    assert ctx.manager.status(slow).in_use == 0 and not ctx.manager.device_lock("cpu").locked()
    assert ctx.jobs.running("u") is None


def test_eval_compares_the_rewriters_on_the_heldout_split(fake_ctx):
    from workbench.t2i.evaluate import evaluate, heldout_prompts, table
    from workbench.common.refiner import heldout_ids, retrieve_examples

    held = heldout_ids()
    assert len(held) == 43 and len(heldout_prompts()) == 43
    embedder = ManagedModel(fake_ctx.manager, fake_ctx.profile("fake").spec("embeddings"))
    prompt = heldout_prompts(1)[0]
    assert all(p.id not in held for p, _ in retrieve_examples(embedder, prompt, 8, exclude_ids=held))
    rows = evaluate(fake_ctx, "fake", n=3, limit=3, systems=("keyword baseline", "nearest-neighbour retrieval",
                                                            "guarded refiner"))
    assert [r.system for r in rows] == ["keyword baseline", "nearest-neighbour retrieval", "guarded refiner"]
    for row in rows:
        assert row.prompts == 3 and row.candidates == 9 and -1 <= row.intent <= 1 and 0 <= row.within_window <= 1
    retrieval = rows[1]
    assert all(c.startswith(p.rstrip(".")) for e in retrieval.examples for p, c in
               [(e["prompt"], cand) for cand in e["candidates"]])  # the user's subject, the pair's details
    text = table(rows, 77)
    assert "| keyword baseline |" in text and "within the 77-token window" in text


def test_eval_settings_overrides_are_typed_checked_and_applied(fake_ctx, monkeypatch):
    """`eval --set` sweeps the guarded rows' settings: values typed like the defaults, bad keys and values
    named, the settings reach the refiner."""
    from workbench.t2i import evaluate as ev

    assert ev.parse_overrides("diversity=0.3, intent_floor=0.55,guard=false") == {
        "diversity": 0.3, "intent_floor": 0.55, "guard": False}
    with pytest.raises(ValueError, match="KEY among .*diversity"):
        ev.parse_overrides("colour=red")
    with pytest.raises(ValueError, match="--set overgenerate must be a float"):
        ev.parse_overrides("overgenerate=lots")
    with pytest.raises(ValueError, match="diversity"):
        ev.parse_overrides("diversity=3")
    seen = []
    real = ev.refine_candidates

    def spy(chat, embedder, prompt, settings, **kw):
        seen.append(settings)
        return real(chat, embedder, prompt, settings, **kw)

    monkeypatch.setattr(ev, "refine_candidates", spy)
    ev.evaluate(fake_ctx, "fake", n=2, limit=1, systems=("guarded refiner",), overrides={"diversity": 0.2})
    assert seen and all(s.diversity == 0.2 and s.n == 2 for s in seen)


def test_a_rewriter_brings_its_own_word_budget():
    """The spec option `max_words` (profile data) is the rewriter's word budget unless the settings set one."""
    from backends.base import ModelSpec
    from workbench.common.refiner import RefineSettings, with_rewriter_defaults

    tuned = ModelSpec.from_dict("t2i_rewriter", {"backend": "fake-chat", "model": "fake/chat",
                                                 "options": {"max_words": 30}})
    plain = ModelSpec.from_dict("chat", {"backend": "fake-chat", "model": "fake/chat"})
    assert with_rewriter_defaults(RefineSettings(), tuned).max_words == 30
    assert with_rewriter_defaults(RefineSettings(max_words=45), tuned).max_words == 45  # the user's choice wins
    assert with_rewriter_defaults(RefineSettings(), plain).max_words == 0
    bad = ModelSpec.from_dict("t2i_rewriter", {"backend": "fake-chat", "model": "fake/chat", "options": {"max_words": 3}})
    with pytest.raises(ValueError, match="max_words must be 0 .* between 8 and 200, got 3"):
        with_rewriter_defaults(RefineSettings(), bad)
