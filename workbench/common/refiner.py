"""The UF-FGTG refiner, our way: a chat model rewrites a coarse prompt into fine-grained ones, guided by an
editable system template and few-shot coarse->fine pairs retrieved by embedding similarity from the shipped
corpus (assets/t2i_pairs). Candidates are over-generated in one batched call and thinned by MMR."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from backends.base import GenerationSettings
from workbench.types import Provenance
from workbench.common.diversity import DiversityReport, mmr_select, pairwise_diversity, set_objective, set_select
from workbench.common.guard import GateResult, drop_invented, fit_to_window, quality_gate, words_of
from workbench.common import facets as wfacets
from workbench.text import escape_markdown
from workbench.common.inputs import MAX_POOL, check_count, check_fraction, check_prompt

PAIRS_FILE = Path(__file__).resolve().parents[2] / "assets" / "t2i_pairs" / "pairs.jsonl"

DEFAULT_SYSTEM_TEMPLATE = (
    "You rewrite short text-to-image prompts into detailed prompts for a diffusion model. Keep the subject, "
    "count, colours and action of the user's prompt. Add setting, composition and camera, lighting, style or "
    "medium, and quality words, as comma-separated phrases. Answer with the rewritten prompt only, on one line, "
    "in under 60 words."
)


# --------------------------------------------------------------------------- the few-shot corpus


@dataclass(frozen=True)
class Pair:
    id: str
    coarse: str
    fine: str
    bucket: str
    category: str


_PAIRS_CACHE: dict[str, list[Pair]] = {}
_VECTORS_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


HELDOUT_FILE = PAIRS_FILE.parent / "heldout_ids.txt"


def listed_lines(path: str | Path) -> list[str]:
    """The entries of a list file, in order: one a line, blank lines and '#' comments skipped ([] when absent)."""
    path = Path(path)
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def heldout_ids(path: str | Path = HELDOUT_FILE) -> set[str]:
    """Ids of the held-out pairs (evaluation only: never trained on, kept out of retrieval while evaluating)."""
    return set(listed_lines(path))


def load_pairs(path: str | Path = PAIRS_FILE) -> list[Pair]:
    """The coarse->fine corpus (read once per path); rows may also name the pair `idea` -> `prompt` (T2V)."""
    key = str(Path(path).resolve())
    with _CACHE_LOCK:
        if key in _PAIRS_CACHE:
            return _PAIRS_CACHE[key]
    if not Path(path).exists():
        raise FileNotFoundError(f"pairs file '{path}' does not exist")
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "idea" in row and "coarse" not in row:  # the T2V corpus (assets/t2v_pairs): idea -> video prompt
                row = {**row, "coarse": row["idea"], "fine": row.get("prompt")}
            missing = {k for k in ("id", "coarse", "fine") if row.get(k) is None}
            if missing:
                raise ValueError(f"{path}:{lineno} lacks fields {sorted(missing)}")
            pairs.append(Pair(row["id"], row["coarse"], row["fine"], row.get("bucket", ""), row.get("category", "")))
    with _CACHE_LOCK:
        _PAIRS_CACHE[key] = pairs
    return pairs


def _pair_vectors(embedder: Any, pairs: list[Pair], path_key: str) -> Any:
    """Embeddings of the coarse prompts, computed once per embedding model and corpus."""
    key = (embedder.spec.key, path_key)
    with _CACHE_LOCK:
        if key in _VECTORS_CACHE:
            return _VECTORS_CACHE[key]
    vectors = embedder.embed([p.coarse for p in pairs]).vectors
    with _CACHE_LOCK:
        _VECTORS_CACHE[key] = vectors
    return vectors


def retrieve_examples(embedder: Any, prompt: str, k: int = 3, pairs_path: str | Path = PAIRS_FILE,
                      exclude_ids: frozenset[str] | set[str] = frozenset()) -> list[tuple[Pair, float]]:
    """The `k` pairs whose coarse prompt is nearest to `prompt` by embedding cosine, nearest first (pairs in
    `exclude_ids` are never returned: the evaluation keeps its held-out pairs out of retrieval)."""
    import numpy as np

    k = check_count(k, "few_shot", 0, 8)
    if k == 0:
        return []
    pairs = load_pairs(pairs_path)
    vectors = _pair_vectors(embedder, pairs, str(Path(pairs_path).resolve()))
    query = embedder.embed([prompt]).vectors[0]
    sims = np.asarray(vectors) @ np.asarray(query)
    order = [i for i in np.argsort(-sims, kind="stable") if pairs[i].id not in exclude_ids][:k]
    return [(pairs[i], float(sims[i])) for i in order]


# --------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    text: str
    source: str  # "llm" | "baseline" | "edited"
    provenance: Provenance
    relevance: float | None = None  # embedding cosine with the prompt that was refined
    finish_reason: str = "stop"
    facet: str | None = None  # the facet it was steered to (assets/t2i_facets.yaml); None: undirected

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "relevance": self.relevance,
                "finish_reason": self.finish_reason, "facet": self.facet, "provenance": self.provenance.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Candidate":
        prov = Provenance(**{k: v for k, v in data["provenance"].items()})
        return cls(text=data["text"], source=data["source"], provenance=prov, relevance=data.get("relevance"),
                   finish_reason=data.get("finish_reason", "stop"), facet=data.get("facet"))


SELECTIONS = ("mmr", "set")
SET_RERANK = 20  # set selection with focus: the best sets before focus, scored again as focus leaves them


@dataclass
class RefineSettings:
    n: int = 4  # candidates shown
    overgenerate: float = 2.0  # pool = n * overgenerate rewrites, then MMR keeps n
    diversity: float = 0.5  # MMR trade-off: 0 = closest to the prompt, 1 = most different from each other
    # how the N are kept from the pool: "mmr" (one at a time, against those already kept) or "set" (whole sets of
    # N scored together by the same trade-off, as they are shown: diversity.set_select; README, "Facets")
    selection: str = "mmr"
    few_shot: int = 3  # retrieved coarse->fine examples in the conversation
    max_new_tokens: int = 96  # without a known encoder window: a 60-word prompt is ~80 tokens
    temperature: float = 0.9  # rewriting wants variety across the pool
    top_p: float = 0.95
    seed: int = 0
    guard: bool = True  # budget by the image encoder's window and drop degenerate rewrites before MMR
    intent_floor: float = 0.45  # the gate's minimum embedding cosine with the user's prompt (measured: see eval)
    repetition_penalty: float = 1.1  # measured with `python -m workbench.t2i eval` (README table)
    # the gate's repeat check: the same this many words said twice drops a rewrite (3 catches a small model's loops;
    # a rewriter whose own wording repeats three words, the world's "in the top left ... in the top right", brings
    # a longer one as its role's option `repeat_ngram`)
    repeat_ngram: int = 3
    no_repeat_ngram_size: int = 0  # the gate already drops repeats; 3 cut useful "of a", "in the" pairs
    window_margin: float = 1.3  # rewriter tokens generated per encoder token of the window (then fitted back)
    max_words: int = 0  # guarded: keep whole phrases up to this many words (0: the window alone limits length)
    # one facet per candidate (assets/t2i_facets.yaml; () = undirected): measured in the README's eval table
    facets: tuple[str, ...] = ()
    facet_steering: str = "prefix"  # how a candidate is steered: prefix, instruction, examples (joined by '+')
    further_keep_words: int = 12  # refine-further: words of the picked prompt (whole phrases) each candidate keeps
    # with facets: drop a chosen candidate's phrases about another candidate's facet or shared with another
    # candidate (facets.focus), keeping at least this many words beyond its start (0: off; measured: README)
    focus_words: int = 0
    # prefix steering: how many of the facet's openers start the answer (1-3); 0: the answer starts with the prompt
    # (in a refine-further, the kept start of the picked prompt) alone, and the facet is asked for by instruction
    facet_openers: int = 1
    # refine-further with facets and a started answer: the request asks to rewrite the kept start (not the whole
    # picked prompt), so the new candidates do not copy the picked prompt's other phrases back in (README, "Facets")
    further_from_kept: bool = False
    # the gate also drops a rewrite that loses or adds one of the prompt's objects (or changes what it said of one,
    # or of the scene) as the miniature world's parser reads them (workbench.world.rewriter.rewrite_departures): the
    # world rewriter's role option, where a changed shape or colour is another image (25% of its rewrites at 80
    # training steps)
    keep_objects: bool = False

    def check(self) -> "RefineSettings":
        check_count(self.n, "n")
        if not isinstance(self.overgenerate, (int, float)) or not 1.0 <= self.overgenerate <= 4.0:
            raise ValueError(f"overgenerate must be between 1 and 4, got {self.overgenerate!r}")
        check_fraction(self.diversity, "diversity")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        check_count(self.few_shot, "few_shot", 0, 8)
        check_fraction(self.intent_floor, "intent_floor")
        if isinstance(self.repeat_ngram, bool) or not isinstance(self.repeat_ngram, int) or not (
                2 <= self.repeat_ngram <= 10):
            raise ValueError(f"repeat_ngram must be a whole number between 2 and 10, got {self.repeat_ngram!r}")
        if not isinstance(self.window_margin, (int, float)) or not 1.0 <= self.window_margin <= 3.0:
            raise ValueError(f"window_margin must be between 1 and 3, got {self.window_margin!r}")
        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int) or not (
                self.max_words == 0 or 8 <= self.max_words <= 200):
            raise ValueError(f"max_words must be 0 (no limit) or a whole number between 8 and 200, got "
                             f"{self.max_words!r}")
        self.facets = wfacets.check_facets(self.facets)
        wfacets.check_steering(self.facet_steering)
        if isinstance(self.further_keep_words, bool) or not isinstance(self.further_keep_words, int) or not (
                1 <= self.further_keep_words <= 200):
            raise ValueError(f"further_keep_words must be a whole number between 1 and 200, got "
                             f"{self.further_keep_words!r}")
        if isinstance(self.focus_words, bool) or not isinstance(self.focus_words, int) or not (
                0 <= self.focus_words <= 200):
            raise ValueError(f"focus_words must be 0 (off) or a whole number up to 200, got {self.focus_words!r}")
        if not isinstance(self.further_from_kept, bool):
            raise ValueError(f"further_from_kept must be true or false, got {self.further_from_kept!r}")
        if isinstance(self.facet_openers, bool) or self.facet_openers not in (0, 1, 2, 3):
            raise ValueError(f"facet_openers must be 0, 1, 2 or 3, got {self.facet_openers!r}")
        if self.facets and self.facet_openers == 0 and set(wfacets.check_steering(self.facet_steering)) == {"prefix"}:
            raise ValueError("facet_openers 0 starts the answer with the prompt alone, so nothing asks for the facet: "
                             "add 'instruction' or 'examples' to facet_steering (e.g. prefix+instruction)")
        self.generation().check()
        return self

    def budget(self, window: Any) -> int:
        """New tokens for one rewrite: from the encoder's window when guarded and known, else max_new_tokens."""
        budget = self.max_new_tokens
        if self.guard and window is not None and window.limit:
            budget = max(16, math.ceil(window.limit * self.window_margin))
        if self.guard and self.max_words:  # ~1.6 rewriter tokens per word with commas, and room to finish
            budget = min(budget, max(16, math.ceil(self.max_words * 1.6) + 8))
        return budget

    @property
    def pool(self) -> int:
        return min(MAX_POOL, max(self.n, math.ceil(self.n * self.overgenerate)))

    def generation(self, num_return_sequences: int = 1, seed: int | None = None,
                   max_new_tokens: int | None = None) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=True,
                                  temperature=self.temperature, top_p=self.top_p,
                                  num_return_sequences=num_return_sequences, seed=self.seed if seed is None else seed,
                                  repetition_penalty=self.repetition_penalty,
                                  no_repeat_ngram_size=self.no_repeat_ngram_size)


