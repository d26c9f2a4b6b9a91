"""Postings in CSR form: term ``i`` holds ``slots[offsets[i]:offsets[i+1]]`` with counts ``tfs[...]``.

Two kinds: a :class:`Segment` keyed by term strings (sorted by their UTF-8 bytes, looked up by
bisection, so a memory-mapped one needs no dictionary of its terms), and a :class:`Chunk` keyed by the
integer term ids of an in-memory vocabulary (what new objects go into until the next save).
Within a term, slots ascend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMPTY = np.zeros(0, dtype=np.int64)


def group(term_ids: np.ndarray, slots: np.ndarray, tfs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort postings by term (stable, so slots keep their order) and return ``ids, offsets, slots, tfs``."""
    order = np.argsort(term_ids, kind="stable")
    term_ids, slots, tfs = term_ids[order], slots[order], tfs[order]
    starts = np.flatnonzero(np.diff(term_ids, prepend=-1)) if len(term_ids) else EMPTY
    offsets = np.append(starts, len(term_ids)).astype(np.int64)
    return term_ids[starts], offsets, slots, tfs


def count_terms(docs: np.ndarray, term_ids: np.ndarray, vocabulary: int) -> tuple[np.ndarray, ...]:
    """Turn one ``(document index, term id)`` per token into ``term_ids, docs, tfs``, one row per pair,
    ordered by document."""
    keys, tfs = np.unique(docs.astype(np.int64) * vocabulary + term_ids, return_counts=True)
    return keys % vocabulary, keys // vocabulary, tfs.astype(np.int64)


@dataclass
class Chunk:
    """Postings of new objects, keyed by term ids (``ids`` ascending)."""

    ids: np.ndarray
    offsets: np.ndarray
    slots: np.ndarray
    tfs: np.ndarray

    @classmethod
    def build(cls, term_ids: np.ndarray, slots: np.ndarray, tfs: np.ndarray) -> Chunk:
        """Group flat postings (ascending slots) into a chunk."""
        return cls(*group(term_ids, slots, tfs))

    def __len__(self) -> int:
        return len(self.slots)

    def postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The slots and counts of one term, or ``None``."""
        i = int(np.searchsorted(self.ids, term_id))
        if i == len(self.ids) or self.ids[i] != term_id:
            return None
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.slots[start:end], self.tfs[start:end]

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Back to one row per posting: ``term_ids, slots, tfs``."""
        return np.repeat(self.ids, np.diff(self.offsets)), self.slots, self.tfs


def merge(chunks: list[Chunk]) -> Chunk:
    """One chunk holding all postings of ``chunks`` (given in slot order)."""
    parts = [chunk.flat() for chunk in chunks]
    return Chunk.build(*(np.concatenate([part[k] for part in parts]) for k in range(3)))


class Segment:
    """Postings keyed by term strings, possibly memory-mapped from a saved index."""

    def __init__(
        self,
        blob: np.ndarray,
        term_offsets: np.ndarray,
        offsets: np.ndarray,
        slots: np.ndarray,
        tfs: np.ndarray,
    ) -> None:
        self.blob, self.term_offsets, self.offsets, self.slots, self.tfs = (
            blob,
            term_offsets,
            offsets,
            slots,
            tfs,
        )
        self.size = len(term_offsets) - 1

    @classmethod
    def build(cls, terms: list[bytes], offsets: np.ndarray, slots: np.ndarray, tfs: np.ndarray) -> Segment:
        """A segment from UTF-8 terms sorted as bytes and their postings."""
        lengths = np.fromiter((len(term) for term in terms), dtype=np.int64, count=len(terms))
        term_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        blob = np.frombuffer(b"".join(terms), dtype=np.uint8)
        return cls(blob, term_offsets, offsets.astype(np.int64), slots, tfs)

    def term(self, i: int) -> bytes:
        """The UTF-8 bytes of term ``i``."""
        return self.blob[int(self.term_offsets[i]) : int(self.term_offsets[i + 1])].tobytes()

    def find(self, term: str) -> int:
        """The index of ``term``, or -1 (binary search over the sorted term bytes)."""
        key, low, high = term.encode("utf-8"), 0, self.size
        while low < high:
            middle = (low + high) // 2
            if self.term(middle) < key:
                low = middle + 1
            else:
                high = middle
        return low if low < self.size and self.term(low) == key else -1

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The slots and counts of ``term``, or ``None``."""
        i = self.find(term)
        if i < 0:
            return None
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.slots[start:end], self.tfs[start:end]

    def terms(self) -> list[bytes]:
        """Every term, in order (for merging at save time)."""
        data, bounds = self.blob.tobytes(), self.term_offsets.tolist()
        return [data[bounds[i] : bounds[i + 1]] for i in range(self.size)]

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One row per posting: ``term index, slots, tfs``."""
        counts = np.diff(np.asarray(self.offsets))
        return (
            np.repeat(np.arange(self.size, dtype=np.int64), counts),
            np.asarray(self.slots),
            np.asarray(self.tfs),
        )
