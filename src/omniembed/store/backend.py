"""The narrow boundary between collections and the engine that keeps their data.

A backend stores objects with their vectors, and answers vector, keyword and filtered lookups.
Everything else (vectorizing, fusion, the public API) lives above it, so the embedded engine and a
distributed one behave the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from omniembed.sparse import SparseVector
from omniembed.store.config import CollectionConfig
from omniembed.store.filters import Filter

HALF_PRECISION = ":f16"
"""The end of an embedding-cache key whose vector a cache may keep as float16 (token matrices)."""


@dataclass
class StoredObject:
    """An object as a backend holds it: cleaned properties (JSON values) and named vectors (float32
    arrays, or :class:`~omniembed.sparse.SparseVector` for sparse ones)."""

    uuid: str
    properties: dict[str, Any]
    vectors: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """One search result from a backend: the object's uuid, a score (higher is better) and a distance."""

    uuid: str
    score: float
    distance: float | None = None


class StorageBackend(Protocol):
    """What a storage engine does for collections. Methods take the collection name first."""

    def create(self, config: CollectionConfig) -> None:
        """Create a collection; raise ``CollectionExistsError`` if the name is taken."""

    def drop(self, name: str) -> None:
        """Delete a collection and everything in it."""

    def configs(self) -> dict[str, CollectionConfig]:
        """Return the configuration of every collection, by name."""

    def insert(self, name: str, objects: Sequence[StoredObject]) -> dict[int, str]:
        """Store new objects in one transaction; return ``{index: message}`` for those refused."""

    def replace(self, name: str, obj: StoredObject) -> None:
        """Overwrite an existing object (properties and vectors) atomically."""

    def replace_many(self, name: str, objects: Sequence[StoredObject]) -> dict[int, str]:
        """Overwrite existing objects together; return ``{index: message}`` for those refused."""

    def delete(self, name: str, uuids: Sequence[str]) -> int:
        """Delete objects by uuid; return how many existed."""

    def get(self, name: str, uuids: Sequence[str], *, with_vectors: bool = False) -> list[StoredObject]:
        """Return the objects with these uuids, in the given order, skipping missing ones."""

    def find(self, name: str, where: Filter | None, limit: int | None = None, offset: int = 0) -> list[str]:
        """Return the uuids of objects matching ``where`` (all when ``None``), in insertion order."""

    def count(self, name: str, where: Filter | None = None) -> int:
        """Return how many objects match ``where``."""

    def vector_search(
        self, name: str, vector: str, query: np.ndarray | SparseVector, limit: int, where: Filter | None
    ) -> list[Match]:
        """Return the ``limit`` nearest objects by the named vector's metric, among those matching (for
        a sparse vector: by dot product, with a checked ``SparseVector`` query)."""

    def keyword_search(
        self, name: str, query: str, boosts: dict[str, float], limit: int, where: Filter | None
    ) -> list[Match]:
        """Return the ``limit`` best BM25 matches over the boosted text properties."""

    def hybrid_search(
        self,
        name: str,
        vectors: Mapping[str, np.ndarray | SparseVector],
        text: str,
        boosts: dict[str, float],
        limit: int,
        where: Filter | None,
    ) -> tuple[dict[str, list[Match]], list[Match]]:
        """Return ``vector_search`` for each named vector's query in ``vectors`` and ``keyword_search``
        with these arguments (at once, if it can)."""

    def close(self) -> None:
        """Flush and release everything the backend holds."""