@dataclass
class RefineResult:
    prompt: str
    candidates: list[Candidate]
    pool: list[str]  # every distinct parsed rewrite MMR chose from
    examples: list[dict[str, Any]]  # the retrieved few-shot pairs with their similarity
    messages: Any  # the conversation the rewriter saw
    diversity: DiversityReport
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)


_NOISE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd\u200b-\u200c\u200e-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")

_PREFIXES = [
    re.compile(r"^(?:\d+\s*[.):]|[-*\u2022])\s*"),
    re.compile(r"^(?:here(?:'s| is| are)\b[^:]*:)\s*", re.I),
    re.compile(r"^(?:(?:refined|rewritten|detailed|improved|new|fine|final|output)\s+)?prompt\s*:\s*", re.I),
    re.compile(r"^(?:assistant|answer|response)\s*:\s*", re.I),
]


def parse_candidate(text: str) -> str:
    """The first line of a model's answer that holds a prompt, without list markers, "Prompt:" labels, or
    quotes. Control characters and undecodable bytes (U+FFFD) are removed: they are model noise that
    the prompt checks would refuse. Returns "" when nothing usable is left."""
    text = _NOISE.sub("", text)
    for raw in text.splitlines():
        line = raw.strip()
        for pattern in _PREFIXES:
            line = pattern.sub("", line).strip()
        line = line.strip("\"'`\u201c\u201d ").strip()
        if line:
            return line
    return ""


