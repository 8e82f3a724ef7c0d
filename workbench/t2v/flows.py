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

from workbench.forms import input_field
from workbench.jobs import Job
from workbench.models import ManagedModel
from workbench.safety import checker, dropped_note, refuse_unsafe, screen
from workbench.common import diff as wdiff
from workbench.common.inputs import check_count, check_prompt
from workbench.common.scores import RANDOM_NOTE, check_weights, score_markdown
from workbench.common.world_note import profile_world_note, world_note
from workbench.t2v.service import RewriterChoice
from workbench.common.session import RefinementSession, Round
from workbench.common.reward_models import reward_models
from workbench.t2v import service
from workbench.t2v.evolve import VIDEO_HINT, LIMITS, Candidate, EvolveResult, EvolveSettings, evolve_prompts
from workbench.t2v.media import save_gif, save_mp4, save_provenance
from workbench.t2v.pairs import PairFilter, export_pairs
from workbench.t2v.principles import PrincipleSettings, critique, principled_rewrite
from workbench.t2v.rewards import DEFAULT_WEIGHTS, METRICS, SCALE, RewardSettings
from workbench.text import code_span, escape_markdown, preview

MODES = ("Evolve (Prompt-A-Video)", "Principles (VPO)")
REWRITER_LABELS = {
    "profile": "profile rewriter (its default: the trained video rewriter where the profile names one, else the chat "
               "model)",
    "profile:chat": "profile chat model",
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
    kind: str = input_field(REWRITER_LABELS["profile"], "Rewriter", "radio", choices=tuple(REWRITER_LABELS.values()),
                            elem_id="t2v-rewriter")
    base_url: str = input_field("", "Server URL (OpenAI-compatible)", placeholder="http://127.0.0.1:8000/v1")
    model: str = input_field("", "Model name on that server")
    timeout: Any = input_field(60, "Server timeout (s, 1-600)", "number", low=1, high=600)

    def parse(self, profile: Any = None) -> RewriterChoice:
        """The rewriter; "profile rewriter" resolves to the profile's VIDEO rewriter role (`settings.t2v_refine.
        rewriter_role`, e.g. the offline adapter), never to its T2I rewriter (RewriterChoice's own empty role)."""
        kind, _, role = _KIND_BY_LABEL.get(self.kind, self.kind).partition(":")
        if kind == "profile" and not role:
            role = RewriterChoice().default_role(profile)
        return RewriterChoice(kind=kind, role=role or "chat", base_url=self.base_url or "", model=self.model or "",
                              timeout=float(self.timeout or 60)).check()


@dataclass
class EvolveInputs:
    """The Evolve panel as the widgets hold it (checked by `parse`)."""

    rounds: Any = input_field(3, "Rounds (1-12)", "slider", low=1, high=12, step=1, whole=True, elem_id="t2v-rounds")
    # 0 = the profile's default (assets/profiles.yaml, t2v option `evolve`), else 3
    population: Any = input_field(0, "Population per round (1-8; 0 = profile default)", "number", low=0, high=8,
                                  whole=True)
    top_k: Any = input_field(3, "Top-k history shown to the rewriter", "slider", low=1, high=16, step=1, whole=True)
    patience: Any = input_field(1, "Stop after this many rounds without a better best", "slider", low=1, high=12,
                                step=1, whole=True)
    seed: Any = input_field(0, "Rewriter seed", "number", low=0, high=2**31 - 1, whole=True)
    temperature: Any = input_field(0.9, "Temperature", "slider", low=0.05, high=2.0, step=0.05)
    max_new_tokens: Any = input_field(0, "Max new tokens per rewrite (8-1024; 0 = profile default)", "number", low=0,
                                      high=1024, whole=True)  # 0 = the profile's default, else 96
    weights: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))  # widgets: forms.RewardWeights

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

    width: Any = input_field(None, "Width (32-1024, multiple of 8; empty = profile default)", "number", low=0,
                             high=1024, whole=True)
    height: Any = input_field(None, "Height (32-1024, multiple of 8)", "number", low=0, high=1024, whole=True)
    frames: Any = input_field(None, "Frames (2-129)", "number", low=0, high=129, whole=True)
    steps: Any = input_field(None, "Steps (1-100)", "number", low=0, high=100, whole=True)
    seed: Any = input_field(0, "Video seed (the same for every video)", "number", low=0, high=2**31 - 1, whole=True)

    def parse(self, spec: Any, kind: str = "preview"):
        d = service.render_defaults(spec, kind)
        pick = lambda v, k: d[k] if v in (None, "", 0) else v  # noqa: E731
        return service.video_settings(pick(self.width, "width"), pick(self.height, "height"),
                                      pick(self.frames, "num_frames"), pick(self.steps, "steps"),
                                      self.seed if self.seed not in (None, "") else 0, fps=d["fps"],
                                      guidance=d["guidance"])


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
        if view.mode == MODES[0]:  # the evolution's summary belongs under an Evolve result, not a Principles one
            view.status = (status + "\n\n" if status else "") + evolve_summary(result)
            if state.get("world_note"):  # the miniature world's note (workbench.common.world_note), Markdown
                view.status += "\n\n" + state["world_note"]
    if state.get("principles"):
        view.principles = principles_markdown(state["principles"])
        view.principles_prompt = accepted_rewrite(state["principles"])
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
                              f"`provenance` holds the scores that put it there)." +
                              (f" The safety check ({exported.get('safety')}) dropped "
                               f"**{exported['dropped_unsafe_rows']}** row(s) holding an unsafe prompt."
                               if exported.get("dropped_unsafe_rows") else ""))
        if exported.get("reasons"):
            view.export_status += "\n\n" + "\n".join(f"- {escape_markdown(r)}" for r in exported["reasons"])
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
    lines = [f"**VPO rewrite** by {code_span(data.get('rewriter', ''))}: {escape_markdown(data['reason'])}"]
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
    """Run the evolution; a cancel or a failing remote rewriter returns the finished rounds. An unsafe idea is
    refused (ValueError); unsafe proposals are dropped before they are rendered or shown, and counted."""
    prompt = check_prompt(prompt, "video idea", VIDEO_HINT)
    refuse_unsafe(ctx, prompt, profile_name, "video idea")
    safety = checker(ctx, profile_name)
    t2v, scorer = service.models(ctx, profile_name)
    settings, weights = evolve_inputs.parse(t2v.spec)
    rewriter = rewriter_inputs.parse(ctx.profile(profile_name))
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
                            service.scorer_fn(scorer, weights, RewardSettings(), safety=safety,
                                              rewards=reward_models(ctx, profile_name)), settings, job,
                            safety=safety)
    if propose.unsafe:  # dropped inside the rewriter, before MMR chose the proposals
        result.notes.append(propose.note())
    _save_previews(result, run_dir, video.fps, saved)
    state["evolve"] = result.to_dict()
    state["selected"] = result.best_id
    state["chosen"] = result.best.prompt if result.best else ""
    state["world_note"] = _world_note(ctx, profile_name, prompt, f"best ({result.best.id})" if result.best else "",
                                      state["chosen"])
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
    from workbench.user_paths import confined_folder

    typed = str(folder or "").strip()
    if not typed:
        raise ValueError(f"give a T2V run folder; the folder is shown in the status line of every run, under {RUNS_ROOT}")
    path = confined_folder(typed, "T2V run folder", roots=[RUNS_ROOT]) / "state.json"
    if not path.is_file():
        raise ValueError(f"'{preview(typed)}' is not a T2V run folder (it has no state.json); the folder is shown in "
                         f"the status line of every run, under {RUNS_ROOT}")
    data = json.loads(path.read_text(encoding="utf-8"))
    data, note = _screen_reopened(ctx, profile_name, data)
    status = f"Reopened {escape_markdown(path.parent)}." + (f" {escape_markdown(note)}." if note else "")
    return data, build_view(data, status=status)


