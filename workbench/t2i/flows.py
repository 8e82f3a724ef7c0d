"""The T2I refinement tab's flows, written once for both front ends.

Each flow takes the user's session state (the refinement tree as a plain dict, None before the first
Refine) and the tab's raw inputs, and returns the new state plus a view model (`T2IView`, `SlotView`) that
the Gradio and Streamlit pages only lay out. Raw inputs are checked here, so both front ends give the
same messages for the same mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from workbench.common import diff as wdiff
from workbench.common import facets as wfacets
from workbench.common.inputs import MAX_CANDIDATES
from workbench.t2i.forms import (  # noqa: F401  (re-exported)
    REWRITER_LABELS, HeatmapInputs, RenderInputs, RewriterInputs,
)
from workbench.t2i.scoring import METRICS, RANDOM_NOTE
from workbench.common.session import RefinementSession
from workbench.text import escape_markdown

@dataclass
class SlotView:
    """One candidate as shown for editing: its text, the word diff against the prompt it refines, and the
    token-limit flag (shown once, here)."""

    text: str
    diff: list[tuple[str, str | None]]
    diff_markdown: str
    flag: str
    facet: str = ""  # the facet it was written for ("" when undirected or edited)

    def title(self, index: int) -> str:
        return f"Candidate {index + 1}" + (f" · {self.facet}" if self.facet else "")

    @property
    def caption(self) -> str:
        """The line under the candidate: its facet (when it was written for one), then the token-limit flag."""
        return (f"**Facet: {self.facet}** · " if self.facet else "") + self.flag


@dataclass
class ResultsView:
    """A rendered round at a glance: grid, chart, full table, ZIP download (workbench.t2i.results)."""

    grid: list[tuple[Any, str]]
    chart: Any
    columns: list[str]
    rows: list[list[Any]]
    zip_path: str
    summary: str
    sort_by: str = "candidate order"
    images: list[str] = field(default_factory=list)  # the labels a token heatmap can be asked for (original, #1...)
    image: str | None = None  # the image the heatmap starts on
    words: list[str] = field(default_factory=list)  # that image's words (the heatmap's list)


@dataclass
class T2IView:
    status: str  # the last Refine's summary (or what just happened)
    tree: str  # the refinement tree as Markdown, user text escaped
    rounds: list[tuple[str, int]]
    current_round: int
    picks: list[tuple[str, int]]  # (label, 1-based candidate)
    slots: list[SlotView]
    render_status: str = ""
    results: ResultsView | None = None  # after a render of this round

    @property
    def pick(self) -> int | None:
        return self.picks[0][1] if self.picks else None


def _whole(value: Any, name: str) -> int:
    if value is None or (isinstance(value, float) and value != int(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _session(state: dict | None, action: str, edited: Sequence[str] | None = None) -> RefinementSession:
    if not state:
        raise ValueError(f"{action}: press Refine first")
    session = RefinementSession.from_dict(state)
    if edited is not None:
        session.set_candidates(list(edited))
    return session


def refine_summary(result: Any) -> str:
    how = "as a set (relevance and diversity scored together)" if result.settings.get("selection") == "set" \
        else "by MMR"
    lines = [f"**{len(result.candidates)} candidate(s)** chosen {how} from {len(result.pool)} distinct rewrites "
             f"(rewriter `{result.settings.get('rewriter')}`). Text {result.diversity.describe()}."]
    facets = [facet_label({"facet": c.facet}) for c in result.candidates if c.facet]
    if facets:
        further = " (each keeps the picked prompt's start and changes or adds one facet)" if \
            result.settings.get("refine_further") else ""
        lines.append(f"Facets, one per candidate{further}: " + ", ".join(facets) + ".")
    if any(c.provenance.random_weights for c in result.candidates):
        lines.append(f"⚠️ rewriter: **{RANDOM_NOTE}**.")
    lines += [f"⚠️ {escape_markdown(note)}" for note in result.notes]
    if result.examples:
        lines.append("Few-shot examples retrieved by embedding similarity: " + "; ".join(
            f"“{escape_markdown(e['coarse'])}” ({e['similarity']:.2f})" for e in result.examples))
    return "\n\n".join(lines)


def world_status(ctx: Any, profile_name: str, prompt: str, candidates: Sequence[str]) -> str:
    """The miniature world's note under a Refine's summary ("" unless the t2i model is a world model): the words
    of the prompt and of each candidate that the world does not know (workbench.common.world_note)."""
    from workbench.common.world_note import profile_world_note

    note = profile_world_note(ctx, profile_name, [("your prompt", prompt)] + [
        (f"candidate {i + 1}", text) for i, text in enumerate(candidates)])
    return "\n\n" + note if note else ""


def token_flags(ctx: Any, profile_name: str, texts: Sequence[str]) -> list[str]:
    """One flag line per text. Uses only the T2I model's tokenizer (never loads the pipeline)."""
    from workbench.t2i import service

    if not texts:
        return []
    try:
        return [f.message() for f in service.check_token_limits(ctx, profile_name, list(texts))]
    except (ValueError, RuntimeError) as exc:
        return [f"token limit not checked: {exc}"] * len(texts)


