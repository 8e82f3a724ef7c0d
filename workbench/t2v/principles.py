"""VPO's principles (thu-coai/VPO, ICCV'25), checked on a rewrite: harmless (unsafe requests are refused; a rewrite
that adds unsafe content is rejected), accurate (every subject, action and attribute of the user's prompt is
still there) and helpful (camera, lighting, motion and style detail). The critique is shown, and a rejected
rewrite is refined with it, as VPO refines its rejected rewrites with GPT-4o's critique.

Accuracy does not rest on the judge LLM alone: beside the judge's checklist (advisory: a 135M model cannot be
trusted with it) a deterministic check requires every content word of the user's prompt, lemmatised, to
survive in the rewrite, and the sentence-embedding similarity of the idea with the rewrite (as a whole, or with
its closest sentence) must reach a threshold. Those two decide."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from backends.base import generation_progress
from workbench.jobs import Job
from workbench.common.inputs import check_count, check_fraction, check_prompt
from workbench.common.refiner import apply_prompt_template, parse_candidate, rewriter_name
from workbench.t2v.evolve import VIDEO_HINT

# Our own wording of VPO's three principles, used when the profile's rewriter has no `prompt_template` of its
# own (the paper profile carries VPO's exact template as data for VPO's released rewriter).
PRINCIPLES_TEMPLATE = (
    "Expand the user's short video idea into one detailed English prompt for a text-to-video model. Follow three "
    "principles. Harmless: nothing unsafe, offensive or unethical. Accurate: keep every subject, action and "
    "attribute the user gave. Helpful: describe camera movement and framing, lighting, motion and style, "
    "feasible in a few seconds. Answer with the prompt only.\n\nUser idea: {query}\n\nVideo prompt:"
)

STOPWORDS = frozenset("""a an the and or but of in on at to for with from by into onto over under up down out off
is are was were be been being am do does did has have had this that these those it its it's their there here
as than then so very just some any each every all both no not very while during through near far about above
below between behind across along around against among his her him he she they them we you your our my me i
after before again toward towards upon within without
who whom which what when where why how video clip scene shot footage showing shows""".split())

# Helpful detail: each category is satisfied by any of its words (lemmatised like the prompt).
DETAIL_LEXICON: dict[str, tuple[str, ...]] = {
    "camera": ("camera", "pan", "tilt", "zoom", "dolly", "tracking", "track", "close-up", "closeup", "wide", "aerial",
               "drone", "angle", "shot", "handheld", "orbit", "crane", "framing", "lens", "focus", "pov"),
    "lighting": ("light", "lighting", "lit", "sunlight", "sunset", "sunrise", "golden", "shadow", "glow", "neon",
                 "backlit", "soft", "dim", "bright", "moonlight", "volumetric", "ambient"),
    "motion": ("slowly", "slow", "fast", "moving", "move", "motion", "walk", "run", "flow", "drift", "sway",
               "spin", "glide", "rush", "gently", "turn", "jump", "swirl", "ripple", "wave"),
    "style": ("cinematic", "realistic", "photorealistic", "film", "35mm", "anime", "watercolor", "painting",
              "style", "documentary", "vintage", "detailed", "4k", "hdr", "render", "illustration", "noir"),
}

_IRREGULAR = {"men": "man", "women": "woman", "children": "child", "mice": "mouse", "feet": "foot",
              "teeth": "tooth", "geese": "goose", "people": "person", "ran": "run", "flew": "fly", "swam": "swim",
              "ate": "eat", "sat": "sit", "leaves": "leaf", "wolves": "wolf", "knives": "knife", "flies": "fly"}


def lemma(word: str) -> str:
    """A light rule-based lemmatiser (no corpus needed): irregular forms; then the plural or third-person -s
    (-ies/-es/-s); then one of -ing/-ed/-ly; doubled final consonants collapsed and a final -e dropped. The same
    steps run on both texts, so what matters is that inflections of one word meet: "dogs running" ~ "dog runs",
    "buildings" ~ "building", "families" ~ "family" (each step removes one layer, so "-ings" and "-ies" forms
    reach the same stem as their singular)."""
    w = word.lower().strip("'’-")
    if w.endswith(("'s", "’s")):  # the possessive: "grandmother's" ~ "grandmother"
        w = w[:-2]
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("es") and not w.endswith(("ses", "zes", "ches", "shes", "xes")):
        w = w[:-1]  # "horses" -> "horse", "tables" -> "table": drop the -s only; the -e goes below
    elif len(w) > 4 and w.endswith(("ses", "zes", "ches", "shes", "xes")):
        w = w[:-2]  # "glasses" -> "glass", "boxes" -> "box", "beaches" -> "beach"
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed", "ly"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def content_words(text: str) -> list[str]:
    """The content words of a text in reading order, without repeats: lower case, stopwords dropped."""
    words = re.findall(r"[a-zA-Z][a-zA-Z'’-]*|\d+", text)
    out = []
    for w in words:
        if w.lower() in STOPWORDS or len(w) < 2:
            continue
        if w.lower() not in out:
            out.append(w.lower())
    return out


@dataclass
class PrincipleSettings:
    min_similarity: float = 0.5  # sentence-embedding cosine of rewrite vs idea (MiniLM: paraphrases score > 0.6)
    min_details: int = 2  # helpful: at least this many of camera / lighting / motion / style
    max_refinements: int = 2  # rejected rewrites refined with the critique at most this often
    use_judge: bool = True  # ask the chat model for the accuracy checklist (advisory)
    temperature: float = 0.7  # VPO's inference temperature
    max_new_tokens: int = 128
    seed: int = 0

    def check(self) -> "PrincipleSettings":
        check_fraction(self.min_similarity, "min_similarity")
        check_count(self.min_details, "min_details", 0, 4)
        check_count(self.max_refinements, "max_refinements", 0, 5)
        check_count(self.max_new_tokens, "max_new_tokens", 8, 1024)
        check_count(self.seed, "seed", 0, 2**31 - 1)
        if not isinstance(self.temperature, (int, float)) or not 0.05 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be between 0.05 and 2, got {self.temperature!r}")
        return self


@dataclass
class PrincipleCheck:
    name: str  # harmless | accurate | helpful
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Critique:
    original: str
    rewrite: str
    checks: list[PrincipleCheck]

    @property
    def accepted(self) -> bool:
        return all(c.passed for c in self.checks)

    def check(self, name: str) -> PrincipleCheck:
        return next(c for c in self.checks if c.name == name)

    def text(self) -> str:
        """The critique in words, as it is shown to the user and to the rewriter when refining."""
        lines = [f"{c.name}: {'yes' if c.passed else 'no'} - {c.reason}" for c in self.checks]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "rewrite": self.rewrite, "accepted": self.accepted,
                "checks": [asdict(c) for c in self.checks], "text": self.text()}


def _verdicts(safety: Any, texts: list[str]) -> list[Any]:
    """`safety` (texts -> SafetyVerdicts, workbench.safety.checker) or, without one, the keyword rule alone."""
    from workbench.safety import check_texts

    return safety(texts) if safety is not None else check_texts(None, texts)


def check_harmless(original: str, rewrite: str, safety: Any = None) -> PrincipleCheck:
    verdict = _verdicts(safety, [rewrite])[0]
    details = {"source": verdict.source, "categories": list(verdict.categories), "provenance": verdict.provenance}
    if verdict.safe:
        return PrincipleCheck("harmless", True, f"no unsafe content ({verdict.source})", details)
    return PrincipleCheck("harmless", False, f"the rewrite is unsafe: {verdict.describe()}; remove it", details)


def judge_checklist(judge: Any, original: str, rewrite: str, settings: PrincipleSettings) -> list[dict[str, Any]]:
    """The judge LLM's checklist: each subject, action or attribute of the idea, and whether the rewrite keeps it.
    Lines that do not parse as "item: yes/no" are dropped (small models often answer otherwise)."""
    from backends.base import GenerationSettings

    ask = (f"User idea: {original}\nRewrite: {rewrite}\n\nList every subject, action and attribute of the user "
           f"idea, one per line, as 'item: yes' if the rewrite keeps it or 'item: no' if it does not.")
    gen = judge.generate([[{"role": "user", "content": ask}]],
                         GenerationSettings(max_new_tokens=96, do_sample=False, seed=settings.seed))[0][0]
    items = []
    for line in gen.text.splitlines():
        m = re.match(r"^\s*(?:[-*\d.)]+\s*)?(.+?)\s*:\s*(yes|no)\b", line, re.I)
        if m and len(m.group(1)) <= 60:
            items.append({"item": m.group(1).strip(), "kept": m.group(2).lower() == "yes"})
    return items


def check_accurate(original: str, rewrite: str, embedder: Any, settings: PrincipleSettings,
                   judge: Any = None) -> PrincipleCheck:
    words = content_words(original)
    have = {lemma(w) for w in content_words(rewrite)}
    missing = [w for w in words if lemma(w) not in have]
    # The idea against the whole rewrite AND against each of its sentences, the best counting: a 5-word idea and a
    # 40-word prompt that restates it in its first sentence score ~0.45 as wholes (the added camera, light and style
    # words dilute the mean-pooled embedding), though the prompt means the idea; the project's hand-written video
    # prompts were rejected that way. The sentence that restates the idea scores high; a rewrite that only
    # scatters the idea's words over unrelated text does not.
    sentences = [x.strip() for x in re.split(r"(?<=[.;:!?])\s+", rewrite) if len(x.split()) >= 2]
    parts = [rewrite] + (sentences if len(sentences) > 1 else [])
    vectors = embedder.embed([original] + parts).vectors
    sims = [float(vectors[0] @ v) for v in vectors[1:]]
    similarity = max(sims)
    checklist = judge_checklist(judge, original, rewrite, settings) if judge is not None and settings.use_judge else []
    judge_no = [i["item"] for i in checklist if not i["kept"]]
    details = {"content_words": words, "missing": missing, "similarity": round(similarity, 4),
               "similarity_whole": round(sims[0], 4),
               "min_similarity": settings.min_similarity, "judge_checklist": checklist,
               "judge": getattr(getattr(judge, "spec", None), "model_id", None)}
    problems = []
    if missing:
        problems.append("the rewrite drops " + ", ".join(f"“{w}”" for w in missing) + " from the idea")
    if similarity < settings.min_similarity:
        problems.append(f"its meaning drifts (embedding similarity {similarity:.2f} < {settings.min_similarity:.2f})")
    advisory = f"; the judge also says missing (advisory): {', '.join(judge_no)}" if judge_no else ""
    if problems:
        return PrincipleCheck("accurate", False, "; ".join(problems) + advisory, details)
    return PrincipleCheck("accurate", True, f"every content word survives; similarity {similarity:.2f}{advisory}",
                          details)


def check_helpful(rewrite: str, settings: PrincipleSettings) -> PrincipleCheck:
    have = {lemma(w) for w in re.findall(r"[a-zA-Z0-9][a-zA-Z0-9'-]*", rewrite)}
    found = {cat: sorted({w for w in words if lemma(w) in have}) for cat, words in DETAIL_LEXICON.items()}
    present = [cat for cat, hits in found.items() if hits]
    absent = [cat for cat in DETAIL_LEXICON if cat not in present]
    details = {"found": found, "min_details": settings.min_details}
    if len(present) >= settings.min_details:
        return PrincipleCheck("helpful", True, f"adds {', '.join(present)} detail", details)
    return PrincipleCheck("helpful", False, f"add {', '.join(absent)} detail (has {len(present)} of the "
                                            f"{settings.min_details} needed: {', '.join(present) or 'none'})", details)


def critique(original: str, rewrite: str, embedder: Any, settings: PrincipleSettings | None = None,
             judge: Any = None, safety: Any = None) -> Critique:
    settings = (settings or PrincipleSettings()).check()
    return Critique(original, rewrite, [check_harmless(original, rewrite, safety),
                                        check_accurate(original, rewrite, embedder, settings, judge),
                                        check_helpful(rewrite, settings)])


@dataclass
class PrinciplesResult:
    original: str
    refused: bool  # the request itself is unsafe: no rewrite is made
    reason: str
    attempts: list[dict[str, Any]] = field(default_factory=list)  # Critique.to_dict() per rewrite, first to last
    final: str | None = None  # the accepted rewrite, or the best rejected one when none was accepted
    accepted: bool = False
    template: str = ""  # the template the rewriter saw (VPO's when the profile carries it)
    rewriter: str = ""
    dropped_unsafe: int = 0  # rewrites the safety check dropped unseen (their text is kept nowhere)
    safety: str = ""  # the rule and model that judged (workbench.safety)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rewriter_template(chat: Any) -> str:
    """The profile's `prompt_template` (VPO's, in the paper profile) or our principles template."""
    return str(chat.spec.option("prompt_template") or PRINCIPLES_TEMPLATE)


def _rewrite(chat: Any, messages: list[dict[str, str]], settings: PrincipleSettings, seed: int) -> str:
    from backends.base import GenerationSettings

    gen = chat.generate([messages], GenerationSettings(max_new_tokens=settings.max_new_tokens, do_sample=True,
                                                       temperature=settings.temperature, top_p=1.0, seed=seed))[0][0]
    return parse_candidate(gen.text)


def principled_rewrite(chat: Any, embedder: Any, original: str, settings: PrincipleSettings | None = None,
                       judge: Any = None, job: Job | None = None, safety: Any = None) -> PrinciplesResult:
    """VPO at inference: refuse unsafe requests; rewrite with the principles template; drop unsafe rewrites
    unseen; critique; refine a rejected rewrite with its critique up to `max_refinements` times. `safety`: texts
    -> SafetyVerdicts (workbench.safety.checker); without it the keyword rule alone judges."""
    settings = (settings or PrincipleSettings()).check()
    original = check_prompt(original, "video idea", VIDEO_HINT)
    job = job or Job.none()
    verdict = _verdicts(safety, [original])[0]
    template = rewriter_template(chat)
    name = rewriter_name(chat.spec)  # the model id and its LoRA adapter, if any (provenance)
    if not verdict.safe:
        return PrinciplesResult(original, True, verdict.message("video idea"), template=template,
                                rewriter=name, safety=verdict.source)
    messages = [{"role": "user", "content": apply_prompt_template(template, original)}]
    result = PrinciplesResult(original, False, "", template=template, rewriter=name,
                              safety=verdict.source)
    best: Critique | None = None
    total = settings.max_refinements + 1
    for attempt in range(total):
        where = f"attempt {attempt + 1} of {total}"
        job.update("principles: rewrite", 0, settings.max_new_tokens, where)

        def on_tokens(done: int, tokens: int, where: str = where) -> None:  # inside generate (may raise Cancelled)
            job.update("principles: rewrite", done, tokens, f"{where} · token {done}/{tokens}")

        with generation_progress(on_tokens):
            rewrite = _rewrite(chat, messages, settings, settings.seed + attempt)
        if not rewrite:
            result.attempts.append({"rewrite": "", "accepted": False, "checks": [], "text": "empty answer"})
            continue
        rewrite_verdict = _verdicts(safety, [rewrite])[0]
        if not rewrite_verdict.safe:  # never shown: no text of it is kept in the result
            result.dropped_unsafe += 1
            result.attempts.append({"rewrite": "", "accepted": False, "checks": [], "dropped_unsafe": True,
                                    "text": f"dropped by the safety check: {', '.join(rewrite_verdict.labels)}",
                                    "safety": {"categories": list(rewrite_verdict.categories),
                                               "source": rewrite_verdict.source}})
            messages = messages + [
                {"role": "assistant", "content": rewrite},
                {"role": "user", "content": f"That prompt is unsafe ({', '.join(rewrite_verdict.labels)}). Write a "
                                            f"harmless video prompt for this user query:\n{original}"},
            ]
            continue
        job.update("principles: critique", attempt, total, where)

        def on_judge(done: int, tokens: int, where: str = where) -> None:
            job.update("principles: critique", done, tokens, f"{where} · judge's checklist · token {done}/{tokens}")

        with generation_progress(on_judge):
            crit = critique(original, rewrite, embedder, settings, judge, safety)
        result.attempts.append(crit.to_dict())
        if best is None or sum(c.passed for c in crit.checks) > sum(c.passed for c in best.checks):
            best = crit
        if crit.accepted:
            break
        messages = messages + [
            {"role": "assistant", "content": rewrite},
            {"role": "user", "content": f"That prompt breaks the principles:\n{crit.text()}\nRewrite it, fixing "
                                        f"these problems, for this user query:\n{original}"},
        ]
    if best is None:
        result.reason = (f"every rewrite was unsafe and none is shown: the safety check dropped "
                         f"{result.dropped_unsafe} of {len(result.attempts)}; rephrase the idea or try another seed"
                         if result.dropped_unsafe else
                         "the rewriter gave only empty answers; try another seed or temperature")
        return result
    result.final, result.accepted = best.rewrite, best.accepted
    result.reason = ("accepted: harmless, accurate and helpful" if best.accepted else
                     f"no rewrite passed all three principles in {len(result.attempts)} attempt(s); the best one is "
                     f"shown with its critique")
    if result.dropped_unsafe:
        result.reason += (f" (the safety check dropped {result.dropped_unsafe} unsafe rewrite(s) of "
                          f"{len(result.attempts)} unseen)")
    return result
