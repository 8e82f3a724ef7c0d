"""One verdict per text from the profile's `safety` role (a trained classifier offline, a guard model on GPU
profiles, a deterministic fake in tests) combined with the keyword rule: unsafe when either says so. A WEAK keyword
match (a "?pattern" of rules.py: words with common harmless senses, "nude", "torture", a president near "prison")
counts only when the model confirms it: for a model that reports `weak_rule_threshold` (the offline head), when its
P(unsafe) reaches that threshold; a model without one (the guard model, fakes) leaves every match standing. The
verdict names the categories, the words that triggered it, and the rule and model that gave it (its provenance).

Every T2I and T2V path calls `refuse_unsafe` on the user's input and `screen` on each batch of rewrites: an
unsafe request is refused with a ValueError that names the category and the triggering words; an unsafe rewrite
is dropped before it is shown, rendered or exported, and counted in the status (`dropped_note`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from workbench.safety.rules import LABELS, RULE_ID, check_rule

ROLE = "safety"
PREVIEW_CHARS = 40  # a triggering phrase is cut to this many characters in a message


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class SafetyVerdict:
    safe: bool
    categories: tuple[str, ...] = ()  # flagged categories (workbench.safety.rules.LABELS keys)
    triggers: list[dict[str, str]] = field(default_factory=list)  # {"category", "text", "by"}: what set it off
    reasons: list[str] = field(default_factory=list)  # in the rule's and the model's own terms
    source: str = RULE_ID  # the rule and the model that judged: "keyword-rule-v7 + safety-head:pypi:..."
    provenance: dict[str, Any] = field(default_factory=dict)  # rule id, model provenance, per-category scores

    @property
    def labels(self) -> list[str]:
        return [LABELS.get(c, c) for c in self.categories]

    def trigger_words(self, limit: int = 3) -> list[str]:
        words = list(dict.fromkeys(preview(t["text"]) for t in self.triggers if t.get("text")))
        return words[:limit]

    def describe(self) -> str:
        """"weapons and explosives (“pipe bomb”)": the categories and the words that set them off."""
        if self.safe:
            return "safe"
        words = self.trigger_words()
        said = f" (“{'”, “'.join(words)}”)" if words else ""
        return f"{', '.join(self.labels)}{said}"

    @property
    def reason(self) -> str:
        return "no unsafe content found" if self.safe else f"unsafe: {self.describe()}"

    def message(self, what: str = "request") -> str:
        """The refusal a user reads."""
        return (f"Refused: this {what} is unsafe to render: {self.describe()}. Rephrase it without that content. "
                f"[judged by {self.source}]")

    def to_dict(self) -> dict[str, Any]:
        return {"safe": self.safe, "categories": list(self.categories), "triggers": [dict(t) for t in self.triggers],
                "reasons": list(self.reasons), "source": self.source, "provenance": self.provenance}


def _safety_model(checker: Any, profile: str | None) -> tuple[Any, str]:
    """(a model with `classify`, or None; a note when there is none). `checker` is an AppContext, a backend or
    ManagedModel with `classify`, or None for the rule alone."""
    from workbench.context import AppContext
    from workbench.models import ManagedModel

    if checker is None:
        return None, "keyword rule only: no safety model was given"
    if not isinstance(checker, AppContext):
        return checker, ""  # a safety backend or a ManagedModel of one

    prof = checker.profile(profile)
    if ROLE not in prof.roles:
        return None, f"keyword rule only: profile '{prof.name}' has no safety role"
    model = ManagedModel(checker.manager, prof.spec(ROLE))
    if model.capabilities.embedded_input and EMBEDDINGS_ROLE in prof.roles:
        embeddings = ManagedModel(checker.manager, prof.spec(EMBEDDINGS_ROLE))
        if embeddings.spec.model_id == model.spec.model_id and "embeddings" in embeddings.capabilities.kinds:
            return SharedEmbeddingSafety(model, embeddings), ""
    return model, ""


EMBEDDINGS_ROLE = "embeddings"


class SharedEmbeddingSafety:
    """A safety backend that classifies embeddings (capabilities.embedded_input) fed by the profile's embeddings
    role when both name the same model: one loaded copy of MiniLM serves retrieval, diversity and safety."""

    def __init__(self, safety: Any, embeddings: Any):
        self.safety, self.embeddings = safety, embeddings
        self.spec = safety.spec

    def classify(self, texts: Sequence[str]) -> list[Any]:
        texts = list(texts)
        vectors = self.embeddings.embed(texts).vectors if texts else []
        return self.safety.classify_embedded(texts, vectors)


def check_texts(checker: Any, texts: Sequence[str], profile: str | None = None) -> list[SafetyVerdict]:
    """A verdict for each text: the keyword rule, and the profile's safety role in ONE batched call."""
    texts = [str(t or "") for t in texts]
    if not texts:
        return []
    model, note = _safety_model(checker, profile)
    results = model.classify(texts) if model is not None else [None] * len(texts)
    model_name = f"{model.spec.backend}:{model.spec.model_id}" if model is not None else ""
    source = f"{RULE_ID} + {model_name}" if model_name else RULE_ID
    out = []
    for text, result in zip(texts, results):
        rule = check_rule(text)
        matches, dismissed = rule.matches, []
        weak_t = _weak_threshold(result)
        if weak_t is not None and any(m.weak for m in matches):
            p_unsafe = sum(float(v) for v in result.scores.values())
            if p_unsafe < weak_t:
                dismissed = [m for m in matches if m.weak]
                matches = [m for m in matches if not m.weak]
        cats = list(dict.fromkeys(m.category for m in matches))
        triggers = [{"category": m.category, "text": m.text, "by": RULE_ID} for m in matches]
        reasons = [f"keyword rule: “{preview(m.text)}” ({LABELS[m.category]})" for m in matches]
        prov: dict[str, Any] = {"rule": RULE_ID, "rule_matches": [[m.category, m.text] for m in matches]}
        if dismissed:  # weak words the model read in their harmless sense
            prov["rule_weak_dismissed"] = [[m.category, m.text] for m in dismissed]
            prov["weak_rule_threshold"] = weak_t
            reasons.extend(f"keyword rule: “{preview(m.text)}” ({LABELS[m.category]}) set aside: a word with harmless "
                           f"senses, and the model's P(unsafe) {p_unsafe:.2f} < {weak_t:.2f}" for m in dismissed)
        if note:
            prov["note"] = note
        if result is not None:
            for cat in result.categories:
                if cat not in cats:
                    cats.append(cat)
            reasons.extend(f"{model_name}: {r}" for r in result.reasons)
            prov["model"] = result.provenance.to_dict() if result.provenance is not None else None
            prov["model_safe"] = result.safe
            prov["scores"] = {k: round(float(v), 4) for k, v in result.scores.items()}
            for cat in result.categories:
                if not any(t["category"] == cat for t in triggers):
                    triggers.append({"category": cat, "text": _strongest_words(text), "by": model_name})
        safe = not cats
        out.append(SafetyVerdict(safe, tuple(cats), triggers, reasons, source, prov))
    return out


