"""BM25 over a collection's text properties: each property is its own field, scored as
:mod:`~omniembed.store.engines.keyword.scoring` says and summed with the query's boosts.

Objects are addressed by integer slots (the engine's object ``seq``: ascending, never reused). What a
save wrote is memory-mapped back by :meth:`KeywordIndex.load`; objects added since live in memory until
the next save, and removals flip the ``alive`` bitmap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.store.engines.keyword import persist
from omniembed.store.engines.keyword.analysis import Analyzer
from omniembed.store.engines.keyword.field import Field, grow
from omniembed.store.engines.keyword.scoring import idf, term_scores, top
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
        self.alive = np.zeros(1024, dtype=bool)
        self.count = 0
        self.end = 0  # one past the highest slot ever added

    def add(self, slot: int, properties: Mapping[str, Any]) -> None:
        """Index the text properties of the object in ``slot`` (a slot is never reused)."""
        self.add_many([slot], [properties])

    def add_many(self, slots: Sequence[int], properties_list: Sequence[Mapping[str, Any]]) -> None:
        """Index many objects at once: ``properties_list[i]`` belongs to ``slots[i]``."""
        slots = [int(slot) for slot in slots]
        if len(slots) != len(properties_list):
            raise ValueError(f"add_many got {len(slots)} slots and {len(properties_list)} objects")
        if not slots:
            return
        self.end = max(self.end, max(slots) + 1)
        self.alive = grow(self.alive, self.end - 1)
        self.alive[np.asarray(slots, dtype=np.int64)] = True
        self.count += len(slots)
        for name, field in self.fields.items():
            field.add_many(slots, [properties.get(name) for properties in properties_list])

    def remove(self, slot: int) -> None:
        """Forget the object in ``slot`` (nothing happens if it is not indexed)."""
        if 0 <= slot < len(self.alive) and self.alive[slot]:
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
        scores = self.scores(query, boosts)
        candidates = np.flatnonzero(scores)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            candidates = np.intersect1d(candidates, allowed[(allowed >= 0) & (allowed < len(scores))])
        candidates = candidates[scores[candidates] > 0]
        best = top(scores, candidates, limit) if limit > 0 else candidates[:0]
        return best, scores[best]

    def scores(self, query: str, boosts: Mapping[str, float]) -> np.ndarray:
        """Return the BM25 score of every slot for ``query`` (0 where nothing matches)."""
        scores = np.zeros(len(self.alive), dtype=np.float64)
        k1, b, n_docs = self.config.k1, self.config.b, max(self.count, 1)
        for name, boost in boosts.items():
            field = self.fields[name]
            average = field.total_length / n_docs or 1.0
            for term in dict.fromkeys(field.analyzer(query)):
                found = field.postings(term)
                if found is None:
                    continue
                slots, tfs = found
                keep = self.alive[slots]
                slots = slots[keep]
                if not len(slots):
                    continue
                part = term_scores(tfs[keep], field.lengths[slots], average, idf(n_docs, len(slots)), k1, b)
                scores[slots] += boost * part  # a slot appears once per term
        return scores

    def save(self, prefix: Path, watermark: Mapping[str, int]) -> None:
        """Write the index beside ``prefix`` atomically (see :mod:`.persist`); then serve from those files."""
        segments = {name: field.compacted(self.alive) for name, field in self.fields.items()}
        end = self.end
        lengths = {name: field.lengths[:end] for name, field in self.fields.items()}
        totals = {name: field.total_length for name, field in self.fields.items()}
        persist.save(
            prefix, self.fingerprint(), segments, lengths, totals, self.alive[:end], self.count, watermark
        )
        loaded = persist.load(prefix, self.fingerprint())
        if loaded is not None:  # serve from the memory-mapped files: the in-memory postings are freed
            self._adopt(loaded)

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
        index._adopt(loaded)
        return index, dict(loaded.watermark)

    def fingerprint(self) -> dict[str, Any]:
        """What decides the postings: the properties and how each is analysed."""
        return {name: field.analyzer.fingerprint() for name, field in self.fields.items()}

    def _adopt(self, loaded: persist.Loaded) -> None:
        self.alive, self.count, self.end = loaded.alive, loaded.count, len(loaded.alive)
        self.fields = {
            name: Field(field.analyzer, loaded.segments[name], loaded.lengths[name], loaded.totals[name])
            for name, field in self.fields.items()
        }