def facet_label(info: dict | None) -> str:
    name = (info or {}).get("facet")
    facets = wfacets.load_facets()
    return facets[name].label if name in facets else ""


def slot_view(session: RefinementSession, text: str, flag: str, facet: str = "") -> SlotView:
    pieces = wdiff.word_diff(session.round().prompt, text)
    return SlotView(text=text, diff=wdiff.highlighted(pieces), diff_markdown=wdiff.to_markdown(pieces), flag=flag,
                    facet=facet)


def session_view(ctx: Any, profile_name: str, session: RefinementSession, status: str,
                 render_status: str = "") -> T2IView:
    rnd = session.round()
    flags = token_flags(ctx, profile_name, rnd.candidates)
    info = list(rnd.candidate_info) + [{}] * (len(rnd.candidates) - len(rnd.candidate_info))
    slots = [slot_view(session, text, flags[i], facet_label(info[i])) for i, text in enumerate(rnd.candidates)]
    picks = [(f"{i + 1}: {t[:60]}", i + 1) for i, t in enumerate(rnd.candidates)]
    return T2IView(status=status, tree=session.tree_markdown(), rounds=session.round_choices(),
                   current_round=session.current, picks=picks, slots=slots, render_status=render_status)


# --------------------------------------------------------------------------- the user's flows


def refine(ctx: Any, profile_name: str, prompt: str, rewriter_inputs: RewriterInputs) -> tuple[dict, T2IView]:
    """Refine: a new tree whose root round holds the candidates for the user's prompt."""
    from workbench.t2i import service

    rewriter, settings, template = rewriter_inputs.parse()
    result = service.refine(ctx, profile_name, prompt, rewriter, settings, template)
    session = RefinementSession.start(result.prompt, [c.to_dict() for c in result.candidates],
                                      rewriter.describe(ctx.profile(profile_name)))
    return session.to_dict(), session_view(ctx, profile_name, session, refine_summary(result) + world_status(
        ctx, profile_name, result.prompt, [c.text for c in result.candidates]))


def refine_further(ctx: Any, profile_name: str, state: dict | None, pick: Any, edited: Sequence[str],
                   rewriter_inputs: RewriterInputs) -> tuple[dict, T2IView]:
    """Pick a candidate of the current round (as edited) and open a child round refining it."""
    from workbench.t2i import service

    session = _session(state, "nothing to refine further yet", edited)
    if pick in (None, ""):
        raise ValueError("pick a candidate first")
    index = _whole(pick, "pick") - 1
    picked = session.pick(index)
    rewriter, settings, template = rewriter_inputs.parse()
    result = service.refine(ctx, profile_name, picked, rewriter, settings, template, further=True)
    session.refine_further(index, [c.to_dict() for c in result.candidates],
                           rewriter.describe(ctx.profile(profile_name)))
    return session.to_dict(), session_view(ctx, profile_name, session, refine_summary(result) + world_status(
        ctx, profile_name, picked, [c.text for c in result.candidates]))


def go_back(ctx: Any, profile_name: str, state: dict | None, round_id: Any) -> tuple[dict, T2IView]:
    session = _session(state, "there is no history yet")
    session.go_back(_whole(round_id, "round") if round_id not in (None, "") else -1)
    return session.to_dict(), session_view(ctx, profile_name, session,
                                           f"Back at round {session.current}. Render again to see its images.")


