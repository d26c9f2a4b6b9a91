"""An inverted index over sparse vectors (token id -> weight), scored by exact dot product.

A sparse posting list is a keyword posting list whose counts are float weights, so this index keeps its
postings in the keyword index's structures: new vectors go into in-memory CSR chunks
(:class:`~omniembed.store.engines.keyword.postings.Chunk`), each save writes them as one immutable
segment file beside the database, segments merge by size tiers, removals flip an alive bitmap, and a
JSON manifest with the caller's watermark is written last (:mod:`omniembed.store.engines.keyword.persist`).
A token id is the segment's "term" as 8 hex digits, so terms sort as ids and each has a distinct key.

A search adds ``query weight * document weight`` into a float64 scratch array for every posting of
every query token, then takes the best ``limit`` live (and allowed) slots: every posting is read, so
the scores are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.sparse import SparseVector
from omniembed.store.engines.keyword import persist, tiers
from omniembed.store.engines.keyword.field import grow
from omniembed.store.engines.keyword.postings import Chunk, Postings, combine, smallest
from omniembed.store.engines.keyword.scoring import top
from omniembed.store.engines.keyword.segment import Segment, merged, narrow_lengths
from omniembed.store.sparse_vectors import as_sparse

FIELD = "weights"
FINGERPRINT = {FIELD: {"kind": "sparse", "version": 1}}
FLUSH_POSTINGS = 1 << 20  # queued postings turned into a chunk at once (or sooner, when a query comes)


def token_terms(tokens: Sequence[int]) -> list[bytes]:
    """Token ids as segment terms: 8 hex digits, which sort as the ids do.

    >>> token_terms([10, 255])
    [b'0000000a', b'000000ff']
    """
    return [f"{token:08x}".encode() for token in tokens]


def token_keys(tokens: Sequence[int]) -> np.ndarray:
    """The 8-byte keys :class:`Postings` sorts its terms by, for token ids."""
    return np.array(token_terms(tokens), dtype="S8").view(">u8").astype(np.uint64)


def as_arrays(vector: SparseVector | tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The ``int64`` token ids and ``float32`` weights of a vector."""
    if isinstance(vector, SparseVector):
        return np.asarray(vector.indices, dtype=np.int64), np.asarray(vector.values, dtype=np.float32)
    return np.asarray(vector[0], dtype=np.int64), np.asarray(vector[1], dtype=np.float32)