def normalise(text: str) -> str:
    """Lower-cased words only: two rewrites that differ in case, spacing or punctuation count as one."""
    return " ".join(re.findall(r"[\w']+", text.lower()))


def build_messages(prompt: str, system_template: str, examples: Sequence[Pair]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_template}] if system_template.strip() else []
    for pair in examples:
        messages.append({"role": "user", "content": pair.coarse})
        messages.append({"role": "assistant", "content": pair.fine})
    messages.append({"role": "user", "content": prompt})
    return messages


def _conversation(chat: Any, prompt: str, system_template: str, examples: Sequence[Pair]) -> Any:
    """Chat models get messages; a plain rewriter such as Promptist (profile option `prompt_suffix`) gets
    the prompt with its suffix, as it was trained."""
    suffix = chat.spec.option("prompt_suffix")
    if suffix:
        return prompt + str(suffix)
    template = chat.spec.option("prompt_template")
    if template:  # a rewriter trained on one fixed instruction (VPO): the user's query goes inside it
        return [{"role": "user", "content": apply_prompt_template(str(template), prompt)}]
    return build_messages(prompt, system_template, examples)


def apply_prompt_template(template: str, prompt: str) -> str:
    """A profile's `prompt_template` with the user's query in place of `{query}`."""
    if "{query}" not in template:
        raise ValueError("a profile's prompt_template must contain {query} where the user's prompt goes")
    return template.replace("{query}", prompt)


@dataclass
class _Request:
    """One conversation to sample from: with `prefix`, the answer was started for the model (facet steering),
    and each rewrite is the prefix plus what the model wrote on."""

    conversation: Any
    prefix: str = ""
    facet: str | None = None


def further_seed(seed: int, picked: str) -> int:
    """The sampling seed of a refine-further round from `picked`: the settings' seed moved by a stable hash of the
    picked prompt. With the first round's seed, a child whose kept start is the prompt alone was sampled exactly as
    the first round's candidate of its facet, and came back word for word (seen in a walkthrough)."""
    import zlib

    return (seed + 1 + zlib.crc32(picked.encode("utf-8"))) % (2**31 - 7919 * 3)


def _join(prefix: str, text: str) -> str:
    if not prefix:
        return text
    if not text:
        return prefix
    return prefix + ("" if text[0] in ",.;:!" else " ") + text


