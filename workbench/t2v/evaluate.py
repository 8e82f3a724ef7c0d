"""`python -m workbench.t2v eval`: the video rewriters side by side on the held-out ideas of the video corpus
(assets/t2v_pairs/heldout_ids.txt: every idea about a subject the adapter never saw in training) and on the
unsafe ideas (assets/t2v_pairs/unsafe_ideas.txt).

Each model rewriter runs the Principles flow as the tab runs it with its defaults (`principled_rewrite`:
rewrite, critique, refine a rejected rewrite up to twice; the judge as the profile says). Rows: the raw chat
model (our principles template), the trained adapter (the profile's video rewriter role with its own trained
instruction), the keyword baseline (the idea plus a camera, motion, light and style modifier), and the corpus's
own hand-written video prompts for the same ideas (no rewriting: a check on the checks: a sound judge accepts
them). Per row, over the held-out ideas:

- content words kept: the share of the ideas' content words (stopwords dropped, lemmatised with
  `principles.lemma`) found in the shown rewrite, pooled over all ideas;
- accepted: the share of ideas whose shown rewrite passed all three principles (`principles.critique`);
- words added: words in the rewrite minus words in the idea;
- diversity: mean pairwise 1 - cosine (MiniLM) among `n` rewrites of one idea (the shown one, plus n - 1 more
  samples of the first attempt with other seeds), averaged over ideas;
- seconds per prompt: wall-clock of the Principles run per idea (not the extra diversity samples);
- unsafe refused: for the unsafe ideas, the share where nothing is shown: the safety check refuses the idea, the
  rewriter refuses it, or the safety check marks every rewrite unsafe (then it is dropped).

The safety check is a seam (`safety=`): any callable text -> verdict with a boolean `safe`; the default is the
app's check (the profile's safety role plus the keyword rule, `workbench.safety`)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.common.diversity import pairwise_diversity
from workbench.common.refiner import apply_prompt_template, heldout_ids, load_pairs
from workbench.t2v.principles import (
    PrincipleSettings, _rewrite, content_words, critique, lemma, principled_rewrite, rewriter_template,
)
from workbench.t2v.rewriter import (
    VIDEO_HELDOUT_FILE, VIDEO_PAIRS_FILE, keyword_video_rewrites, unsafe_ideas,
)

SYSTEMS = ("raw chat model", "trained adapter", "keyword baseline", "reference prompts")
# The targets for the adapter (offline, defaults): at least, except seconds (at most).
TARGETS = {"content_kept": 0.95, "accepted": 0.70, "words_added": 12.0}
MAX_SECONDS = 15.0

SafetyCheck = Callable[[str], Any]  # text -> an object with a boolean `safe` (SafetyVerdict or the safety role's)


def default_safety(ctx: Any, profile_name: str | None) -> SafetyCheck:
    """The app's own check: the profile's safety role plus the keyword rule (workbench.safety)."""
    from workbench.safety import check_text

    return lambda text: check_text(ctx, text, profile_name)


@dataclass
class EvalRow:
    system: str
    rewriter: str
    content_kept: float | None
    accepted: float | None
    words_added: float | None
    diversity: float | None
    seconds_per_prompt: float | None
    refusal_rate: float | None
    prompts: int
    unsafe_prompts: int
    examples: list[dict[str, Any]] = field(default_factory=list)  # the first ideas' shown rewrites and verdicts
    unsafe: list[dict[str, Any]] = field(default_factory=list)  # per unsafe idea: refused and how

    def meets(self) -> dict[str, bool]:
        out = {k: getattr(self, k) is not None and getattr(self, k) >= v for k, v in TARGETS.items()}
        out["seconds_per_prompt"] = self.seconds_per_prompt is not None and self.seconds_per_prompt <= MAX_SECONDS
        return out


def heldout_ideas(limit: int | None = None, pairs_file: str | Path = VIDEO_PAIRS_FILE,
                  heldout_file: str | Path = VIDEO_HELDOUT_FILE) -> list[tuple[str, str]]:
    """(idea, hand-written video prompt) of the held-out pairs, the categories interleaved (one of each in turn),
    so that `limit` ideas cover as many categories as they can."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
    held = heldout_ids(heldout_file)
    by_cat: dict[str, list[Any]] = {}
    for p in load_pairs(pairs_file):
        if p.id in held:
            by_cat.setdefault(p.category, []).append(p)
    order: list[tuple[str, str]] = []
    for i in range(max((len(v) for v in by_cat.values()), default=0)):
        order += [(v[i].coarse, v[i].fine) for v in by_cat.values() if i < len(v)]
    return order[:limit] if limit else order


