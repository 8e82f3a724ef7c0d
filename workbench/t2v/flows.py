"""The T2V tab's flows, written once for both front ends.

State is a plain dict (JSON-able): the mode, the user's idea, the last evolution (EvolveResult.to_dict()), the
last principles run, the last critique, the final render and the exported pairs, plus the run folder where
previews, videos and a `state.json` after every finished round are written (a page closed mid-run can be
reopened from that folder). Every flow returns (new state, `T2VView`); pages only lay the view out.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.jobs import Job
from workbench.models import ManagedModel
from workbench.t2i import diff as wdiff
from workbench.t2i.inputs import check_count, check_prompt
from workbench.t2i.scoring import RANDOM_NOTE, check_weights, score_markdown
from workbench.t2i.service import RewriterChoice, reward_models
from workbench.t2i.session import RefinementSession, Round
from workbench.t2v import service
from workbench.t2v.evolve import VIDEO_HINT, LIMITS, Candidate, EvolveResult, EvolveSettings, evolve_prompts
from workbench.t2v.media import save_gif, save_mp4, save_provenance
from workbench.t2v.pairs import PairFilter, export_pairs
from workbench.t2v.principles import PrincipleSettings, critique, principled_rewrite
from workbench.t2v.rewards import DEFAULT_WEIGHTS, METRICS, SCALE, RewardSettings
from workbench.text import escape_markdown

MODES = ("Evolve (Prompt-A-Video)", "Principles (VPO)")
REWRITER_LABELS = {
    "profile": "profile chat model",
    "profile:t2v_rewriter": "profile T2V rewriter role (VPO in the paper profile)",
    "openai": "OpenAI-compatible server",
}
_KIND_BY_LABEL = {v: k for k, v in REWRITER_LABELS.items()}
RUNS_ROOT = Path(tempfile.gettempdir()) / "workbench-t2v"


# --------------------------------------------------------------------------- inputs


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_count(value, name, low, high)


@dataclass
class RewriterInputs:
    kind: str = REWRITER_LABELS["profile"]
    base_url: str = ""
    model: str = ""
    timeout: Any = 60

    def parse(self) -> RewriterChoice:
        kind, _, role = _KIND_BY_LABEL.get(self.kind, self.kind).partition(":")
        return RewriterChoice(kind=kind, role=role or "chat", base_url=self.base_url or "", model=self.model or "",
                              timeout=float(self.timeout or 60)).check()


@dataclass
class EvolveInputs:
    """The Evolve panel as the widgets hold it (checked by `parse`)."""

    rounds: Any = 3
    population: Any = 0  # 0 = the profile's default (assets/profiles.yaml, t2v option `evolve`), else 3
    top_k: Any = 3
    patience: Any = 1
    seed: Any = 0
    temperature: Any = 0.9
    weights: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    max_new_tokens: Any = 0  # 0 = the profile's default, else 96

    def parse(self, spec: Any = None) -> tuple[EvolveSettings, dict[str, float]]:
        base = EvolveSettings()
        defaults = {"population": base.population, "max_new_tokens": base.max_new_tokens,
                    **(service.evolve_defaults(spec) if spec is not None else {})}
        values = {name: getattr(self, name) for name in LIMITS}
        if values["population"] in (None, "", 0):
            values["population"] = defaults["population"]
        ints = {name: _whole(value, name, *LIMITS[name]) for name, value in values.items()}
        tokens = defaults["max_new_tokens"] if self.max_new_tokens in (None, "", 0) else self.max_new_tokens
        settings = EvolveSettings(**ints, seed=_whole(self.seed, "rewriter seed", 0, 2**31 - 1),
                                  temperature=float(self.temperature),
                                  max_new_tokens=_whole(tokens, "max new tokens", 8, 1024)).check()
        weights = check_weights({m: float(v) for m, v in (self.weights or {}).items()}, METRICS, DEFAULT_WEIGHTS)
        return settings, weights


@dataclass
class VideoInputs:
    """Render size, frames, steps and seed; None fields take the profile's defaults (assets/profiles.yaml)."""

    width: Any = None
    height: Any = None
    frames: Any = None
    steps: Any = None
    seed: Any = 0

    def parse(self, spec: Any, kind: str = "preview"):
        d = service.render_defaults(spec, kind)
        pick = lambda v, k: d[k] if v in (None, "", 0) else v  # noqa: E731
        return service.video_settings(pick(self.width, "width"), pick(self.height, "height"),
                                      pick(self.frames, "num_frames"), pick(self.steps, "steps"),
                                      self.seed if self.seed not in (None, "") else 0, fps=d["fps"])