class SparseIndex:
    """Sparse vectors by slot (the engine's object ``seq``), searched by dot product.

    Args:
        vocab_size: the model's vocabulary size, bounding token ids (``None``: 32-bit ids).
    """

    def __init__(self, vocab_size: int | None = None) -> None:
        self.vocab_size = vocab_size
        self.segments: list[Segment] = []
        self.alive = np.zeros(1024, dtype=bool)
        self.nonzeros = np.zeros(1024, dtype=np.uint32)  # per slot: its vector's nonzero count
        self.count = 0
        self.end = 0  # one past the highest slot ever added
        self._scratch = np.zeros(0, dtype=np.float64)  # per-slot sums of a search; zero between searches
        self._saved_as: tuple[Path, dict[str, int]] | None = None  # where and with what it was last saved
        self._lock = threading.Lock()
        self._clear_delta()

    def _clear_delta(self) -> None:
        """Forget what was added since the last save (after it was saved as a segment)."""
        self._delta = (0, 0, 0)  # lowest slot, one past the highest, vectors
        self._ids: dict[int, int] = {}  # token id -> its id in the chunks
        self._tokens: list[int] = []  # the reverse
        self._chunks: list[Chunk] = []
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # slots, chunk ids, weights
        self._pending_postings = 0

    def prepare_one(self, vector: Any) -> SparseVector:
        """Check one vector (sorted unique token ids within the vocabulary, positive finite weights)."""
        return as_sparse(vector, self.vocab_size, "sparse vector")

    def add(self, slots: np.ndarray, vectors: Sequence[SparseVector | tuple[np.ndarray, np.ndarray]]) -> None:
        """Index ``vectors[i]`` in ``slots[i]`` (a slot is never reused)."""
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        if len(slots) != len(vectors):
            raise ValueError(f"add got {len(slots)} slots and {len(vectors)} vectors")
        if not len(slots):
            return
        pairs = [as_arrays(vector) for vector in vectors]
        counts = np.array([len(tokens) for tokens, _ in pairs], dtype=np.int64)
        tokens = np.concatenate([tokens for tokens, _ in pairs])
        weights = np.concatenate([weights for _, weights in pairs])
        distinct, inverse = np.unique(tokens, return_inverse=True)
        with self._lock:
            for token in distinct.tolist():
                if token not in self._ids:
                    self._ids[token] = len(self._tokens)
                    self._tokens.append(token)
            ids = np.array([self._ids[token] for token in distinct.tolist()], dtype=np.int64)
            self._saved_as = None
            high = int(slots.max()) + 1
            self.end = max(self.end, high)
            self.alive = grow(self.alive, self.end - 1)
            self.nonzeros = grow(self.nonzeros, self.end - 1)
            self.alive[slots] = True
            self.nonzeros[slots] = counts
            self.count += len(slots)
            lo, hi, docs = self._delta
            low = int(slots.min())
            self._delta = (min(lo, low) if docs else low, max(hi, high), docs + len(slots))
            self._pending.append((np.repeat(slots, counts), ids[inverse.reshape(-1)], weights))
            self._pending_postings += len(tokens)
            if self._pending_postings >= FLUSH_POSTINGS:
                self._flush()

    def _flush(self) -> None:
        """Turn queued postings into a chunk; merge chunks by size tiers so there are few."""
        if not self._pending:
            return
        slots, ids, weights = (np.concatenate(parts) for parts in zip(*self._pending, strict=True))
        order = np.lexsort((slots, ids))
        ids, slots, weights = ids[order], slots[order], weights[order]
        starts = np.flatnonzero(np.diff(ids, prepend=-1))
        slots = slots.astype(smallest(slots, np.uint32))  # half the memory of int64 until the next save
        self._chunks.append(Chunk(ids[starts], np.append(starts, len(ids)), slots, weights))
        self._pending, self._pending_postings = [], 0
        while run := tiers.plan([len(chunk) for chunk in self._chunks]):
            start, end = run
            parts = [chunk.part() for chunk in self._chunks[start:end]]
            self._chunks[start:end] = [Chunk(*combine(parts, len(self._tokens)))]

    def remove(self, slots: Sequence[int]) -> None:
        """Forget the vectors in ``slots`` (those not indexed are skipped)."""
        with self._lock:
            for slot in slots:
                if 0 <= slot < len(self.alive) and self.alive[slot]:
                    self.alive[slot] = False
                    self.count -= 1
                    self._saved_as = None

    def search(
        self, query: SparseVector, limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the slots and distances (negated dot products) of the best ``limit`` live vectors
        with a positive dot product, best first, ties by slot; ``allowed``: only these slots."""
        tokens, weights = as_arrays(query)
        with self._lock:
            self._flush()
            if not len(tokens) or limit <= 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
            if len(self._scratch) < len(self.alive):
                self._scratch = np.zeros(len(self.alive), dtype=np.float64)
            scores = self._scratch
            try:
                for slots, values, weight in self._postings(tokens, weights):
                    scores[slots.astype(np.intp, copy=False)] += values.astype(np.float64) * weight
                # Weights are positive on both sides (and a float64 product of float32 numbers never
                # underflows to 0), so the touched slots are those above 0.
                touched = np.flatnonzero(scores)
                keep = self.alive[touched]
                if allowed is not None:
                    mask = np.zeros(len(scores), dtype=bool)
                    allowed = np.asarray(allowed, dtype=np.int64)
                    mask[allowed[(allowed >= 0) & (allowed < len(mask))]] = True
                    keep &= mask[touched]
                picked = top(scores, touched[keep], limit).astype(np.int64)
                return picked, -scores[picked]
            finally:
                scores[:] = 0.0

    def _postings(
        self, tokens: np.ndarray, weights: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """For each query token, its postings in every segment and chunk, with the query weight."""
        found: list[tuple[np.ndarray, np.ndarray, float]] = []
        keys = token_keys(tokens.tolist())
        query_weights = weights.astype(np.float64).tolist()
        for segment in self.segments:
            postings = segment.postings[FIELD]
            at = np.searchsorted(postings.keys, keys)
            for i, position in enumerate(at.tolist()):
                if position < postings.size and postings.keys[position] == keys[i]:
                    start, end = int(postings.offsets[position]), int(postings.offsets[position + 1])
                    found.append((postings.slots[start:end], postings.tfs[start:end], query_weights[i]))
        for i, token in enumerate(tokens.tolist()):
            ident = self._ids.get(token)
            if ident is None:
                continue
            for chunk in self._chunks:
                part = chunk.postings(ident)
                if part is not None:
                    found.append((part[0], part[1], query_weights[i]))
        return found

    def save(self, prefix: Path | None, watermark: dict[str, int]) -> None:
        """Write what changed since the last save beside ``prefix`` (see
        :mod:`~omniembed.store.engines.keyword.persist`); then serve the new segments from their files.
        Nothing is written when nothing changed since it was saved there."""
        if prefix is None:
            return
        with self._lock:
            if self._saved_as == (prefix, dict(watermark)):
                return
            self._flush()
            prefix.parent.mkdir(parents=True, exist_ok=True)
            on_disk = persist.listed(prefix)
            segments = [
                s
                if s.path is not None and s.path.parent == prefix.parent and s.path.name in on_disk
                else replace(s, path=None)
                for s in self.segments
            ]
            lo, hi, docs = self._delta
            if docs:
                lengths = {FIELD: narrow_lengths(self.nonzeros[lo:hi])}
                segments.append(Segment(lo, hi, docs, {FIELD: self._delta_postings()}, lengths))
            while run := tiers.plan([segment.docs for segment in segments]):
                start, stop = run
                segments[start:stop] = [merged(segments[start:stop], self.alive)]
            segments = [persist.write_segment(prefix, s) if s.path is None else s for s in segments]
            live = int(self.nonzeros[: self.end][self.alive[: self.end]].sum())
            alive = self.alive[: self.end]
            persist.commit(prefix, FINGERPRINT, segments, alive, self.count, {FIELD: live}, watermark)
            self.segments = segments
            self._saved_as = (prefix, dict(watermark))
            self._clear_delta()

    def _delta_postings(self) -> Postings:
        """The chunks' live postings keyed by token terms (to save as a segment)."""
        order = np.argsort(np.array(self._tokens, dtype=np.int64), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        parts = [(rank[chunk.ids], chunk.offsets, chunk.slots, chunk.tfs) for chunk in self._chunks]
        ids, offsets, slots, weights = combine(parts, len(order), self.alive)
        tokens = [self._tokens[order[i]] for i in ids.tolist()]
        return Postings.build(token_terms(tokens), offsets, slots, weights.astype(np.float32))

    @classmethod
    def load(cls, prefix: Path, vocab_size: int | None = None) -> tuple[SparseIndex, dict[str, int]] | None:
        """Open what :meth:`save` wrote, memory-mapped, with its watermark; ``None`` (logged) when the
        files are missing, stale or corrupt, so the caller rebuilds from SQLite."""
        loaded = persist.load(prefix, FINGERPRINT, "sparse index")
        if loaded is None:
            return None
        index = cls(vocab_size)
        if any(segment.postings[FIELD].tfs.dtype.kind != "f" for segment in loaded.segments):
            return None
        index.segments, index.alive, index.count = loaded.segments, loaded.alive.copy(), loaded.count
        index.end = len(loaded.alive)
        index.nonzeros = np.zeros(max(index.end, 1), dtype=np.uint32)
        for segment in index.segments:  # a slot has its count in one segment only
            view = index.nonzeros[segment.lo : segment.hi]
            np.maximum(view, segment.lengths[FIELD], out=view)
        index._saved_as = (prefix, dict(loaded.watermark))
        return index, dict(loaded.watermark)