def _sample(chat: Any, requests: Sequence[_Request], settings: RefineSettings, count: int, seed: int,
            exclude: set[str], window: Any = None,
            prefixes: dict[str, str] | None = None, known: Sequence[str] = (),
            invented: list[str] | None = None) -> tuple[list[tuple[str, Any, str | None]], int, int]:
    """(distinct parsed rewrites with their Generation and facet, how many came back empty, how many were
    shortened to fit the encoder's window) from one batched call: `count` samples per request. `prefixes`, if
    given, receives each rewrite's started answer (its steering prefix). Guarded, phrases with invented words
    are removed (guard.drop_invented; `known`: the user's words) and `invented`, if given, receives the words."""
    gens_per = chat.generate([r.conversation for r in requests],
                             settings.generation(num_return_sequences=count, seed=seed,
                                                 max_new_tokens=settings.budget(window)))
    out: list[tuple[str, Any, str | None]] = []
    empty = fitted = 0
    for request, gens in zip(requests, gens_per):
        for gen in gens:
            text = parse_candidate(_join(request.prefix, gen.text))
            if settings.guard and text:
                shorter = fit_to_window(text, window, cut_by_length=gen.finish_reason == "length",
                                        max_words=settings.max_words)
                fitted += shorter != text
                text, coined = drop_invented(shorter, request.prefix, known)
                if invented is not None:
                    invented += coined
            key = normalise(text)
            if not key or (request.prefix and key == normalise(request.prefix)):
                empty += 1
                continue
            if key in exclude:
                continue
            exclude.add(key)
            out.append((text, gen, request.facet))
            if prefixes is not None:
                prefixes[text] = request.prefix
    return out, empty, fitted


def retrieve_facet_examples(embedder: Any, prompt: str, facet: str, k: int, pairs_path: str | Path = PAIRS_FILE,
                            exclude_ids: frozenset[str] | set[str] = frozenset()) -> list[tuple[Pair, float]]:
    """The `k` nearest pairs whose fine prompt carries `facet` (by its vocabulary), nearest first; the nearest
    pairs of any facet fill up when too few carry it."""
    near = retrieve_examples(embedder, prompt, min(8, max(k, 1) * 4) if k else 0, pairs_path, exclude_ids)
    carrying = [(p, s) for p, s in near if facet in wfacets.facets_present(p.fine)]
    rest = [(p, s) for p, s in near if (p, s) not in carrying]
    return (carrying + rest)[:k]


def facet_system_template(system_template: str, facet: str) -> str:
    """The system template with the facet's instruction added: how "instruction" steering asks for a facet, and how
    the rewriter's facet-tagged training pairs ask for it (workbench.common.rewriter_train)."""
    return (system_template.rstrip() + " " + wfacets.load_facets()[facet].instruction).strip()


def facet_requests(chat: Any, embedder: Any, prompt: str, settings: RefineSettings, system_template: str,
                   retrieved: Sequence[Pair], facets: Sequence[str], seed: int, further: bool = False,
                   pairs_path: str | Path = PAIRS_FILE,
                   exclude_ids: frozenset[str] | set[str] = frozenset()) -> tuple[list[_Request], list[str], str]:
    """One request per facet, steered as `settings.facet_steering` says: "prefix" starts the answer with the head
    and one of the facet's openers (only where the backend lets us write the start of its answer: a white-box
    model; elsewhere the instruction steers instead, and a note says so); "instruction" adds the facet's
    instruction to the system template; "examples" retrieves few-shot pairs that carry the facet. In a
    refine-further (`further`), the head is the picked prompt without that facet's phrases, so each candidate
    changes or adds a different facet of it."""
    steering = set(wfacets.check_steering(settings.facet_steering))
    notes: list[str] = []
    if "prefix" in steering and "white_box" not in chat.capabilities.kinds:
        steering = (steering - {"prefix"}) | {"instruction"}
        notes.append(f"the rewriter '{chat.spec.model_id}' cannot be given the start of its answer, so each facet "
                     f"is asked for by instruction instead")
    table = wfacets.load_facets()
    requests = []
    for j, name in enumerate(facets):
        facet = table[name]
        examples = list(retrieved)
        if "examples" in steering:
            examples = [p for p, _ in retrieve_facet_examples(embedder, prompt, name, settings.few_shot, pairs_path,
                                                              exclude_ids)]
        template = facet_system_template(system_template, name) if "instruction" in steering else system_template
        head = wfacets.without_facet(prompt, name, settings.further_keep_words) if further else prompt
        # further_from_kept: where the answer is started with the kept start, the request shows it alone, so the
        # rewriter cannot copy the rest back (a rewriter steered by instruction alone still sees the picked prompt)
        kept_only = further and settings.further_from_kept and "prefix" in steering
        conversation = _conversation(chat, head if kept_only else prompt, template, examples)
        prefix = ""
        if "prefix" in steering:
            prefix = wfacets.steer_prefix(head, facet, seed + j, settings.facet_openers)
            text = chat.format_chat(conversation)
            plain = isinstance(conversation, str)  # a plain rewriter (Promptist): its prompt text goes on
            conversation = text + (" " if plain and not text.endswith((" ", "\n")) else "") + prefix
        requests.append(_Request(conversation, prefix, name))
    return requests, notes, "+".join(s for s in wfacets.STEERING if s in steering)


