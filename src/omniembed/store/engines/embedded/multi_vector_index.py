"""A multi-vector (late-interaction) named vector: MUVERA candidates, then exact MaxSim.

Unfiltered searches never scan every token: the fixed-size MUVERA encodings pick candidates and only
those are scored exactly. A filtered search scores the allowed objects exactly, so it loses nothing.
Like the single-vector index, it is derived data rebuilt from SQLite when a database opens.
"""

from __future__ import annotations

import numpy as np

from omniembed.late_interaction.index import LateInteractionIndex
from omniembed.late_interaction.maxsim import maxsim


class MultiVectorIndex:
    """Token matrices of one collection's multi-vector named vector, addressed by integer slots."""

    def __init__(self, dims: int, candidates: int = 100) -> None:
        self.dims = dims
        self.index = LateInteractionIndex(dims, candidates=candidates)
        self.matrices: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.matrices)

    def prepare_one(self, matrix: np.ndarray) -> np.ndarray:
        """Check one (tokens x dims) matrix; raise ``ValueError`` naming the problem."""
        array = np.asarray(matrix, dtype=np.float32)
        if array.ndim == 1 and array.size % self.dims == 0:  # a stored blob, read back flat
            array = array.reshape(-1, self.dims)
        if array.ndim != 2 or array.shape[1] != self.dims or not len(array):
            raise ValueError(
                f"multi-vector has shape {array.shape}, the collection expects (tokens, {self.dims})"
            )
        if not np.isfinite(array).all():
            raise ValueError("multi-vector holds NaN or infinite values")
        return array

    def add(self, slots: np.ndarray, matrices: list[np.ndarray]) -> None:
        """Add prepared matrices under new slots."""
        ids = [int(slot) for slot in slots]
        self.index.add(ids, matrices)
        self.matrices.update(zip(ids, matrices, strict=True))

    def remove(self, slots: list[int]) -> None:
        """Remove slots."""
        present = [slot for slot in slots if slot in self.matrices]
        self.index.remove(present)
        for slot in present:
            del self.matrices[slot]

    def search(
        self, query: np.ndarray, limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the slots and distances (negated MaxSim) of the best ``limit`` objects."""
        query = self.prepare_one(query)
        if allowed is None:
            hits = self.index.search(query, limit)
            slots = np.array([hit["id"] for hit in hits], dtype=np.int64)
            return slots, -np.array([hit["score"] for hit in hits], dtype=np.float64)
        slots = np.array([slot for slot in allowed.tolist() if slot in self.matrices], dtype=np.int64)
        matrices = [self.matrices[int(slot)] for slot in slots]
        scores = maxsim([query], matrices)[0].numpy().astype(np.float64)
        order = np.lexsort((slots, -scores))[:limit]
        return slots[order], -scores[order]
