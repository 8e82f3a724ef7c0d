"""Facet-tagged training pairs for the T2I rewriter (`python -m workbench.t2i.facet_pairs` writes
assets/t2i_pairs/facet_pairs.jsonl). Written by rules over the shipped fine prompts and the facet vocabulary data, never
by a model: for each training pair (held-out and validation pairs are left out) and each facet of
assets/t2i_facets.yaml, the target is the coarse prompt word for word (for subject detail: the fine prompt's subject
phrase, when it holds every content word of the coarse prompt) followed by phrases about that facet only:

1. the pair's own fine-prompt phrases that the facet's vocabulary claims (`facets.phrase_facet`), in their order;
2. then the facet's phrases from other training pairs of the same category that sit nearest the coarse prompt by
   embedding cosine (the profile's embedder; the order among the nearest 12 is shuffled by the seed), so that they
   fit the subject;
3. then the facet's openers (assets/t2i_facets.yaml; not the subject-detail ones, which start a phrase), if still
   short.

A phrase is skipped when it shares a word with what the target already holds (so no word repeats, and the coarse
prompt's content words are never said twice). Targets stop at `max_words` words, the offline rewriter's word budget.
Each row carries the facet, so the trainer asks for it with the same facet instruction the refiner adds at inference
(`refiner.facet_requests`, "instruction" steering)."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from workbench.common import facets as wfacets
from workbench.common.refiner import HELDOUT_FILE, PAIRS_FILE, Pair, heldout_ids, load_pairs

FACET_PAIRS_FILE = PAIRS_FILE.parent / "facet_pairs.jsonl"
VALIDATION_FILE = PAIRS_FILE.parent / "validation_ids.txt"
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
# words that may repeat across phrases without making a prompt repetitive
_FUNCTION = {"a", "an", "the", "of", "in", "on", "at", "by", "with", "and", "to", "from", "its", "his", "her",
             "their", "for", "into", "over", "under", "through", "as", "is", "are", "behind", "across", "near"}


# per facet, words of which a target holds at most one phrase's worth (one light source or time of day, one medium,
# one shot type, one place or weather): a donor phrase that would add a second, or one where the coarse prompt
# already names one, is skipped, so targets do not contradict themselves ("candlelit, golden hour sunlight"); the
# pair's own phrases always stay
EXCLUSIVE = {
    "lighting": {"sun", "sunlight", "sunlit", "moon", "moonlight", "moonlit", "candlelit", "candlelight", "neon",
                 "lamp", "lamplight", "golden", "dawn", "dusk", "sunset", "sunrise", "night", "overcast", "daylight",
                 "afternoon", "morning", "evening", "twilight", "noon", "nocturnal", "midday"},
    "style": {"painting", "photograph", "photography", "photo", "illustration", "render", "rendered", "drawing",
              "sketch", "anime", "watercolor", "watercolour", "oil", "ink", "pixel", "3d", "cartoon", "photorealistic",
              "realistic", "gouache", "pastel", "charcoal", "pencil", "engraving", "woodcut", "vector", "poster"},
    "composition": {"shot", "close-up", "closeup", "aerial", "overhead", "macro", "wide-angle", "telephoto", "drone",
                    "top-down", "mm", "35mm", "50mm", "85mm", "24mm", "300mm", "lens", "panorama", "panoramic"},
    "setting": {"forest", "street", "city", "room", "sea", "ocean", "beach", "mountain", "mountains", "meadow",
                "village", "garden", "desert", "river", "lake", "valley", "interior", "countryside", "kitchen",
                "studio", "landscape", "room", "rain", "rainy", "snow", "snowy", "storm", "stormy", "sunny", "fog",
                "foggy", "mist", "misty", "sky", "night", "nocturnal", "summer", "winter", "autumn", "spring"},
    "detail": set(),
}


DETAIL_DONOR_COSINE = 0.3


def _content(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _FUNCTION}


def facet_phrases(pairs: Iterable[Pair]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(category, facet) -> [(pair id, phrase)]: every non-subject phrase of the fine prompts, by the facet its
    vocabulary names."""
    table = wfacets.load_facets()
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for pair in pairs:
        for phrase in wfacets.phrases(pair.fine)[1:]:
            facet = wfacets.phrase_facet(phrase, table)
            if facet:
                out.setdefault((pair.category, facet), []).append((pair.id, phrase))
    return out


