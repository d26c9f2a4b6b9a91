"""BM25 keyword search over a collection's text properties, held in memory.

Each text property is its own field. For a query with terms ``t`` and property boosts ``w_p``::

    score(d) = sum_p w_p * sum_t idf_p(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len_p(d) / avglen_p))
    idf_p(t) = ln(1 + (N - n_p(t) + 0.5) / (n_p(t) + 0.5))

with ``tf`` the count of ``t`` in property ``p`` of ``d``, ``N`` the number of objects and ``n_p(t)``
the number holding ``t`` in ``p`` (the Lucene/Weaviate idf, never negative). Text is split into words
(letters and digits) and lowercased. The index is derived data: it is rebuilt from the objects table
when a database opens, so it can never disagree with what was committed.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from omniembed.store.schema import BM25Config

_WORD = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase words.

    >>> tokenize("Boundary-layer flow, at Mach 2!")
    ['boundary', 'layer', 'flow', 'at', 'mach', '2']
    """
    return _WORD.findall(text.lower())


def text_of(value: Any) -> str:
    """Join a text or text-array property value into one string."""
    return " ".join(value) if isinstance(value, list) else str(value)


class _Field:
    """Postings and lengths of one property."""

    def __init__(self) -> None:
        self.postings: dict[str, tuple[array[int], array[int]]] = {}
        self.frozen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.lengths = np.zeros(1024, dtype=np.float64)
        self.total_length = 0.0

    def add(self, slot: int, words: list[str]) -> None:
        if slot >= len(self.lengths):
            self.lengths = np.concatenate([self.lengths, np.zeros(len(self.lengths) + slot, np.float64)])
        self.lengths[slot] = len(words)
        self.total_length += len(words)
        for word, count in Counter(words).items():
            slots, counts = self.postings.setdefault(word, (array("q"), array("l")))
            slots.append(slot)
            counts.append(count)
            self.frozen.pop(word, None)

    def remove(self, slot: int) -> None:
        if slot < len(self.lengths):
            self.total_length -= float(self.lengths[slot])
            self.lengths[slot] = 0

    def arrays(self, word: str) -> tuple[np.ndarray, np.ndarray] | None:
        if word not in self.postings:
            return None
        if word not in self.frozen:
            slots, counts = self.postings[word]
            self.frozen[word] = (np.array(slots, dtype=np.int64), np.array(counts, dtype=np.int64))
        return self.frozen[word]


class KeywordIndex:
    """BM25 over the text properties of one collection; objects are addressed by integer slots."""

    def __init__(self, properties: Iterable[str], config: BM25Config | None = None) -> None:
        self.config = config or BM25Config()
        self.fields = {name: _Field() for name in properties}
        self.alive = np.zeros(1024, dtype=bool)
        self.count = 0

    def add(self, slot: int, properties: Mapping[str, Any]) -> None:
        """Index the text properties of the object in ``slot`` (a slot is never reused)."""
        if slot >= len(self.alive):
            self.alive = np.concatenate([self.alive, np.zeros(len(self.alive) + slot, dtype=bool)])
        self.alive[slot] = True
        self.count += 1
        for name, field in self.fields.items():
            value = properties.get(name)
            field.add(slot, tokenize(text_of(value)) if value is not None else [])

    def remove(self, slot: int) -> None:
        """Forget the object in ``slot``."""
        if slot < len(self.alive) and self.alive[slot]:
            self.alive[slot] = False
            self.count -= 1
            for field in self.fields.values():
                field.remove(slot)

    def search(
        self, query: str, boosts: Mapping[str, float], limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the slots and scores of the best ``limit`` matches, best first.

        Args:
            query: the query text.
            boosts: property name to weight; only these properties are searched.
            limit: how many results at most.
            allowed: when given, only these slots can match (a filter).
        """
        scores = self.scores(query, boosts)
        if allowed is not None:
            mask = np.zeros(len(scores), dtype=bool)
            inside = allowed[allowed < len(scores)]
            mask[inside] = True
            scores = np.where(mask, scores, 0.0)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > limit:
            matched = matched[np.argpartition(-scores[matched], limit - 1)[:limit]]
        order = np.lexsort((matched, -scores[matched]))
        return matched[order], scores[matched[order]]

    def scores(self, query: str, boosts: Mapping[str, float]) -> np.ndarray:
        """Return the BM25 score of every slot for ``query`` (0 where nothing matches)."""
        scores = np.zeros(len(self.alive), dtype=np.float64)
        words = set(tokenize(query))
        k1, b, n_docs = self.config.k1, self.config.b, max(self.count, 1)
        for name, boost in boosts.items():
            field = self.fields[name]
            average = field.total_length / n_docs or 1.0
            for word in words:
                found = field.arrays(word)
                if found is None:
                    continue
                slots, counts = found
                keep = self.alive[slots]
                slots, tf = slots[keep], counts[keep].astype(np.float64)
                if not len(slots):
                    continue
                idf = np.log1p((n_docs - len(slots) + 0.5) / (len(slots) + 0.5))
                norm = k1 * (1 - b + b * field.lengths[slots] / average)
                scores[slots] += boost * idf * tf * (k1 + 1) / (tf + norm)  # slots are unique per word
        return scores
