"""Top-k BM25 with MaxScore pruning, giving exactly the slots and scores of scoring every posting.

Each term has a bound, at least the most it adds to an object: the exact maximum for terms with few
postings (scored up front), else one from its largest count and the field's smallest length norm.
Terms are read from the largest bound down (rare terms first); once a lower bound on the k-th best
score (the k-th best partial score of the objects read so far) beats the sum of the bounds of the
terms left, an object holding none of the terms read cannot reach the top ``k``, so the remaining
(common, long) terms are scored only for the objects already found. Final scores are summed in the
query's own term order, so each equals, to the bit, what scoring every posting gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omniembed.store.engines.keyword.scoring import normed_scores, top

SLACK = 1e-9  # relative margin on the pruning test, far above the rounding of a few float64 sums
PROBE = 1 << 15  # postings whose partial scores estimate the limit-th best score
EXACT = 1 << 16  # terms with at most this many postings are scored first, for their exact bounds


@dataclass
class Term:
    """The live postings of one query term in one field, with what scoring them needs."""

    slots: np.ndarray
    tfs: np.ndarray
    norms: np.ndarray  # the field's length norm per slot (:func:`.scoring.length_norms`)
    least: float  # the smallest norm of an object holding any term
    idf: float
    boost: float

    def scores(self, k1: float, where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The slots (those at positions ``where``, if given) and the boosted term scores there."""
        slots, tfs = self.slots, self.tfs
        if where is not None:
            slots, tfs = slots[where], tfs[where]
        return slots, normed_scores(tfs, self.norms[slots], self.idf, k1, self.boost)

    def bound(self, k1: float) -> float:
        """At least the most this term adds to an object, without scoring its postings (the score
        grows with the count and shrinks with the norm)."""
        if not len(self.tfs):
            return 0.0
        most = float(self.tfs.max())
        return self.boost * self.idf * most * (k1 + 1) / (most + self.least)


def best(
    terms: Sequence[Term],
    limit: int,
    k1: float,
    scores: np.ndarray,
    mark: np.ndarray,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``limit`` slots with a positive score and their scores, best first, ties by slot.

    Args:
        terms: the query's terms, in the order their scores are summed.
        scores, mark: float64 and bool scratch arrays over every slot, zero on entry and on return.
        allowed: when given, a bool array over every slot: only slots true there can match.
    """
    scored = {i: term.scores(k1) for i, term in enumerate(terms) if len(term.slots) <= EXACT}
    bounds = [
        (float(scored[i][1].max()) if len(terms[i].slots) else 0.0) if i in scored else term.bound(k1)
        for i, term in enumerate(terms)
    ]
    order = sorted(range(len(terms)), key=lambda i: -bounds[i])
    rest = [*np.cumsum([bounds[i] for i in order][::-1])[::-1].tolist(), 0.0]  # rest[i]: order[i:]
    left = [*np.cumsum([len(terms[i].slots) for i in order][::-1])[::-1].tolist(), 0]  # postings, alike
    if min(term.boost for term in terms) < 0:  # a negative term can lower a partial score: no pruning
        rest = [np.inf] * len(rest)
    summed, cut, floor = 0, len(order), 0.0  # floor: at least the limit-th best final score, about
    for i in range(1, len(order)):
        if rest[i] < rest[0] - rest[i] and left[i] > left[0] - left[i]:  # could pass, and worth testing
            for j in order[summed:i]:
                slots, values = scored[j] if j in scored else scored.setdefault(j, terms[j].scores(k1))
                np.add.at(scores, slots, values)  # faster than += on a fancy index; slots are distinct
            summed = i
            floor = max(floor, _kth(scores, _probe([scored[j][0] for j in order[:i]]), limit, allowed))
            if rest[i] * (1 + SLACK) < floor:
                cut = i
                break
    essential = set(order[:cut])
    everything = _union([terms[j].slots for j in order[:cut]], mark)  # marks them too
    scores[everything] = 0.0
    chosen = everything
    if allowed is not None:
        chosen = everything[allowed[everything]]
        mark[everything] = False
        mark[chosen] = True
    try:
        for at, term in enumerate(terms):
            if at not in essential:
                slots, values = term.scores(k1, np.flatnonzero(mark[term.slots]))
            else:
                slots, values = scored[at] if at in scored else term.scores(k1)
            np.add.at(scores, slots, values)
        values = scores[chosen]
        keep = values >= floor * (1 - SLACK) if floor > 0 else values > 0  # the others cannot rank
        picked = top(scores, chosen[keep], limit).astype(np.int64)
        return picked, scores[picked]
    finally:
        scores[everything] = 0.0
        mark[everything] = False


def _union(found: Sequence[np.ndarray], mark: np.ndarray) -> np.ndarray:
    """The distinct slots of ``found``, ascending, each set in ``mark`` (a bool scratch)."""
    for slots in found:
        mark[slots] = True
    return found[0] if len(found) == 1 else np.flatnonzero(mark)


def _probe(found: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The first of ``found`` and those after it while they hold under ``PROBE`` postings in all: a
    subset whose limit-th best score is a cheap lower bound for that of all."""
    taken, size = [found[0]], len(found[0])
    for slots in found[1:]:
        size += len(slots)
        if size > PROBE:
            break
        taken.append(slots)
    return taken


def _kth(scores: np.ndarray, found: Sequence[np.ndarray], limit: int, allowed: np.ndarray | None) -> float:
    """The ``limit``-th best score among the distinct slots in ``found`` (0 if fewer hold one)."""
    slots = np.concatenate(found) if len(found) > 1 else found[0]
    if allowed is not None:
        slots = slots[allowed[slots]]
    values = scores[slots]
    keep = limit * len(found)  # a slot is listed at most len(found) times: these hold the best limit
    if len(values) > keep:
        cut = np.partition(values, len(values) - keep)[len(values) - keep]
        slots = slots[values >= cut]
    slots = np.unique(slots)
    if len(slots) < limit:
        return 0.0
    values = scores[slots]
    return float(np.partition(values, len(values) - limit)[len(values) - limit])