def _world_note(ctx: Any, profile_name: str | None, idea: str, label: str, chosen: str) -> str:
    """The world note (workbench.common.world_note) for the idea and the chosen prompt, when there is one; "" unless
    the profile's t2v role is a world model. Kept in the state because build_view has no context to make it."""
    return profile_world_note(ctx, profile_name, [("your idea", idea)] + ([(label, chosen)] if chosen else []),
                              role="t2v")


def _screen_reopened(ctx: Any, profile_name: str | None, data: dict) -> tuple[dict, str]:
    """A saved run (perhaps from before the safety check, or judged by an older rule) passes today's check before it
    is shown: an unsafe idea is refused; unsafe candidates and principles rewrites are dropped unseen (the GIFs stay
    on disk, unlinked), and the best/selected candidate moves to the best safe one. Returns (state, note)."""
    if data.get("original"):
        refuse_unsafe(ctx, str(data["original"]), profile_name, "video idea")
    data = dict(data)
    evolve_data, dropped, total = data.get("evolve"), [], 0
    if evolve_data and evolve_data.get("rounds"):
        result = EvolveResult.from_dict(evolve_data)
        cands = result.candidates()
        screened = screen(ctx, [c.prompt for c in cands], profile_name)
        bad = {cands[i].id for i in screened.dropped}
        dropped += list(screened.dropped.values())
        total += len(cands)
        if bad:
            result.rounds = [[c for c in rnd if c.id not in bad] for rnd in result.rounds]
            if result.best_id in bad:
                safe = [c for c in result.candidates() if c.total is not None]
                result.best_id = max(safe, key=lambda c: c.total).id if safe else None
            result.notes.append(dropped_note(list(screened.dropped.values()), len(cands), "saved candidates") +
                                " on reopening")
            data["evolve"] = result.to_dict()
            if data.get("selected") in bad or data.get("selected") is None:
                data["selected"] = result.best_id
            chosen = result.find(data["selected"]).prompt if data.get("selected") else ""
            data["chosen"] = chosen
    principles_data = data.get("principles")
    if principles_data:
        principles_data = dict(principles_data)
        attempts = [dict(a) for a in principles_data.get("attempts", [])]
        texts = [a.get("rewrite", "") for a in attempts] + [principles_data.get("final") or ""]
        where = [i for i, t in enumerate(texts) if t]  # empty ones (refusals, dropped ones) need no check
        screened = screen(ctx, [texts[i] for i in where], profile_name)
        bad = {where[j] for j in screened.dropped}
        for i in bad:
            if i < len(attempts):
                attempts[i].update(rewrite="", accepted=False, checks=[], dropped_unsafe=True,
                                   text="dropped by the safety check on reopening")
        if len(texts) - 1 in bad:
            principles_data.update(final="", accepted=False,
                                   reason="the saved rewrite is unsafe by today's safety check and is not shown")
        principles_data["attempts"] = attempts
        data["principles"] = principles_data
        dropped += list(screened.dropped.values())
        total += len(where)
    # the world note is made afresh from the screened texts (never a saved file's Markdown)
    data["world_note"] = _world_note(ctx, profile_name, str(data.get("original") or ""), "chosen",
                                     str(data.get("chosen") or ""))
    return data, dropped_note(dropped, total, "saved rewrites") if dropped else ""


