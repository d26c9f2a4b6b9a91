"""The BM25 arithmetic, as pure functions over arrays.

For a term with document frequency ``n`` among ``N`` objects, count ``tf`` in an object whose property
holds ``length`` terms (``average`` over objects)::

    idf = ln(1 + (N - n + 0.5) / (n + 0.5))          (the Lucene/Weaviate idf, never negative)
    score = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))
"""

from __future__ import annotations

import numpy as np


def idf(n_docs: int, n_match: int) -> float:
    """Inverse document frequency of a term found in ``n_match`` of ``n_docs`` objects.

    >>> round(idf(10, 1), 4)
    1.9924
    """
    return float(np.log1p((n_docs - n_match + 0.5) / (n_match + 0.5)))


def term_scores(
    tfs: np.ndarray, lengths: np.ndarray, average: float, term_idf: float, k1: float, b: float
) -> np.ndarray:
    """BM25 contribution of one term to each object holding it (float64)."""
    tf = tfs.astype(np.float64)
    return term_idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / average))


def length_norms(lengths: np.ndarray, average: float, k1: float, b: float) -> np.ndarray:
    """``k1 * (1 - b + b * length / average)`` per object: the part of :func:`term_scores` no term changes."""
    return k1 * (1 - b + b * lengths / average)


def normed_scores(tfs: np.ndarray, norms: np.ndarray, term_idf: float, k1: float, boost: float) -> np.ndarray:
    """``boost`` times :func:`term_scores`, given the objects' :func:`length_norms`: the same operations
    in the same order, so the same float64 values to the bit, in four passes. ``norms`` is overwritten
    (pass a copy, such as a gather)."""
    out: np.ndarray = np.multiply(tfs, term_idf, dtype=np.float64)
    out *= k1 + 1
    norms += tfs
    out /= norms
    if boost != 1.0:
        out *= boost
    return out


def top(scores: np.ndarray, candidates: np.ndarray, limit: int) -> np.ndarray:
    """The best ``limit`` of ``candidates`` (slots with a positive score), best first, ties by slot."""
    if len(candidates) > limit:  # keep every candidate tied with the limit-th, so the lowest slots win
        values = -scores[candidates]
        candidates = candidates[values <= np.partition(values, limit - 1)[limit - 1]]
    return candidates[np.lexsort((candidates, -scores[candidates]))[:limit]]