def _weak_threshold(result: Any) -> float | None:
    """The P(unsafe) a model needs to confirm a weak keyword match; None: the model does not say (every match
    stands)."""
    if result is None or not result.scores or result.provenance is None:
        return None
    value = (result.provenance.settings or {}).get("weak_rule_threshold")
    return None if value is None else float(value)


def _strongest_words(text: str) -> str:
    """The text itself, shortened: a model flags a whole text (`explain_model_flag` narrows it to words)."""
    return preview(text)


def check_text(checker: Any, text: str, profile: str | None = None) -> SafetyVerdict:
    return check_texts(checker, [text], profile)[0]


OCCLUSION_WORDS = 32  # a flag the rule did not explain is explained by removing each of the first 32 words
# words never named as a reason: removing one changes a language model's reading of a whole sentence ("into of" was
# safety-head-v7's answer for "soldiers firing into a crowd of unarmed villagers"), but it is not what made it unsafe
FUNCTION_WORDS = frozenset(
    "a an the of in on at to into onto from by for with without about as and or but nor so than then that this "
    "these those it its is are was were be been being has have had do does did will would can could should may "
    "might must i me my you your he him his she her we us our they them their who whom which what where when how "
    "while up down out over under off very just not no".split())
PUNCTUATION = ",.;:!?\"'()"  # stripped from a word before it is looked up or named