def _chat(ctx: Any, profile_name: str | None, rewriter: RewriterChoice) -> ManagedModel:
    spec = rewriter.spec(ctx.profile(profile_name))
    if spec is None:
        raise ValueError("choose a model rewriter (the profile model or a server)")
    return ManagedModel(ctx.manager, spec)


def principles(ctx: Any, profile_name: str | None, state: dict | None, prompt: Any, rewriter_inputs: RewriterInputs,
               min_similarity: Any = 0.5, min_details: Any = 2, max_refinements: Any = 2, seed: Any = 0,
               job: Job | None = None) -> tuple[dict, T2VView]:
    """VPO mode: refuse unsafe ideas; rewrite with the principles template; critique; refine rejected rewrites.
    An unsafe idea is refused (ValueError naming the category and the words); unsafe rewrites are dropped unseen."""
    prompt = check_prompt(prompt, "video idea", VIDEO_HINT)
    refuse_unsafe(ctx, prompt, profile_name, "video idea")
    settings = PrincipleSettings(min_similarity=float(min_similarity),
                                 min_details=_whole(min_details, "min_details", 0, 4),
                                 max_refinements=_whole(max_refinements, "max_refinements", 0, 5),
                                 seed=_whole(seed, "seed", 0, 2**31 - 1)).check()
    profile = ctx.profile(profile_name)
    chat = _chat(ctx, profile_name, rewriter_inputs.parse(profile))
    embedder = ManagedModel(ctx.manager, profile.spec("embeddings"))
    settings.use_judge = service.use_judge(profile)
    result = principled_rewrite(chat, embedder, prompt, settings, judge=chat, job=job,
                                safety=checker(ctx, profile_name))
    state = dict(state or {})
    # only an ACCEPTED rewrite goes into the chosen-prompt box; a rejected best is shown with its critique only
    state.update(mode=MODES[1], original=prompt, principles=result.to_dict(), critique=None,
                 chosen=(result.final if result.accepted else "") or state.get("chosen") or "")
    if state.get("evolve") and state["evolve"]["original"] != prompt:
        state["evolve"] = None  # an evolution of another idea would be compared with the wrong original
    _run_dir(state)
    _save_state(state)
    status = ("🛑 Refused: the request is unsafe." if result.refused else
              "✅ A rewrite passed all three principles; it is in the chosen-prompt box." if result.accepted else
              "❌ No rewrite passed all three principles; the best one and its critique are shown below, and the "
              "chosen-prompt box keeps " + ("its earlier prompt." if state.get("chosen") else "nothing: edit the "
                                            "rewrite there yourself, or try another seed.") if result.final
              else "❌ No rewrite to show.")
    if result.dropped_unsafe:
        status += (f" The safety check dropped {result.dropped_unsafe} unsafe rewrite(s) of {len(result.attempts)} "
                   f"unseen ({result.safety}).")
    return state, build_view(state, status=status)


