"""One text property: term counts per object (``lengths``, by slot), their total, and the postings of
objects added since the last save (the delta: an in-memory vocabulary and chunks keyed by its ids)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from omniembed.store.engines.keyword import tiers
from omniembed.store.engines.keyword.analysis import Analyzer
from omniembed.store.engines.keyword.postings import Chunk, Postings, combine

FLUSH_DOCS = 8192  # pending objects turned into a chunk at once (or sooner, when a query needs them)


def grow(array: np.ndarray, slot: int) -> np.ndarray:
    """``array`` with room for index ``slot`` (doubling, zero-filled); a memory map becomes a copy."""
    if slot < len(array):
        return array
    grown = np.zeros(max(2 * len(array), slot + 1, 1024), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class Field:
    """Lengths, total length and the delta's postings of one property."""

    def __init__(self, analyzer: Analyzer, lengths: np.ndarray | None = None, total: int = 0) -> None:
        self.analyzer = analyzer
        self.lengths = lengths if lengths is not None else np.zeros(1024, dtype=np.uint32)
        self.total_length = total
        self.clear()

    def clear(self) -> None:
        """Forget the delta (after it was saved as a segment)."""
        self.vocabulary: dict[str, int] = {}
        self._known: dict[str, int] = {}  # token -> term id (-1: a stop word), so each is analysed once
        self.chunks: list[Chunk] = []
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # slots, docs, term ids
        self._pending_docs = 0

    def add_many(self, slots: np.ndarray, values: Sequence[Any]) -> None:
        """Analyse one value per slot (``None``: no text) and queue their postings."""
        tokens_of, flat, counts = self.analyzer.tokens, [], []
        for value in values:
            tokens = tokens_of(value) if value is not None else []
            counts.append(len(tokens))
            flat += tokens
        known = self._known
        new = list(set(flat).difference(known))
        if new:
            vocabulary = self.vocabulary
            for token, term in zip(new, self.analyzer.term_map(new), strict=True):
                known[token] = -1 if term is None else vocabulary.setdefault(term, len(vocabulary))
        ids = np.fromiter(map(known.__getitem__, flat), dtype=np.int64, count=len(flat))
        docs = np.repeat(np.arange(len(values), dtype=np.int64), counts)
        keep = ids >= 0
        ids, docs = ids[keep], docs[keep]
        lengths = np.bincount(docs, minlength=len(values))
        self.lengths = grow(self.lengths, int(slots.max()))
        self.lengths[slots] = lengths
        self.total_length += int(lengths.sum())
        self._pending.append((slots, docs, ids))
        self._pending_docs += len(values)
        if self._pending_docs >= FLUSH_DOCS:
            self.flush()

    def flush(self) -> None:
        """Turn queued postings into a chunk; merge chunks by size tiers so there are few."""
        if not self._pending:
            return
        base = np.cumsum([0] + [len(slots) for slots, _, _ in self._pending[:-1]])
        slots = np.concatenate([slots for slots, _, _ in self._pending])
        docs = np.concatenate(
            [docs + b for (_, docs, _), b in zip(self._pending, base.tolist(), strict=True)]
        )
        ids = np.concatenate([ids for _, _, ids in self._pending])
        self.chunks.append(Chunk.build(ids, docs, slots))
        self._pending, self._pending_docs = [], 0
        while run := tiers.plan([len(chunk) for chunk in self.chunks]):
            start, end = run
            merged = combine([chunk.part() for chunk in self.chunks[start:end]], len(self.vocabulary))
            self.chunks[start:end] = [Chunk(*merged)]

    def remove(self, slot: int) -> None:
        """Take the object's length out of the total (its postings stay, masked by the index)."""
        if slot < len(self.lengths):
            self.total_length -= int(self.lengths[slot])

    def postings(self, term: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """The delta's postings of ``term``, one pair of slots and counts per chunk holding it."""
        self.flush()
        term_id = self.vocabulary.get(term)
        if term_id is None:
            return []
        found = (chunk.postings(term_id) for chunk in self.chunks)
        return [part for part in found if part is not None]

    def delta(self, alive: np.ndarray) -> Postings:
        """The delta's live postings keyed by term strings (to save as a segment)."""
        self.flush()
        encoded = [term.encode("utf-8") for term in self.vocabulary]
        order = sorted(range(len(encoded)), key=encoded.__getitem__)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        parts = [(rank[chunk.ids], chunk.offsets, chunk.slots, chunk.tfs) for chunk in self.chunks]
        ids, offsets, slots, tfs = combine(parts, len(order), alive)
        return Postings.build([encoded[order[i]] for i in ids.tolist()], offsets, slots, tfs)
