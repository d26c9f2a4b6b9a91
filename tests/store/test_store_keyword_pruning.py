"""Top-k BM25 with MaxScore pruning gives exactly what ranking every object's full score gives."""

from __future__ import annotations

import numpy as np
import pytest

from omniembed.store.engines.keyword import KeywordIndex, maxscore
from omniembed.store.engines.keyword.scoring import length_norms, normed_scores, term_scores, top
from omniembed.store.schema import BM25Config

PLAIN = BM25Config(stemmer=None, stopwords=None)


def zipf_index(count: int = 4000, seed: int = 0) -> tuple[KeywordIndex, np.random.Generator]:
    """Objects of 5 to 40 words drawn from a Zipf-like vocabulary of 300 (common words are long
    postings, so pruning has something to skip), in two fields, half of them saved as a segment."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 301)
    weights /= weights.sum()
    keyword = KeywordIndex(["title", "body"], PLAIN)
    for start in range(0, count, count // 2):
        slots = list(range(start, start + count // 2))
        docs = [
            {
                "title": " ".join(f"w{w}" for w in rng.choice(300, rng.integers(1, 6), p=weights)),
                "body": " ".join(f"w{w}" for w in rng.choice(300, rng.integers(5, 41), p=weights)),
            }
            for _ in slots
        ]
        keyword.add_many(slots, docs)
    return keyword, rng


def ranked(
    scores: np.ndarray, limit: int, allowed: np.ndarray | None = None
) -> tuple[list[int], list[float]]:
    """The reference: every object with a positive full score, best first, ties by slot."""
    slots = np.flatnonzero(scores > 0)
    if allowed is not None:
        slots = np.intersect1d(slots, allowed)
    order = np.lexsort((slots, -scores[slots]))[:limit]
    return slots[order].tolist(), scores[slots[order]].tolist()


@pytest.mark.parametrize("exact", [0, 500, maxscore.EXACT])  # which terms get exact bounds first
@pytest.mark.parametrize("limit", [1, 3, 10, 100])
def test_search_matches_ranking_every_full_score(
    limit: int, exact: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maxscore, "EXACT", exact)
    keyword, rng = zipf_index()
    keyword.remove(17)
    for _ in range(40):
        query = " ".join(f"w{w}" for w in rng.choice(300, rng.integers(1, 15)))
        boosts = {"body": 1.0, "title": float(rng.choice([0.0, 0.5, 2.0]))}
        full = keyword.scores(query, boosts)
        slots, scores = keyword.search(query, boosts, limit)
        assert (slots.tolist(), scores.tolist()) == ranked(full, limit)  # the same floats, to the bit
        allowed = rng.choice(4000, 1500, replace=False)
        slots, scores = keyword.search(query, boosts, limit, allowed=allowed)
        assert (slots.tolist(), scores.tolist()) == ranked(full, limit, allowed)


def test_search_leaves_its_scratch_clean() -> None:
    keyword, _ = zipf_index(1000)
    first = keyword.search("w0 w1 w7 w150", {"body": 1.0}, 5)
    keyword.search("w2 w3 w9", {"body": 1.0, "title": 1.0}, 5, allowed=np.arange(0, 1000, 2))
    again = keyword.search("w0 w1 w7 w150", {"body": 1.0}, 5)
    assert first[0].tolist() == again[0].tolist()
    assert first[1].tolist() == again[1].tolist()


def test_ties_at_the_limit_go_to_the_lowest_slots() -> None:
    scores = np.ones(1000)
    scores[500] = 2.0
    assert top(scores, np.arange(1000), 3).tolist() == [500, 0, 1]


def test_normed_scores_equal_term_scores_to_the_bit() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 80, 500).astype(np.uint32)
    tfs = rng.integers(1, 6, 500).astype(np.uint8)
    for boost in (1.7, 1.0):
        expected = boost * term_scores(tfs, lengths, 31.3, 2.4, 1.2, 0.75)
        assert (
            normed_scores(tfs, length_norms(lengths, 31.3, 1.2, 0.75), 2.4, 1.2, boost).tolist()
            == expected.tolist()
        )