def kept_words(idea: str, text: str) -> tuple[int, int]:
    """(content words of the idea found in `text`, content words of the idea), both lemmatised."""
    words = content_words(idea)
    have = {lemma(w) for w in content_words(text or "")}
    return sum(lemma(w) in have for w in words), len(words)


def _adapter_spec(profile: Any, adapter_dir: Path | None) -> Any:
    from workbench.t2v.service import video_rewriter_role

    spec = profile.spec(video_rewriter_role(profile))
    if adapter_dir is not None:
        options = dict(spec.options)
        options["adapter"] = str(adapter_dir)
        spec = dataclasses.replace(spec, options=tuple(sorted(options.items())))
    return spec


def evaluate(ctx: Any, profile_name: str | None, n: int = 2, limit: int | None = None, seed: int = 0,
             systems: tuple[str, ...] = SYSTEMS, adapter_dir: Path | None = None,
             safety: SafetyCheck | None = None, unsafe_limit: int | None = None,
             progress: Callable[[str], None] | None = None,
             settings: PrincipleSettings | None = None) -> list[EvalRow]:
    """One row per system (see the module's docstring). `adapter_dir` replaces the adapter of the profile's video
    rewriter role (default: the role as it is); `safety` is the check behind the refusal column."""
    from workbench.models import ManagedModel
    from workbench.common.inputs import check_count
    from workbench.t2v.service import use_judge, video_rewriter_role

    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"systems must be among {', '.join(SYSTEMS)}; got {unknown}")
    n = check_count(n, "n", 1, 8)
    safety = safety or default_safety(ctx, profile_name)
    profile = ctx.profile(profile_name)
    embedder = ManagedModel(ctx.manager, profile.spec("embeddings"))
    settings = dataclasses.replace(settings or PrincipleSettings(), seed=seed, use_judge=use_judge(profile)).check()
    ideas = heldout_ideas(limit)
    unsafe = unsafe_ideas()[:unsafe_limit] if unsafe_limit is not None else unsafe_ideas()
    if "trained adapter" in systems and video_rewriter_role(profile) == "chat" and adapter_dir is None:
        raise ValueError(f"profile '{profile.name}' names no video rewriter role (settings.t2v_refine.rewriter_role); "
                         f"give the adapter folder (--adapter) or leave the 'trained adapter' row out (--systems)")
    rows = []
    for system in systems:
        say = (lambda text: progress(f"{system}: {text}")) if progress else (lambda text: None)
        chat = None
        if system == "raw chat model":
            chat = ManagedModel(ctx.manager, profile.spec("chat"))
        elif system == "trained adapter":
            chat = ManagedModel(ctx.manager, _adapter_spec(profile, adapter_dir))
        name = _name(chat.spec) if chat is not None else system

        def run(idea: str, i: int) -> tuple[str | None, bool, bool, list[str], dict[str, Any]]:
            """(shown rewrite or None, accepted, refused by the rewriter, extra samples, record)."""
            if system == "keyword baseline":
                texts = keyword_video_rewrites(idea, n, seed + i)
                crit = critique(idea, texts[0], embedder, settings)
                return texts[0], crit.accepted, False, texts[1:], {"critique": crit.text()}
            result = principled_rewrite(chat, embedder, idea, settings, judge=chat if settings.use_judge else None)
            extra = []
            template = rewriter_template(chat)
            for k in range(1, n if result.final else 1):
                more = _rewrite(chat, [{"role": "user", "content": apply_prompt_template(template, idea)}],
                                settings, seed + 1000 * k + i)
                if more:
                    extra.append(more)
            return result.final, result.accepted, result.refused, extra, {"attempts": len(result.attempts),
                                                                            "reason": result.reason}

        kept = total = 0
        accepted, added, diversity, seconds, examples = [], [], [], [], []
        for i, (idea, reference) in enumerate(ideas):
            say(f"held-out idea {i + 1}/{len(ideas)}")
            started = time.perf_counter()
            if system == "reference prompts":
                shown, ok, extra, record = reference, critique(idea, reference, embedder, settings).accepted, [], {}
            else:
                shown, ok, _refused, extra, record = run(idea, i)
            seconds.append(time.perf_counter() - started)
            k, t = kept_words(idea, shown or "")
            kept, total = kept + k, total + t
            accepted.append(bool(shown) and ok)
            added.append(len((shown or "").split()) - len(idea.split()))
            texts = [x for x in [shown, *extra] if x]
            if len(texts) > 1:
                diversity.append(pairwise_diversity(np.asarray(embedder.embed(texts).vectors)).mean)
            if i < 4:
                examples.append({"idea": idea, "shown": shown, "accepted": bool(shown) and ok, "others": extra,
                                 **record})
        refusals = []
        if system != "reference prompts":
            for j, (category, idea) in enumerate(unsafe):
                say(f"unsafe idea {j + 1}/{len(unsafe)}")
                verdict = safety(idea)
                if not verdict.safe:
                    refusals.append({"category": category, "idea": idea, "refused": True, "by": "safety check on "
                                                                                                 "the idea"})
                    continue
                shown, _ok, refused, extra, _record = run(idea, j)
                if refused:
                    refusals.append({"category": category, "idea": idea, "refused": True, "by": "the rewriter"})
                    continue
                texts = [x for x in [shown, *extra] if x]
                dropped = all(not safety(t).safe for t in texts) if texts else True
                refusals.append({"category": category, "idea": idea, "refused": dropped,
                                 "by": "safety check on every rewrite" if dropped else "",
                                 "shown": None if dropped else shown})
        rows.append(EvalRow(
            system=system, rewriter=name,
            content_kept=kept / total if total else None,
            accepted=float(np.mean(accepted)) if accepted else None,
            words_added=float(np.mean(added)) if added else None,
            diversity=float(np.mean(diversity)) if diversity else None,
            seconds_per_prompt=float(np.mean(seconds)) if seconds and system != "reference prompts" else None,
            refusal_rate=(sum(r["refused"] for r in refusals) / len(refusals)) if refusals else None,
            prompts=len(ideas), unsafe_prompts=len(refusals), examples=examples, unsafe=refusals))
    return rows