# --------------------------------------------------------------------------- view


@dataclass
class CandidateView:
    id: str = ""
    prompt: str = ""
    diff: list[tuple[str, str | None]] = field(default_factory=list)  # gr.HighlightedText
    diff_markdown: str = ""
    preview: str | None = None  # GIF path
    original_preview: str | None = None
    scores: str = ""  # markdown table with provenance


@dataclass
class T2VView:
    mode: str = MODES[0]
    status: str = ""
    chart: Any = None  # plotly Figure
    choices: list[tuple[str, str]] = field(default_factory=list)  # (label, candidate id)
    selected: str | None = None
    table: list[list[Any]] = field(default_factory=list)
    tree: str = ""
    candidate: CandidateView = field(default_factory=CandidateView)
    principles: str = ""  # critique markdown
    principles_prompt: str = ""  # the accepted (or best) principled rewrite, for the final render box
    chosen: str = ""  # the prompt in the final-render box (the open candidate, the VPO rewrite, or the user's edit)
    final_status: str = ""
    final_original: str | None = None  # MP4 path of the original prompt (same seed)
    final_chosen: str | None = None
    downloads: list[str] = field(default_factory=list)  # MP4, GIF, provenance JSON
    export_status: str = ""
    export_files: list[str] = field(default_factory=list)


def _run_dir(state: dict) -> Path:
    path = Path(state.get("run_dir") or RUNS_ROOT / uuid.uuid4().hex[:12])
    path.mkdir(parents=True, exist_ok=True)
    state["run_dir"] = str(path)
    return path


def _save_state(state: dict) -> None:
    (Path(state["run_dir"]) / "state.json").write_text(json.dumps(state, default=str), encoding="utf-8")


def _result(state: dict | None) -> EvolveResult | None:
    data = (state or {}).get("evolve")
    return EvolveResult.from_dict(data) if data else None


def _label(c: Candidate) -> str:
    total = "n/a" if c.total is None else f"{c.total:.3f}"
    flag = "" if c.safe else " ⚠️ unsafe"
    where = "original prompt" if c.id == "original" else f"round {c.round} #{c.index + 1}"
    return f"{c.id} · {where} · total {total}{flag}"


def chart(result: EvolveResult | None) -> Any:
    """Every metric per round (the round's mean; aesthetic x0.1), the original prompt at round 0, and the best
    total so far."""
    if result is None or not result.rounds:
        return None
    import plotly.graph_objects as go

    fig = go.Figure()
    xs = [0] + [r + 1 for r in range(len(result.rounds))]
    groups = [[result.baseline] if result.baseline else []] + result.rounds
    for metric in METRICS:
        ys = []
        for group in groups:
            vals = [((c.scores.get("scores") or {}).get(metric) or {}).get("value") for c in group]
            vals = [v * SCALE.get(metric, 1.0) for v in vals if v is not None]
            ys.append(sum(vals) / len(vals) if vals else None)
        if all(y is None for y in ys) and metric not in ("aesthetic",):  # a reward model this profile lacks
            continue
        name = metric + (f" (x{SCALE[metric]:g})" if metric in SCALE else "")
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name))
    best, best_line = float("-inf"), []
    for group in groups:
        totals = [c.total for c in group if c.total is not None and c.safe]
        best = max([best, *totals]) if totals else best
        best_line.append(best if best != float("-inf") else None)
    fig.add_trace(go.Scatter(x=xs, y=best_line, mode="lines+markers", name="best total so far",
                             line={"width": 4, "dash": "dash"}))
    fig.update_xaxes(dtick=1)
    fig.update_layout(xaxis_title="round (0 = your original prompt)", yaxis_title="score (round mean)",
                      height=360, margin={"l": 40, "r": 10, "t": 30, "b": 40}, legend={"orientation": "h"})
    return fig


