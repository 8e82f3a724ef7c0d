"""The models behind the T2V tab, the batch CLI and the benchmark: the rewriter as an evolution proposer (first
round: the T2I refiner's retrieval few-shot + MMR with a video template; later rounds: the top-k scored history),
render and score callables over a profile's t2v and image_text models, and per-profile preview defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from backends.base import VideoSettings
from workbench.models import ManagedModel
from workbench.common.diversity import mmr_select
from workbench.common.refiner import RefineSettings, normalise, parse_candidate, refine_candidates
from workbench.common.choice import ModelChoice
from workbench.t2v.evolve import EVOLVE_SYSTEM_TEMPLATE, Candidate, EvolveSettings, Proposal
from workbench.t2v.rewards import RewardSettings, score_videos

# Preview renders (evolution rounds) when a profile's t2v role gives no `preview` option: small and short.
# classifier-free guidance 6 unless the profile's t2v role says otherwise (the world's video model: 3)
PREVIEW_DEFAULTS = {"width": 256, "height": 256, "num_frames": 8, "steps": 10, "fps": 8, "guidance": 6.0}
FINAL_DEFAULTS = {"width": 512, "height": 512, "num_frames": 16, "steps": 25, "fps": 8, "guidance": 6.0}
MAX_SIDE, MAX_FRAMES, MAX_STEPS = 1024, 129, 100  # far past what a preview or a CPU needs; bigger is a typo


@dataclass(frozen=True)
class RewriterChoice(ModelChoice):
    """The video-prompt rewriter: a profile role (by default the one the profile names for video prompts,
    `settings.t2v_refine.rewriter_role`, else `chat`), or an OpenAI-compatible server. Never the T2I tab's image
    rewriter (f3dce14). The tab, the batch CLI and the eval resolve an empty role here, so they agree."""

    DEFAULT_ROLE = "chat"

    def default_role(self, profile: Any) -> str:
        return video_rewriter_role(profile) if profile is not None else self.DEFAULT_ROLE


def render_defaults(spec: Any, kind: str = "preview") -> dict[str, float]:
    """Per-profile render defaults, as data: the t2v role's option `preview` / `final` in assets/profiles.yaml."""
    base = dict(PREVIEW_DEFAULTS if kind == "preview" else FINAL_DEFAULTS)
    given = spec.option(kind)
    if given:
        base.update(dict(given))
    return base


def video_rewriter_role(profile: Any) -> str:
    """The role the T2V tab rewrites with unless the user picks another: the profile names it as data
    (`settings.t2v_refine.rewriter_role`, e.g. the offline profile's trained video rewriter), else `chat`.
    Never the T2I rewriter role: an image-prompt adapter writes image prompts (commit f3dce14)."""
    return str(profile.setting("t2v_refine", "rewriter_role", "chat") or "chat")


def use_judge(profile: Any) -> bool:
    """Whether Principles asks the rewriter for the (advisory) accuracy checklist: the profile says so as data
    (`settings.t2v_refine.use_judge`); on by default. The deterministic checks decide either way."""
    return bool(profile.setting("t2v_refine", "use_judge", True))


def evolve_defaults(spec: Any) -> dict[str, int]:
    """Per-profile evolution defaults, as data: the t2v role's option `evolve` (e.g. a smaller population and
    shorter rewrites where the rewriter is a 135M model on a CPU)."""
    return dict(spec.option("evolve") or {})


def video_settings(width: Any, height: Any, num_frames: Any, steps: Any, seed: Any, fps: Any = 8,
                   guidance: Any = 6.0) -> VideoSettings:
    """VideoSettings from widget values, with the tab's tighter ranges named in the message."""
    from workbench.common.inputs import check_count

    for name, value, low, high in (("width", width, 32, MAX_SIDE), ("height", height, 32, MAX_SIDE),
                                   ("frames", num_frames, 2, MAX_FRAMES), ("steps", steps, 1, MAX_STEPS),
                                   ("fps", fps, 1, 60), ("seed", seed, 0, 2**31 - 1)):
        check_count(value, name, low, high)
    return VideoSettings(steps=int(steps), guidance_scale=float(guidance), width=int(width), height=int(height),
                         num_frames=int(num_frames), fps=int(fps), seed=int(seed)).check()


def history_message(original: str, history: Sequence[Candidate]) -> str:
    """The user turn of a later round: the idea, the top-k scored prompts (best last), then the best prompt on
    the last line (small models continue from it)."""
    def key(c: Candidate) -> float:
        return c.total if c.total is not None else float("-inf")

    lines = [f"The user's video idea: {original}", "",
             "Prompts tried so far, with their video scores (higher is better):"]
    for c in sorted(history, key=key):
        metrics = ", ".join(f"{k} {v['value']:.2f}" for k, v in c.scores.get("scores", {}).items()
                            if v.get("value") is not None and k != "safety")
        lines.append(f"- score {c.total if c.total is not None else float('nan'):.3f} ({metrics}): {c.prompt}")
    lines += ["", "Write a new, better prompt for the same idea.", max(history, key=key).prompt if history else original]
    return "\n".join(lines)


