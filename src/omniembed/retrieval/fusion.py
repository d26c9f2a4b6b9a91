"""Fusing a vector result list with a keyword result list into one hybrid ranking.

With ``alpha`` the vector weight (1 = pure vector, 0 = pure keyword):

- ``relative_score``: each list's scores are min-max normalised to [0, 1] (a list whose scores are
  all equal maps to 1), then ``fused = alpha * vector + (1 - alpha) * keyword``, 0 where a list
  lacks the object.
- ``ranked`` (reciprocal rank fusion):
  ``fused = alpha / (k + rank_vector) + (1 - alpha) / (k + rank_keyword)``,
  with ranks starting at 1, a missing rank adding 0, and ``k`` 60 unless given.

>>> fuse([("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 2.0)], alpha=0.5, fusion="relative_score")
[('a', 0.5, 1.0, 0.0), ('b', 0.5, 0.0, 1.0), ('c', 0.0, 0.0, 0.0)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

Fusion = Literal["relative_score", "ranked"]
FUSIONS = ("relative_score", "ranked")


def normalise(scores: Sequence[float]) -> list[float]:
    """Min-max normalise ``scores`` to [0, 1]; equal scores all become 1."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(score - low) / (high - low) for score in scores]


def fuse(
    vector: Sequence[tuple[str, float]],
    keyword: Sequence[tuple[str, float]],
    *,
    alpha: float,
    fusion: Fusion = "relative_score",
    rrf_k: float = 60.0,
) -> list[tuple[str, float, float, float]]:
    """Return ``(id, fused, vector_part, keyword_part)`` best first, ties broken by id.

    Args:
        vector: ``(id, score)`` pairs from the vector search, best first.
        keyword: ``(id, score)`` pairs from the keyword search, best first.
        alpha: weight of the vector side, in [0, 1].
        fusion: ``"relative_score"`` or ``"ranked"``.
        rrf_k: the constant ``k`` of ranked fusion.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (1 = pure vector), got {alpha}")
    if fusion == "relative_score":
        vector_parts = dict(zip((i for i, _ in vector), normalise([s for _, s in vector]), strict=True))
        keyword_parts = dict(zip((i for i, _ in keyword), normalise([s for _, s in keyword]), strict=True))
    elif fusion == "ranked":
        vector_parts = {ident: 1.0 / (rrf_k + rank) for rank, (ident, _) in enumerate(vector, start=1)}
        keyword_parts = {ident: 1.0 / (rrf_k + rank) for rank, (ident, _) in enumerate(keyword, start=1)}
    else:
        raise ValueError(f"fusion {fusion!r} is not one of {FUSIONS}")
    fused = []
    for ident in dict.fromkeys([*vector_parts, *keyword_parts]):
        v, k = vector_parts.get(ident, 0.0), keyword_parts.get(ident, 0.0)
        fused.append((ident, alpha * v + (1 - alpha) * k, v, k))
    fused.sort(key=lambda row: (-row[1], row[0]))
    return fused


def check_weights(weights: Mapping[str, float], sources: Sequence[str]) -> dict[str, float]:
    """Check fusion weights by source name and scale them to sum to 1.

    >>> check_weights({"dense": 2, "sparse": 1, "bm25": 1}, ("dense", "sparse", "bm25"))
    {'dense': 0.5, 'sparse': 0.25, 'bm25': 0.25}
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(
            f"weights is a dict of source to weight, with sources among {list(sources)}; got {weights!r:.80}"
        )
    unknown = sorted(str(key) for key in weights if key not in sources)
    if unknown:
        raise ValueError(f"weights has unknown sources {unknown}; use {list(sources)}")
    for key, value in weights.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"weights[{key!r}] is {value!r:.40}; weights are finite numbers of 0 or more")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("weights are all 0; give at least one source a positive weight")
    return {key: float(value) / total for key, value in weights.items()}


def fuse_weighted(
    ranked: Mapping[str, Sequence[tuple[str, float]]],
    weights: Mapping[str, float],
    *,
    fusion: Fusion = "relative_score",
    rrf_k: float = 60.0,
) -> list[tuple[str, float, dict[str, float]]]:
    """Fuse any number of result lists: ``(id, fused, parts by source)`` best first, ties by id.

    Each list is turned into parts as in :func:`fuse` (min-max normalised scores, or ``1 / (k + rank)``)
    and ``fused = sum(weights[source] * part)``, a missing part adding 0. With two lists and weights
    ``alpha`` and ``1 - alpha`` this is :func:`fuse`.

    >>> fuse_weighted({"a": [("x", 2.0), ("y", 1.0)], "b": [("y", 5.0)]}, {"a": 0.5, "b": 0.5})
    [('x', 0.5, {'a': 1.0, 'b': 0.0}), ('y', 0.5, {'a': 0.0, 'b': 1.0})]
    """
    if fusion not in FUSIONS:
        raise ValueError(f"fusion {fusion!r} is not one of {FUSIONS}")
    parts: dict[str, dict[str, float]] = {}
    for source, hits in ranked.items():
        if fusion == "relative_score":
            parts[source] = dict(zip((i for i, _ in hits), normalise([s for _, s in hits]), strict=True))
        else:
            parts[source] = {ident: 1.0 / (rrf_k + rank) for rank, (ident, _) in enumerate(hits, start=1)}
    fused = []
    for ident in dict.fromkeys(ident for found in parts.values() for ident in found):
        mine = {source: parts[source].get(ident, 0.0) for source in ranked}
        fused.append((ident, sum(weights.get(s, 0.0) * part for s, part in mine.items()), mine))
    fused.sort(key=lambda row: (-row[1], row[0]))
    return fused