def explain_model_flag(checker: Any, text: str, verdict: SafetyVerdict, profile: str | None = None) -> None:
    """For a category only the model flagged (no rule words), name the words whose removal lowers the model's
    score for it most (occlusion, one batched call); models without scores keep the text preview."""
    model, _ = _safety_model(checker, profile)
    scores = verdict.provenance.get("scores") or {}
    pending = [t for t in verdict.triggers if t["by"] != RULE_ID and t["category"] in scores]
    words = text.split()
    if model is None or not pending or len(words) < 2:
        return
    words = words[:OCCLUSION_WORDS]
    content = [i for i, w in enumerate(words) if w.strip(PUNCTUATION).lower() not in FUNCTION_WORDS]
    if not content:
        return
    variants = [" ".join(words[:i] + words[i + 1:]) for i in content]
    results = model.classify(variants)
    for trig in pending:
        cat = trig["category"]
        drops = {i: scores[cat] - r.scores.get(cat, scores[cat]) for i, r in zip(content, results)}
        ranked = sorted(content, key=lambda i: -drops[i])
        top = [words[i].strip(PUNCTUATION) for i in ranked[:2] if drops[i] > 0]
        if top:
            trig["text"] = " ".join(top)
            trig["how"] = "occlusion: the words whose removal lowers the model's score most"


def refuse_unsafe(checker: Any, text: str, profile: str | None = None, what: str = "request") -> SafetyVerdict:
    """The verdict on a user's input; raises ValueError (the user's message, naming the category and the words
    that triggered it) when it is unsafe."""
    verdict = check_text(checker, text, profile)
    if not verdict.safe:
        explain_model_flag(checker, text, verdict, profile)
        raise ValueError(verdict.message(what))
    return verdict


@dataclass
class Screened:
    """Rewrites after the safety check: the indices kept, and a verdict per dropped index."""

    kept: list[int]
    dropped: dict[int, SafetyVerdict]
    verdicts: list[SafetyVerdict]

    def note(self, what: str = "rewrites") -> str:
        return dropped_note(list(self.dropped.values()), len(self.verdicts), what)


def screen(checker: Any, texts: Sequence[str], profile: str | None = None) -> Screened:
    verdicts = check_texts(checker, texts, profile)
    kept = [i for i, v in enumerate(verdicts) if v.safe]
    return Screened(kept, {i: v for i, v in enumerate(verdicts) if not v.safe}, verdicts)


def dropped_note(dropped: Sequence[SafetyVerdict], total: int, what: str = "rewrites") -> str:
    """"the safety check dropped 1 of 4 rewrites (weapons and explosives)": no text of the dropped ones."""
    if not dropped:
        return ""
    cats = list(dict.fromkeys(label for v in dropped for label in v.labels))
    return f"the safety check dropped {len(dropped)} of {total} {what} ({', '.join(cats)})"


def checker(ctx: Any, profile: str | None = None) -> Any:
    """`texts -> list[SafetyVerdict]` on the profile's safety role (+ the rule): what rewriting loops take."""
    def check(texts: Sequence[str]) -> list[SafetyVerdict]:
        return check_texts(ctx, texts, profile)

    return check
