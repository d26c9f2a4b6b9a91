"""``rerank=`` on collection queries: a real (tiny, random) cross-encoder reorders the candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniembed as oe

from helpers import models as mf

BODIES = [f"document number {i} about flow and heat and shells" for i in range(12)]


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return oe.CrossEncoder(mf.build_cross_encoder(tmp_path_factory.mktemp("ce")))


def test_rerank_reorders_candidates_by_the_cross_encoder(reranker) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    with oe.connect() as db:
        docs = db.collections.create("Doc", {"body": "text"}, {"v": oe.SelfProvided(4)})
        docs.data.insert_many([oe.DataObject({"body": b}, vectors={"v": rng.normal(size=4)}) for b in BODIES])
        plain = docs.query.bm25("flow heat", limit=12)
        expected = reranker.rank("flow heat", [o.properties["body"] for o in plain], top_k=3)
        reranked = docs.query.bm25("flow heat", limit=3, rerank=oe.Rerank(reranker, "body", candidates=12))
        assert [o.properties["body"] for o in reranked] == [
            plain[h["corpus_id"]].properties["body"] for h in expected
        ]
        assert [o.rerank_score for o in reranked] == pytest.approx([h["score"] for h in expected], abs=1e-6)
        hybrid = docs.query.hybrid(
            "flow", vector=rng.normal(size=4), limit=2, rerank=oe.Rerank(reranker, "body")
        )
        assert len(hybrid) == 2
        assert all(o.rerank_score is not None for o in hybrid)
        vector = docs.query.near_vector(
            rng.normal(size=4), limit=2, rerank=oe.Rerank(reranker, "body", query="heat")
        )
        assert len(vector) == 2
        with pytest.raises(ValueError, match="needs a text query"):
            docs.query.near_vector(rng.normal(size=4), rerank=oe.Rerank(reranker, "body"))
        with pytest.raises(ValueError, match="not among"):
            docs.query.bm25("flow", rerank=oe.Rerank(reranker, "title"))


def test_rerank_accepts_any_object_with_rank(tmp_path: Path) -> None:
    class ByLength:
        def rank(self, query: str, documents: list[str], top_k: int | None = None) -> list[dict[str, object]]:
            order = sorted(range(len(documents)), key=lambda i: (-len(documents[i]), i))[:top_k]
            return [{"corpus_id": i, "score": float(len(documents[i]))} for i in order]

    with oe.connect(tmp_path / "db") as db:
        docs = db.collections.create("Doc", {"body": "text"})
        docs.data.insert_many([{"body": "flow"}, {"body": "flow flow flow"}, {"body": "flow flow"}])
        result = docs.query.bm25("flow", limit=2, rerank=oe.Rerank(ByLength(), "body"))
        assert [o.properties["body"] for o in result] == ["flow flow flow", "flow flow"]
