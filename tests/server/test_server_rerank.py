"""``/v1/rerank`` against the reranker's own ``rank`` (needs the cross-encoder from the rerank work)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_live import serve

from omniembed.server import create_app

import model_factory as mf

pytestmark = pytest.mark.server

DOCUMENTS = ["Cats purr.", "Rockets reach orbit.", "Dogs bark at night.", "Bread rises with yeast."]


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cross_encoder = pytest.importorskip(
        "omniembed.cross_encoder",
        reason="omniembed.cross_encoder (the reranker) is not in this tree yet",
    )
    folder = mf.build_cross_encoder(tmp_path_factory.mktemp("cross") / "model")
    return cross_encoder.CrossEncoder(folder, device="cpu")


@pytest.fixture(scope="module")
def base_url(reranker: Any) -> Iterator[str]:
    with serve(create_app(reranker=reranker)) as url:
        yield url


def test_rerank_matches_rank(base_url: str, reranker: Any) -> None:
    body = {"query": "pets", "documents": DOCUMENTS, "top_n": 3, "return_documents": True}
    results = httpx.post(f"{base_url}/v1/rerank", json=body).json()["results"]
    expected = reranker.rank("pets", DOCUMENTS, top_k=3)
    assert [r["index"] for r in results] == [e["corpus_id"] for e in expected]
    assert [r["relevance_score"] for r in results] == pytest.approx([e["score"] for e in expected], abs=1e-6)
    assert [r["document"]["text"] for r in results] == [DOCUMENTS[e["corpus_id"]] for e in expected]


def test_rerank_without_reranker_is_404(minilm: Any, tmp_path: Path) -> None:
    with serve(create_app(model=minilm)) as url:
        response = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": ["d"]})
    assert response.status_code == 404
    assert "--reranker" in response.json()["error"]["message"]
