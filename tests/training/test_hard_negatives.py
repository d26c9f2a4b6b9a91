"""``mine_hard_negatives`` chooses the reference's negatives for the same settings on real text
with the real all-MiniLM-L6-v2, and refuses settings that cannot work."""

from __future__ import annotations

import csv
from typing import Any

import pytest

from helpers import models as mf

pytest.importorskip("datasets")
pytest.importorskip("sentence_transformers")
from datasets import Dataset
from sentence_transformers.util import mine_hard_negatives as reference_mine

from omniembed.training import mine_hard_negatives


def sts_pairs(limit: int) -> Dataset:
    """STS-B dev pairs scored at least 4 as (anchor, positive), one anchor repeated with a second positive."""
    anchors, positives = [], []
    with (mf.STS_DIR / "sts-dev.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if float(row[4]) >= 4 and len(anchors) < limit:
                anchors.append(row[5])
                positives.append(row[6])
    anchors.append(anchors[0])
    positives.append(positives[1])
    return Dataset.from_dict({"anchor": anchors, "positive": positives})


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return sts_pairs(120)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return mf.sts_dev_sentences(400)


SETTINGS: dict[str, dict[str, Any]] = {
    "triplet": {},
    "n-tuple-ranks": {"output_format": "n-tuple", "range_min": 2, "range_max": 12, "num_negatives": 4},
    "absolute-margin": {"absolute_margin": 0.05, "num_negatives": 2, "output_scores": True},
    "relative-margin": {"relative_margin": 0.1, "output_format": "n-tuple", "output_scores": True},
    "score-bounds": {"max_score": 0.8, "min_score": 0.3, "output_format": "labeled-pair"},
    "labeled-list": {"output_format": "labeled-list", "num_negatives": 2},
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_same_negatives_as_the_reference(
    name: str, dataset: Dataset, corpus: list[str], minilm: Any, minilm_reference: Any
) -> None:
    settings = SETTINGS[name]
    found = mine_hard_negatives(dataset, minilm, corpus=corpus, **settings)
    expected = reference_mine(dataset, minilm_reference, corpus=corpus, verbose=False, **settings)
    assert found.column_names == expected.column_names
    assert len(found) == len(expected) > 0
    for column in found.column_names:
        if column in ("scores", "score"):
            for ours, theirs in zip(found[column], expected[column], strict=True):
                assert ours == pytest.approx(theirs, abs=1e-5)
        else:
            assert found[column] == expected[column], column


def test_approximate_search_finds_the_same_negatives_on_a_small_corpus(
    dataset: Dataset, corpus: list[str], minilm: Any
) -> None:
    pytest.importorskip("faiss")
    exact = mine_hard_negatives(dataset, minilm, corpus=corpus, output_format="n-tuple")
    approximate = mine_hard_negatives(dataset, minilm, corpus=corpus, output_format="n-tuple", use_ann=True)
    same = sum(a == b for a, b in zip(exact["negative_1"], approximate["negative_1"], strict=True))
    assert same >= 0.95 * len(exact)


def test_random_sampling_keeps_to_the_ranks_and_the_seed(
    dataset: Dataset, corpus: list[str], minilm: Any
) -> None:
    top = mine_hard_negatives(
        dataset, minilm, corpus=corpus, output_format="n-tuple", range_max=8, num_negatives=8
    )
    first = mine_hard_negatives(
        dataset,
        minilm,
        corpus=corpus,
        output_format="n-tuple",
        range_max=8,
        sampling_strategy="random",
        seed=3,
    )
    again = mine_hard_negatives(
        dataset,
        minilm,
        corpus=corpus,
        output_format="n-tuple",
        range_max=8,
        sampling_strategy="random",
        seed=3,
    )
    assert first.to_dict() == again.to_dict()
    pool = [{top[f"negative_{i}"][row] for i in range(1, 9)} for row in range(len(top))]
    for row in range(len(first)):
        assert {first[f"negative_{i}"][row] for i in range(1, 4)} <= pool[row]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_negatives": 0}, "num_negatives"),
        ({"range_min": 5, "range_max": 5}, "range_min < range_max"),
        ({"range_min": 0, "range_max": 2, "num_negatives": 3}, "cannot choose 3 negatives"),
        ({"output_format": "pairs"}, "output_format 'pairs'"),
        ({"anchor_column_name": "query"}, "column 'query'"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str, minilm: Any) -> None:
    data = Dataset.from_dict({"anchor": ["a"], "positive": ["b"]})
    with pytest.raises(ValueError, match=message):
        mine_hard_negatives(data, minilm, **settings)
