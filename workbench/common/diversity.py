"""Diversity: the stand-in for UF-FGTG's adaptive feature extraction. Over-generate rewrites, then keep N by
maximal marginal relevance (Carbonell & Goldstein 1998) on text embeddings; a slider trades relevance to the
user's prompt against novelty over what is already chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from workbench.common.inputs import check_count, check_fraction


def _unit(vectors: Any) -> Any:
    import numpy as np

    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (n, d), got shape {v.shape}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def mmr_select(query: Any, candidates: Any, k: int, diversity: float = 0.5,
               fixed: Any | None = None, groups: Sequence[Any] | None = None) -> list[int]:
    """Indices of `k` candidates chosen greedily by MMR.

    score(c) = (1 - diversity) * cos(c, query) - diversity * max cos(c, s) over chosen (and `fixed`) s.
    diversity 0 is pure relevance; 1 is pure novelty. `fixed` holds vectors already shown to the user (the
    other candidates when one is regenerated), which count as chosen but are never returned. `groups` (one label
    per candidate, e.g. its facet) makes MMR pick among groups: a candidate whose group is already chosen waits
    until every group with candidates left has one.
    """
    import numpy as np

    diversity = check_fraction(diversity, "diversity")
    cands = _unit(candidates)
    n = cands.shape[0]
    k = check_count(k, "k", 1, max(1, n)) if n else 0
    if n == 0:
        return []
    q = _unit(np.asarray(query).reshape(1, -1))[0]
    relevance = cands @ q
    chosen: list[int] = []
    reference = [] if fixed is None else list(_unit(fixed))
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups must give one label per candidate, got {len(groups)} for {n}")
    while len(chosen) < k:
        best, best_score = -1, -np.inf
        used = {groups[i] for i in chosen} if groups is not None else set()
        fresh = groups is not None and any(groups[i] not in used for i in range(n) if i not in chosen)
        for i in range(n):
            if i in chosen or (fresh and groups[i] in used):
                continue
            redundancy = max((float(cands[i] @ r) for r in reference), default=0.0)
            score = (1.0 - diversity) * relevance[i] - diversity * redundancy
            if score > best_score + 1e-12:
                best, best_score = i, score
        chosen.append(best)
        reference.append(cands[best])
    return chosen


SET_SEARCH_LIMIT = 5000  # sets of k scored exhaustively; beyond, a local search from MMR's pick


def _set_value(relevance: Any, sims: Any, diversity: float) -> float:
    """`set_objective` from a set's relevances and its block of pairwise cosines (unit vectors: a diagonal of 1)."""
    n = len(relevance)
    spread = 1.0 - (float(sims.sum()) - n) / (n * n - n) if n > 1 else 0.0
    return (1.0 - diversity) * float(relevance.mean()) + diversity * spread


def set_objective(query: Any, vectors: Any, diversity: float) -> float:
    """(1 - diversity) * mean cos(c, query) + diversity * mean pairwise (1 - cos) over the set: what `set_select`
    maximises, and what the eval's intent and diversity columns measure (for one prompt)."""
    import numpy as np

    v = _unit(vectors)
    q = _unit(np.asarray(query).reshape(1, -1))[0]
    return _set_value(v @ q, v @ v.T, diversity)


def set_select(query: Any, candidates: Any, k: int, diversity: float = 0.5,
               groups: Sequence[Any] | None = None, top: int = 1) -> list[list[int]]:
    """The `top` best sets of `k` candidates by `set_objective`, best first (each a list of indices).

    MMR adds one candidate at a time against the ones already chosen; this scores whole sets, the way the N
    candidates are seen (and measured) together. `groups` (one label per candidate, e.g. its facet): only sets
    with as many distinct groups as there can be. Exhaustive up to SET_SEARCH_LIMIT sets; beyond, a local search
    (swap one member while the objective rises) from MMR's pick, which returns that one set.
    """
    import itertools
    import math

    import numpy as np

    diversity = check_fraction(diversity, "diversity")
    cands = _unit(candidates)
    n = cands.shape[0]
    if n == 0:
        return []
    k = check_count(k, "k", 1, max(1, n))
    check_count(top, "top", 1, 1000)
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups must give one label per candidate, got {len(groups)} for {n}")
    q = _unit(np.asarray(query).reshape(1, -1))[0]
    relevance = cands @ q
    sims = cands @ cands.T
    need = min(k, len(set(groups))) if groups is not None else 0

    def score(members: Sequence[int]) -> float:
        idx = list(members)
        return _set_value(relevance[idx], sims[np.ix_(idx, idx)], diversity)

    def allowed(members: Sequence[int]) -> bool:
        return groups is None or len({groups[i] for i in members}) >= need

    if math.comb(n, k) <= SET_SEARCH_LIMIT:
        ranked = sorted(((score(c), c) for c in itertools.combinations(range(n), k) if allowed(c)),
                        key=lambda sc: -sc[0])
        return [list(c) for _, c in ranked[:top]]
    chosen = mmr_select(query, candidates, k, diversity, groups=groups)
    best = score(chosen)
    improved = True
    while improved:
        improved = False
        for pos in range(len(chosen)):
            for i in range(n):
                if i in chosen:
                    continue
                trial = chosen[:pos] + [i] + chosen[pos + 1:]
                value = score(trial)
                if value > best + 1e-12 and allowed(trial):
                    chosen, best, improved = trial, value, True
    return [chosen]


@dataclass
class DiversityReport:
    mean: float  # mean pairwise cosine distance (1 - cos); 0 for fewer than two items
    matrix: list[list[float]]  # pairwise cosine distances

    def describe(self) -> str:
        if len(self.matrix) < 2:
            return "pairwise diversity: needs two or more items"
        return f"mean pairwise diversity (1 - cosine): {self.mean:.3f} over {len(self.matrix)} items"


def pairwise_diversity(vectors: Sequence[Any] | Any) -> DiversityReport:
    import numpy as np

    v = _unit(vectors) if len(vectors) else np.zeros((0, 1))
    n = v.shape[0]
    if n == 0:
        return DiversityReport(0.0, [])
    dist = 1.0 - v @ v.T
    np.fill_diagonal(dist, 0.0)
    mean = float(dist[np.triu_indices(n, 1)].mean()) if n > 1 else 0.0
    return DiversityReport(mean, [[round(float(x), 4) for x in row] for row in dist])