@dataclass
class _Pool:
    """Rewrites that passed the gate, and those it dropped (with reasons), with their relevance to the prompt."""

    passed: list[tuple[str, Any, float]] = field(default_factory=list)
    dropped: list[tuple[str, Any, float, str]] = field(default_factory=list)
    empty: int = 0
    fitted: int = 0
    query: Any = None  # the prompt's embedding
    vectors: dict[str, Any] = field(default_factory=dict)  # each rewrite's embedding, reused by MMR
    unsafe: list[Any] = field(default_factory=list)  # SafetyVerdicts of rewrites dropped unseen (never shown)
    safe: dict[str, Any] = field(default_factory=dict)  # rewrite -> its SafetyVerdict (for the provenance)
    screened: int = 0
    facet_of: dict[str, str | None] = field(default_factory=dict)  # each rewrite's facet (None: undirected)
    prefix_of: dict[str, str] = field(default_factory=dict)  # each rewrite's steering prefix ("" when unsteered)
    invented: list[str] = field(default_factory=list)  # invented words whose phrases the guard removed
    changed: set[str] = field(default_factory=set)  # rewrites dropped for changing the prompt's objects (keep_objects)

    def add(self, embedder: Any, prompt: str, got: list[tuple[str, Any, str | None]], settings: RefineSettings,
            safety: Any = None) -> None:
        """Screen `got` with `safety` (texts -> SafetyVerdicts) first: an unsafe rewrite is dropped before the
        gate, so it never reaches the candidates, the pool, the notes or the fallback."""
        if got and safety is not None:
            verdicts = safety([g[0] for g in got])
            self.screened += len(got)
            self.unsafe += [v for v in verdicts if not v.safe]
            self.safe.update({g[0]: v for g, v in zip(got, verdicts) if v.safe})
            got = [g for g, v in zip(got, verdicts) if v.safe]
        if not got:
            return
        self.facet_of.update({t: f for t, _, f in got})
        got = [(t, g) for t, g, _ in got]
        head = [prompt] if self.query is None else []
        vectors = embedder.embed(head + [t for t, _ in got]).vectors
        if head:
            self.query, vectors = vectors[0], vectors[1:]
        self.vectors.update({t: v for (t, _), v in zip(got, vectors)})
        rel = [float(v) for v in vectors @ self.query]
        if not settings.guard:
            self.passed += [(t, g, r) for (t, g), r in zip(got, rel)]
            return
        gate = quality_gate([t for t, _ in got], rel, settings.intent_floor, settings.repeat_ngram)
        if settings.keep_objects:
            from workbench.world.rewriter import rewrite_departures

            # every rewrite is checked, also one the gate dropped for another reason first (a drift, a repeat):
            # one that changes the prompt's objects must never come back as the fallback either
            for i in range(len(got)):
                changed = rewrite_departures(prompt, got[i][0])
                if not changed:
                    continue
                self.changed.add(got[i][0])
                if i in gate.kept:
                    gate.kept.remove(i)
                    gate.dropped[i] = "changes the prompt's objects (" + ", ".join(f"“{c}”" for c in changed) + ")"
        self.passed += [(got[i][0], got[i][1], rel[i]) for i in gate.kept]
        self.dropped += [(got[i][0], got[i][1], rel[i], why) for i, why in gate.dropped.items()]

    def notes(self, settings: RefineSettings, window: Any) -> list[str]:
        from workbench.safety import dropped_note

        out = []
        if self.unsafe:
            out.append(dropped_note(self.unsafe, self.screened))
        if self.empty:
            out.append(f"{self.empty} rewrite(s) came back empty and were dropped")
        if self.fitted and (window is not None or settings.max_words):
            limits = ([f"the rewriter's {settings.max_words}-word budget"] if settings.max_words else []) + (
                [f"the image model's {window.limit}-token text window"] if window is not None else [])
            out.append(f"{self.fitted} rewrite(s) were shortened at a phrase boundary to fit "
                       + " and ".join(limits))
        if self.invented:
            shown = ", ".join(f"“{escape_markdown(w)}”" for w in dict.fromkeys(self.invented).keys() if w)
            out.append(f"{len(self.invented)} invented word(s) (in no English word list) were removed with their "
                       f"phrases: {shown[:200]}")
        if self.dropped:
            gate = GateResult(kept=list(range(len(self.passed))),
                              dropped={i: d[3] for i, d in enumerate(self.dropped)})
            reasons = "; ".join(f"“{escape_markdown(t[:60])}” {why}" for t, _, _, why in self.dropped[:3])
            out.append(gate.summary() + (f" (e.g. {reasons})" if reasons else ""))
        return out

    def stacked(self, items: Sequence[tuple[str, Any, float]]) -> Any:
        """The embeddings of `items` (rows), computed when they were gated."""
        import numpy as np

        return np.stack([self.vectors[t] for t, _, _ in items])

    def fallback(self) -> list[tuple[str, Any, float]]:
        """When every rewrite failed the gate: the dropped ones, closest to the prompt first (shown with a note),
        never one that changes the prompt's objects (keep_objects: that is another scene, not a weaker rewrite)."""
        return [(t, g, r) for t, g, r, _ in sorted(self.dropped, key=lambda d: -d[2]) if t not in self.changed]


def with_rewriter_defaults(settings: RefineSettings, spec: Any) -> RefineSettings:
    """A rewriter may bring settings of its own as data, its role's options: `max_words`, a word budget (e.g. the
    offline adapter trained on ~30-word prompts; applies where the settings leave `max_words` at 0);
    `repeat_ngram`, the gate's repeat length for a rewriter whose own wording repeats shorter runs (the world's);
    `repetition_penalty`, for a rewriter that must say the prompt's words again (the penalty counts the prompt's
    tokens too: at 1.1 the world rewriter turned "a blue triangle" into "a small red triangle ...");
    `facets: false`, a rewriter trained on one undirected request, which facet steering would take out of its
    format (the world rewriter: an opener would start its answer with words outside the world), so no facet is asked
    for (`facets_turned_off` says so to the user); `keep_objects: true`, the gate drops a rewrite that changes the
    prompt's objects as the world's parser reads them (RefineSettings.keep_objects)."""
    changes: dict[str, Any] = {}
    budget = spec.option("max_words")
    if budget and not settings.max_words:
        changes["max_words"] = int(budget)
    if spec.option("repeat_ngram"):
        changes["repeat_ngram"] = int(spec.option("repeat_ngram"))
    if spec.option("repetition_penalty") is not None:
        changes["repetition_penalty"] = float(spec.option("repetition_penalty"))
    if spec.option("facets") is False and settings.facets:
        changes["facets"] = ()
    if spec.option("keep_objects") is True:
        changes["keep_objects"] = True
    return dataclasses.replace(settings, **changes).check() if changes else settings


