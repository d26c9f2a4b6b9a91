"""Searching a collection: near_text / near_vector / near_object / near_image / near_audio / near_video,
bm25, hybrid, fetch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from omniembed.errors import ObjectNotFoundError
from omniembed.retrieval.fusion import Fusion, fuse, fuse_weighted
from omniembed.sparse import SparseVector
from omniembed.store.backend import Match
from omniembed.store.filters import Filter
from omniembed.store.hybrid import explain_parts, vector_queries
from omniembed.store.results import QueryResult

if TYPE_CHECKING:
    from omniembed.store.collection import Collection, Rerank

MAX_OFFSET = 10**9  # far past any real page; SQLite's OFFSET overflows at 2**63


class QueryAPI:
    """``collection.query``: the read side of a collection."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection

    def near_text(
        self,
        query: str,
        *,
        limit: int = 10,
        target_vector: str | None = None,
        filters: Filter | None = None,
        include_vector: bool = False,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Objects nearest to a text, embedded by the named vector's model with its query prompt."""
        return self._near_input(query, query, limit, target_vector, filters, include_vector, rerank)

    def near_image(
        self,
        image: Any,
        *,
        limit: int = 10,
        target_vector: str | None = None,
        filters: Filter | None = None,
        include_vector: bool = False,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Objects nearest to an image (a PIL image, a path or bytes), embedded by the vector's model."""
        return self._near_input(image, None, limit, target_vector, filters, include_vector, rerank)

    def near_audio(
        self,
        audio: Any,
        *,
        limit: int = 10,
        target_vector: str | None = None,
        filters: Filter | None = None,
        include_vector: bool = False,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Objects nearest to audio (a path, the file's bytes, an array at the model's rate, or
        ``{"array": ..., "sampling_rate": ...}``), embedded by the vector's model (CLAP)."""
        query = audio if isinstance(audio, dict) and "array" in audio else {"audio": audio}
        return self._near_input(query, None, limit, target_vector, filters, include_vector, rerank)

    def near_video(
        self,
        video: Any,
        *,
        limit: int = 10,
        target_vector: str | None = None,
        filters: Filter | None = None,
        include_vector: bool = False,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Objects nearest to a video (a path, the file's bytes or a frames array), embedded by the
        vector's model (for CLIP, the normalised mean of its sampled frames)."""
        return self._near_input({"video": video}, None, limit, target_vector, filters, include_vector, rerank)

    def near_object(
        self,
        uuid: str,
        *,
        limit: int = 10,
        target_vector: str | None = None,
        filters: Filter | None = None,
        include_vector: bool = False,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Objects nearest to a stored object (the object itself comes first)."""
        name = self._collection.target(target_vector)
        found = self._collection.backend.get(self._collection.name, [uuid], with_vectors=True)
        if not found or name not in found[0].vectors:
            raise ObjectNotFoundError(
                f"no object with uuid {uuid!r} and a {name!r} vector in {self._collection.name!r}"
            )
        return self._nearest(found[0].vectors[name], name, None, limit, filters, include_vector, rerank)

    def near_vector(
        self,
        vector: Sequence[float] | np.ndarray | Mapping[str, Any] | SparseVector,
        *,
        limit: int = 10,
        target_vector: str | None = None,
        filters: Filter | None = None,
        include_vector: bool = False,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Objects nearest to a vector by the named vector's metric; for a sparse named vector, give
        ``{"indices": [...], "values": [...]}`` (or a ``SparseVector`` or 1-D sparse tensor)."""
        name = self._collection.target(target_vector)
        return self._nearest(vector, name, None, limit, filters, include_vector, rerank)

    def _near_input(
        self,
        value: Any,
        rerank_query: Any,
        limit: int,
        target_vector: str | None,
        filters: Filter | None,
        include_vector: bool,
        rerank: Rerank | None,
    ) -> QueryResult:
        """Embed ``value`` with the target vector's model (query side), then search near it."""
        name = self._collection.target(target_vector, needs_vectorizer=True)
        vector = self._collection.vectorizers[name].embed_query(value)
        return self._nearest(vector, name, rerank_query, limit, filters, include_vector, rerank)

    def _nearest(
        self,
        vector: Any,
        name: str,
        rerank_query: Any,
        limit: int,
        filters: Filter | None,
        include_vector: bool,
        rerank: Rerank | None,
    ) -> QueryResult:
        """The one vector search every ``near_*`` ends in: fetch, then rerank if asked."""
        _check_limit(limit)
        query = self._collection.vector_value(name, vector, "query for vector")
        hits = self._collection.backend.vector_search(
            self._collection.name, name, query, _depth(rerank, limit), filters
        )
        return self._reranked(self._collection.results(hits, include_vector), rerank, rerank_query, limit)

    def bm25(
        self,
        query: str,
        *,
        query_properties: Sequence[str] | None = None,
        limit: int = 10,
        filters: Filter | None = None,
        include_vector: bool = False,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Keyword search with BM25; ``query_properties`` may boost, as in ``["title^2", "body"]``."""
        _check_limit(limit)
        hits = self._keyword(query, query_properties, _depth(rerank, limit), filters)
        return self._reranked(self._collection.results(hits, include_vector), rerank, query, limit)

    def hybrid(
        self,
        query: str,
        *,
        alpha: float | None = None,
        weights: Mapping[str, float] | None = None,
        fusion: Fusion = "relative_score",
        rrf_k: float = 60.0,
        limit: int = 10,
        vector: Any = None,
        target_vector: str | Sequence[str] | None = None,
        query_properties: Sequence[str] | None = None,
        filters: Filter | None = None,
        include_vector: bool = False,
        explain: bool = False,
        candidates: int | None = None,
        rerank: Rerank | None = None,
    ) -> QueryResult:
        """Vector and BM25 search fused into one ranking (formulas in :mod:`omniembed.retrieval.fusion`).

        Two sources (one named vector, dense or sparse, and BM25) take ``alpha``; three (a dense and a
        sparse named vector and BM25) take ``weights``.

        Args:
            query: the text for BM25 and, unless ``vector`` is given, for the vector side.
            alpha: weight of the vector side: 1 is pure vector search, 0 pure BM25 (default 0.5).
            weights: instead of ``alpha``, a weight per source among ``"dense"``, ``"sparse"`` and
                ``"bm25"`` (0 or more, scaled to sum to 1; a source left out is not searched), as in
                ``{"dense": 0.4, "sparse": 0.4, "bm25": 0.2}``.
            fusion: ``"relative_score"`` (min-max normalised scores) or ``"ranked"`` (reciprocal ranks).
            rrf_k: the ``k`` of ranked fusion.
            limit: how many results.
            vector: a query vector of your own instead of embedding ``query``; with ``weights``, a dense
                vector, a sparse one (``{"indices", "values"}``) or ``{"dense": ..., "sparse": ...}``.
            target_vector: the named vector to search; with ``weights``, the names of the dense and
                the sparse vector (by default the collection's only one of each kind).
            query_properties: text properties for BM25, with optional ``^boost``.
            filters: only objects matching this filter.
            include_vector: return the objects' vectors.
            explain: attach each result's score parts to ``Object.explain``.
            candidates: results taken from each side before fusing (default ``max(100, 4 * limit)``).
            rerank: reorder the fused results with a cross-encoder (see :class:`Rerank`).
        """
        _check_limit(limit)
        fetch = _depth(rerank, limit)
        depth = candidates or max(100, 4 * fetch)
        if weights is not None:
            if alpha is not None:
                raise ValueError("give alpha (one vector and BM25) or weights (by source), not both")
            queries, shares = vector_queries(self._collection, query, weights, vector, target_vector)
            by_vector, keyword = self._sources(
                dict(queries.values()), query if "bm25" in shares else None, query_properties, depth, filters
            )
            ranked = {source: by_vector[name] for source, (name, _) in queries.items()}
            if keyword is not None:
                ranked["bm25"] = keyword
            fused_many = fuse_weighted(ranked, shares, fusion=fusion, rrf_k=rrf_k)[:fetch]
            matches = [Match(uuid, score) for uuid, score, _ in fused_many]
            result = self._collection.results(matches, include_vector)
            if explain:
                explain_parts(result, ranked, {uuid: (parts, score) for uuid, score, parts in fused_many})
            return self._reranked(result, rerank, query, limit)
        alpha = 0.5 if alpha is None else alpha
        if target_vector is not None and not isinstance(target_vector, str):
            raise ValueError(
                "target_vector names one vector with alpha; to fuse two vectors and BM25 give weights="
            )
        vector_hits: list[Match] = []
        keyword_hits: list[Match] = []
        if alpha > 0:
            name = self._collection.target(target_vector, needs_vectorizer=vector is None)
            query_vector = self._collection.vector_value(
                name,
                vector if vector is not None else self._collection.vectorizers[name].embed_query(query),
                "query for vector",
            )
            if alpha < 1:
                searched, keyword_hits = self._collection.backend.hybrid_search(
                    self._collection.name,
                    {name: query_vector},
                    _keyword_text(query),
                    self._boosts(query_properties),
                    depth,
                    filters,
                )
                vector_hits = searched[name]
            else:
                vector_hits = self._collection.backend.vector_search(
                    self._collection.name, name, query_vector, depth, filters
                )
        else:
            keyword_hits = self._keyword(query, query_properties, depth, filters)
        fused = fuse(
            [(h.uuid, h.score) for h in vector_hits],
            [(h.uuid, h.score) for h in keyword_hits],
            alpha=alpha,
            fusion=fusion,
            rrf_k=rrf_k,
        )[:fetch]
        result = self._collection.results([Match(uuid, score) for uuid, score, _, _ in fused], include_vector)
        if explain:
            vector_rank = {h.uuid: (rank, h.score) for rank, h in enumerate(vector_hits, start=1)}
            keyword_rank = {h.uuid: (rank, h.score) for rank, h in enumerate(keyword_hits, start=1)}
            parts = {uuid: (v, k, score) for uuid, score, v, k in fused}
            for obj in result.objects:
                v_rank, v_score = vector_rank.get(obj.uuid, (None, None))
                k_rank, k_score = keyword_rank.get(obj.uuid, (None, None))
                v_part, k_part, total = parts[obj.uuid]
                obj.explain = {
                    "vector_rank": v_rank,
                    "vector_score": v_score,
                    "bm25_rank": k_rank,
                    "bm25_score": k_score,
                    "vector_part": v_part,
                    "bm25_part": k_part,
                    "fused": total,
                }
        return self._reranked(result, rerank, query, limit)

    def fetch_objects(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        filters: Filter | None = None,
        include_vector: bool = False,
    ) -> QueryResult:
        """Objects in insertion order, optionally filtered and paged."""
        if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"offset must be an integer from 0 to {MAX_OFFSET}, got {offset!r:.60}")
        uuids = self._collection.backend.find(self._collection.name, filters, limit, offset)
        return self._collection.results([Match(uuid, 0.0) for uuid in uuids], include_vector, scored=False)

    def _reranked(self, result: QueryResult, rerank: Rerank | None, query: Any, limit: int) -> QueryResult:
        """Reorder ``result`` with the reranker, if the query asked for one."""
        return result if rerank is None else self._collection.rerank(result, rerank, query, limit)

    def _sources(
        self,
        vectors: dict[str, Any],
        text: str | None,
        properties: Sequence[str] | None,
        depth: int,
        filters: Filter | None,
    ) -> tuple[dict[str, list[tuple[str, float]]], list[tuple[str, float]] | None]:
        """``(uuid, score)`` lists by named vector, and BM25's when ``text`` is given (else ``None``),
        searched at once where the backend can."""
        backend, name = self._collection.backend, self._collection.name
        keyword: list[Match] | None = None
        if text is None:
            hits = {
                target: backend.vector_search(name, target, q, depth, filters)
                for target, q in vectors.items()
            }
        else:
            boosts = self._boosts(properties)
            hits, keyword = backend.hybrid_search(name, vectors, _keyword_text(text), boosts, depth, filters)
        pairs = {target: [(hit.uuid, hit.score) for hit in found] for target, found in hits.items()}
        return pairs, None if keyword is None else [(hit.uuid, hit.score) for hit in keyword]

    def _keyword(
        self, query: str, properties: Sequence[str] | None, limit: int, filters: Filter | None
    ) -> list[Match]:
        return self._collection.backend.keyword_search(
            self._collection.name, _keyword_text(query), self._boosts(properties), limit, filters
        )

    def _boosts(self, properties: Sequence[str] | None) -> dict[str, float]:
        return parse_boosts(properties, self._collection.config.schema.text_properties)


def parse_boosts(properties: Sequence[str] | None, default: Sequence[str]) -> dict[str, float]:
    """Read ``["title^2", "body"]`` into ``{"title": 2.0, "body": 1.0}``.

    >>> parse_boosts(["title^2", "body"], [])
    {'title': 2.0, 'body': 1.0}
    """
    boosts = {}
    for item in properties if properties is not None else default:
        name, _, weight = item.partition("^")
        try:
            boost = float(weight) if weight else 1.0
        except ValueError:
            boost = math.nan
        if not (math.isfinite(boost) and boost > 0):
            raise ValueError(f"boost in {item!r:.80} must be a finite number above 0; write it as 'name^2'")
        boosts[name] = boost
    return boosts


def _keyword_text(query: Any) -> str:
    if not isinstance(query, str):
        raise TypeError(f"a keyword query is text, got {type(query).__name__}")
    return query


def _depth(rerank: Rerank | None, limit: int) -> int:
    """How many results a search fetches: more than ``limit`` when a reranker picks among them."""
    return limit if rerank is None else rerank.depth(limit)


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
