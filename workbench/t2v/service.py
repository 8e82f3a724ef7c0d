"""The models behind the T2V tab, the batch CLI and the benchmark: the rewriter as an evolution proposer (first
round: the T2I refiner's retrieval few-shot + MMR with a video template; later rounds: the top-k scored history),
render and score callables over a profile's t2v and image_text models, and per-profile preview defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from backends.base import VideoSettings
from workbench.models import ManagedModel
from workbench.t2i.diversity import mmr_select
from workbench.t2i.refiner import RefineSettings, _norm, parse_candidate, refine_candidates
from workbench.t2i.service import RewriterChoice
from workbench.t2v.evolve import EVOLVE_SYSTEM_TEMPLATE, Candidate, EvolveSettings, Proposal
from workbench.t2v.rewards import RewardSettings, score_videos

# Preview renders (evolution rounds) when a profile's t2v role gives no `preview` option: small and short.
PREVIEW_DEFAULTS = {"width": 256, "height": 256, "num_frames": 8, "steps": 10, "fps": 8}
FINAL_DEFAULTS = {"width": 512, "height": 512, "num_frames": 16, "steps": 25, "fps": 8}
MAX_SIDE, MAX_FRAMES, MAX_STEPS = 1024, 129, 100  # far past what a preview or a CPU needs; bigger is a typo


def render_defaults(spec: Any, kind: str = "preview") -> dict[str, int]:
    """Per-profile render defaults, as data: the t2v role's option `preview` / `final` in assets/profiles.yaml."""
    base = dict(PREVIEW_DEFAULTS if kind == "preview" else FINAL_DEFAULTS)
    given = spec.option(kind)
    if given:
        base.update(dict(given))
    return base


def evolve_defaults(spec: Any) -> dict[str, int]:
    """Per-profile evolution defaults, as data: the t2v role's option `evolve` (e.g. a smaller population and
    shorter rewrites where the rewriter is a 135M model on a CPU)."""
    return dict(spec.option("evolve") or {})


def video_settings(width: Any, height: Any, num_frames: Any, steps: Any, seed: Any, fps: Any = 8,
                   guidance: Any = 6.0) -> VideoSettings:
    """VideoSettings from widget values, with the tab's tighter ranges named in the message."""
    from workbench.t2i.inputs import check_count

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

    def __call__(self, original: str, history: list[Candidate], n: int, round_index: int, seed: int) -> list[Proposal]:
        if round_index == 1 or not history:
            refine = RefineSettings(n=n, overgenerate=1.5, diversity=0.5, few_shot=self.settings.few_shot,
                                    max_new_tokens=self.settings.max_new_tokens,
                                    temperature=float(self.settings.temperature), seed=seed)
            result = refine_candidates(self.chat, self.embedder, original, refine, self.system_template)
            return [Proposal(c.text, {**c.provenance.to_dict(), "round": round_index, "source": "refiner"})
                    for c in result.candidates]
        messages = [{"role": "system", "content": self.system_template},
                    {"role": "user", "content": history_message(original, history)}]
        gen_settings = RefineSettings(max_new_tokens=self.settings.max_new_tokens,
                                      temperature=float(self.settings.temperature)).generation(min(n + 1, 16), seed)
        gens = self.chat.generate([messages], gen_settings)[0]
        seen = {_norm(original)} | {_norm(c.prompt) for c in history}
        pool: list[tuple[str, Any]] = []
        for gen in gens:
            text = parse_candidate(gen.text)
            if _norm(text) and _norm(text) not in seen:
                seen.add(_norm(text))
                pool.append((text, gen))
        if not pool:
            return []
        vectors = self.embedder.embed([original] + [t for t, _ in pool]).vectors
        chosen = mmr_select(vectors[0], vectors[1:], min(n, len(pool)), 0.5)
        return [Proposal(pool[i][0], {**pool[i][1].provenance.to_dict(), "round": round_index,
                                      "source": "top-k history", "history_ids": [c.id for c in history]})
                for i in chosen]


def proposer(ctx: Any, profile_name: str | None, rewriter: RewriterChoice, settings: EvolveSettings,
             system_template: str = EVOLVE_SYSTEM_TEMPLATE) -> ChatProposer:
    profile = ctx.profile(profile_name)
    spec = rewriter.spec(profile)
    if spec is None:
        raise ValueError("the keyword baseline cannot evolve prompts: choose the profile model or a server")
    return ChatProposer(ManagedModel(ctx.manager, spec), ManagedModel(ctx.manager, profile.spec("embeddings")),
                        settings, system_template)


def renderer(t2v: Any, video: VideoSettings):
    def render(prompts: Sequence[str], on_step: Any = None) -> list[Any]:
        return t2v.generate(list(prompts), video, on_step=on_step)

    return render


def scorer_fn(scorer: Any, weights: dict[str, float] | None = None, reward: RewardSettings | None = None,
              rewards: dict[str, Any] | None = None):
    """`rewards`: the profile's image reward models (workbench.t2i.service.reward_models), scored per frame."""
    def score(original: str, prompts: Sequence[str], videos: Sequence[Any]) -> list[Any]:
        return score_videos(scorer, original, prompts, [v.frames for v in videos], [v.provenance for v in videos],
                            weights, reward, rewards=rewards)

    return score


def models(ctx: Any, profile_name: str | None) -> tuple[ManagedModel, ManagedModel]:
    profile = ctx.profile(profile_name)
    return ManagedModel(ctx.manager, profile.spec("t2v")), ManagedModel(ctx.manager, profile.spec("image_text"))