def regeneration_seed(base_seed: int, slot: int, round_info: Sequence[dict]) -> int:
    """The seed of one slot's regeneration: differs per slot and per earlier regeneration of the round, and
    depends only on the session (the same clicks give the same candidates in both front ends)."""
    regenerations = sum(int(info.get("regenerations", 0)) for info in round_info)
    return base_seed + 1000 * (slot + 1) + len(round_info) * 7 + regenerations


def regenerate(ctx: Any, profile_name: str, state: dict | None, slot: int, edited: Sequence[str],
               rewriter_inputs: RewriterInputs) -> tuple[dict, SlotView, str]:
    """A new candidate for one slot, different from the others (which stay as edited)."""
    from workbench.t2i import service

    session = _session(state, "nothing to regenerate yet", edited)
    rnd = session.round()
    if not 0 <= slot < len(rnd.candidates):
        raise ValueError(f"candidate {slot + 1} is not shown; this round has {len(rnd.candidates)}")
    rewriter, settings, template = rewriter_inputs.parse()
    settings.seed = regeneration_seed(settings.seed, slot, rnd.candidate_info)
    others = [t for j, t in enumerate(rnd.candidates) if j != slot]
    info = list(rnd.candidate_info) + [{}] * (len(rnd.candidates) - len(rnd.candidate_info))
    # an edited candidate no longer carries its facet's text for sure, but its slot still shows that facet
    others_facets = [info[j].get("facet") for j in range(len(rnd.candidates)) if j != slot]
    cand = service.regenerate(ctx, profile_name, rnd.prompt, others, rewriter, settings, template,
                              others_facets=others_facets, current_facet=info[slot].get("facet"),
                              further=rnd.parent is not None)
    before = int(rnd.candidate_info[slot].get("regenerations", 0)) if slot < len(rnd.candidate_info) else 0
    rnd.candidates[slot] = cand.text
    info = {**cand.to_dict(), "regenerations": before + 1}
    if slot < len(rnd.candidate_info):
        rnd.candidate_info[slot] = info
    else:
        rnd.candidate_info.append(info)
    if slot < len(rnd.scores):
        rnd.scores[slot] = {}  # the old image's scores no longer belong to this text
    view = slot_view(session, cand.text, token_flags(ctx, profile_name, [cand.text])[0], facet_label(info))
    facet = facet_label(info)
    return session.to_dict(), view, f"Candidate {slot + 1} regenerated" + (f", written for the facet {facet}." if facet
                                                                           else ".")


def render_defaults(ctx: Any, profile_name: str | None) -> RenderInputs:
    """The render settings that fit the profile's hardware (profiles.yaml `settings.t2i_render`)."""
    profile = ctx.profile(profile_name)
    return RenderInputs(steps=profile.setting("t2i_render", "steps", 20), size=profile.setting("t2i_render", "size", 512),
                        seed=0, guidance=profile.setting("t2i_render", "guidance", 7.5))


ALWAYS_SCORED = ("align_original", "align_refined", "intent", "image_diversity")  # every image_text scorer gives them


def weight_metrics(ctx: Any, profile_name: str | None) -> list[str]:
    """The metrics a render on this profile scores (in METRICS order), so the tab shows a weight only for those:
    the CLIP alignments, intent and image diversity always; the aesthetic where the profile's scorer has a head;
    PickScore, ImageReward and HPSv2.1 where the profile names their models (nothing is loaded to find out)."""
    from workbench.t2i.scoring import REWARD_ROLES

    profile = ctx.profile(profile_name)
    if "image_text" not in profile.roles:
        return []
    present = set(ALWAYS_SCORED)
    if ctx.manager.capabilities(profile.spec("image_text")).aesthetic:
        present.add("aesthetic")
    present |= {metric for metric, role in REWARD_ROLES.items() if role in profile.roles}
    return [m for m in METRICS if m in present]


