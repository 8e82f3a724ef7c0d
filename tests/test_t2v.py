"""The T2V tab's method on fake/tiny models: the evolution loop (toy reward, early stop, cancel, remote timeout),
the video rewards (one batched CLIP call, provenance), pair filtering, VPO's principles (dropped subject, unsafe
requests), VPO's template as profile data, the flows and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.jobs import Cancelled, Job
from workbench.t2i.scoring import ImageScores, Score
from workbench.t2v import evolve as ev
from workbench.t2v import flows
from workbench.t2v.pairs import PairFilter, dpo_pairs, export_pairs, sft_pairs

CAMERA = ("slow dolly in", "tracking shot", "aerial drone pan", "handheld close-up", "crane shot", "orbit shot")


# --------------------------------------------------------------------------- a toy world


def camera_words(prompt: str) -> int:
    return sum(term in prompt for term in CAMERA)


def toy_propose(original, history, n, round_index, seed):
    """Adds one camera-motion phrase to the best prompt so far (different ones for each slot)."""
    base = history[0].prompt if history else original
    missing = [c for c in CAMERA if c not in base]
    return [ev.Proposal(f"{base}, {missing[(seed + i) % len(missing)]}" if missing else base + ", again", {"toy": True})
            for i in range(n)]


class Video:
    def __init__(self, prompt):
        self.frames, self.provenance, self.prompt = [], None, prompt


def toy_render(prompts, on_step):
    for i, _ in enumerate(prompts):
        for step in (1, 2):
            on_step(i, step, 2)
    return [Video(p) for p in prompts]


def toy_score(reward):
    def score(original, prompts, videos):
        out = []
        for p in prompts:
            value = float(reward(p))
            scores = {"align_original": Score("align_original", value, None),
                      "safety": Score("safety", 1.0, None)}
            out.append(ImageScores(prompt=p, scores=scores, total=Score("total", value, None)))
        return out

    return score


# --------------------------------------------------------------------------- evolution


def test_evolution_improves_a_toy_reward_over_rounds():
    job = Job("evolve")
    result = ev.evolve_prompts("a dog on a beach", toy_propose, toy_render, toy_score(camera_words),
                               ev.EvolveSettings(rounds=4, population=2, patience=2), job)
    bests = [max(c.total for c in rnd) for rnd in result.rounds]
    assert len(result.rounds) == 4 and result.stopped == "finished 4 round(s)"
    assert bests == sorted(bests) and bests[-1] >= bests[0] + 3  # one more camera phrase per round
    assert result.baseline.total == 0 and result.best.total == bests[-1]
    assert camera_words(result.best.prompt) == 4
    # progress names the round, the candidate and the denoising step
    items = [u.item for u in job.history if u.stage == "render"]
    assert "round 1 of 4 · original · denoising step 1/2" in items
    assert "round 3 of 4 · candidate 2/2 · denoising step 2/2" in items
    assert [t["round"] for t in result.timings] == [1, 2, 3, 4]


def test_early_stop_when_the_best_stops_improving():
    result = ev.evolve_prompts("a dog", toy_propose, toy_render, toy_score(lambda p: 1.0),
                               ev.EvolveSettings(rounds=6, population=2, patience=2))
    assert len(result.rounds) == 3 and result.stopped.startswith("early stop after round 3")
    assert result.best_id == "r1c1"


def test_cancel_keeps_the_finished_rounds():
    job = Job("evolve")

    def stop_in_round_3(update):
        if update.stage == "render" and "round 3" in update.item:
            job.cancel()

    job.listen(stop_in_round_3)
    result = ev.evolve_prompts("a dog", toy_propose, toy_render, toy_score(camera_words),
                               ev.EvolveSettings(rounds=5, population=2, patience=5), job)
    assert len(result.rounds) == 2 and "cancelled by the user during round 3" in result.stopped
    assert result.best.round == 2


def test_remote_timeout_retries_once_then_stops_with_the_best():
    calls = {"n": 0}

    def flaky(original, history, n, r, seed):
        calls["n"] += 1
        if r == 2 and calls["n"] == 2:
            raise TimeoutError("server took too long")  # round 2: fails once, the retry works
        if r == 3:
            raise TimeoutError("server took too long")  # round 3: fails twice
        return toy_propose(original, history, n, r, seed)

    result = ev.evolve_prompts("a dog", flaky, toy_render, toy_score(camera_words),
                               ev.EvolveSettings(rounds=4, population=1, patience=4))
    assert len(result.rounds) == 2 and "failed twice in round 3" in result.stopped
    assert any("round 2" in n and "retried once" in n for n in result.notes)
    assert result.best.round == 2

    def dead(*args):
        raise ConnectionError("connection refused")

    with pytest.raises(ConnectionError):  # nothing finished: the user sees the error
        ev.evolve_prompts("a dog", dead, toy_render, toy_score(camera_words), ev.EvolveSettings(rounds=2))


@pytest.mark.parametrize("field, value, message", [
    ("rounds", 0, "rounds must be between 1 and 12"), ("rounds", 100, "rounds must be between 1 and 12"),
    ("population", 9, "population must be between 1 and 8"), ("top_k", 0.5, "top_k must be a whole number"),
    ("temperature", 0, "temperature must be between 0.05 and 2"),
])
def test_evolve_settings_name_the_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        ev.EvolveSettings(**{field: value}).check()


# --------------------------------------------------------------------------- rewards


class CountingScorer:
    """The fake scorer with a count of image-embedding calls."""

    def __init__(self, inner):
        self.inner, self.image_calls = inner, 0
        self.spec, self.device, self.dtype, self.random_weights = inner.spec, "cpu", "float32", True

    def image_embeddings(self, images):
        self.image_calls += 1
        return self.inner.image_embeddings(images)

    def text_embeddings(self, texts):
        return self.inner.text_embeddings(texts)

    def aesthetic(self, images):
        return self.inner.aesthetic(images)


def _fake(name):
    from backends.base import ModelSpec
    from backends.fake import FakeScorer, FakeTextToVideo

    cls = {"scorer": FakeScorer, "t2v": FakeTextToVideo}[name]
    return cls.load(ModelSpec(role=name, backend=f"fake-{name}", model_id=f"fake/{name}"))


@pytest.mark.numerical
def test_rewards_score_all_frames_in_one_batched_call_with_provenance():
    from backends.base import VideoSettings
    from workbench.t2v.rewards import METRICS, RewardSettings, score_videos

    videos = _fake("t2v").generate(["a dog", "a dog, tracking shot"], VideoSettings(steps=1, width=32, height=32,
                                                                                      num_frames=12, seed=3))
    scorer = CountingScorer(_fake("scorer"))
    out = score_videos(scorer, "a dog", [v.prompt for v in videos], [v.frames for v in videos],
                       [v.provenance for v in videos], settings=RewardSettings(frames_sampled=6))
    assert scorer.image_calls == 1
    unbatched = score_videos(scorer, "a dog", [v.prompt for v in videos], [v.frames for v in videos],
                             settings=RewardSettings(frames_sampled=6), batched=False)
    assert scorer.image_calls == 1 + 12
    for a, b in zip(out, unbatched):
        for m in ("align_original", "align_refined", "temporal", "dynamic"):
            assert a.scores[m].value == pytest.approx(b.scores[m].value, abs=1e-5)
    first = out[1]
    from workbench.t2i.scoring import REWARD_ROLES

    assert list(first.scores) == [m for m in METRICS if m not in REWARD_ROLES]  # no reward model named: not shown
    prov = first.scores["align_original"].provenance
    assert prov.settings["frames_sampled"] == [0, 2, 4, 7, 9, 11] and prov.settings["video_seed"] == 3
    assert prov.settings["text"] == "original" and prov.versions and prov.random_weights
    assert "random weights" in first.scores["align_original"].label()
    assert first.scores["aesthetic"].provenance.settings["frames_sampled"] == [0, 4, 7, 11]
    assert first.scores["safety"].value == 1.0 and first.total.value is not None
    assert "1.3xalign_original" in first.total.note and "0.8xaesthetic /10" in first.total.note
    # the first candidate IS the original prompt: both alignments agree
    assert out[0].scores["align_original"].value == pytest.approx(out[0].scores["align_refined"].value)


def test_safety_flag_and_missing_aesthetic_head():
    from workbench.t2v.rewards import score_videos

    class NoHead(CountingScorer):
        def aesthetic(self, images):
            return None

    videos = _fake("t2v").generate(["a naked man"], __import__("backends.base").base.VideoSettings(
        steps=1, width=32, height=32, num_frames=3))
    item = score_videos(NoHead(_fake("scorer")), "a man", ["a naked man"], [videos[0].frames])[0]
    assert item.scores["safety"].value == 0.0 and "naked" in item.scores["safety"].note
    assert item.scores["aesthetic"].value is None and "no aesthetic head" in item.scores["aesthetic"].note


# --------------------------------------------------------------------------- pairs


def _result_with_totals(totals: dict[str, float], original_total: float = 0.1) -> ev.EvolveResult:
    def cand(cid, rnd, i, prompt, total, align=0.5, safe=True):
        return ev.Candidate(cid, rnd, i, prompt, {"scores": {"align_original": {"value": align}}, "total": {"value": total}},
                            total, safe)

    rounds = [[cand(cid, 1, i, f"prompt {cid}", t) for i, (cid, t) in enumerate(totals.items())]]
    result = ev.EvolveResult("a dog", cand("original", 0, 0, "a dog", original_total), rounds)
    result.best_id = max(result.candidates(), key=lambda c: c.total).id
    return result


def test_pairs_filter_by_threshold_and_margin(tmp_path):
    result = _result_with_totals({"r1c1": 0.50, "r1c2": 0.45, "r1c3": 0.20})
    rows = dpo_pairs(result, PairFilter(min_margin=0.1, max_pairs_per_prompt=10))
    got = {(r["chosen"], r["rejected"]) for r in rows}
    assert got == {("prompt r1c1", "prompt r1c3"), ("prompt r1c1", "a dog"), ("prompt r1c2", "prompt r1c3"),
                   ("prompt r1c2", "a dog"), ("prompt r1c3", "a dog")}
    assert len(rows) == 5 and all(json.loads(r["provenance"])["margin"] >= 0.1 for r in rows)
    assert {("prompt r1c1", "prompt r1c2")} & got == set()  # 0.05 apart: below the margin
    strict = dpo_pairs(result, PairFilter(thresholds={"total": 0.4}, min_margin=0.1, max_pairs_per_prompt=10))
    assert {r["chosen"] for r in strict} == {"prompt r1c1", "prompt r1c2"}
    assert dpo_pairs(result, PairFilter(thresholds={"align_original": 0.9})) == []
    sft = sft_pairs(result, PairFilter(min_margin=0.1))
    assert sft[0]["prompt"] == "a dog" and sft[0]["completion"] == "prompt r1c1"
    assert sft_pairs(result, PairFilter(min_margin=0.5)) == []  # the best beats the original by 0.4 only
    unsafe = _result_with_totals({"r1c1": 0.9, "r1c2": 0.3})
    unsafe.rounds[0][0].safe = False
    # the unsafe best is never a chosen prompt; the safe one still beats the original
    assert [(r["chosen"], r["rejected"]) for r in dpo_pairs(unsafe)] == [("prompt r1c2", "a dog")]
    with pytest.raises(ValueError, match="unknown threshold metric"):
        PairFilter(thresholds={"beauty": 1}).check()
    paths = export_pairs([result], tmp_path, PairFilter(min_margin=0.1))
    lines = Path(paths["dpo"]).read_text().splitlines()
    assert paths["dpo_rows"] == len(lines) == 4 and set(json.loads(lines[0])) == {"prompt", "chosen", "rejected",
                                                                                   "provenance"}


# --------------------------------------------------------------------------- principles (VPO)


@pytest.fixture()
def fake_models():
    from backends.base import ModelSpec
    from backends.fake import FakeChat, FakeEmbeddings

    return (FakeChat.load(ModelSpec(role="chat", backend="fake-chat", model_id="fake/chat")),
            FakeEmbeddings.load(ModelSpec(role="embeddings", backend="fake-embeddings", model_id="fake/embeddings")))


def test_checklist_catches_a_dropped_subject(fake_models):
    from workbench.t2v.principles import critique, lemma

    _, emb = fake_models
    assert lemma("dogs") == lemma("dog") and lemma("running") == lemma("run") and lemma("puppies") == lemma("puppy")
    kept = critique("two dogs running after a red ball", "two dogs run after a red ball, tracking shot, golden light", emb)
    assert kept.check("accurate").passed and kept.accepted
    dropped = critique("two dogs running after a red ball", "two dogs run across a field, tracking shot, golden light", emb)
    accurate = dropped.check("accurate")
    assert not accurate.passed and accurate.details["missing"] == ["red", "ball"]
    assert "drops “red”, “ball”" in accurate.reason and not dropped.accepted
    bland = critique("a dog", "a dog", emb)
    assert not bland.check("helpful").passed and "camera" in bland.check("helpful").reason


def test_unsafe_request_is_refused_and_unsafe_rewrite_rejected(fake_models):
    from workbench.t2v.principles import critique, principled_rewrite

    chat, emb = fake_models
    refused = principled_rewrite(chat, emb, "a gory massacre in a village")
    assert refused.refused and refused.final is None and refused.attempts == []
    assert "gory" in refused.reason and "Refused" in refused.reason
    harmful = critique("a man in a park", "a naked man in a park, tracking shot, soft light", emb)
    assert not harmful.check("harmless").passed and "naked" in harmful.check("harmless").reason


def test_rejected_rewrite_is_refined_with_the_critique(fake_models):
    from workbench.t2v.principles import PrincipleSettings, principled_rewrite

    chat, emb = fake_models
    result = principled_rewrite(chat, emb, "a red fox jumping over a fence", PrincipleSettings(max_refinements=2),
                                judge=chat)
    # the fake's first answer continues the template's last line (no subject): rejected, then refined
    assert not result.attempts[0]["accepted"] and "drops" in result.attempts[0]["text"]
    assert result.attempts[-1]["accepted"] and result.accepted
    assert result.final.startswith("a red fox jumping over a fence")


def test_vpo_template_is_profile_data_and_is_applied(profiles):
    import dataclasses

    from backends.fake import FakeChat
    from workbench.t2v.principles import principled_rewrite

    spec = profiles["paper"].spec("t2v_rewriter")
    assert spec.model_id == "CCCCCC/VPO-2B" and profiles["paper"].spec("t2v").model_id == "zai-org/CogVideoX-2b"
    assert profiles["paper-vpo-5b"].spec("t2v_rewriter").model_id == "CCCCCC/VPO-5B"
    assert profiles["paper-vpo-5b"].spec("t2v").model_id == "zai-org/CogVideoX-5b"
    template = spec.option("prompt_template")
    assert template.endswith("User Query:{query}\n\nVideo Prompt:") and "**Harmless**" in template

    seen = []

    class Recording(FakeChat):
        def generate(self, conversations, settings):
            seen.extend(conversations)
            return super().generate(conversations, settings)

    chat = Recording(dataclasses.replace(spec, backend="fake-chat"))
    emb = __import__("backends.fake").fake.FakeEmbeddings(spec)
    result = principled_rewrite(chat, emb, "a cute dog on the grass")
    first = seen[0]
    assert first[0]["role"] == "user" and first[0]["content"] == template.replace("{query}", "a cute dog on the grass")
    assert result.template == template
    # the evolution's first round goes through the T2I refiner's conversation: the same template
    from workbench.common.refiner import _conversation

    assert _conversation(chat, "a cat", "ignored", [])[0]["content"].endswith("User Query:a cat\n\nVideo Prompt:")


# --------------------------------------------------------------------------- flows (fake profile)


def test_flows_evolve_open_check_render_export_reopen(fake_ctx):
    import imageio_ffmpeg

    job = Job("evolve")
    state, view = flows.evolve(fake_ctx, "fake", None, "a dog running on a beach",
                               flows.EvolveInputs(rounds=3, population=2, patience=3),
                               flows.VideoInputs(width=32, height=32, frames=4, steps=2),
                               flows.RewriterInputs(), job=job)
    json.dumps(state)  # plain data
    assert len(state["evolve"]["rounds"]) == 3 and view.chart is not None
    assert len(view.chart.data) == 7 and list(view.chart.data[0].x) == [0, 1, 2, 3]  # 6 metrics + best total
    assert len(view.choices) == 7 and view.choices[0][1] == "original"
    assert "random weights" in view.status and "round 1: rewrite" in view.status
    assert Path(view.candidate.preview).is_file() and view.chosen == view.candidate.prompt
    assert "round 1 (from candidate" in view.tree
    state, view = flows.open_candidate(fake_ctx, "fake", state, "r1c2")
    assert view.candidate.id == "r1c2" and "align_original" in view.candidate.scores and view.candidate.diff
    state, view = flows.check_candidate(fake_ctx, "fake", state, view.chosen, flows.RewriterInputs())
    assert "Principles check" in view.principles and "| accurate |" in view.principles
    state, view = flows.render_final(fake_ctx, "fake", state, view.chosen, flows.VideoInputs(32, 32, 4, 1, 5))
    reader = imageio_ffmpeg.read_frames(view.final_chosen)
    meta = next(reader)
    assert sum(1 for _ in reader) == 4 and meta["size"][0] >= 32
    prov = json.loads(Path(view.downloads[2]).read_text())
    assert prov["videos"]["original"]["seed"] == prov["videos"]["chosen"]["seed"] == 5
    assert prov["scores"]["chosen"]["scores"]["align_original"]["provenance"]["model_id"] == "fake/scorer"
    assert Path(view.downloads[1]).read_bytes()[:3] == b"GIF"
    state, view = flows.export(fake_ctx, "fake", state, "", 0.0)
    assert "SFT row" in view.export_status and all(Path(p).is_file() for p in view.export_files)
    again, view = flows.reopen(fake_ctx, "fake", None, state["run_dir"])
    assert again["evolve"]["best_id"] == state["evolve"]["best_id"] and view.choices


def test_cancelled_evolution_flow_keeps_rounds_on_disk(fake_ctx):
    job = Job("evolve")
    job.listen(lambda u: job.cancel() if "round 2" in u.item and u.stage == "render" else None)
    state, view = flows.evolve(fake_ctx, "fake", None, "a kite over a hill", flows.EvolveInputs(rounds=4, patience=4),
                               flows.VideoInputs(32, 32, 3, 2), flows.RewriterInputs(), job=job)
    assert len(state["evolve"]["rounds"]) == 1 and "cancelled" in view.status
    on_disk = json.loads((Path(state["run_dir"]) / "state.json").read_text())
    assert len(on_disk["evolve"]["rounds"]) == 1


@pytest.mark.parametrize("call, message", [
    (lambda c: flows.evolve(c, "fake", None, "   ", flows.EvolveInputs(), flows.VideoInputs(), flows.RewriterInputs()),
     "video idea is empty"),
    (lambda c: flows.evolve(c, "fake", None, "a dog", flows.EvolveInputs(rounds=50), flows.VideoInputs(),
                            flows.RewriterInputs()), "rounds must be between 1 and 12"),
    (lambda c: flows.evolve(c, "fake", None, "a dog", flows.EvolveInputs(), flows.VideoInputs(frames=100000),
                            flows.RewriterInputs()), "frames must be between 2 and 129"),
    (lambda c: flows.evolve(c, "fake", None, "a dog", flows.EvolveInputs(), flows.VideoInputs(width=4000),
                            flows.RewriterInputs()), "width must be between 32 and 1024"),
    (lambda c: flows.evolve(c, "fake", None, "a dog", flows.EvolveInputs(), flows.VideoInputs(width=36),
                            flows.RewriterInputs()), "multiple of 8"),
    (lambda c: flows.render_final(c, "fake", None, "a dog", flows.VideoInputs()), "run Evolve or Principles first"),
    (lambda c: flows.export(c, "fake", {"original": "x"}, "", 0.1), "run Evolve first"),
    (lambda c: flows.export(c, "fake", None, "", 0.1), "run Evolve first"),
    (lambda c: flows.reopen(c, "fake", None, "/nonexistent"), "outside the folders this app reads from"),
    (lambda c: flows.reopen(c, "fake", None, str(flows.RUNS_ROOT / "none")), "not a T2V run folder"),
    (lambda c: flows.parse_thresholds("align_original"), "metric=value pairs"),
])
def test_bad_input_names_the_problem(fake_ctx, call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(fake_ctx)


def test_unreachable_remote_rewriter_gives_a_clear_message(fake_ctx):
    from workbench.actions import ActionError, run_action
    from tests.app_process import free_port

    inputs = flows.RewriterInputs(kind=flows.REWRITER_LABELS["openai"], base_url=f"http://127.0.0.1:{free_port()}/v1",
                                  model="m", timeout=2)
    with pytest.raises(ActionError) as err:
        run_action(fake_ctx, "t2v_evolve", flows.evolve, (fake_ctx, "fake", None, "a dog", flows.EvolveInputs(rounds=1),
                                                          flows.VideoInputs(32, 32, 2, 1), inputs))
    assert err.value.kind == "input" and "Something went wrong" not in err.value.message


def test_diffusers_backend_reports_each_denoising_step_and_stops_on_cancel():
    """The tiny AnimateDiff pipeline through diffusers' callback_on_step_end: progress per step, and a cancel
    raised from the callback stops the render there."""
    from backends.base import ModelSpec, VideoSettings
    from backends.diffusers_t2v import DiffusersTextToVideo

    backend = DiffusersTextToVideo.load(ModelSpec(role="t2v", backend="diffusers-t2v", model_id="tiny:animatediff"),
                                        device="cpu", dtype="float32")
    calls = []
    settings = VideoSettings(steps=3, width=32, height=32, num_frames=2, seed=1)
    out = backend.generate(["a dog", "a cat"], settings, on_step=lambda i, s, n: calls.append((i, s, n)))
    assert calls == [(0, 1, 3), (0, 2, 3), (0, 3, 3), (1, 1, 3), (1, 2, 3), (1, 3, 3)] and len(out[1].frames) == 2
    job = Job("render")

    def on_step(i, step, steps):
        if step == 2:
            job.cancel()
        job.update("render", step, steps)

    with pytest.raises(Cancelled):
        backend.generate(["a dog"], settings, on_step=on_step)
    assert [u.done for u in job.history] == [1, 2]


def test_video_batch_rewrites_with_the_tabs_video_rewriter_not_the_image_rewriter():
    """The batch CLI's default rewriter is the tab's: the profile's video rewriter role (offline: SmolLM2 + the
    video-prompt adapter), never its T2I rewriter (the image-prompt adapter); chat where a profile names none."""
    from workbench.profiles import load_profiles
    from workbench.t2v.__main__ import build_parser
    from workbench.t2v.batch import T2VBatchConfig
    from workbench.t2v.flows import RewriterInputs

    profiles = load_profiles()
    offline = profiles["offline"]
    batch = T2VBatchConfig(prompts_file="p.txt", out_dir="o").rewriter.spec(offline)
    assert batch == offline.spec("t2v_rewriter") == RewriterInputs().parse(offline).spec(offline)
    assert "t2v-rewriter" in dict(batch.options)["adapter"] and batch != offline.spec("t2i_rewriter")
    assert build_parser().parse_args(["evolve", "p.txt", "--out", "o"]).role == ""  # the CLI leaves it to the profile
    assert T2VBatchConfig(prompts_file="p.txt", out_dir="o").rewriter.spec(profiles["fake"]) == \
        profiles["fake"].spec("chat")
