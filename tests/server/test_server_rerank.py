"""``/v1/rerank`` against the reranker's own ``rank``, and ``rerank`` on collection queries against the
Python API's ``rerank=oe.Rerank(...)``, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import omniembed as oe
from omniembed.server import create_app

from helpers import models as mf
from helpers.server import serve

pytestmark = pytest.mark.server

DOCUMENTS = ["Cats purr.", "Rockets reach orbit.", "Dogs bark at night.", "Bread rises with yeast."]


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cross_encoder = pytest.importorskip(
        "omniembed.rerank.cross_encoder",
        reason="omniembed.rerank.cross_encoder (the reranker) is not in this tree yet",
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


ARTICLES = [
    {"title": "Cats", "body": "Cats purr and sleep in the sun.", "year": 2001},
    {"title": "Dogs", "body": "Dogs bark and fetch sticks.", "year": 1995},
    {"title": "Rockets", "body": "Rockets burn fuel to reach orbit.", "year": 2015},
    {"title": "Stars", "body": "Stars are hot balls of gas.", "year": 2020},
    {"title": "Bread", "body": "Bread rises with yeast in a warm kitchen.", "year": 2010},
    {"title": "Rivers", "body": "Rivers carry water and sand to the sea.", "year": 1990},
]


@pytest.fixture(scope="module")
def articles(
    minilm: Any, reranker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, Any]]:
    db = oe.connect(tmp_path_factory.mktemp("rerank") / "db")
    collection = db.collections.create(
        "Article", {"title": "text", "body": "text", "year": "int"}, oe.Vectorizer(minilm, ["title", "body"])
    )
    collection.data.insert_many(ARTICLES, show_progress=False)
    app = create_app(model=minilm, db=db, reranker=reranker)
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, collection
    db.close()


def rest_query(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/v1/collections/Article/query", json=body)


@pytest.mark.parametrize(
    ("body", "python"),
    [
        (
            {"type": "near_text", "query": "pets at home", "limit": 3, "rerank": {"property": "body"}},
            lambda q, r: q.near_text("pets at home", limit=3, rerank=oe.Rerank(r, "body")),
        ),
        (
            {
                "type": "bm25",
                "query": "cats dogs rivers",
                "limit": 2,
                "rerank": {"property": "title", "candidates": 6},
            },
            lambda q, r: q.bm25("cats dogs rivers", limit=2, rerank=oe.Rerank(r, "title", candidates=6)),
        ),
        (
            {"type": "hybrid", "query": "sun", "alpha": 0.5, "rerank": {"property": "body", "query": "gas"}},
            lambda q, r: q.hybrid("sun", alpha=0.5, rerank=oe.Rerank(r, "body", query="gas")),
        ),
    ],
    ids=["near_text", "bm25", "hybrid"],
)
def test_query_rerank_matches_python_api(
    articles: tuple[httpx.Client, Any], reranker: Any, body: dict[str, Any], python: Any
) -> None:
    client, collection = articles
    response = rest_query(client, **body)
    assert response.status_code == 200, response.text
    objects = response.json()["objects"]
    expected = python(collection.query, reranker)
    assert [o["uuid"] for o in objects] == expected.uuids
    assert len(objects) == min(body.get("limit", 10), len(ARTICLES))
    scores = [o["rerank_score"] for o in objects]
    assert scores == pytest.approx([o.rerank_score for o in expected], abs=1e-6)
    assert scores == sorted(scores, reverse=True)
    unranked = rest_query(client, **{**body, "rerank": None}).json()["objects"]
    assert all("rerank_score" not in o for o in unranked)
    assert [o["uuid"] for o in unranked] != expected.uuids  # the (random) cross-encoder reorders them


def test_query_rerank_by_given_text_for_vector_searches(
    articles: tuple[httpx.Client, Any], reranker: Any
) -> None:
    client, collection = articles
    vector = collection.query.fetch_objects(limit=1, include_vector=True)[0].vectors["default"].tolist()
    rerank = {"property": "body", "query": "gas"}
    body = {"type": "near_vector", "vector": vector, "limit": 4, "rerank": rerank}
    objects = rest_query(client, **body).json()["objects"]
    expected = collection.query.near_vector(vector, limit=4, rerank=oe.Rerank(reranker, "body", query="gas"))
    assert [o["uuid"] for o in objects] == expected.uuids

    no_text = rest_query(client, **{**body, "rerank": {"property": "body"}})
    assert no_text.status_code == 400
    assert "rerank.query" in no_text.json()["error"]["message"]


def test_query_rerank_errors(articles: tuple[httpx.Client, Any], minilm: Any, tmp_path: Path) -> None:
    client, _ = articles
    unknown = rest_query(client, type="near_text", query="x", rerank={"property": "year"})
    assert unknown.status_code == 400
    assert "'year'" in unknown.json()["error"]["message"]
    fetch = rest_query(client, type="fetch", rerank={"property": "body"})
    assert (fetch.status_code, fetch.json()["error"]["code"]) == (400, "invalid_input")
    missing = rest_query(client, type="bm25", query="x", rerank={})
    assert missing.status_code == 422
    assert "rerank.property" in missing.json()["error"]["message"]

    db = oe.connect(tmp_path / "db")
    db.collections.create("Article", {"body": "text"}, oe.Vectorizer(minilm, ["body"]))
    with serve(create_app(model=minilm, db=db)) as url:
        body = {"type": "bm25", "query": "x", "rerank": {"property": "body"}}
        response = httpx.post(f"{url}/v1/collections/Article/query", json=body)
    db.close()
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_served")
    assert "--reranker" in response.json()["error"]["message"]
