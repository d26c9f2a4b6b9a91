"""The sources of a hybrid query fused by weight: a dense and a sparse named vector, and BM25."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from omniembed.retrieval.fusion import check_weights
from omniembed.store.results import QueryResult
from omniembed.store.sparse_vectors import is_sparse

if TYPE_CHECKING:
    from omniembed.store.collection import Collection

SOURCES = ("dense", "sparse", "bm25")
Ranked = dict[str, list[tuple[str, float]]]


def vector_queries(
    collection: Collection,
    query: str,
    weights: Mapping[str, float],
    vector: Any,
    target_vector: str | Sequence[str] | None,
) -> tuple[dict[str, tuple[str, Any]], dict[str, float]]:
    """Check ``weights``; return the dense and sparse sources they name as ``(named vector, checked
    query vector)`` by source, and the weights scaled to sum to 1 (sources of weight 0 left out)."""
    shares = {source: share for source, share in check_weights(weights, SOURCES).items() if share > 0}
    names = targets(collection, target_vector, [source for source in ("dense", "sparse") if source in shares])
    given = split_vector(vector)
    queries = {}
    for source, name in names.items():
        query_vector = given.get(source)
        if query_vector is None:
            if name not in collection.vectorizers:
                raise ValueError(
                    f"vector {name!r} of {collection.name!r} has no vectorizer (its vectors are your own); "
                    f"give its query vector with vector={{{source!r}: ...}}"
                )
            query_vector = collection.vectorizers[name].embed_query(query)
        queries[source] = (name, collection.vector_value(name, query_vector, "query for vector"))
    return queries, shares


def targets(
    collection: Collection, target_vector: str | Sequence[str] | None, sources: Sequence[str]
) -> dict[str, str]:
    """The named vector of each of ``sources`` (``"dense"``, ``"sparse"``): among ``target_vector``'s
    names, or the collection's only vector of that kind."""
    vectors = collection.config.vectors
    names = [target_vector] if isinstance(target_vector, str) else list(target_vector or [])
    for name in names:
        collection.target(name)  # an unknown name raises, listing the collection's vectors
    chosen = {}
    for source in sources:
        pool = [name for name in (names or vectors) if vectors[name].sparse == (source == "sparse")]
        if len(pool) != 1:
            where = f"target_vector {names}" if names else f"collection {collection.name!r}"
            raise ValueError(
                f"weights has {source!r}, and {where} has {len(pool)} {source} vectors {pool}; "
                f"name one dense and one sparse vector with target_vector=[..., ...]"
            )
        chosen[source] = pool[0]
    return chosen


def split_vector(vector: Any) -> dict[str, Any]:
    """Query vectors of your own by source: ``{"dense": ..., "sparse": ...}``, or one of either kind."""
    if vector is None:
        return {}
    if isinstance(vector, Mapping) and set(vector) <= {"dense", "sparse"}:
        return dict(vector)
    return {"sparse" if is_sparse(vector) else "dense": vector}


def explain_parts(
    result: QueryResult, ranked: Ranked, fused: Mapping[str, tuple[Mapping[str, float], float]]
) -> None:
    """Attach each result's ``<source>_rank``, ``<source>_score`` and ``<source>_part`` for every
    source, and ``fused``, to ``Object.explain``."""
    places = {
        source: {uuid: (rank, score) for rank, (uuid, score) in enumerate(hits, start=1)}
        for source, hits in ranked.items()
    }
    for obj in result.objects:
        parts, total = fused[obj.uuid]
        explain: dict[str, float | int | None] = {}
        for source in ranked:
            rank, score = places[source].get(obj.uuid, (None, None))
            explain.update(
                {f"{source}_rank": rank, f"{source}_score": score, f"{source}_part": parts[source]}
            )
        explain["fused"] = total
        obj.explain = explain