def facets_turned_off(asked: RefineSettings, used: RefineSettings, spec: Any) -> list[str]:
    """The note for a refine whose facets the rewriter's role turned off (`with_rewriter_defaults`)."""
    if not asked.facets or used.facets:
        return []
    return [f"the rewriter '{rewriter_name(spec)}' was trained on one undirected request (its role's option facets: "
            f"false), so the facets were not asked for"]


def rewriter_name(spec: Any) -> str:
    """The rewriter as the status line and the records name it: the model id, and its LoRA adapter if any."""
    adapter = spec.option("adapter")
    return spec.model_id + (f" + adapter {Path(str(adapter)).name}" if adapter else "")


def refine_candidates(chat: Any, embedder: Any, prompt: str, settings: RefineSettings | None = None,
                      system_template: str = DEFAULT_SYSTEM_TEMPLATE,
                      pairs_path: str | Path = PAIRS_FILE, window: Any = None,
                      exclude_ids: frozenset[str] | set[str] = frozenset(), safety: Any = None,
                      further: bool = False) -> RefineResult:
    """N fine-grained rewrites of `prompt`: retrieve few-shot pairs, over-generate `settings.pool` rewrites in
    one batched generate call (budgeted by the image encoder's `window` when guarded), fit each to the window at
    a phrase boundary, drop empty answers, duplicates, copies of the prompt, rewrites `safety` (texts ->
    SafetyVerdicts, workbench.safety) marks unsafe, and (guarded) rewrites that fail the quality gate
    (workbench.common.guard), keep N by MMR. With `settings.facets`, each facet is asked for in its own
    conversation (see `facet_requests`) and MMR picks among facets; `further` marks a refine-further of a picked
    prompt (each candidate keeps its head and changes or adds one facet)."""
    asked = (settings or RefineSettings()).check()
    settings = with_rewriter_defaults(asked, chat.spec)
    prompt = check_prompt(prompt)
    if not isinstance(system_template, str):
        raise ValueError("system_template must be text")
    retrieved = retrieve_examples(embedder, prompt, settings.few_shot, pairs_path, exclude_ids)
    conversation = _conversation(chat, prompt, system_template, [p for p, _ in retrieved])
    notes: list[str] = facets_turned_off(asked, settings, chat.spec)
    seen = {normalise(prompt)}
    prompt_words = words_of(prompt)
    pool = _Pool()
    facets = settings.facets
    steered = ""
    base_seed = further_seed(settings.seed, prompt) if further else settings.seed
    for attempt in range(3):  # top up when the model repeats itself, answers with nothing, or fails the gate
        need = settings.pool - len(pool.passed) if attempt == 0 else settings.n - len(pool.passed)
        if need <= 0:
            break
        seed = base_seed + attempt * 7919
        if facets:
            # each facet gets its share of the pool; a top-up asks again for the facets still missing
            have = {pool.facet_of.get(t) for t, _, _ in pool.passed}
            wanted = [f for f in facets if f not in have] or list(facets) if attempt else list(facets)
            requests, steer_notes, steered = facet_requests(chat, embedder, prompt, settings, system_template,
                                                            [p for p, _ in retrieved], wanted, seed, further,
                                                            pairs_path, exclude_ids)
            if attempt == 0:
                notes += steer_notes
            count = max(1, math.ceil(max(need, settings.n) / len(wanted)))
        else:
            requests, count = [_Request(conversation)], min(MAX_POOL, max(need, settings.n))
        got, empty, fitted = _sample(chat, requests, settings, count, seed, seen, window, pool.prefix_of,
                                     known=prompt_words, invented=pool.invented)
        pool.empty += empty
        pool.fitted += fitted
        pool.add(embedder, prompt, got, settings, safety)
    notes += pool.notes(settings, window)
    passed = pool.passed
    if not passed and pool.dropped:
        passed = pool.fallback()
        notes.append("every rewrite failed the quality gate: showing the closest ones anyway; try another seed, a "
                     "higher temperature, or another rewriter")
    if not passed and pool.unsafe:
        raise ValueError(f"every rewrite was unsafe and none is shown: {pool.notes(settings, None)[0]}; rephrase the "
                         f"prompt or try another seed")
    if not passed and pool.changed:
        raise RuntimeError(
            f"every rewrite the rewriter '{chat.spec.model_id}' wrote in three tries changed the prompt's objects, "
            f"places or background (the world gate: {len(pool.changed)} of them), and none is shown; try another "
            f"seed, or a coarser prompt (\"a red star and a blue ring\") for the rewriter to add details to"
        )
    if not passed:
        raise RuntimeError(
            f"the rewriter '{chat.spec.model_id}' produced no usable rewrite of this prompt in three tries; "
            f"try a higher temperature, another seed, or another rewriter"
        )
    if len(passed) < settings.n:
        notes.append(f"only {len(passed)} usable rewrite(s) of the {settings.n} asked for (raise the temperature or "
                     f"change the seed)")
    texts = [t for t, _, _ in passed]
    vectors = pool.stacked(passed)
    groups = [pool.facet_of.get(t) for t in texts] if facets else None
    chosen, (shown, shown_vectors, relevance, dropped) = _select(embedder, pool, prompt, passed, vectors, groups,
                                                                 settings)
    if facets:
        missing = [f for f in facets[:settings.n] if f not in {groups[i] for i in chosen}]
        if missing and len(facets) <= settings.n:
            notes.append(f"no usable rewrite for the facet(s) {', '.join(missing)}: their rewrites failed the "
                         f"quality gate")
    candidates = []
    budget = settings.budget(window)
    for k, i in enumerate(chosen):
        text, gen, _ = passed[i]
        facet = pool.facet_of.get(text)
        prov = gen.provenance
        prov = Provenance(**{**vars(prov), "settings": {**prov.settings, "system_template": system_template,
                                                         "few_shot_ids": [p.id for p, _ in retrieved],
                                                         "mmr_diversity": settings.diversity, "selection": settings.selection,
                                                         "pool": len(texts),
                                                         "guard": settings.guard,
                                                         "intent_floor": settings.intent_floor,
                                                         "window": getattr(window, "limit", None),
                                                         **_safety_provenance(pool, text),
                                                         "facet": facet,
                                                         "facet_steering": steered if facet else None,
                                                         "refine_further": further,
                                                         **({"focus": {"rewrite": text, "dropped": dropped[k],
                                                                       "focus_words": settings.focus_words}}
                                                            if dropped[k] else {})}})
        candidates.append(Candidate(text=shown[k], source="llm", provenance=prov, relevance=relevance[k],
                                    finish_reason=gen.finish_reason, facet=facet))
        if gen.finish_reason == "length" and not settings.guard:
            notes.append(f"candidate {len(candidates)} hit the {budget}-token limit and may be cut short")
    return RefineResult(
        prompt=prompt, candidates=candidates, pool=texts,
        examples=[{"id": p.id, "coarse": p.coarse, "fine": p.fine, "similarity": round(s, 4)} for p, s in retrieved],
        messages=conversation, diversity=pairwise_diversity(shown_vectors),
        settings={**vars(settings), "pool": settings.pool, "rewriter": rewriter_name(chat.spec),
                  "embedder": embedder.spec.model_id, "max_new_tokens": budget,
                  "window": getattr(window, "limit", None), "dropped_by_gate": len(pool.dropped),
                  "kept_by_gate": len(pool.passed),
                  "dropped_unsafe": len(pool.unsafe),
                  "safety": pool.unsafe[0].source if pool.unsafe else
                  next((v.source for v in pool.safe.values()), None),
                  "refine_further": further}, notes=notes,
    )