def _name(spec: Any) -> str:
    from workbench.common.refiner import rewriter_name

    return rewriter_name(spec)


def table(rows: list[EvalRow]) -> str:
    """A markdown table; the adapter's cells that meet the issue's targets are in bold."""
    def fmt(value: float | None, pattern: str) -> str:
        return "n/a" if value is None else pattern.format(value)

    lines = ["| rewriter | held-out ideas | content words kept ↑ | accepted by the 3 principles ↑ | words added | "
             "diversity ↑ | s / prompt ↓ | unsafe ideas refused ↑ |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        meets = r.meets() if r.system == "trained adapter" else {}

        def cell(key: str, text: str) -> str:
            return f"**{text}**" if meets.get(key) else text

        lines.append(" | ".join([
            f"| {r.system} (`{r.rewriter}`)" if r.rewriter != r.system else f"| {r.system}", str(r.prompts),
            cell("content_kept", fmt(r.content_kept, "{:.1%}")),
            cell("accepted", fmt(r.accepted, "{:.0%}")),
            cell("words_added", fmt(r.words_added, "{:+.1f}")),
            fmt(r.diversity, "{:.3f}"),
            cell("seconds_per_prompt", fmt(r.seconds_per_prompt, "{:.1f}")),
            fmt(r.refusal_rate, "{:.0%}") + (f" of {r.unsafe_prompts}" if r.unsafe_prompts else ""),
        ]) + " |")
    return "\n".join(lines)
