"""The multi-vector index: exact MaxSim on its candidates, add/remove/replace, a pickle-free round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniembed.late_interaction.index import LateInteractionIndex
from omniembed.late_interaction.maxsim import maxsim
from omniembed.late_interaction.muvera import FDEParams, encode


def _documents(count: int, dim: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = [rng.standard_normal((int(rng.integers(1, 30)), dim)).astype(np.float32) for _ in range(count)]
    return [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]


def test_scores_are_exact_maxsim() -> None:
    documents = _documents(400)
    rng = np.random.default_rng(1)
    sources = rng.choice(400, 20, replace=False)
    # Each query is a few noisy tokens of one document, which should come out on top.
    queries = [
        documents[i][:4] + 0.05 * rng.standard_normal((min(4, len(documents[i])), 16)) for i in sources
    ]
    index = LateInteractionIndex(16, candidates=40)
    index.add(list(range(400)), documents)
    truth = maxsim(queries, documents).numpy()
    found = 0
    for qi, query in enumerate(queries):
        fast = index.search(query, k=10)
        exact = index.search_exhaustive(query, k=10)
        np.testing.assert_allclose([h["score"] for h in exact], np.sort(truth[qi])[::-1][:10], rtol=1e-4)
        for hit in fast:
            assert hit["score"] == pytest.approx(truth[qi, hit["id"]], rel=1e-4)
        found += fast[0]["id"] == sources[qi]
        assert index.search(query, k=10, candidates=400) == exact
    assert found >= 18


def test_fde_dot_tracks_maxsim() -> None:
    params = FDEParams(dim=16, bits=3, projection_dim=16, repetitions=30)
    draws = params.draws()
    documents = _documents(60)
    query = documents[0][:5]
    approx = [
        encode(query, params, query=True, draws=draws) @ encode(d, params, query=False, draws=draws)
        for d in documents
    ]
    exact = maxsim([query], documents).numpy()[0]
    assert np.corrcoef(approx, exact)[0, 1] > 0.8
    assert int(np.argmax(approx)) == int(np.argmax(exact)) == 0


def test_add_replace_remove_and_save_load(tmp_path: Path) -> None:
    documents = _documents(50)
    index = LateInteractionIndex(16, candidates=50)
    index.add([f"d{i}" for i in range(50)], documents)
    index.add(["d3"], [documents[7]])  # replaces d3
    assert len(index) == 50
    assert index.ids[-1] == "d3"
    index.remove(["d7", "missing"])
    query = documents[7][:3]
    assert index.search(query, k=1)[0]["id"] == "d3"
    index.save(tmp_path / "idx")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
        "fde.npy",
        "index.json",
        "offsets.npy",
        "tokens.npy",
    ]
    loaded = LateInteractionIndex.load(tmp_path / "idx")
    assert loaded.search(query, k=5) == index.search(query, k=5)
    loaded.add(["new"], [documents[7]])
    loaded.save(tmp_path / "idx")  # over the old copy
    assert len(LateInteractionIndex.load(tmp_path / "idx")) == 50


def test_bad_input() -> None:
    index = LateInteractionIndex(16)
    assert index.search(np.ones((2, 16)), k=3) == []
    with pytest.raises(
        ValueError, match=r"token matrix at index 1 has shape \(3, 8\); expected \(tokens, 16\)"
    ):
        index.add(["a", "b"], [np.ones((2, 16)), np.ones((3, 8))])
    with pytest.raises(ValueError, match="got 1 ids and 2 token matrices"):
        index.add(["a"], [np.ones((2, 16)), np.ones((2, 16))])
    with pytest.raises(ValueError, match="query at index 0 has shape"):
        index.search(np.ones(16), k=1)