def results_view(rendered: Any, session: RefinementSession, sort_by: str = "candidate order") -> ResultsView:
    from workbench.t2i import results

    columns, rows = results.table(rendered, sort_by)
    rnd = session.round()
    if not rendered.archive:  # written once per render; sorting only re-orders the view
        rendered.archive = str(results.write_round_zip(rendered, session.root_prompt,
                                                       {"round": rnd.id, "parent": rnd.parent, "prompt": rnd.prompt,
                                                        "rewriter": rnd.rewriter}))
    from workbench.t2i import heatmaps

    first = heatmaps.default_label(rendered)
    return ResultsView(grid=results.grid(rendered, sort_by), chart=results.chart(rendered), columns=columns, rows=rows,
                       zip_path=rendered.archive, summary=render_summary(rendered), sort_by=sort_by,
                       images=heatmaps.image_choices(rendered), image=first, words=heatmaps.words_of(rendered, first))


def render(ctx: Any, profile_name: str, state: dict | None, edited: Sequence[str], render_inputs: RenderInputs,
           job: Any = None) -> tuple[dict, Any, T2IView]:
    """Render the original prompt and every candidate (as edited) from one seed, then score them. Returns the
    new state, the rendered round (kept per user for sorting) and the view with the results."""
    from workbench.t2i import service

    session = _session(state, "nothing to render yet", edited)
    settings, weights = render_inputs.parse()
    rnd = session.round()
    rendered = service.render_round(ctx, profile_name, session.root_prompt, rnd.candidates, settings, weights, job=job)
    rnd.scores = [s.to_dict() for s in rendered.scores]
    view = session_view(ctx, profile_name, session, "")
    view.results = results_view(rendered, session)
    view.render_status = view.results.summary
    return session.to_dict(), rendered, view


def sort_results(state: dict | None, rendered: Any, sort_by: str) -> ResultsView:
    """Re-order the last render's grid and table by one metric (highest first)."""
    if rendered is None or not state:
        raise ValueError("nothing rendered yet: press Render first")
    return results_view(rendered, RefinementSession.from_dict(state), sort_by)


def heatmap(ctx: Any, profile_name: str, rendered: Any, kept: Any, inputs: HeatmapInputs,
            job: Any = None) -> tuple[Any, Any]:
    """The token heatmap (DAAM) of one word in one image of the last render: (the maps kept for the next word,
    the view). The image is rendered again with its seed and settings while cross-attention is recorded."""
    from workbench.t2i import heatmaps

    return heatmaps.show(heatmaps.managed_t2i(ctx, profile_name), rendered, inputs.image, inputs.word,
                         inputs.opacity, kept=kept, job=job)


def heatmap_words(rendered: Any, label: str | None) -> list[str]:
    """The words of one rendered image's prompt, for the heatmap's word list (a view: no model needed)."""
    from workbench.t2i import heatmaps

    return heatmaps.words_of(rendered, label)


def edit(ctx: Any, profile_name: str, state: dict | None, text: str) -> SlotView:
    """Typing in a candidate box: its word diff and token-limit flag (the tokenizer only; no model load)."""
    if not state:
        return SlotView(text=text or "", diff=[], diff_markdown="", flag="")
    session = RefinementSession.from_dict(state)
    flag = token_flags(ctx, profile_name, [text])[0] if (text or "").strip() else \
        "empty candidate: it will be refused at render"
    return slot_view(session, text or "", flag)


# --------------------------------------------------------------------------- formatting (one place)


def render_summary(rendered: Any) -> str:
    lines = [f"Rendered {len(rendered.images) + 1} images in {rendered.seconds:.1f} s."]
    if rendered.stopped:
        lines.append(f"⏹ {rendered.stopped}.")
    if rendered.round_diversity is not None:
        lines.append(f"Image diversity of this round (mean pairwise CLIP-image distance): "
                     f"**{rendered.round_diversity:.3f}**")
    lines += [f"⚠️ {w}" for w in rendered.warnings]
    lines += list(getattr(rendered, "notes", []))
    truncated = [i + 1 for i, f in enumerate(rendered.flags) if f.tail]
    if truncated:
        lines.append(f"⚠️ candidates {truncated} were cut at the text encoder's limit (their flags name the tail).")
    lines.append("The chart shows every metric separately; the weighted total is beside them, never instead.")
    return "\n\n".join(lines)


__all__ = ["MAX_CANDIDATES", "REWRITER_LABELS", "HeatmapInputs", "RenderInputs", "ResultsView", "RewriterInputs",
           "SlotView", "T2IView", "edit", "go_back", "heatmap", "heatmap_words", "refine", "refine_further",
           "regenerate", "render", "render_defaults", "sort_results"]