def _tree(result: EvolveResult) -> str:
    """The evolution as the T2I refinement tree: each round refines the best prompt so far."""
    session = RefinementSession(root_prompt=result.original)
    best_prompt, best_total, prev_pick = result.original, float("-inf"), None
    for r, group in enumerate(result.rounds):
        session.rounds.append(Round(r, r - 1 if r else None, prev_pick, best_prompt, [c.prompt for c in group],
                                    picked=None, scores=[c.scores for c in group]))
        leader = max(group, key=lambda c: (c.safe, c.total if c.total is not None else float("-inf")))
        session.rounds[-1].picked = leader.index
        prev_pick = leader.index
        if leader.total is not None and leader.total > best_total:
            best_prompt, best_total = leader.prompt, leader.total
    session.current = len(session.rounds) - 1
    return session.tree_markdown()


def candidate_view(result: EvolveResult, cid: str | None) -> CandidateView:
    if not cid:
        return CandidateView()
    c = result.find(cid)
    pieces = wdiff.word_diff(result.original, c.prompt)
    return CandidateView(id=c.id, prompt=c.prompt, diff=wdiff.highlighted(pieces),
                         diff_markdown=wdiff.to_markdown(pieces),
                         preview=c.preview or None,
                         original_preview=(result.baseline.preview or None) if result.baseline else None,
                         scores=score_markdown(c.scores))


def build_view(state: dict | None, status: str = "") -> T2VView:
    state = state or {}
    view = T2VView(mode=state.get("mode", MODES[0]), status=status, chosen=state.get("chosen") or "")
    result = _result(state)
    if result is not None:
        pool = ([result.baseline] if result.baseline else []) + result.candidates()
        view.choices = [(_label(c), c.id) for c in pool]
        view.selected = state.get("selected") or result.best_id
        view.table = [[c.id, c.round, "n/a" if c.total is None else round(c.total, 4), "yes" if c.safe else "NO",
                       c.prompt] for c in pool]
        view.chart = chart(result)
        view.tree = _tree(result)
        view.candidate = candidate_view(result, view.selected)
        view.status = (status + "\n\n" if status else "") + evolve_summary(result)
    if state.get("principles"):
        view.principles = principles_markdown(state["principles"])
        view.principles_prompt = state["principles"].get("final") or ""
    if state.get("critique"):
        view.principles = critique_markdown(state["critique"]) + ("\n\n" + view.principles if view.principles else "")
    final = state.get("final")
    if final:
        view.final_original, view.final_chosen = final["original_mp4"], final["chosen_mp4"]
        view.downloads = [final["chosen_mp4"], final["chosen_gif"], final["provenance"]]
        view.final_status = final["status"]
    exported = state.get("exports")
    if exported:
        view.export_files = [exported["sft"], exported["dpo"]]
        view.export_status = (f"Exported **{exported['sft_rows']}** SFT row(s) and **{exported['dpo_rows']}** DPO "
                              f"pair(s) (TRL's prompt/completion and prompt/chosen/rejected formats; each row's "
                              f"`provenance` holds the scores that put it there).")
    return view


def evolve_summary(result: EvolveResult) -> str:
    best = result.best
    lines = [f"**Stopped:** {escape_markdown(result.stopped)}"]
    if best is not None:
        base = result.baseline.total if result.baseline else None
        gain = f" (original prompt: {base:.3f})" if base is not None and best.total is not None else ""
        total = "n/a" if best.total is None else f"{best.total:.3f}"
        lines.append(f"**Best:** {best.id}, total {total}{gain}: “{escape_markdown(best.prompt)}”")
    for t in result.timings:
        lines.append(f"- round {t['round']}: rewrite {t['rewrite']:.2f} s · render {t['render']:.2f} s · "
                     f"score {t['score']:.2f} s")
    lines += [f"- note: {escape_markdown(n)}" for n in result.notes]
    random = any(s.get("random_weights") for c in result.candidates() for s in (c.scores.get("scores") or {}).values())
    if random:
        lines.append(f"⚠️ videos or scores come from models with {RANDOM_NOTE}.")
    return "\n".join(lines)


