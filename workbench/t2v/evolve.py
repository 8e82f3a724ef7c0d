"""Prompt-A-Video's reward-guided evolution (jiyt17/Prompt-A-Video, `booster/finetuning/gpt_boost.py`), our way:
each round a population of rewrites is rendered as short low-resolution previews and scored per dimension
against the ORIGINAL prompt; the next round's rewriter sees the top-k scored history and proposes new prompts.
It stops after `rounds`, or early when the best total has not improved for `patience` rounds. A cancel or a
remote rewriter that times out twice keeps every finished round and the best candidate so far.

The loop is written over three callables (propose, render, score), so tests drive it with a fake rewriter
and a toy reward, and the tab, the batch CLI and the benchmark drive it with real models."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from backends.base import generation_progress
from workbench.types import Provenance
from workbench.jobs import Cancelled, Job
from workbench.common.inputs import check_count, check_prompt
from workbench.t2v.rewards import is_safe, total_value

EVOLVE_SYSTEM_TEMPLATE = (
    "You improve prompts for a text-to-video model. Keep every subject, action and attribute of the user's "
    "idea. Add what makes a short clip good: camera movement and framing, lighting, motion of the subject, "
    "setting and style. Answer with one new prompt only, on one line, in under 80 words."
)

VIDEO_HINT = "type a short description of the video you want"
LIMITS = {"rounds": (1, 12), "population": (1, 8), "top_k": (1, 16), "patience": (1, 12)}


@dataclass
class EvolveSettings:
    rounds: int = 3  # Prompt-A-Video runs up to 8; three shows the trend on a CPU
    population: int = 3  # Prompt-A-Video's LLM proposes 3 prompts per round
    top_k: int = 3  # scored history shown to the rewriter (Prompt-A-Video: top 3)
    patience: int = 1  # rounds without a better best before stopping early
    min_improvement: float = 1e-6  # a new best must beat the old one by this much
    few_shot: int = 2  # retrieved coarse->fine examples in the first round
    temperature: float = 0.9  # proposals want variety
    max_new_tokens: int = 96  # an 80-word prompt
    seed: int = 0

    def check(self) -> "EvolveSettings":
        for name, (low, high) in LIMITS.items():
            check_count(getattr(self, name), name, low, high)
        check_count(self.few_shot, "few_shot", 0, 8)
        check_count(self.max_new_tokens, "max_new_tokens", 8, 1024)
        check_count(self.seed, "seed", 0, 2**31 - 1)
        if not isinstance(self.temperature, (int, float)) or not 0.05 <= float(self.temperature) <= 2.0:
            raise ValueError(f"temperature must be between 0.05 and 2, got {self.temperature!r}")
        if not isinstance(self.min_improvement, (int, float)) or not 0 <= self.min_improvement <= 10:
            raise ValueError(f"min_improvement must be between 0 and 10, got {self.min_improvement!r}")
        return self


@dataclass
class Proposal:
    text: str
    provenance: dict[str, Any] = field(default_factory=dict)  # the rewriter's Provenance.to_dict()


@dataclass
class Candidate:
    id: str  # "r1c2": round 1, candidate 2 ("original" for the user's own prompt)
    round: int  # 0 for the original, 1.. for evolution rounds
    index: int
    prompt: str
    scores: dict[str, Any]  # ImageScores.to_dict(): every metric with its provenance, and the weighted total
    total: float | None
    safe: bool
    rewriter: dict[str, Any] = field(default_factory=dict)
    video: dict[str, Any] = field(default_factory=dict)  # the render's provenance
    preview: str = ""  # a GIF path, when the caller saved the preview
    frames: Any = field(default=None, repr=False, compare=False)  # PIL frames, in memory only

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("frames")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Candidate":
        return cls(**{k: v for k, v in data.items() if k != "frames"})


@dataclass
class EvolveResult:
    original: str
    baseline: Candidate | None  # the original prompt rendered and scored with the same seed
    rounds: list[list[Candidate]] = field(default_factory=list)  # finished rounds only
    best_id: str | None = None
    stopped: str = ""  # why it stopped: "finished", "early stop", "cancelled", "rewriter timed out"
    timings: list[dict[str, float]] = field(default_factory=list)  # per round: rewrite / render / score seconds
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def candidates(self) -> list[Candidate]:
        return [c for rnd in self.rounds for c in rnd]

    def find(self, cid: str) -> Candidate:
        for c in ([self.baseline] if self.baseline else []) + self.candidates():
            if c.id == cid:
                return c
        raise ValueError(f"no candidate '{cid}'; candidates: {', '.join(c.id for c in self.candidates())}")

    @property
    def best(self) -> Candidate | None:
        return self.find(self.best_id) if self.best_id else None

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "baseline": self.baseline.to_dict() if self.baseline else None,
                "rounds": [[c.to_dict() for c in rnd] for rnd in self.rounds], "best_id": self.best_id,
                "stopped": self.stopped, "timings": self.timings, "notes": self.notes, "settings": self.settings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvolveResult":
        return cls(original=data["original"],
                   baseline=Candidate.from_dict(data["baseline"]) if data.get("baseline") else None,
                   rounds=[[Candidate.from_dict(c) for c in rnd] for rnd in data.get("rounds", [])],
                   best_id=data.get("best_id"), stopped=data.get("stopped", ""), timings=data.get("timings", []),
                   notes=data.get("notes", []), settings=data.get("settings", {}))


Propose = Callable[[str, list[Candidate], int, int, int], Sequence[Proposal]]  # (original, top-k, n, round, seed)
Render = Callable[[Sequence[str], Callable[[int, int, int], None]], Sequence[Any]]  # -> VideoResult-like
Score = Callable[[str, Sequence[str], Sequence[Any]], Sequence[Any]]  # -> ImageScores per video


def _rank_key(c: Candidate) -> tuple:
    return (c.safe, c.total if c.total is not None else float("-inf"))


def top_k(candidates: Sequence[Candidate], k: int) -> list[Candidate]:
    """The best `k` by weighted total; candidates flagged unsafe rank below every safe one."""
    return sorted(candidates, key=_rank_key, reverse=True)[:k]


def _candidate(cid: str, rnd: int, index: int, prompt: str, video: Any, scores: Any, rewriter: dict) -> Candidate:
    data = scores.to_dict()
    prov = getattr(video, "provenance", None)
    return Candidate(id=cid, round=rnd, index=index, prompt=prompt, scores=data, total=total_value(data),
                     safe=is_safe(data), rewriter=rewriter,
                     video=prov.to_dict() if isinstance(prov, Provenance) else {},
                     frames=getattr(video, "frames", None))


def evolve_prompts(original: str, propose: Propose, render: Render, score: Score,
                   settings: EvolveSettings | None = None, job: Job | None = None,
                   safety: Any = None) -> EvolveResult:
    """Run the evolution; returns the finished rounds (also when cancelled or the rewriter times out).
    `safety` (texts -> SafetyVerdicts, workbench.safety.checker) refuses an unsafe idea (ValueError) and drops
    unsafe proposals before they are rendered, shown or exported; the drops are counted in `notes`."""
    settings = (settings or EvolveSettings()).check()
    original = check_prompt(original, "video idea", VIDEO_HINT)
    if safety is not None:
        verdict = safety([original])[0]
        if not verdict.safe:
            raise ValueError(verdict.message("video idea"))
    job = job or Job.none()
    result = EvolveResult(original=original, baseline=None, settings=asdict(settings))
    stale = 0
    best: Candidate | None = None
    for r in range(1, settings.rounds + 1):
        where = f"round {r} of {settings.rounds}"
        timing = {"round": r, "rewrite": 0.0, "render": 0.0, "score": 0.0}
        try:
            job.update("rewrite", 0, settings.max_new_tokens, f"{where} · {settings.population} candidate(s)",
                       partial=result)
            started = time.perf_counter()
            history = top_k(result.candidates(), settings.top_k)

            def on_tokens(done: int, total: int) -> None:  # inside the rewriter's generate (may raise Cancelled)
                job.update("rewrite", done, total, f"{where} · {settings.population} candidate(s) · "
                                                   f"token {done}/{total}", partial=result)

            with generation_progress(on_tokens):
                proposals = _propose_with_retry(propose, original, history, settings, r, result)
            if proposals is not None and safety is not None:
                proposals = _screen(proposals, safety, r, result)
            timing["rewrite"] = time.perf_counter() - started
            if proposals is None:
                break
            texts = [p.text for p in proposals]
            with_baseline = result.baseline is None
            batch = ([original] if with_baseline else []) + texts
            labels = (["original"] if with_baseline else []) + [f"candidate {i + 1}/{len(texts)}"
                                                                 for i in range(len(texts))]

            def on_step(index: int, step: int, steps: int) -> None:
                job.update("render", step, steps, f"{where} · {labels[index]} · denoising step {step}/{steps}")

            started = time.perf_counter()
            videos = list(render(batch, on_step))
            timing["render"] = time.perf_counter() - started
            job.update("score", r - 1, settings.rounds, f"{where} · {len(batch)} videos")
            started = time.perf_counter()
            scored = list(score(original, batch, videos))
            timing["score"] = time.perf_counter() - started
        except Cancelled:
            result.stopped = (f"cancelled by the user during round {r}; the {len(result.rounds)} finished round(s) "
                              f"are kept")
            break
        if with_baseline:
            result.baseline = _candidate("original", 0, 0, original, videos[0], scored[0], {"source": "user"})
            videos, scored = videos[1:], scored[1:]
        round_cands = [_candidate(f"r{r}c{i + 1}", r, i, p.text, v, s, p.provenance)
                       for i, (p, v, s) in enumerate(zip(proposals, videos, scored))]
        result.rounds.append(round_cands)
        result.timings.append(timing)
        leader = top_k(round_cands, 1)[0]
        if best is None or _improves(leader, best, settings.min_improvement):
            best, stale = leader, 0
        else:
            stale += 1
        result.best_id = best.id
        if stale >= settings.patience and r < settings.rounds:
            result.stopped = (f"early stop after round {r}: the best total has not improved for {stale} round(s) "
                              f"(patience {settings.patience})")
            break
    if not result.stopped:
        result.stopped = f"finished {len(result.rounds)} round(s)"
    try:
        job.update("done", len(result.rounds), settings.rounds, result.stopped, partial=result)
    except Cancelled:
        pass
    return result


def _screen(proposals: list[Proposal], safety: Any, r: int, result: EvolveResult) -> list[Proposal] | None:
    """The safe proposals, each with its verdict in its provenance; unsafe ones are dropped unseen and counted.
    None (stop) when every proposal was unsafe."""
    from workbench.safety import dropped_note

    verdicts = safety([p.text for p in proposals])
    kept = [Proposal(p.text, {**p.provenance, "safety": {"safe": True, "source": v.source,
                                                         "scores": v.provenance.get("scores", {})}})
            for p, v in zip(proposals, verdicts) if v.safe]
    unsafe = [v for v in verdicts if not v.safe]
    if unsafe:
        result.notes.append(f"round {r}: " + dropped_note(unsafe, len(proposals), "proposals"))
        result.settings["dropped_unsafe"] = result.settings.get("dropped_unsafe", 0) + len(unsafe)
    if kept:
        return kept
    if not result.rounds:
        note = dropped_note(unsafe, len(proposals), "proposals")
        raise ValueError(f"every proposal of round {r} was unsafe and none is shown ({note}); rephrase the idea or "
                         f"try another seed")
    result.stopped = f"every proposal of round {r} was unsafe; stopped with the best so far"
    return None


def _improves(new: Candidate, old: Candidate, margin: float) -> bool:
    """A safe candidate beats an unsafe one; otherwise the total must rise by more than `margin`."""
    if new.safe != old.safe:
        return new.safe
    low = float("-inf")
    return (new.total if new.total is not None else low) > (old.total if old.total is not None else low) + margin


def _propose_with_retry(propose: Propose, original: str, history: list[Candidate], settings: EvolveSettings,
                        r: int, result: EvolveResult) -> list[Proposal] | None:
    """A remote rewriter that times out is asked once more; a second failure stops the run with the best so far
    (None), unless nothing has finished yet, when the error reaches the user."""
    seed = settings.seed + 1009 * (r - 1)
    for attempt in (1, 2):
        try:
            proposals = [p for p in propose(original, history, settings.population, r, seed + attempt - 1)
                         if p.text.strip()]
        except (TimeoutError, ConnectionError) as exc:
            if attempt == 1:
                result.notes.append(f"round {r}: the rewriter failed ({type(exc).__name__}: {exc}); retried once")
                continue
            if not result.rounds:
                raise
            result.stopped = (f"the rewriter failed twice in round {r} ({type(exc).__name__}); stopped with the best "
                              f"of the {len(result.rounds)} finished round(s)")
            return None
        if not proposals:
            if not result.rounds:
                raise RuntimeError("the rewriter produced no usable prompt; try another seed or temperature")
            result.stopped = f"the rewriter produced no new prompt in round {r}; stopped with the best so far"
            return None
        return proposals
    return None
