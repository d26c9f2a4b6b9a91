"""Nearest-neighbour search over one named vector: exact in numpy, HNSW (hnswlib) for large collections.

All vectors also live in one in-memory matrix, so small or heavily filtered searches are exact and
the HNSW graph is only a shortcut: it is derived data, saved atomically and caught up on open.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.errors import MissingExtraError
from omniembed.store.config import IndexConfig, Metric

logger = logging.getLogger(__name__)
_SPACES = {"cosine": "ip", "dot": "ip", "l2": "l2"}


class VectorIndex:
    """Vectors of one collection's named vector, addressed by integer slots."""

    def __init__(self, dims: int, metric: Metric, config: IndexConfig, path: Path | None = None) -> None:
        self.dims, self.metric, self.config, self.path = dims, metric, config, path
        self.matrix = np.zeros((64, dims), dtype=np.float32)
        self.slots = np.zeros(64, dtype=np.int64)
        self.rows: dict[int, int] = {}
        self.graph: Any = None
        self.graph_dirty = 0

    def __len__(self) -> int:
        return len(self.rows)

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Check shape and finiteness and normalise for cosine; raise ``ValueError`` naming the problem."""
        vectors = np.asarray(vectors, dtype=np.float32).copy()
        if vectors.ndim != 2 or vectors.shape[1] != self.dims:
            raise ValueError(f"vector has {vectors.shape[-1]} dims, the collection expects {self.dims}")
        if not np.isfinite(vectors).all():
            raise ValueError("vector holds NaN or infinite values")
        if self.metric == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            if (norms == 0).any():
                raise ValueError("a zero vector has no direction for cosine distance")
            vectors = vectors / norms
        return vectors

    def prepare_one(self, vector: np.ndarray) -> np.ndarray:
        """Check and normalise one vector (see :meth:`prepare`)."""
        prepared: np.ndarray = self.prepare(np.asarray(vector).reshape(1, -1))[0]
        return prepared

    def add(self, slots: np.ndarray, vectors: np.ndarray, *, grow_graph: bool = True) -> None:
        """Add prepared vectors under new slots (building the graph once past the flat threshold)."""
        count = len(self.rows)
        needed = count + len(slots)
        if needed > len(self.matrix):
            size = max(needed, 2 * len(self.matrix))
            self.matrix = np.resize(self.matrix, (size, self.dims))
            self.slots = np.resize(self.slots, size)
        self.matrix[count:needed] = vectors
        self.slots[count:needed] = slots
        self.rows.update(zip(slots.tolist(), range(count, needed), strict=True))
        if self.graph is not None:
            self._graph_add(slots, vectors)
        elif grow_graph and needed > self.config.flat_threshold:
            self.build_graph()

    def remove(self, slots: list[int]) -> None:
        """Remove slots (moving the last row into each hole)."""
        for slot in slots:
            row = self.rows.pop(slot, None)
            if row is None:
                continue
            last = len(self.rows)
            if row != last:
                self.matrix[row] = self.matrix[last]
                self.slots[row] = self.slots[last]
                self.rows[int(self.slots[row])] = row
            if self.graph is not None:
                self.graph.mark_deleted(slot)
                self.graph_dirty += 1

    def search(
        self, query: np.ndarray, limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the slots and distances of the ``limit`` nearest vectors (among ``allowed`` slots)."""
        query = self.prepare(query.reshape(1, -1))[0]
        if allowed is not None:
            rows = np.array([self.rows[s] for s in allowed.tolist() if s in self.rows], dtype=np.int64)
            if self.graph is None or len(rows) <= self.config.flat_threshold:
                return self._exact(query, limit, rows)
            found = self._graph_search(query, limit, set(allowed.tolist()))
            if len(found[0]) >= min(limit, len(rows)):
                return found
            return self._exact(query, limit, rows)
        if self.graph is None:
            return self._exact(query, limit, None)
        return self._graph_search(query, limit, None)

    def distances(self, query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Distance from a prepared query to each prepared vector (smaller is nearer)."""
        if self.metric == "l2":
            return np.asarray(((vectors - query) ** 2).sum(axis=1), dtype=np.float64)
        dots: np.ndarray = (vectors @ query).astype(np.float64)
        return 1.0 - dots if self.metric == "cosine" else -dots

    def _exact(self, query: np.ndarray, limit: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.matrix[: len(self.rows)] if rows is None else self.matrix[rows]
        slots = self.slots[: len(self.rows)] if rows is None else self.slots[rows]
        if not len(slots):
            return slots, np.zeros(0)
        distances = self.distances(query, vectors)
        best = (
            np.argpartition(distances, limit - 1)[:limit]
            if len(distances) > limit
            else np.arange(len(distances))
        )
        best = best[np.lexsort((slots[best], distances[best]))]
        return slots[best], distances[best]

    def build_graph(self) -> None:
        """Build the HNSW graph over every vector held."""
        hnswlib = _hnswlib()
        count = len(self.rows)
        logger.info("building an HNSW index over %d vectors", count)
        graph = hnswlib.Index(space=_SPACES[self.metric], dim=self.dims)
        graph.init_index(
            max_elements=max(2 * count, 1024),
            ef_construction=self.config.ef_construction,
            M=self.config.m,
            allow_replace_deleted=True,
        )
        graph.set_ef(self.config.ef)
        self.graph = graph
        self._graph_add(self.slots[:count], self.matrix[:count])

    def _graph_add(self, slots: np.ndarray, vectors: np.ndarray) -> None:
        graph = self.graph
        needed = graph.get_current_count() + len(slots)
        if needed > graph.get_max_elements():
            graph.resize_index(2 * needed)
        graph.add_items(vectors, slots, replace_deleted=True)
        self.graph_dirty += len(slots)

    def _graph_search(
        self, query: np.ndarray, limit: int, allowed: set[int] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        graph = self.graph
        k = min(limit, len(self.rows))
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        graph.set_ef(max(self.config.ef, k))
        kwargs = {"filter": allowed.__contains__} if allowed is not None else {}
        try:
            labels, _ = graph.knn_query(query, k=k, num_threads=1, **kwargs)
        except RuntimeError:  # fewer reachable than k (filtered): the caller falls back to exact search
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        slots = labels[0].astype(np.int64)
        # Distances are recomputed from the matrix, so HNSW and exact results score the same way.
        distances = self.distances(query, self.matrix[[self.rows[s] for s in slots.tolist()]])
        order = np.lexsort((slots, distances))
        return slots[order], distances[order]

    def save(self) -> None:
        """Write the HNSW graph atomically (temp file, fsync, rename) when it changed."""
        if self.graph is None or self.path is None or not self.graph_dirty:
            return
        temp = self.path.with_suffix(".tmp")
        self.graph.save_index(str(temp))
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, self.path)
        self.graph_dirty = 0

    def load_graph(self) -> None:
        """Load the saved graph and catch it up with the vectors held; rebuild it if unreadable."""
        if self.path is None or len(self.rows) <= self.config.flat_threshold:
            return
        if not self.path.exists():
            self.build_graph()
            return
        hnswlib = _hnswlib()
        graph = hnswlib.Index(space=_SPACES[self.metric], dim=self.dims)
        try:
            graph.load_index(str(self.path), max_elements=2 * len(self.rows), allow_replace_deleted=True)
        except (RuntimeError, ValueError, OSError) as error:
            logger.warning("rebuilding the HNSW index %s: %s", self.path, error)
            self.build_graph()
            return
        self.graph = graph
        indexed = set(graph.get_ids_list())
        missing = [slot for slot in self.rows if slot not in indexed]
        for slot in indexed - self.rows.keys():
            with contextlib.suppress(RuntimeError):  # already marked deleted in the saved graph
                graph.mark_deleted(slot)
        if missing:
            self._graph_add(np.array(missing, dtype=np.int64), self.matrix[[self.rows[s] for s in missing]])
        logger.info("loaded the HNSW index %s (%d vectors caught up)", self.path, len(missing))


def _hnswlib() -> Any:
    try:
        import hnswlib
    except ImportError:
        raise MissingExtraError(
            "collections over 'flat_threshold' objects use HNSW: pip install 'omniembed[store]'"
        ) from None
    return hnswlib
