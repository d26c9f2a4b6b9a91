"""Postings in CSR form: term ``i`` holds ``slots[offsets[i]:offsets[i+1]]`` with counts ``tfs[...]``.

Two kinds: a :class:`Chunk` keyed by the integer term ids of an in-memory vocabulary (what new objects
go into until the next save), and :class:`Postings` keyed by term strings (sorted by their UTF-8 bytes
and found by a ``searchsorted`` over their first 8 bytes, so a memory-mapped one needs no dictionary
of its terms). :func:`combine` merges either kind in linear time, without sorting the postings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EMPTY = np.zeros(0, dtype=np.int64)
Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # ids, offsets, slots, tfs


@dataclass
class Chunk:
    """Postings of new objects, keyed by term ids (``ids`` ascending)."""

    ids: np.ndarray
    offsets: np.ndarray
    slots: np.ndarray
    tfs: np.ndarray

    @classmethod
    def build(cls, term_ids: np.ndarray, docs: np.ndarray, slots: np.ndarray) -> Chunk:
        """Count one ``(term id, document index)`` per token into a chunk; ``slots`` maps documents."""
        n_docs = max(len(slots), 1)
        keys, tfs = np.unique(term_ids * n_docs + docs, return_counts=True)  # term-major order
        terms = keys // n_docs
        starts = np.flatnonzero(np.diff(terms, prepend=-1)) if len(terms) else EMPTY
        return cls(terms[starts], np.append(starts, len(terms)), slots[keys % n_docs], tfs)

    def __len__(self) -> int:
        return len(self.slots)

    def postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The slots and counts of one term, or ``None``."""
        i = int(np.searchsorted(self.ids, term_id))
        if i == len(self.ids) or self.ids[i] != term_id:
            return None
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.slots[start:end], self.tfs[start:end]

    def part(self) -> Part:
        """The arrays :func:`combine` takes."""
        return self.ids, self.offsets, self.slots, self.tfs


def combine(parts: Sequence[Part], vocabulary: int, alive: np.ndarray | None = None) -> Part:
    """Merge CSR parts whose ids share one space of ``vocabulary`` terms into one, ids ascending.

    Each part lists a term at most once (in any order); within a term, postings keep the order of
    ``parts``. With ``alive``, postings of dead slots are dropped. Linear in postings plus vocabulary.
    """
    parts = [_live(part, alive) for part in parts] if alive is not None else list(parts)
    counts = [np.diff(offsets) for _, offsets, _, _ in parts]
    total = np.zeros(vocabulary, dtype=np.int64)
    for (ids, _, _, _), count in zip(parts, counts, strict=True):
        total[ids] += count
    used = np.flatnonzero(total)
    offsets = np.concatenate([[0], np.cumsum(total[used])]).astype(np.int64)
    cursor = np.zeros(vocabulary, dtype=np.int64)
    cursor[used] = offsets[:-1]
    slot_type = np.result_type(*[part[2].dtype for part in parts]) if parts else np.int64
    tf_type = np.result_type(*[part[3].dtype for part in parts]) if parts else np.int64
    slots, tfs = np.empty(offsets[-1], dtype=slot_type), np.empty(offsets[-1], dtype=tf_type)
    for (ids, starts, part_slots, part_tfs), count in zip(parts, counts, strict=True):
        to = cursor[ids]
        cursor[ids] += count
        where = np.repeat(to - starts[:-1], count) + np.arange(len(part_slots))
        slots[where], tfs[where] = part_slots, part_tfs
    return used, offsets, slots, tfs


def _live(part: Part, alive: np.ndarray) -> Part:
    ids, offsets, slots, tfs = part
    keep = alive[slots]
    if keep.all():
        return part
    kept = np.concatenate([[0], np.cumsum(keep)])[offsets]
    return ids, kept, slots[keep], tfs[keep]


