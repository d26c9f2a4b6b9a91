"""BM25 over a collection's text properties: each property is its own field, scored as
:mod:`~omniembed.store.engines.keyword.scoring` says and summed with the query's boosts.

Objects are addressed by integer slots (the engine's object ``seq``: ascending, never reused). Saved
segments are memory-mapped (:mod:`.persist`); objects added since the last save live in memory (the
fields' deltas) until the next save writes them as a new segment; removals flip the ``alive`` bitmap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.store.engines.keyword import persist, tiers
from omniembed.store.engines.keyword.analysis import Analyzer
from omniembed.store.engines.keyword.field import Field, grow
from omniembed.store.engines.keyword.maxscore import Term, best
from omniembed.store.engines.keyword.scoring import idf, length_norms
from omniembed.store.engines.keyword.segment import Segment, merged, narrow_lengths
from omniembed.store.schema import BM25Config


def analyzers(
    properties: Iterable[str], config: BM25Config, tokenization: Mapping[str, str] | None = None
) -> dict[str, Analyzer]:
    """One analyzer per property: its tokenization (``word`` if not given), the config's stemmer and
    stop words."""
    chosen = tokenization or {}
    return {name: Analyzer(chosen.get(name, "word"), config.stemmer, config.stopwords) for name in properties}


class KeywordIndex:
    """BM25 over the text properties of one collection.

    Args:
        properties: the text properties, each indexed as its own field.
        config: k1, b, stemmer and stop words (``BM25Config()`` if omitted).
        tokenization: property name to tokenization; ``word`` for those not named.
    """

    def __init__(
        self,
        properties: Iterable[str],
        config: BM25Config | None = None,
        tokenization: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config or BM25Config()
        self.fields = {name: Field(a) for name, a in analyzers(properties, self.config, tokenization).items()}
        self.segments: list[Segment] = []
        self.alive = np.zeros(1024, dtype=bool)
        self.count = 0
        self.end = 0  # one past the highest slot ever added
        self._delta = (0, 0, 0)  # objects added since the last save: lowest slot, one past the highest, count
        self._scratch = np.zeros(0, dtype=np.float64)  # per-slot sums of a search; zero between searches
        self._mark = np.zeros(0, dtype=bool)  # the slots a search may still rank; false between searches
        self._norm_cache: dict[str, tuple[np.ndarray, float]] = {}  # per field: norms, until a change
        self._saved_as: tuple[Path, dict[str, int]] | None = None  # where and with what it was last saved
        self._lock = threading.Lock()

    def add(self, slot: int, properties: Mapping[str, Any]) -> None:
        """Index the text properties of the object in ``slot`` (a slot is never reused)."""
        self.add_many([slot], [properties])

    def add_many(self, slots: Sequence[int], properties_list: Sequence[Mapping[str, Any]]) -> None:
        """Index many objects at once: ``properties_list[i]`` belongs to ``slots[i]``."""
        slot_array = np.array(slots, dtype=np.int64).reshape(-1)
        if len(slot_array) != len(properties_list):
            raise ValueError(f"add_many got {len(slot_array)} slots and {len(properties_list)} objects")
        if not len(slot_array):
            return
        with self._lock:
            self._norm_cache.clear()
            self._saved_as = None
            low, high = int(slot_array.min()), int(slot_array.max()) + 1
            self.end = max(self.end, high)
            self.alive = grow(self.alive, self.end - 1)
            self.alive[slot_array] = True
            self.count += len(slot_array)
            lo, hi, docs = self._delta
            self._delta = (min(lo, low) if docs else low, max(hi, high), docs + len(slot_array))
            for name, field in self.fields.items():
                field.add_many(slot_array, [properties.get(name) for properties in properties_list])

    def remove(self, slot: int) -> None:
        """Forget the object in ``slot`` (nothing happens if it is not indexed)."""
        with self._lock:
            if 0 <= slot < len(self.alive) and self.alive[slot]:
                self._norm_cache.clear()
                self._saved_as = None
                self.alive[slot] = False
                self.count -= 1
                for field in self.fields.values():
                    field.remove(slot)

    def search(
        self, query: str, boosts: Mapping[str, float], limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the slots and scores of the best ``limit`` matches, best first (ties by slot).

        Args:
            query: the query text, analysed per property as that property's values were.
            boosts: property name to weight; only these properties are searched.
            limit: how many results at most.
            allowed: when given, only these slots can match (a filter).
        """
        with self._lock:
            terms = self._terms(query, boosts)
            if not terms or limit <= 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
            if len(self._scratch) < len(self.alive):
                self._scratch = np.zeros(len(self.alive), dtype=np.float64)
                self._mark = np.zeros(len(self.alive), dtype=bool)
            mask = None
            if allowed is not None:
                allowed = np.asarray(allowed, dtype=np.int64)
                mask = np.zeros(len(self._scratch), dtype=bool)
                mask[allowed[(allowed >= 0) & (allowed < len(mask))]] = True
            return best(terms, limit, self.config.k1, self._scratch, self._mark, mask)

    def scores(self, query: str, boosts: Mapping[str, float]) -> np.ndarray:
        """Return the BM25 score of every slot for ``query`` (0 where nothing matches)."""
        with self._lock:
            scores = np.zeros(len(self.alive), dtype=np.float64)
            for term in self._terms(query, boosts):
                slots, values = term.scores(self.config.k1)
                np.add.at(scores, slots, values)
            return scores

    def _terms(self, query: str, boosts: Mapping[str, float]) -> list[Term]:
        """The postings of each field's distinct query terms, in the order their scores are summed."""
        n_docs, terms = max(self.count, 1), []
        for name, boost in boosts.items():
            field = self.fields[name]
            norms, least = None, 0.0
            for term in dict.fromkeys(field.analyzer(query)):
                found = self._postings(name, field, term)
                if found is not None:
                    slots, tfs = found
                    norms, least = self._norms(name, field) if norms is None else (norms, least)
                    terms.append(Term(slots, tfs, norms, least, idf(n_docs, len(slots)), boost))
        return terms

    def _norms(self, name: str, field: Field) -> tuple[np.ndarray, float]:
        """The field's length norms and the smallest of objects holding terms, kept until the index
        next changes."""
        if name not in self._norm_cache:
            average = field.total_length / max(self.count, 1) or 1.0
            norms = length_norms(field.lengths, average, self.config.k1, self.config.b)
            held = norms[field.lengths > 0]
            self._norm_cache[name] = norms, float(held.min()) if len(held) else 0.0
        return self._norm_cache[name]

    def _postings(self, name: str, field: Field, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The live slots holding ``term`` in field ``name`` and its counts there."""
        parts = [segment.postings[name].postings(term) for segment in self.segments]
        found = [part for part in parts if part is not None] + field.postings(term)
        if not found:
            return None
        slots = np.concatenate([p[0] for p in found]) if len(found) > 1 else found[0][0]
        slots = slots.astype(np.intp, copy=False)  # numpy indexes twice as fast with intp than uint32
        tfs = np.concatenate([p[1] for p in found]) if len(found) > 1 else found[0][1]
        keep = self.alive[slots]
        return (slots, tfs) if keep.all() else (slots[keep], tfs[keep])

    def save(self, prefix: Path, watermark: Mapping[str, int]) -> None:
        """Write what changed since the last save beside ``prefix`` (see :mod:`.persist`); then serve the
        new segments from their files. Nothing is written when nothing changed since it was saved there."""
        with self._lock:
            if self._saved_as == (prefix, dict(watermark)):
                return
            prefix.parent.mkdir(parents=True, exist_ok=True)
            on_disk = persist.listed(prefix)
            segments = [  # those the manifest there does not name (saved elsewhere) are written again
                s
                if s.path is not None and s.path.parent == prefix.parent and s.path.name in on_disk
                else replace(s, path=None)
                for s in self.segments
            ]
            lo, hi, docs = self._delta
            if docs:
                postings = {name: field.delta(self.alive) for name, field in self.fields.items()}
                lengths = {name: narrow_lengths(field.lengths[lo:hi]) for name, field in self.fields.items()}
                segments.append(Segment(lo, hi, docs, postings, lengths))
            while run := tiers.plan([segment.docs for segment in segments]):
                start, stop = run
                segments[start:stop] = [merged(segments[start:stop], self.alive)]
            segments = [persist.write_segment(prefix, s) if s.path is None else s for s in segments]
            totals = {name: field.total_length for name, field in self.fields.items()}
            alive = self.alive[: self.end]
            persist.commit(prefix, self.fingerprint(), segments, alive, self.count, totals, watermark)
            self.segments, self._delta = segments, (0, 0, 0)
            self._saved_as = (prefix, dict(watermark))
            for field in self.fields.values():
                field.clear()

    @classmethod
    def load(
        cls,
        prefix: Path,
        properties: Iterable[str],
        config: BM25Config | None = None,
        tokenization: Mapping[str, str] | None = None,
    ) -> tuple[KeywordIndex, dict[str, int]] | None:
        """Open what :meth:`save` wrote, memory-mapped, with the watermark saved with it.

        Returns ``None`` (and logs why) when the files are missing, truncated, corrupt or were made for
        other properties, tokenization, stemmer or stop words: the caller then rebuilds the index.
        """
        index = cls(properties, config, tokenization)
        loaded = persist.load(prefix, index.fingerprint())
        if loaded is None:
            return None
        index.segments, index.alive, index.count = loaded.segments, loaded.alive, loaded.count
        index.end = len(loaded.alive)
        for name, field in index.fields.items():
            lengths = np.zeros(max(index.end, 1), dtype=np.uint32)
            for segment in index.segments:  # a slot has its count in one segment only
                view = lengths[segment.lo : segment.hi]
                np.maximum(view, segment.lengths[name], out=view)
            index.fields[name] = Field(field.analyzer, lengths, loaded.totals[name])
        index._saved_as = (prefix, dict(loaded.watermark))
        return index, dict(loaded.watermark)

    def fingerprint(self) -> dict[str, Any]:
        """What decides the postings: the properties and how each is analysed."""
        return {name: field.analyzer.fingerprint() for name, field in self.fields.items()}