def check_candidate(ctx: Any, profile_name: str | None, state: dict | None, text: Any,
                    rewriter_inputs: RewriterInputs) -> tuple[dict, T2VView]:
    """Run the three principles on a prompt (e.g. the evolution's best) against the user's ORIGINAL idea."""
    state = dict(state or {})
    original = state.get("original")
    if not original:
        raise ValueError("run Evolve or Principles first: the check compares a prompt with your original idea")
    text = check_prompt(text, "prompt to check", VIDEO_HINT)
    refuse_unsafe(ctx, text, profile_name, "prompt")
    profile = ctx.profile(profile_name)
    chat = _chat(ctx, profile_name, rewriter_inputs.parse(profile))
    embedder = ManagedModel(ctx.manager, profile.spec("embeddings"))
    state["critique"] = critique(original, text, embedder, PrincipleSettings(use_judge=service.use_judge(profile)),
                                 judge=chat, safety=checker(ctx, profile_name)).to_dict()
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
    refuse_unsafe(ctx, original, profile_name, "video idea")
    chosen_verdict = refuse_unsafe(ctx, chosen, profile_name, "chosen prompt")
    safety = checker(ctx, profile_name)
    t2v, scorer = service.models(ctx, profile_name)
    video = video_inputs.parse(t2v.spec, "final")
    job = job or Job.none()
    labels = ["original prompt", "chosen prompt"]

    def on_step(index: int, step: int, steps: int) -> None:
        job.update("final render", step, steps, f"{labels[index]} · denoising step {step}/{steps}")

    results = t2v.generate([original, chosen], video, on_step=on_step)
    job.update("score", 1, 1, "final videos")
    scores = service.scorer_fn(scorer, state.get("weights"), safety=safety,
                               rewards=reward_models(ctx, profile_name))(original, [original, chosen], results)
    run_dir = _run_dir(state)
    stem = run_dir / "final" / f"seed{video.seed}-{uuid.uuid4().hex[:6]}"
    original_mp4 = save_mp4(results[0].frames, f"{stem}-original.mp4", video.fps)
    chosen_mp4 = save_mp4(results[1].frames, f"{stem}-chosen.mp4", video.fps)
    chosen_gif = save_gif(results[1].frames, f"{stem}-chosen.gif", video.fps)
    prov = save_provenance({"original_prompt": original, "chosen_prompt": chosen, "settings": vars(video),
                            "videos": {"original": results[0].provenance.to_dict(),
                                       "chosen": results[1].provenance.to_dict()},
                            "scores": {"original": scores[0].to_dict(), "chosen": scores[1].to_dict()},
                            "safety": {"chosen": chosen_verdict.to_dict()}},
                           f"{stem}-provenance.json")
    random = results[1].provenance.random_weights
    status = (f"Rendered with seed {video.seed}, {video.num_frames} frames at {video.width}x{video.height}, "
              f"{video.steps} steps. Total: original {_fmt(scores[0].total.value)} → chosen "
              f"{_fmt(scores[1].total.value)} (against your ORIGINAL idea)." +
              (f"\n\n⚠️ {RANDOM_NOTE} (the video model has random weights)." if random else ""))
    note = world_note(t2v.spec, [("original", original), ("chosen", chosen)], "Videos")
    if note:
        status += "\n\n" + note
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
    state["exports"] = export_pairs([result], Path(_run_dir(state)) / "pairs", filt,
                                    safety=checker(ctx, profile_name))
    _save_state(state)
    empty = not (state["exports"]["sft_rows"] or state["exports"]["dpo_rows"])
    return state, build_view(state, status="Nothing exported: see why under Export." if empty else "Pairs exported.")


def accepted_rewrite(principles: dict | None) -> str:
    """The principled rewrite when it passed all three principles ("" when it was rejected or refused)."""
    principles = principles or {}
    return (principles.get("final") or "") if principles.get("accepted") else ""


def selected_prompt(state: dict | None) -> str:
    """The prompt of the open candidate (or the ACCEPTED principled rewrite), for the final-render box."""
    result = _result(state)
    if result is not None and (state or {}).get("selected"):
        return result.find(state["selected"]).prompt
    return accepted_rewrite((state or {}).get("principles"))
