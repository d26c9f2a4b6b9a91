"""One text property's postings: a saved segment (perhaps memory-mapped) plus in-memory chunks of new ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from omniembed.store.engines.keyword.analysis import Analyzer
from omniembed.store.engines.keyword.postings import EMPTY, Chunk, Segment, count_terms, merge

FLUSH_DOCS = 8192  # pending objects turned into a chunk at once (or sooner, when a query needs them)


def grow(array: np.ndarray, slot: int) -> np.ndarray:
    """``array`` with room for index ``slot`` (doubling, zero-filled); a memory map becomes a copy."""
    if slot < len(array):
        return array
    grown = np.zeros(max(2 * len(array), slot + 1, 1024), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class Field:
    """Postings, term counts per object (``lengths``, by slot) and their total for one property."""

    def __init__(
        self,
        analyzer: Analyzer,
        base: Segment | None = None,
        lengths: np.ndarray | None = None,
        total: int = 0,
    ) -> None:
        self.analyzer = analyzer
        self.base = base
        self.lengths = lengths if lengths is not None else np.zeros(1024, dtype=np.uint32)
        self.total_length = total
        self.vocabulary: dict[str, int] = {}
        self.chunks: list[Chunk] = []
        self._slots: list[int] = []
        self._counts: list[int] = []
        self._ids: list[int] = []

    def add_many(self, slots: Sequence[int], values: Sequence[Any]) -> None:
        """Analyse one value per slot (``None``: no text) and queue their postings."""
        analyse, ids, vocabulary = self.analyzer, self._ids, self.vocabulary
        counts = []
        for value in values:
            terms = analyse(value) if value is not None else []
            counts.append(len(terms))
            ids.extend([vocabulary.setdefault(term, len(vocabulary)) for term in terms])
        if slots:
            self.lengths = grow(self.lengths, max(slots))
            self.lengths[np.asarray(slots, dtype=np.int64)] = counts
        self.total_length += sum(counts)
        self._slots.extend(slots)
        self._counts.extend(counts)
        if len(self._slots) >= FLUSH_DOCS:
            self.flush()

    def flush(self) -> None:
        """Turn queued postings into a chunk; merge chunks so there are few (each at most half the last)."""
        if not self._slots:
            return
        docs = np.repeat(np.arange(len(self._slots)), self._counts)
        term_ids, rows, tfs = count_terms(
            docs, np.asarray(self._ids, dtype=np.int64), max(len(self.vocabulary), 1)
        )
        slots = np.asarray(self._slots, dtype=np.int64)[rows]
        self.chunks.append(Chunk.build(term_ids, slots, tfs))
        self._slots, self._counts, self._ids = [], [], []
        while len(self.chunks) > 1 and 2 * len(self.chunks[-1]) >= len(self.chunks[-2]):
            self.chunks[-2:] = [merge(self.chunks[-2:])]

    def remove(self, slot: int) -> None:
        """Take the object's length out of the total (its postings stay, masked by the index)."""
        if slot < len(self.lengths):
            self.total_length -= int(self.lengths[slot])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Every slot holding ``term`` and its count there (dead slots included)."""
        self.flush()
        parts = [self.base.postings(term)] if self.base is not None else []
        term_id = self.vocabulary.get(term)
        if term_id is not None:
            parts.extend(chunk.postings(term_id) for chunk in self.chunks)
        found = [part for part in parts if part is not None and len(part[0])]
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        return np.concatenate([p[0] for p in found]), np.concatenate([p[1] for p in found])

    def compacted(self, alive: np.ndarray) -> Segment:
        """All live postings as one segment keyed by term strings (for saving)."""
        self.flush()
        base_terms = self.base.terms() if self.base is not None else []
        chunk_terms = [term.encode("utf-8") for term in self.vocabulary]
        terms = sorted(set(base_terms).union(chunk_terms))
        position = {term: i for i, term in enumerate(terms)}
        parts = []
        if self.base is not None and self.base.size:
            ids, slots, tfs = self.base.flat()
            parts.append((np.array([position[t] for t in base_terms], dtype=np.int64)[ids], slots, tfs))
        if self.chunks:
            to_global = np.array([position[t] for t in chunk_terms], dtype=np.int64)
            ids, slots, tfs = merge(self.chunks).flat() if len(self.chunks) > 1 else self.chunks[0].flat()
            parts.append((to_global[ids], slots, tfs))
        ids, slots, tfs = (np.concatenate([p[k] for p in parts]) if parts else EMPTY for k in range(3))
        keep = alive[slots] if len(slots) else np.zeros(0, dtype=bool)
        ids, slots, tfs = ids[keep], slots[keep], tfs[keep]
        order = np.argsort(ids, kind="stable")
        counts = np.bincount(ids, minlength=len(terms)) if len(terms) else EMPTY
        used = counts > 0
        offsets = np.concatenate([[0], np.cumsum(counts[used])]).astype(np.int64)
        slot_type = np.uint32 if not len(slots) or slots.max() < 2**32 else np.int64
        tf_type = np.uint16 if not len(tfs) or tfs.max() < 2**16 else np.uint32
        kept = [term for term, use in zip(terms, used.tolist(), strict=True) if use]
        return Segment.build(kept, offsets, slots[order].astype(slot_type), tfs[order].astype(tf_type))