@dataclass
class ChatProposer:
    """Proposals from a chat model (through the manager) and a sentence embedder for MMR."""

    chat: Any
    embedder: Any
    settings: EvolveSettings
    system_template: str = EVOLVE_SYSTEM_TEMPLATE
    safety: Any = None  # texts -> SafetyVerdicts: unsafe rewrites are dropped before MMR picks the proposals
    unsafe: list[Any] = field(default_factory=list)  # verdicts of the rewrites dropped so far (no text kept)
    screened: int = 0

    def note(self) -> str:
        from workbench.safety import dropped_note

        return dropped_note(self.unsafe, self.screened)

    def __call__(self, original: str, history: list[Candidate], n: int, round_index: int, seed: int) -> list[Proposal]:
        if round_index == 1 or not history:
            refine = RefineSettings(n=n, overgenerate=1.5, diversity=0.5, few_shot=self.settings.few_shot,
                                    max_new_tokens=self.settings.max_new_tokens,
                                    temperature=float(self.settings.temperature), seed=seed)
            try:
                result = refine_candidates(self.chat, self.embedder, original, refine, self.system_template,
                                           safety=self._count if self.safety is not None else None)
            except ValueError as exc:  # every rewrite was unsafe: the loop stops or says so
                if "unsafe" not in str(exc):
                    raise
                return []
            return [Proposal(c.text, {**c.provenance.to_dict(), "round": round_index, "source": "refiner"})
                    for c in result.candidates]
        messages = [{"role": "system", "content": self.system_template},
                    {"role": "user", "content": history_message(original, history)}]
        gen_settings = RefineSettings(max_new_tokens=self.settings.max_new_tokens,
                                      temperature=float(self.settings.temperature)).generation(min(n + 1, 16), seed)
        gens = self.chat.generate([messages], gen_settings)[0]
        seen = {normalise(original)} | {normalise(c.prompt) for c in history}
        pool: list[tuple[str, Any]] = []
        for gen in gens:
            text = parse_candidate(gen.text)
            if normalise(text) and normalise(text) not in seen:
                seen.add(normalise(text))
                pool.append((text, gen))
        if pool and self.safety is not None:
            verdicts = self._count([t for t, _ in pool])
            pool = [p for p, v in zip(pool, verdicts) if v.safe]
        if not pool:
            return []
        vectors = self.embedder.embed([original] + [t for t, _ in pool]).vectors
        chosen = mmr_select(vectors[0], vectors[1:], min(n, len(pool)), 0.5)
        return [Proposal(pool[i][0], {**pool[i][1].provenance.to_dict(), "round": round_index,
                                      "source": "top-k history", "history_ids": [c.id for c in history]})
                for i in chosen]


    def _count(self, texts: Sequence[str]) -> list[Any]:
        verdicts = self.safety(texts) if self.safety is not None else []
        self.screened += len(texts)
        self.unsafe += [v for v in verdicts if not v.safe]
        return verdicts


def proposer(ctx: Any, profile_name: str | None, rewriter: RewriterChoice, settings: EvolveSettings,
             system_template: str = EVOLVE_SYSTEM_TEMPLATE) -> ChatProposer:
    """The chat rewriter with the profile's safety check: unsafe rewrites never become proposals."""
    from workbench.safety import checker

    profile = ctx.profile(profile_name)
    spec = rewriter.spec(profile)
    if spec is None:
        raise ValueError("the keyword baseline cannot evolve prompts: choose the profile model or a server")
    return ChatProposer(ManagedModel(ctx.manager, spec), ManagedModel(ctx.manager, profile.spec("embeddings")),
                        settings, system_template, safety=checker(ctx, profile_name))


def renderer(t2v: Any, video: VideoSettings):
    def render(prompts: Sequence[str], on_step: Any = None) -> list[Any]:
        return t2v.generate(list(prompts), video, on_step=on_step)

    return render


def scorer_fn(scorer: Any, weights: dict[str, float] | None = None, reward: RewardSettings | None = None,
              safety: Any = None, rewards: dict[str, Any] | None = None):
    """`safety`: texts -> SafetyVerdicts (workbench.safety.checker): the rewards' safety flag uses the role;
    `rewards`: the profile's image reward models, scored per frame."""
    def score(original: str, prompts: Sequence[str], videos: Sequence[Any]) -> list[Any]:
        return score_videos(scorer, original, prompts, [v.frames for v in videos], [v.provenance for v in videos],
                            weights, reward, safety=safety, rewards=rewards)

    return score


def models(ctx: Any, profile_name: str | None) -> tuple[ManagedModel, ManagedModel]:
    profile = ctx.profile(profile_name)
    return ManagedModel(ctx.manager, profile.spec("t2v")), ManagedModel(ctx.manager, profile.spec("image_text"))
