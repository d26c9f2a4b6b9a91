"""What collection calls return: objects with scores, query results and batch import results."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Object:
    """One object in a result.

    Attributes:
        uuid: the object's id.
        properties: its properties (dates as ``datetime``).
        score: higher is better (similarity for vector search, BM25 or fused score otherwise).
        distance: the metric distance for vector search, else ``None``.
        vectors: the named vectors, when asked for with ``include_vector=True`` (float32 arrays;
            :class:`~omniembed.sparse.SparseVector` for sparse ones).
        rerank_score: the reranker's score, when the query asked for ``rerank=``.
        explain: for hybrid queries, the parts of the score: ``vector_rank``, ``vector_score``,
            ``bm25_rank``, ``bm25_score``, ``vector_part``, ``bm25_part``, ``fused``; with
            ``weights=``, ``<source>_rank``, ``<source>_score`` and ``<source>_part`` for each of
            ``dense``, ``sparse`` and ``bm25`` searched, and ``fused``.
    """

    uuid: str
    properties: dict[str, Any]
    score: float | None = None
    distance: float | None = None
    vectors: dict[str, Any] = field(default_factory=dict)
    explain: dict[str, float | int | None] | None = None
    rerank_score: float | None = None


@dataclass
class QueryResult:
    """The objects a query found, best first."""

    objects: list[Object]

    def __len__(self) -> int:
        return len(self.objects)

    def __iter__(self) -> Iterator[Object]:
        return iter(self.objects)

    def __getitem__(self, index: int) -> Object:
        return self.objects[index]

    @property
    def uuids(self) -> list[str]:
        """The uuids in result order."""
        return [obj.uuid for obj in self.objects]


@dataclass
class BatchResult:
    """Outcome of ``insert_many``: the uuid of each stored object and the error of each refused one.

    Attributes:
        uuids: input index to uuid, for every object stored.
        errors: input index to a message, for every object refused.
        truncated: how many objects had text longer than the model's limit (cut, not chunked).
        embedded: how many inputs went through the model (the rest came from the embedding cache).
        unread: for ``insert_pdf``, the documents and pages that could not be read, each message
            naming its file (and page); they have no position in ``uuids`` or ``errors``.
    """

    uuids: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    truncated: int = 0
    embedded: int = 0
    unread: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        """Whether any object was refused."""
        return bool(self.errors)
