"""BM25 scores against a hand computation, boosts, parameters and deletions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from omniembed.store.engines.keyword import KeywordIndex, tokenize
from omniembed.store.schema import BM25Config

DOCS = {
    1: {"title": "Boundary layer", "body": "the boundary layer of a flat plate"},
    2: {"title": "Shock waves", "body": "shock waves in supersonic flow"},
    3: {"title": "Flow", "body": "laminar flow and turbulent flow over a plate"},
}


def bm25(
    tf: int, n_docs: int, n_match: int, length: int, average: float, k1: float = 1.2, b: float = 0.75
) -> float:
    idf = math.log(1 + (n_docs - n_match + 0.5) / (n_match + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))


PLAIN = BM25Config(stemmer=None, stopwords=None)  # words as written: the hand computations count them


def index(config: BM25Config = PLAIN) -> KeywordIndex:
    keyword = KeywordIndex(["title", "body"], config)
    for slot, doc in DOCS.items():
        keyword.add(slot, doc)
    return keyword


def test_tokenize_splits_words_and_lowercases() -> None:
    assert tokenize("Mach-2 FLOW_rate, naïve") == ["mach", "2", "flow", "rate", "naïve"]


def test_scores_match_a_hand_computed_case() -> None:
    slots, scores = index().search("plate flow", {"body": 1.0}, limit=10)
    # body lengths: 7, 5, 8 -> average 20/3; "plate" in docs 1 and 3, "flow" in 2 and 3 (twice in 3)
    average = 20 / 3
    expected = {
        3: bm25(1, 3, 2, 8, average) + bm25(2, 3, 2, 8, average),
        1: bm25(1, 3, 2, 7, average),
        2: bm25(1, 3, 2, 5, average),
    }
    assert slots.tolist() == [3, 2, 1]
    assert scores == pytest.approx([expected[3], expected[2], expected[1]], rel=1e-12)


def test_boosts_weight_each_property() -> None:
    plain = index().scores("flow", {"title": 1.0, "body": 1.0})
    boosted = index().scores("flow", {"title": 3.0, "body": 1.0})
    title_part = bm25(1, 3, 1, 1, 5 / 3)
    assert boosted[3] - plain[3] == pytest.approx(2 * title_part)
    assert boosted[2] == pytest.approx(plain[2])


def test_k1_and_b_are_configurable() -> None:
    scores = index(BM25Config(k1=2.0, b=0.0, stemmer=None, stopwords=None)).scores("plate", {"body": 1.0})
    assert scores[1] == pytest.approx(bm25(1, 3, 2, 7, 20 / 3, k1=2.0, b=0.0))
    with pytest.raises(ValueError, match="k1"):
        BM25Config(k1=-1)


def test_removed_objects_stop_matching_and_leave_statistics() -> None:
    keyword = index()
    keyword.remove(3)
    slots, scores = keyword.search("flow", {"body": 1.0}, limit=10)
    assert slots.tolist() == [2]
    assert scores[0] == pytest.approx(bm25(1, 2, 1, 5, 12 / 2))


def test_filter_and_limit() -> None:
    slots, _ = index().search("flow plate", {"body": 1.0}, limit=1)
    assert slots.tolist() == [3]
    slots, _ = index().search("flow plate", {"body": 1.0}, limit=5, allowed=np.array([1, 2]))
    assert slots.tolist() == [2, 1]


def test_no_match_gives_nothing() -> None:
    slots, scores = index().search("hypersonic", {"title": 1.0, "body": 1.0}, limit=5)
    assert len(slots) == len(scores) == 0
