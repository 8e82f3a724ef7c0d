"""What the tab (both front ends), the batch CLI and the trainer call: the refiner, the token-limit flag and
render-and-score over the models of a profile, each model held through the shared manager."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from backends.base import ImageResult, ImageSettings
from workbench.t2i.baseline import BASELINE_ID, keyword_candidates
from workbench.common.diversity import pairwise_diversity
from workbench.common.choice import MODEL_KINDS, ModelChoice
from workbench.common.inputs import check_prompt
from workbench.common.reward_models import reward_models  # noqa: F401  (re-exported for the tab)
from workbench.models import ManagedModel
from workbench.safety import check_texts, checker, refuse_unsafe, screen
from workbench.common.refiner import (
    DEFAULT_SYSTEM_TEMPLATE, PAIRS_FILE, Candidate, RefineResult, RefineSettings, refine_candidates, regenerate_one,
)
from workbench.text import escape_markdown
from workbench.t2i.scoring import RANDOM_NOTE, ImageScores, round_image_diversity, score_images

REWRITER_KINDS = MODEL_KINDS


@dataclass(frozen=True)
class RewriterChoice(ModelChoice):
    """Which rewriter refines: the profile's chat model (optionally with a LoRA adapter by path), the keyword
    baseline, or an OpenAI-compatible server. Its default role is the T2I tab's: the one the profile names."""

    def default_role(self, profile: Any) -> str:
        return default_rewriter_role(profile)


def default_rewriter_role(profile: Any) -> str:
    """The role the T2I tab rewrites with unless the user picks another: the profile names it as data
    (`settings.t2i_refine.rewriter_role`, e.g. the offline profile's trained rewriter adapter), else `chat`."""
    return profile.setting("t2i_refine", "rewriter_role", "chat")


def prompt_window(ctx: Any, profile_name: str | None) -> Any:
    """The profile's image model's text window (its tokenizer only), the rewrite budget; None without a T2I role."""
    profile = ctx.profile(profile_name)
    if "t2i" not in profile.roles:
        return None
    return ctx.manager.prompt_window(profile.spec("t2i"))


def _embedder(ctx: Any, profile_name: str | None) -> ManagedModel:
    return ManagedModel(ctx.manager, ctx.profile(profile_name).spec("embeddings"))


def refine(ctx: Any, profile_name: str | None, prompt: str, rewriter: RewriterChoice | None = None,
           settings: RefineSettings | None = None, system_template: str = DEFAULT_SYSTEM_TEMPLATE,
           pairs_path: str | Path = PAIRS_FILE, further: bool = False) -> RefineResult:
    """Candidates for `prompt`; `further`: a refine-further of a picked candidate (with facets, each new candidate
    keeps its start and changes or adds one facet)."""
    rewriter = (rewriter or RewriterChoice()).check()
    settings = (settings or RefineSettings()).check()
    prompt = check_prompt(prompt)
    refuse_unsafe(ctx, prompt, profile_name, "prompt")  # ValueError naming the category and the words
    profile = ctx.profile(profile_name)
    embedder = _embedder(ctx, profile_name)
    if rewriter.kind == "baseline":
        candidates = keyword_candidates(prompt, settings.n, settings.seed)
        screened = screen(ctx, [c.text for c in candidates], profile_name)  # the modifiers are checked too
        candidates = [candidates[i] for i in screened.kept]
        vectors = embedder.embed([prompt] + [c.text for c in candidates]).vectors
        for c, v in zip(candidates, vectors[1:]):
            c.relevance = float(v @ vectors[0])
        return RefineResult(prompt=prompt, candidates=candidates, pool=[c.text for c in candidates], examples=[],
                            messages=None, diversity=pairwise_diversity(vectors[1:]),
                            settings={**vars(settings), "rewriter": BASELINE_ID,
                                      "dropped_unsafe": len(screened.dropped),
                                      "safety": screened.verdicts[0].source if screened.verdicts else None},
                            notes=[n for n in [screened.note()] if n])
    chat = ManagedModel(ctx.manager, rewriter.spec(profile))
    return refine_candidates(chat, embedder, prompt, settings, system_template, pairs_path,
                             window=prompt_window(ctx, profile_name), safety=checker(ctx, profile_name),
                             further=further)