def _select(embedder: Any, pool: _Pool, prompt: str, passed: list, vectors: Any, groups: list | None,
            settings: RefineSettings) -> tuple[list[int], tuple[list[str], Any, list[float], list[list[str]]]]:
    """The N rewrites kept (indices into `passed`) and what `_focused` makes of them. "mmr" picks one at a time;
    "set" ranks whole sets by `set_objective` and, where focus will change them, scores the best SET_RERANK sets
    again as focus leaves them (focus drops phrases against the other chosen candidates, so a set's diversity as
    shown is only known once its members are known)."""
    k = min(settings.n, len(passed))

    def shown_as(chosen: list[int]) -> tuple[list[str], Any, list[float], list[list[str]]]:
        return _focused(embedder, pool, prompt, [passed[i][0] for i in chosen], vectors[chosen],
                        [passed[i][2] for i in chosen], settings)

    if settings.selection == "mmr" or k < 2:
        chosen = mmr_select(pool.query, vectors, k, settings.diversity, groups=groups)
        return chosen, shown_as(chosen)
    focusing = bool(settings.focus_words) and groups is not None and any(groups)
    sets = set_select(pool.query, vectors, k, settings.diversity, groups=groups, top=SET_RERANK if focusing else 1)
    best: tuple[float, list[int], Any] | None = None
    for chosen in sets:
        chosen = sorted(chosen, key=lambda i: -passed[i][2])  # the closest first, as MMR's first pick
        view = shown_as(chosen)
        value = set_objective(pool.query, view[1], settings.diversity)
        if best is None or value > best[0] + 1e-12:
            best = (value, chosen, view)
    return best[1], best[2]