def facet_target(pair: Pair, facet: str, donors: list[tuple[str, str]], seed: int, max_words: int = 30,
                 min_added: int = 16) -> str:
    """The coarse prompt, then phrases about `facet` only (the pair's own, then donors', then the facet's openers),
    no content word twice, at most `max_words` words; stops once at least `min_added` words are added."""
    table = wfacets.load_facets()
    head = pair.coarse.strip().rstrip(",.;")
    subject = wfacets.phrases(pair.fine)[0] if wfacets.phrases(pair.fine) else head
    if facet == "detail" and _content(head) <= _content(subject) and len(subject.split()) <= max_words - 6:
        head = subject  # the fine prompt's own subject phrase: every word of the coarse prompt, with its details
    own = [p for p in wfacets.phrases(pair.fine)[1:] if wfacets.phrase_facet(p, table) == facet]
    rng = random.Random(f"{pair.id}:{facet}:{seed}")
    others = [p for pid, p in donors if pid != pair.id]  # nearest first
    near = others[:12]
    rng.shuffle(near)
    others = near + others[12:]
    # the detail facet's openers are the starts of phrases ("with glossy"), not phrases
    openers = list(table[facet].openers) if facet != "detail" else []
    rng.shuffle(openers)
    kept, used, words = [head], _content(head), len(head.split())
    exclusive = EXCLUSIVE.get(facet, set())
    taken = bool(exclusive & _content(" ".join([head] + own)))
    own_set = set(own)
    for phrase in own + others + openers:
        if words - len(head.split()) >= min_added:
            break
        size = len(phrase.split())
        if words + size > max_words:
            continue
        mine = _content(phrase)
        if not mine or mine & used:
            continue
        if phrase not in own_set and mine & exclusive:
            if taken:
                continue
            taken = True
        kept.append(phrase)
        used |= mine
        words += size
    return ", ".join(kept)


def build_facet_pairs(embed: Callable[[list[str]], Any], pairs: list[Pair] | None = None,
                      exclude: set[str] | None = None, seed: int = 0, max_words: int = 30) -> list[dict[str, Any]]:
    """One row per training pair and facet: {id, source, facet, coarse, fine, category}. `embed` maps texts to
    embedding rows (the profile's embedder), used to rank donor phrases by their cosine with the coarse prompt."""
    import numpy as np

    pairs = load_pairs() if pairs is None else pairs
    exclude = (heldout_ids(HELDOUT_FILE) | heldout_ids(VALIDATION_FILE)) if exclude is None else exclude
    train = [p for p in pairs if p.id not in exclude]
    donors = facet_phrases(train)
    texts = sorted({p for rows in donors.values() for _, p in rows} | {p.coarse for p in train})
    vectors = np.asarray(embed(texts), dtype=float)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = {t: i for i, t in enumerate(texts)}
    rows = []
    for pair in train:
        query = vectors[index[pair.coarse]]
        for facet in wfacets.facet_names():
            pool = donors.get((pair.category, facet), [])
            pool = sorted(pool, key=lambda d: -float(vectors[index[d[1]]] @ query))
            if facet == "detail":  # another subject's details rarely fit: only phrases close to this prompt
                pool = [d for d in pool if float(vectors[index[d[1]]] @ query) >= DETAIL_DONOR_COSINE]
            fine = facet_target(pair, facet, pool, seed, max_words)
            if len(fine.split()) - len(pair.coarse.split()) < 8 or not _content(pair.coarse) <= _content(fine):
                continue  # too little of this facet to show (a target must add something)
            rows.append({"id": f"{pair.id}-{facet}", "source": pair.id, "facet": facet, "coarse": pair.coarse,
                         "fine": fine, "category": pair.category})
    return rows


def main(argv: list[str] | None = None) -> int:
    from workbench.context import build_context
    from workbench.models import ManagedModel

    out = Path(argv[0]) if argv else FACET_PAIRS_FILE
    ctx = build_context(profile="offline")
    embedder = ManagedModel(ctx.manager, ctx.profiles["offline"].spec("embeddings"))
    rows = build_facet_pairs(lambda texts: embedder.embed(texts).vectors)
    with open(out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} facet pairs from {len({r['source'] for r in rows})} training pairs -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