def regenerate(ctx: Any, profile_name: str | None, prompt: str, others: Sequence[str],
               rewriter: RewriterChoice | None = None, settings: RefineSettings | None = None,
               system_template: str = DEFAULT_SYSTEM_TEMPLATE, others_facets: Sequence[str | None] = (),
               current_facet: str | None = None, further: bool = False) -> Candidate:
    """One new candidate for one slot, different from `others` (the candidates that stay); with facets, written for
    a facet that `others_facets` do not show (`further`: the slot is in a refine-further round)."""
    rewriter = (rewriter or RewriterChoice()).check()
    settings = (settings or RefineSettings()).check()
    prompt = check_prompt(prompt)
    refuse_unsafe(ctx, prompt, profile_name, "prompt")
    if rewriter.kind == "baseline":
        pool = keyword_candidates(prompt, min(8, len(others) + 4), settings.seed)
        taken = {o.strip() for o in others}
        fresh = [c for c in pool if c.text not in taken]
        fresh = [fresh[i] for i in screen(ctx, [c.text for c in fresh], profile_name).kept]
        if not fresh:
            raise RuntimeError("the keyword baseline has no further variant for this seed; change the seed")
        return fresh[0]
    chat = ManagedModel(ctx.manager, rewriter.spec(ctx.profile(profile_name)))
    return regenerate_one(chat, _embedder(ctx, profile_name), prompt, list(others), settings, system_template,
                          window=prompt_window(ctx, profile_name), safety=checker(ctx, profile_name),
                          others_facets=list(others_facets), current_facet=current_facet, further=further)


@dataclass
class TokenFlag:
    prompt: str
    limit: int | None  # the text encoder's window in tokens (77 for CLIP), None when it has no fixed limit
    kept: str
    tail: str  # the words the image model will never see

    @property
    def truncated(self) -> bool:
        return bool(self.tail)

    def message(self) -> str:
        if not self.tail:
            return f"fits the text encoder ({self.limit} tokens)" if self.limit else "no token limit"
        return (f"⚠️ over the text encoder's {self.limit}-token limit: the image model will not see "
                f"“{escape_markdown(self.tail)}”")


def token_flags(window: Any, prompts: Sequence[str]) -> list[TokenFlag]:
    """Flags from a `PromptWindow` (the text encoder's tokenizer); None = the model has no fixed window."""
    if window is None:
        return [TokenFlag(p, None, p, "") for p in prompts]
    return [TokenFlag(p, window.limit, *window.split(p)) for p in prompts]


def check_token_limits(ctx: Any, profile_name: str | None, prompts: Sequence[str]) -> list[TokenFlag]:
    """The token-limit flag from the T2I model's tokenizer alone, cached per model: never loads the pipeline."""
    return token_flags(ctx.manager.prompt_window(ctx.profile(profile_name).spec("t2i")), list(prompts))


@dataclass
class RenderResult:
    original: ImageResult  # the user's original prompt, same seed
    original_scores: ImageScores
    images: list[ImageResult]
    scores: list[ImageScores]
    round_diversity: float | None  # mean pairwise CLIP-image distance over the candidates' images
    flags: list[TokenFlag]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # Markdown the tab shows as is (the miniature world's note)
    stopped: str = ""  # set when the user cancelled: what finished is kept
    prompts: list[str] = field(default_factory=list)  # every candidate asked for (rendered or not)
    seconds: float = 0.0
    archive: str = ""  # the round's ZIP once written (it does not depend on how the view is sorted)