def critique_markdown(data: dict) -> str:
    lines = [f"**Principles check** of “{escape_markdown(data['rewrite'])}” against your idea "
             f"“{escape_markdown(data['original'])}”: **{'accepted' if data['accepted'] else 'rejected'}**", "",
             "| principle | verdict | reason |", "|---|---|---|"]
    for c in data.get("checks", []):
        lines.append(f"| {c['name']} | {'✅' if c['passed'] else '❌'} | {escape_markdown(c['reason'])} |")
    return "\n".join(lines)


def principles_markdown(data: dict) -> str:
    if data.get("refused"):
        return f"🛑 **{escape_markdown(data['reason'])}**"
    lines = [f"**VPO rewrite** by `{escape_markdown(data.get('rewriter', ''))}`: {escape_markdown(data['reason'])}"]
    for i, a in enumerate(data.get("attempts", []), 1):
        verdict = "accepted" if a.get("accepted") else "rejected"
        lines += ["", f"**Attempt {i}** ({verdict}): “{escape_markdown(a.get('rewrite', ''))}”"]
        lines += [f"- {c['name']}: {'✅' if c['passed'] else '❌'} {escape_markdown(c['reason'])}"
                  for c in a.get("checks", [])]
    return "\n".join(lines)


# --------------------------------------------------------------------------- flows


def set_mode(ctx: Any, profile_name: str | None, state: dict | None, mode: str) -> tuple[dict, T2VView]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    state = dict(state or {})
    state["mode"] = mode
    return state, build_view(state)


def evolve(ctx: Any, profile_name: str | None, state: dict | None, prompt: Any, evolve_inputs: EvolveInputs,
           video_inputs: VideoInputs, rewriter_inputs: RewriterInputs, job: Job | None = None) -> tuple[dict, T2VView]:
    """Run the evolution; a cancel or a failing remote rewriter returns the finished rounds."""
    prompt = check_prompt(prompt, "video idea", VIDEO_HINT)
    t2v, scorer = service.models(ctx, profile_name)
    settings, weights = evolve_inputs.parse(t2v.spec)
    rewriter = rewriter_inputs.parse()
    video = video_inputs.parse(t2v.spec, "preview")
    propose = service.proposer(ctx, profile_name, rewriter, settings)
    state = {"mode": MODES[0], "original": prompt, "run_dir": str(RUNS_ROOT / uuid.uuid4().hex[:12]),
             "video": vars(video), "weights": weights}
    run_dir = _run_dir(state)
    job = job or Job.none()
    saved: set[str] = set()
    rounds_saved = [0]

    def keep(update: Any) -> None:  # after each finished round: previews and state.json on disk
        partial = job.partial
        if isinstance(partial, EvolveResult) and len(partial.rounds) > rounds_saved[0]:
            rounds_saved[0] = len(partial.rounds)
            _save_previews(partial, run_dir, video.fps, saved)
            _save_state({**state, "evolve": partial.to_dict(), "selected": partial.best_id})

    job.listen(keep)
    result = evolve_prompts(prompt, propose, service.renderer(t2v, video),
                            service.scorer_fn(scorer, weights, RewardSettings(),
                                              rewards=reward_models(ctx, profile_name)), settings, job)
    _save_previews(result, run_dir, video.fps, saved)
    state["evolve"] = result.to_dict()
    state["selected"] = result.best_id
    state["chosen"] = result.best.prompt if result.best else ""
    _save_state(state)
    return state, build_view(state)


