"""A collection: its configuration, its vectorizers and a backend, behind ``data`` and ``query``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from omniembed.errors import CollectionNotFoundError
from omniembed.store.backend import Match, StorageBackend, StoredObject
from omniembed.store.config import CollectionConfig
from omniembed.store.data import DataAPI
from omniembed.store.engines.keyword import text_of
from omniembed.store.query import QueryAPI
from omniembed.store.results import BatchResult, Object, QueryResult
from omniembed.store.sparse_vectors import as_sparse, is_sparse, wrong_kind
from omniembed.store.vectorizer import EmbeddingCache, Vectorizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rerank:
    """Rerank a query's results with a cross-encoder (anything with ``rank(query, documents, top_k)``).

    Args:
        reranker: a ``CrossEncoder`` or another object with that ``rank`` method.
        property: the text property scored against the query.
        query: the text to score with; by default the query's own text.
        candidates: how many results to fetch before reranking (default ``max(50, 4 * limit)``).
    """

    reranker: Any
    property: str
    query: str | None = None
    candidates: int | None = None

    def depth(self, limit: int) -> int:
        """How many results to fetch for a query asking for ``limit``."""
        return max(limit, self.candidates or max(50, 4 * limit))


def _unsized(config: CollectionConfig) -> CollectionConfig:
    """``config`` without vector sizes, which fill in on first insert: what stays while it lives."""
    vectors = {name: replace(vector, dims=None) for name, vector in config.vectors.items()}
    return replace(config, vectors=vectors)


class Collection:
    """Objects of one kind. Write with ``collection.data``, search with ``collection.query``."""

    def __init__(
        self,
        backend: StorageBackend,
        config: CollectionConfig,
        vectorizers: dict[str, Vectorizer],
        cache: EmbeddingCache | None = None,
    ) -> None:
        self.backend, self.vectorizers, self.cache = backend, vectorizers, cache
        self.name = config.name
        self._identity = _unsized(config)
        self._checked: CollectionConfig | None = None  # the last config found to be this collection's
        self.data = DataAPI(self)
        self.query = QueryAPI(self)

    @property
    def config(self) -> CollectionConfig:
        """The collection's current configuration (vector sizes fill in on first insert)."""
        config = self.backend.configs().get(self.name)
        if config is not None and config is self._checked:  # unchanged since the last look
            return config
        if config is None or _unsized(config) != self._identity:  # gone, or a new one by its name
            raise CollectionNotFoundError(
                f"collection {self.name!r} was deleted since it was opened; get it again with "
                f"db.collections.get({self.name!r})"
            )
        self._checked = config
        return config

    def __len__(self) -> int:
        return self.backend.count(self.name)

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, vectors={sorted(self.config.vectors)})"

    def target(self, name: str | None, *, needs_vectorizer: bool = False) -> str:
        """Resolve ``target_vector``: the named vector, or the only one the collection has."""
        vectors = self.config.vectors
        if name is None:
            if len(vectors) != 1:
                raise ValueError(
                    f"collection {self.name!r} has vectors {sorted(vectors)}; choose one with target_vector="
                )
            name = next(iter(vectors))
        if name not in vectors:
            raise ValueError(f"collection {self.name!r} has no vector {name!r}; it has {sorted(vectors)}")
        if needs_vectorizer and name not in self.vectorizers:
            raise ValueError(
                f"vector {name!r} of {self.name!r} has no vectorizer (its vectors are your own); "
                "search it with near_vector"
            )
        return name

    def vector_value(self, name: str, value: Any, what: str = "vector") -> Any:
        """A vector given by the caller for the named vector ``name``: a checked ``SparseVector`` for a
        sparse one, a float32 array otherwise; a dense vector for a sparse one (or the reverse) raises
        ``InvalidInputError`` saying which form it takes."""
        config = self.config.vectors.get(name)
        if config is None:  # the backend refuses it, naming the collection's vectors
            return value if is_sparse(value) else np.asarray(value, dtype=np.float32)
        mismatch = wrong_kind(name, config.sparse, value)
        if mismatch is not None:
            raise mismatch
        if config.sparse:
            return as_sparse(value, config.dims, f"{what} {name!r}")
        return np.asarray(value, dtype=np.float32)

    def vectorize(self, objects: Sequence[StoredObject], result: BatchResult, indexes: Sequence[int]) -> None:
        """Fill in the vectors that vectorizers make, recording per-object errors in ``result``."""
        schema = self.config.schema
        for name, vectorizer in self.vectorizers.items():
            todo = [(i, obj) for i, obj in enumerate(objects) if name not in obj.vectors]
            if not todo:
                continue
            inputs = [vectorizer.input_for(obj.properties, schema) for _, obj in todo]
            storage = self.config.vectors[name].storage
            try:
                embedded = [vectorizer.embed_documents(inputs, self.cache, storage)]
                positions = [[i for i, _ in todo]]
            except Exception as error:  # isolate the objects the model refuses, keep the rest
                logger.warning("vectorizing a batch of %s failed (%s); retrying one by one", self.name, error)
                embedded, positions = [], []
                for (i, _), item in zip(todo, inputs, strict=True):
                    try:
                        embedded.append(vectorizer.embed_documents([item], self.cache, storage))
                        positions.append([i])
                    except Exception as single:
                        result.errors[indexes[i]] = f"vector {name!r}: {single}"
            for batch, where in zip(embedded, positions, strict=True):
                result.truncated += batch.truncated
                result.embedded += batch.computed
                for i, vector in zip(where, batch.vectors, strict=True):
                    if vector is not None:
                        objects[i].vectors[name] = vector

    def rerank(self, result: QueryResult, rerank: Rerank, query: Any, limit: int) -> QueryResult:
        """Reorder ``result`` by the reranker's score of (query, the object's ``rerank.property``)."""
        text = rerank.query if rerank.query is not None else query
        if not isinstance(text, str):
            raise ValueError(
                "rerank needs a text query: give Rerank(..., query='...') for vector and image searches"
            )
        if rerank.property not in self.config.schema.text_properties:
            texts = self.config.schema.text_properties
            raise ValueError(f"rerank reads a text property; {rerank.property!r} is not among {texts}")
        documents = [text_of(obj.properties.get(rerank.property, "")) for obj in result.objects]
        ranked = rerank.reranker.rank(text, documents, top_k=limit) if documents else []
        out = []
        for hit in ranked:
            obj = result.objects[int(hit["corpus_id"])]
            obj.rerank_score = float(hit["score"])
            out.append(obj)
        return QueryResult(out)

    def results(self, hits: Sequence[Match], include_vector: bool, *, scored: bool = True) -> QueryResult:
        """Turn backend hits into result objects with properties."""
        found = self.backend.get(self.name, [hit.uuid for hit in hits], with_vectors=include_vector)
        objects = {obj.uuid: obj for obj in self.to_objects(found)}
        out = []
        for hit in hits:
            obj = objects.get(hit.uuid)
            if obj is not None:
                obj.score = hit.score if scored else None
                obj.distance = hit.distance
                out.append(obj)
        return QueryResult(out)

    def to_objects(self, stored: Sequence[StoredObject]) -> list[Object]:
        """Turn stored objects into result objects (JSON values back to Python values)."""
        schema = self.config.schema
        return [Object(obj.uuid, schema.restore(obj.properties), vectors=obj.vectors) for obj in stored]
