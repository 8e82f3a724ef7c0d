"""Four T2V defects from issue 19's walkthrough, each as the user saw it: a rejected Principles rewrite in the
chosen-prompt box; the old Evolve summary under a new Principles result; an export of 0 rows with no reason; a
progress bar stuck at "rewrite 0/1" while the rewriter runs."""

import pytest

from workbench.jobs import Cancelled, Job
from workbench.t2v import flows
from workbench.t2v.principles import PrincipleSettings


def _evolve(ctx, idea="a dog running on a beach", job=None, rounds=1):
    return flows.evolve(ctx, "fake", None, idea, flows.EvolveInputs(rounds=rounds, population=2, patience=3),
                        flows.VideoInputs(width=32, height=32, frames=4, steps=2), flows.RewriterInputs(), job=job)


def test_principles_keeps_a_rejected_rewrite_out_of_the_chosen_prompt_box(fake_ctx):
    # min_similarity 1.0: no rewrite can be accepted, so the best one is shown rejected
    state, view = flows.principles(fake_ctx, "fake", None, "a red kite over a hill", flows.RewriterInputs(),
                                   min_similarity=1.0, max_refinements=0)
    assert state["principles"]["accepted"] is False and state["principles"]["final"]
    assert view.chosen == "" and state["chosen"] == "" and view.principles_prompt == ""
    assert flows.selected_prompt(state) == ""
    assert "rejected" in view.principles and state["principles"]["final"] in view.principles  # shown with critique
    assert "chosen-prompt box keeps nothing" in view.status
    # an accepted rewrite does go into the box
    state, view = flows.principles(fake_ctx, "fake", None, "a red kite over a hill", flows.RewriterInputs(),
                                   min_similarity=0.0, min_details=0)
    assert state["principles"]["accepted"] and view.chosen == state["principles"]["final"] != ""
    # a rejected rewrite after an earlier choice leaves that choice in place
    state, view = flows.principles(fake_ctx, "fake", state, "a red kite over a hill", flows.RewriterInputs(),
                                   min_similarity=1.0, max_refinements=0)
    assert view.chosen == state["chosen"] != state["principles"]["final"]
    assert "keeps its earlier prompt" in view.status


def test_principles_status_does_not_carry_the_old_evolve_summary(fake_ctx):
    state, view = _evolve(fake_ctx)
    assert "**Stopped:**" in view.status  # the evolution's own summary, under Evolve
    state, view = flows.principles(fake_ctx, "fake", state, "a dog running on a beach", flows.RewriterInputs())
    assert state["evolve"] is not None  # same idea: the evolution is kept for the candidate list ...
    assert "**Stopped:**" not in view.status and "round 1: rewrite" not in view.status  # ... but not in the status
    assert view.status.startswith(("✅", "❌"))
    state, view = flows.set_mode(fake_ctx, "fake", state, flows.MODES[0])
    assert "**Stopped:**" in view.status  # back in Evolve, its summary is there again


def test_export_of_nothing_says_why_and_what_to_do(fake_ctx):
    from workbench.text import escape_markdown

    def reasons(view, state):
        text = "\n".join(state["exports"]["reasons"])
        assert all(escape_markdown(r) in view.export_status for r in state["exports"]["reasons"])  # shown
        return text

    state, view = _evolve(fake_ctx)
    state, view = flows.export(fake_ctx, "fake", state, "", 9.0)  # no pair can have a margin of 9
    assert "Exported **0** SFT row(s) and **0** DPO pair(s)" in view.export_status
    why = reasons(view, state)
    assert "0 SFT rows: the best candidate beats your original prompt by" in why
    assert "less than the minimum margin 9" in why
    assert "0 DPO pairs: the widest gap between a chosen and a rejected prompt is" in why
    assert "lower the margin" in why and view.status.startswith("Nothing exported")
    state, view = flows.export(fake_ctx, "fake", state, "align_original=5", 0.0)  # no candidate can be chosen
    why = reasons(view, state)
    assert "0 DPO pairs: no candidate may be a chosen prompt (align_original" in why
    assert "loosen the thresholds" in why
    state, view = flows.export(fake_ctx, "fake", state, "", 0.0)
    assert state["exports"]["dpo_rows"] and "0 DPO" not in view.export_status
    with pytest.raises(ValueError, match="run Evolve first"):
        flows.export(fake_ctx, "fake", {}, "", 0.0)


def test_progress_moves_inside_the_rewrite_with_stage_and_item(fake_ctx):
    job = Job("evolve")
    _evolve(fake_ctx, job=job)
    rewrite = [u for u in job.history if u.stage == "rewrite"]
    render_at = next(i for i, u in enumerate(job.history) if u.stage == "render")
    inside = [u for u in job.history[:render_at] if u.stage == "rewrite" and u.done]
    assert inside, [u.describe() for u in rewrite]  # updates from inside the rewriter's generate, before the render
    assert all(0 < u.done <= u.total and "token" in u.item and "round 1 of 1" in u.item for u in inside)
    job = Job("principles")
    flows.principles(fake_ctx, "fake", None, "a red kite over a hill", flows.RewriterInputs(), job=job)
    assert any(u.stage == "principles: rewrite" and u.done and "attempt 1 of 3 · token" in u.item
               for u in job.history)


def test_transformers_backend_reports_tokens_while_generating_and_stops_on_cancel(manager):
    from backends.base import GenerationSettings, ModelSpec, generation_progress

    chat = manager.get(ModelSpec(role="chat", backend="transformers-lm", model_id="tiny:causal-lm?seed=0"))
    conv = "a tiny prompt"
    seen = []
    settings = GenerationSettings(max_new_tokens=12, do_sample=False)
    with generation_progress(lambda done, total: seen.append((done, total))):
        chat.generate([conv], settings)
    assert seen and seen[0][0] >= 1 and all(t == 12 for _, t in seen) and seen[-1][0] <= 12
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 2
    chat.generate([conv], settings)  # outside the block: no callback, no error
    job = Job("rewrite")

    def cancel_at_first_report(done, total):
        job.cancel()
        job.update("rewrite", done, total, f"token {done}/{total}")

    with pytest.raises(Cancelled), generation_progress(cancel_at_first_report):
        chat.generate([conv], GenerationSettings(max_new_tokens=64, do_sample=False))
    assert len(job.history) == 1 and job.history[0].done < 64