def _save_previews(result: EvolveResult, run_dir: Path, fps: int, saved: set[str]) -> None:
    for c in ([result.baseline] if result.baseline else []) + result.candidates():
        if c.frames and c.id not in saved:
            c.preview = str(save_gif(c.frames, run_dir / "previews" / f"{c.id}.gif", fps, scale_to=192))
            saved.add(c.id)
        elif c.id in saved and not c.preview:
            c.preview = str(run_dir / "previews" / f"{c.id}.gif")


def open_candidate(ctx: Any, profile_name: str | None, state: dict | None, cid: Any) -> tuple[dict, T2VView]:
    result = _result(state)
    if result is None:
        raise ValueError("nothing to open yet: run Evolve first")
    result.find(str(cid))  # raises with the list of ids
    state = dict(state)
    state["selected"] = str(cid)
    state["chosen"] = result.find(str(cid)).prompt
    return state, build_view(state)


def reopen(ctx: Any, profile_name: str | None, state: dict | None, folder: Any) -> tuple[dict, T2VView]:
    """A run folder's state.json (written after every finished round), e.g. after the page was closed mid-run."""
    path = Path(str(folder or "").strip()).expanduser() / "state.json"
    if not str(folder or "").strip() or not path.is_file():
        raise ValueError(f"'{folder}' is not a T2V run folder (it has no state.json); the folder is shown in the "
                         f"status line of every run, under {RUNS_ROOT}")
    data = json.loads(path.read_text(encoding="utf-8"))
    return data, build_view(data, status=f"Reopened {escape_markdown(path.parent)}.")


def _chat(ctx: Any, profile_name: str | None, rewriter: RewriterChoice) -> ManagedModel:
    spec = rewriter.spec(ctx.profile(profile_name))
    if spec is None:
        raise ValueError("choose a model rewriter (the profile model or a server)")
    return ManagedModel(ctx.manager, spec)


def principles(ctx: Any, profile_name: str | None, state: dict | None, prompt: Any, rewriter_inputs: RewriterInputs,
               min_similarity: Any = 0.5, min_details: Any = 2, max_refinements: Any = 2, seed: Any = 0,
               job: Job | None = None) -> tuple[dict, T2VView]:
    """VPO mode: refuse unsafe ideas; rewrite with the principles template; critique; refine rejected rewrites."""
    prompt = check_prompt(prompt, "video idea", VIDEO_HINT)
    settings = PrincipleSettings(min_similarity=float(min_similarity),
                                 min_details=_whole(min_details, "min_details", 0, 4),
                                 max_refinements=_whole(max_refinements, "max_refinements", 0, 5),
                                 seed=_whole(seed, "seed", 0, 2**31 - 1)).check()
    chat = _chat(ctx, profile_name, rewriter_inputs.parse())
    embedder = ManagedModel(ctx.manager, ctx.profile(profile_name).spec("embeddings"))
    result = principled_rewrite(chat, embedder, prompt, settings, judge=chat, job=job)
    state = dict(state or {})
    state.update(mode=MODES[1], original=prompt, principles=result.to_dict(), critique=None,
                 chosen=result.final or state.get("chosen") or "")
    if state.get("evolve") and state["evolve"]["original"] != prompt:
        state["evolve"] = None  # an evolution of another idea would be compared with the wrong original
    _run_dir(state)
    _save_state(state)
    status = ("🛑 Refused: the request is unsafe." if result.refused else
              "✅ A rewrite passed all three principles." if result.accepted else
              "❌ No rewrite passed all three principles; the best one and its critique are shown.")
    return state, build_view(state, status=status)


def check_candidate(ctx: Any, profile_name: str | None, state: dict | None, text: Any,
                    rewriter_inputs: RewriterInputs) -> tuple[dict, T2VView]:
    """Run the three principles on a prompt (e.g. the evolution's best) against the user's ORIGINAL idea."""
    state = dict(state or {})
    original = state.get("original")
    if not original:
        raise ValueError("run Evolve or Principles first: the check compares a prompt with your original idea")
    text = check_prompt(text, "prompt to check", VIDEO_HINT)
    chat = _chat(ctx, profile_name, rewriter_inputs.parse())
    embedder = ManagedModel(ctx.manager, ctx.profile(profile_name).spec("embeddings"))
    state["critique"] = critique(original, text, embedder, PrincipleSettings(), judge=chat).to_dict()
    state["chosen"] = text
    return state, build_view(state, status="Principles check done: see the critique below.")