def narrow(slots: np.ndarray, tfs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest unsigned types that hold ``slots`` and ``tfs`` (for saving); float weights (the
    sparse index's) are kept as ``float32``."""
    weights = tfs.astype(np.float32) if tfs.dtype.kind == "f" else tfs.astype(smallest(tfs, np.uint8))
    return slots.astype(smallest(slots, np.uint32)), weights


def smallest(values: np.ndarray, start: type[np.unsignedinteger]) -> type[np.integer]:
    """The first of ``start``, wider unsigned types, ``int64`` that holds ``values``."""
    top = int(values.max()) if len(values) else 0
    for kind in (np.uint8, np.uint16, np.uint32):
        if np.dtype(kind).itemsize >= np.dtype(start).itemsize and top <= np.iinfo(kind).max:
            return kind
    return np.int64


class Postings:
    """Postings keyed by term strings, possibly memory-mapped from a saved segment.

    ``keys`` holds the first 8 bytes of each term as a big-endian number: it sorts as the terms do.
    """

    def __init__(
        self,
        blob: np.ndarray,
        term_offsets: np.ndarray,
        keys: np.ndarray,
        offsets: np.ndarray,
        slots: np.ndarray,
        tfs: np.ndarray,
    ) -> None:
        self.blob, self.term_offsets, self.keys = blob, term_offsets, keys
        self.offsets, self.slots, self.tfs = offsets, slots, tfs
        self.size = len(keys)

    @classmethod
    def build(cls, terms: list[bytes], offsets: np.ndarray, slots: np.ndarray, tfs: np.ndarray) -> Postings:
        """Postings from UTF-8 terms sorted as bytes and their CSR arrays (stored as narrow as they fit)."""
        lengths = np.fromiter((len(term) for term in terms), dtype=np.int64, count=len(terms))
        term_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        blob = np.frombuffer(b"".join(terms), dtype=np.uint8)
        keys = np.array(terms, dtype="S8").view(">u8").astype(np.uint64) if terms else EMPTY.astype(np.uint64)
        return cls(blob, term_offsets, keys, offsets.astype(np.int64), *narrow(slots, tfs))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to save, by name."""
        return {
            "blob": self.blob,
            "term_offsets": self.term_offsets,
            "keys": self.keys,
            "offsets": self.offsets,
            "slots": self.slots,
            "tfs": self.tfs,
        }

    def term(self, i: int) -> bytes:
        """The UTF-8 bytes of term ``i``."""
        return self.blob[int(self.term_offsets[i]) : int(self.term_offsets[i + 1])].tobytes()

    def find(self, term: str) -> int:
        """The index of ``term``, or -1: a search over the 8-byte keys, then over the terms sharing one."""
        encoded = term.encode("utf-8")
        key = np.uint64(int.from_bytes(encoded[:8].ljust(8, b"\0"), "big"))
        low = int(np.searchsorted(self.keys, key, "left"))
        high = int(np.searchsorted(self.keys, key, "right"))
        while low < high:
            middle = (low + high) // 2
            if self.term(middle) < encoded:
                low = middle + 1
            else:
                high = middle
        return low if low < self.size and self.term(low) == encoded else -1

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The slots and counts of ``term``, or ``None``."""
        i = self.find(term)
        if i < 0:
            return None
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.slots[start:end], self.tfs[start:end]

    def terms(self) -> list[bytes]:
        """Every term, in order (for merging)."""
        data, bounds = self.blob.tobytes(), self.term_offsets.tolist()
        return [data[bounds[i] : bounds[i + 1]] for i in range(self.size)]


def merge_postings(postings: Sequence[Postings], alive: np.ndarray) -> Postings:
    """One :class:`Postings` holding the live postings of several (given in slot order)."""
    term_lists = [p.terms() for p in postings]
    terms = sorted(set().union(*term_lists))
    position = {term: i for i, term in enumerate(terms)}
    parts = [
        (np.array([position[t] for t in listed], dtype=np.int64), np.asarray(p.offsets), p.slots, p.tfs)
        for p, listed in zip(postings, term_lists, strict=True)
    ]
    ids, offsets, slots, tfs = combine(parts, len(terms), alive)
    return Postings.build([terms[i] for i in ids.tolist()], offsets, slots, tfs)