def _focused(embedder: Any, pool: _Pool, prompt: str, texts: list[str], vectors: Any, relevance: list[float],
             settings: RefineSettings) -> tuple[list[str], Any, list[float], list[list[str]]]:
    """The chosen rewrites kept to their own facets (`facets.focus`, with `settings.focus_words`), their
    embeddings and relevance (recomputed where a phrase was dropped), and the phrases dropped from each."""
    import numpy as np

    facets = [pool.facet_of.get(t) for t in texts]
    if not settings.focus_words or not any(facets):
        return texts, vectors, relevance, [[] for _ in texts]
    # the floor counts from what the candidate starts from: the prompt (or the kept start of a picked prompt) and
    # the facet's opener when the answer was started for it; a rewrite asked for by instruction alone starts with
    # its own wording of the prompt, taken as its first as many phrases as the prompt has
    size = max(1, len(wfacets.phrases(prompt)))
    prefixes = [pool.prefix_of.get(t, "") for t in texts]
    heads = [p or ", ".join(wfacets.phrases(t)[:size]) for t, p in zip(texts, prefixes)]
    floors = [len(", ".join(wfacets.phrases(h)[:-1]).split()) + settings.focus_words
              if p and settings.facet_openers else len(h.split()) + settings.focus_words
              for p, h in zip(prefixes, heads)]
    shown = wfacets.focus(texts, facets, heads, floors)
    dropped = [[p for p in wfacets.phrases(t) if p not in wfacets.phrases(s)] for t, s in zip(texts, shown)]
    changed = [k for k, (t, s) in enumerate(zip(texts, shown)) if t != s]
    vectors = np.array(vectors, dtype=float, copy=True)
    relevance = list(relevance)
    if changed:
        new = np.asarray(embedder.embed([shown[k] for k in changed]).vectors)
        for row, k in zip(new, changed):
            vectors[k] = row
            relevance[k] = float(row @ pool.query)
    return shown, vectors, relevance, dropped


def _safety_provenance(pool: _Pool, text: str) -> dict[str, Any]:
    """The verdict on a kept rewrite, for its provenance (nothing when no safety check ran)."""
    verdict = pool.safe.get(text)
    if verdict is None:
        return {}
    return {"safety": {"safe": True, "source": verdict.source, "rule": verdict.provenance.get("rule"),
                       "scores": verdict.provenance.get("scores", {})}}


def regeneration_facet(facets: Sequence[str], shown: Sequence[str | None], current: str | None = None,
                       seed: int = 0) -> str | None:
    """The facet a regenerated slot is written for: one of `facets` that no other candidate shows (`shown`),
    preferring one the slot itself did not have (`current`), so a regeneration explores a new emphasis; the slot's
    own facet when every other facet is shown; None for an undirected refine (no facets asked for)."""
    if not facets:
        return None
    free = [f for f in facets if f not in set(shown)]
    fresh = [f for f in free if f != current]
    pool = fresh or free or list(facets)
    return pool[seed % len(pool)]


def regenerate_one(chat: Any, embedder: Any, prompt: str, others: Sequence[str], settings: RefineSettings,
                   system_template: str = DEFAULT_SYSTEM_TEMPLATE, pairs_path: str | Path = PAIRS_FILE,
                   window: Any = None, safety: Any = None, others_facets: Sequence[str | None] = (),
                   current_facet: str | None = None, further: bool = False) -> Candidate:
    """A fresh candidate to replace one slot: sample a small pool with this settings' seed, guard it as
    `refine_candidates` does, and keep the one that MMR prefers against the candidates that stay (`others`).
    With `settings.facets`, the new candidate is written for a facet the other candidates do not show
    (`others_facets`; see `regeneration_facet`), steered as a refine is; `further` when the slot belongs to a
    refine-further round (the new candidate keeps the picked prompt's start)."""
    settings = with_rewriter_defaults(settings.check(), chat.spec)
    prompt = check_prompt(prompt)
    if others_facets and len(others_facets) != len(others):
        raise ValueError(f"others_facets must give one facet (or None) per other candidate, got {len(others_facets)} "
                         f"for {len(others)}")
    retrieved = retrieve_examples(embedder, prompt, settings.few_shot, pairs_path)
    conversation = _conversation(chat, prompt, system_template, [p for p, _ in retrieved])
    facet = regeneration_facet(settings.facets, list(others_facets), current_facet, settings.seed)
    seen = {normalise(prompt)} | {normalise(o) for o in others if o.strip()}
    pool = _Pool()
    steered = ""
    base_seed = further_seed(settings.seed, prompt) if further else settings.seed
    prompt_words = words_of(prompt)
    for attempt in range(3):
        seed = base_seed + attempt * 7919
        if facet:
            requests, _, steered = facet_requests(chat, embedder, prompt, settings, system_template,
                                                  [p for p, _ in retrieved], [facet], seed, further, pairs_path)
        else:
            requests = [_Request(conversation)]
        got, _, _ = _sample(chat, requests, settings, 4, seed, seen, window, known=prompt_words)
        pool.add(embedder, prompt, got, settings, safety)
        if pool.passed:
            break
    passed = pool.passed or pool.fallback()
    if not passed and pool.unsafe:
        raise ValueError(f"every new rewrite was unsafe and none is shown: {pool.notes(settings, None)[0]}; try "
                         f"another seed")
    if not passed:
        raise RuntimeError(f"the rewriter '{chat.spec.model_id}' produced no new rewrite in three tries; "
                           f"try a higher temperature or another seed")
    kept = [o for o in others if o.strip()]
    cand_vecs = pool.stacked(passed)
    fixed = embedder.embed(kept).vectors if kept else None
    index = mmr_select(pool.query, cand_vecs, 1, settings.diversity, fixed=fixed)[0]
    text, gen, rel = passed[index]
    prov = Provenance(**{**vars(gen.provenance), "settings": {**gen.provenance.settings,
                                                              "system_template": system_template,
                                                              "few_shot_ids": [p.id for p, _ in retrieved],
                                                              "regenerated": True, "guard": settings.guard,
                                                              **_safety_provenance(pool, text),
                                                              "facet": facet,
                                                              "facet_steering": steered if facet else None,
                                                              "refine_further": further}})
    return Candidate(text=text, source="llm", provenance=prov, relevance=rel, finish_reason=gen.finish_reason,
                     facet=facet)
