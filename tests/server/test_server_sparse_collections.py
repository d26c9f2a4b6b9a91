"""Sparse vectors through collections REST: a served SparseEncoder's collection, and vectors of your own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import omniembed as oe
from omniembed.server import create_app

from helpers.server import serve
from helpers.sparse import build_splade

pytestmark = pytest.mark.server

TEXTS = [
    "Cats purr and sleep in the sun.",
    "Dogs bark and fetch sticks.",
    "Rockets burn fuel to reach orbit.",
]


@pytest.fixture(scope="module")
def splade(tmp_path_factory: pytest.TempPathFactory) -> oe.SparseEncoder:
    return oe.SparseEncoder(build_splade(tmp_path_factory.mktemp("splade") / "model"), device="cpu")


@pytest.fixture
def served(splade: oe.SparseEncoder, tmp_path: Path) -> Iterator[tuple[httpx.Client, Any]]:
    db = oe.connect(tmp_path / "db")
    with serve(create_app(model=splade, db=db)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, db
    db.close()


def test_a_served_sparse_model_vectorizes_and_searches(
    served: tuple[httpx.Client, Any], splade: oe.SparseEncoder
) -> None:
    client, _ = served
    spec = {
        "name": "Doc",
        "properties": {"body": "text"},
        "vectors": {"splade": {"properties": ["body"]}, "own": {"self_provided": True, "sparse": True}},
    }
    created = client.post("/v1/collections", json=spec)
    assert created.status_code == 201, created.text
    described = created.json()["vectors"]
    assert described["splade"]["sparse"]
    assert described["splade"]["metric"] == "dot"
    assert described["splade"]["dims"] == 30522
    assert described["own"]["dims"] is None
    objects = [
        {"properties": {"body": text}, "vectors": {"own": {"indices": [i, 100 + i], "values": [1.0, 0.5]}}}
        for i, text in enumerate(TEXTS)
    ]
    inserted = client.post("/v1/collections/Doc/objects", json={"objects": objects}).json()
    assert inserted["errors"] == {}
    assert inserted["embedded"] == 3
    uuids = [inserted["uuids"][str(i)] for i in range(3)]
    fetched = client.get(f"/v1/collections/Doc/objects/{uuids[1]}", params={"include_vector": True}).json()
    assert fetched["vectors"]["own"] == {"indices": [1, 101], "values": [1.0, 0.5]}
    expected = splade.encode_document(TEXTS[1]).coalesce()
    assert fetched["vectors"]["splade"]["indices"] == expected.indices()[0].tolist()
    query = {
        "type": "near_vector",
        "vector": {"indices": [2, 101], "values": [1.0, 2.0]},
        "target_vector": "own",
    }
    found = client.post("/v1/collections/Doc/query", json=query).json()["objects"]
    assert [o["uuid"] for o in found] == [uuids[1], uuids[2]]
    assert found[0]["score"] == pytest.approx(1.0)
    near_text = {"type": "near_text", "query": "cats in the sun", "target_vector": "splade", "limit": 3}
    by_text = client.post("/v1/collections/Doc/query", json=near_text).json()["objects"]
    with oe.connect() as db:  # the same search in Python gives the same order
        docs = db.collections.create("D", {"body": "text"}, {"s": oe.Vectorizer(splade, properties=["body"])})
        order = docs.data.insert_many([{"body": text} for text in TEXTS]).uuids
        local = docs.query.near_text("cats in the sun", limit=3).uuids
    assert [uuids[list(order.values()).index(u)] for u in local] == [o["uuid"] for o in by_text]
    hybrid = {
        "type": "hybrid",
        "query": "cats",
        "weights": {"sparse": 0.7, "bm25": 0.3},
        "target_vector": "own",
        "vector": {"indices": [0], "values": [1.0]},
        "explain": True,
    }
    fused = client.post("/v1/collections/Doc/query", json=hybrid)
    assert fused.status_code == 200, fused.text
    first = fused.json()["objects"][0]
    assert first["uuid"] == uuids[0]
    assert set(first["explain"]) >= {"sparse_rank", "bm25_rank", "fused"}
    replaced = {"properties": {"body": TEXTS[2]}, "vectors": {"own": {"indices": [7], "values": [3.0]}}}
    assert client.put(f"/v1/collections/Doc/objects/{uuids[2]}", json=replaced).status_code == 200
    again = client.get(f"/v1/collections/Doc/objects/{uuids[2]}", params={"include_vector": True}).json()
    assert again["vectors"]["own"] == {"indices": [7], "values": [3.0]}
