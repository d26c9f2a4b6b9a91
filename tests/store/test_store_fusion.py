"""Hybrid fusion formulas, checked by hand."""

from __future__ import annotations

import pytest

from omniembed.retrieval.fusion import fuse, normalise

VECTOR = [("a", 0.9), ("b", 0.7), ("c", 0.5)]
KEYWORD = [("c", 12.0), ("d", 4.0), ("a", 2.0)]


def test_relative_score_normalises_each_list_then_weights() -> None:
    fused = {row[0]: row[1] for row in fuse(VECTOR, KEYWORD, alpha=0.75, fusion="relative_score")}
    assert fused["a"] == pytest.approx(0.75 * 1.0 + 0.25 * 0.0)
    assert fused["b"] == pytest.approx(0.75 * 0.5)
    assert fused["c"] == pytest.approx(0.75 * 0.0 + 0.25 * 1.0)
    assert fused["d"] == pytest.approx(0.25 * 0.2)


def test_ranked_fusion_sums_reciprocal_ranks() -> None:
    fused = fuse(VECTOR, KEYWORD, alpha=0.5, fusion="ranked", rrf_k=60)
    scores = {row[0]: row[1] for row in fused}
    assert scores["a"] == pytest.approx(0.5 / 61 + 0.5 / 63)
    assert scores["c"] == pytest.approx(0.5 / 63 + 0.5 / 61)
    assert scores["d"] == pytest.approx(0.5 / 62)
    assert [row[0] for row in fused] == ["a", "c", "b", "d"]  # a and c tie: broken by id
    assert fuse(VECTOR, KEYWORD, alpha=0.5, fusion="ranked", rrf_k=1)[0][1] == pytest.approx(
        0.5 / 2 + 0.5 / 4
    )


def test_alpha_extremes_are_pure_searches() -> None:
    assert [row[0] for row in fuse(VECTOR, KEYWORD, alpha=1.0)][:3] == ["a", "b", "c"]
    assert [row[0] for row in fuse(VECTOR, KEYWORD, alpha=0.0)][:3] == ["c", "d", "a"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alpha"):
        fuse(VECTOR, KEYWORD, alpha=1.5)
    with pytest.raises(ValueError, match="fusion"):
        fuse(VECTOR, KEYWORD, alpha=0.5, fusion="mean")  # type: ignore[arg-type]


def test_normalise_handles_ties_and_empty_lists() -> None:
    assert normalise([]) == []
    assert normalise([3.0, 3.0]) == [1.0, 1.0]
    assert normalise([1.0, 2.0, 3.0]) == [0.0, 0.5, 1.0]