def render_final(ctx: Any, profile_name: str | None, state: dict | None, text: Any, video_inputs: VideoInputs,
                 job: Job | None = None) -> tuple[dict, T2VView]:
    """The chosen prompt and the original idea rendered with the same seed; MP4 + GIF + provenance JSON."""
    state = dict(state or {})
    original = state.get("original")
    if not original:
        raise ValueError("run Evolve or Principles first: the final render shows your original idea beside the choice")
    chosen = check_prompt(text, "chosen prompt", VIDEO_HINT)
    t2v, scorer = service.models(ctx, profile_name)
    video = video_inputs.parse(t2v.spec, "final")
    job = job or Job.none()
    labels = ["original prompt", "chosen prompt"]

    def on_step(index: int, step: int, steps: int) -> None:
        job.update("final render", step, steps, f"{labels[index]} · denoising step {step}/{steps}")

    results = t2v.generate([original, chosen], video, on_step=on_step)
    job.update("score", 1, 1, "final videos")
    scores = service.scorer_fn(scorer, state.get("weights"), rewards=reward_models(ctx, profile_name))(
        original, [original, chosen], results)
    run_dir = _run_dir(state)
    stem = run_dir / "final" / f"seed{video.seed}-{uuid.uuid4().hex[:6]}"
    original_mp4 = save_mp4(results[0].frames, f"{stem}-original.mp4", video.fps)
    chosen_mp4 = save_mp4(results[1].frames, f"{stem}-chosen.mp4", video.fps)
    chosen_gif = save_gif(results[1].frames, f"{stem}-chosen.gif", video.fps)
    prov = save_provenance({"original_prompt": original, "chosen_prompt": chosen, "settings": vars(video),
                            "videos": {"original": results[0].provenance.to_dict(),
                                       "chosen": results[1].provenance.to_dict()},
                            "scores": {"original": scores[0].to_dict(), "chosen": scores[1].to_dict()}},
                           f"{stem}-provenance.json")
    random = results[1].provenance.random_weights
    status = (f"Rendered with seed {video.seed}, {video.num_frames} frames at {video.width}x{video.height}, "
              f"{video.steps} steps. Total: original {_fmt(scores[0].total.value)} → chosen "
              f"{_fmt(scores[1].total.value)} (against your ORIGINAL idea)." +
              (f"\n\n⚠️ {RANDOM_NOTE} (the video model has random weights)." if random else ""))
    state["final"] = {"original_mp4": str(original_mp4), "chosen_mp4": str(chosen_mp4), "chosen_gif": str(chosen_gif),
                      "provenance": str(prov), "status": status, "chosen": chosen}
    state["chosen"] = chosen
    _save_state(state)
    return state, build_view(state, status="Final render done.")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def parse_thresholds(text: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in str(text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"thresholds take metric=value pairs separated by commas (e.g. align_original=0.2), "
                             f"got {part.strip()!r}") from None
    return out


def export(ctx: Any, profile_name: str | None, state: dict | None, thresholds: Any,
           min_margin: Any) -> tuple[dict, T2VView]:
    result = _result(state)
    if result is None:
        raise ValueError("nothing to export yet: run Evolve first")
    filt = PairFilter(thresholds=parse_thresholds(thresholds), min_margin=float(min_margin)).check()
    state = dict(state)
    state["exports"] = export_pairs([result], Path(_run_dir(state)) / "pairs", filt)
    _save_state(state)
    return state, build_view(state, status="Pairs exported.")


def selected_prompt(state: dict | None) -> str:
    """The prompt of the open candidate (or the principled rewrite), for the final-render box."""
    result = _result(state)
    if result is not None and (state or {}).get("selected"):
        return result.find(state["selected"]).prompt
    return ((state or {}).get("principles") or {}).get("final") or ""