def render_and_score(t2i: Any, scorer: Any, embedder: Any, original: str, candidates: Sequence[str],
                     image_settings: ImageSettings, weights: dict[str, float] | None = None,
                     job: Any = None, rewards: dict[str, Any] | None = None) -> RenderResult:
    """Render the original prompt, then each candidate, from the same seed, then score them. With a `job`,
    progress names the image and the denoising step, and a cancel stops at the next step: the images that
    finished are scored and returned (`stopped` says so); the model is released either way."""
    import time

    from workbench.jobs import Cancelled, Job

    job = job or Job.none()
    image_settings.check()
    original = check_prompt(original, "original prompt")
    texts = [check_prompt(c, f"candidate {i + 1}") for i, c in enumerate(candidates)]
    if not texts:
        raise ValueError("there are no candidates to render: refine first")
    started = time.perf_counter()
    results: list[ImageResult] = []
    stopped = ""
    labels = ["the original prompt"] + [f"candidate {i + 1} of {len(texts)}" for i in range(len(texts))]
    for k, (prompt, label) in enumerate(zip([original, *texts], labels)):
        def on_step(step: int, total: int, k: int = k, label: str = label) -> None:
            job.update("render", k * image_settings.steps + step, (len(texts) + 1) * image_settings.steps,
                       f"{label}, denoising step {step}/{total}")

        try:
            results += t2i.generate([prompt], image_settings, on_step=on_step)
        except Cancelled:
            stopped = (f"stopped by the user after {max(0, len(results) - 1)} of {len(texts)} candidates; the finished "
                       f"images are kept and scored")
            break
    if len(results) < 2:
        raise Cancelled("render cancelled before any candidate finished")
    elapsed = time.perf_counter() - started
    from workbench.t2i import cost

    cost.record(t2i.spec.model_id, image_settings.width, image_settings.height, len(results), image_settings.steps,
                elapsed)
    orig, images = results[0], results[1:]
    done = texts[:len(images)]
    if not stopped:  # after a cancel the job stays cancelled: score what finished without asking again
        job.update("score", 0, 1, f"{len(images)} images")
    scores = score_images(scorer, embedder, original, done, [r.image for r in images],
                          [r.provenance for r in images], weights, rewards=rewards)
    orig_scores = score_images(scorer, embedder, original, [original], [orig.image], [orig.provenance], weights,
                               rewards=rewards)[0]
    warnings = []
    if any(r.provenance.random_weights for r in results):
        warnings.append(f"images: {RANDOM_NOTE} (the image model has random weights)")
    if any(s.random_weights for item in scores for s in item.scores.values()):
        warnings.append(f"scores: {RANDOM_NOTE} (a scoring model has random weights)")
    limit = t2i.token_limit()
    flags = [TokenFlag(r.prompt, limit,
                       r.prompt[: len(r.prompt) - len(r.truncated_tail)].strip() if r.truncated_tail else r.prompt,
                       r.truncated_tail) for r in images]
    return RenderResult(original=orig, original_scores=orig_scores, images=list(images), scores=scores,
                        round_diversity=round_image_diversity(scorer, [r.image for r in images]), flags=flags,
                        warnings=warnings, stopped=stopped, prompts=list(texts),
                        seconds=time.perf_counter() - started)


def render_round(ctx: Any, profile_name: str | None, original: str, candidates: Sequence[str],
                 image_settings: ImageSettings, weights: dict[str, float] | None = None,
                 job: Any = None) -> RenderResult:
    """Render and score one round on the profile's models, after checking its estimated cost."""
    from workbench.t2i import cost

    profile = ctx.profile(profile_name)
    t2i_spec = profile.spec("t2i")
    image_settings.check()
    refuse_unsafe(ctx, original, profile_name, "prompt")
    for k, verdict in enumerate(check_texts(ctx, list(candidates), profile_name)):
        if not verdict.safe:  # only a user's edit can get here: rewrites are screened when they are made
            raise ValueError(verdict.message(f"candidate {k + 1}") + " Edit or regenerate that candidate.")
    cost.check_render_cost(profile, t2i_spec.model_id, len(candidates) + 1, image_settings.steps,
                           image_settings.width, image_settings.height)
    rendered = render_and_score(ManagedModel(ctx.manager, t2i_spec), ManagedModel(ctx.manager,
                                                                                  profile.spec("image_text")),
                                _embedder(ctx, profile_name), original, candidates, image_settings, weights, job=job,
                                rewards=reward_models(ctx, profile_name))
    from workbench.t2i import results
    from workbench.common.world_note import world_note

    labelled = [(results.label(k), p) for k, p in enumerate([original, *rendered.prompts[:len(rendered.images)]])]
    note = world_note(t2i_spec, labelled)
    if note:
        rendered.notes.append(note)
    return rendered


