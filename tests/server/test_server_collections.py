"""Collections REST against a real server: create, insert with per-object errors, CRUD, every query."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import omniembed as oe
from omniembed.server import create_app

from helpers.server import serve

pytestmark = pytest.mark.server

ARTICLES = [
    {"title": "Cats", "body": "Cats purr and sleep in the sun.", "year": 2001, "tags": ["pets"]},
    {"title": "Dogs", "body": "Dogs bark and fetch sticks.", "year": 1995, "tags": ["pets"]},
    {"title": "Rockets", "body": "Rockets burn fuel to reach orbit.", "year": 2015, "tags": ["space"]},
    {"title": "Stars", "body": "Stars are hot balls of gas.", "year": 2020, "tags": ["space", "science"]},
]


@pytest.fixture
def served(minilm: Any, tmp_path: Path) -> Iterator[tuple[httpx.Client, Any]]:
    db = oe.connect(tmp_path / "db")
    with serve(create_app(model=minilm, db=db)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, db
    db.close()


def create(client: httpx.Client) -> None:
    response = client.post(
        "/v1/collections",
        json={
            "name": "Article",
            "properties": {"title": "text", "body": "text", "year": "int", "tags": "text[]"},
            "vectors": {"text": {"properties": ["title", "body"]}},
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["vectors"]["text"]["dims"] == 384


def test_create_insert_query_roundtrip(served: tuple[httpx.Client, Any], minilm: Any) -> None:
    client, db = served
    create(client)
    assert client.post("/v1/collections", json={"name": "Article"}).json()["error"]["code"] == (
        "collection_exists"
    )
    objects = [{"properties": a} for a in ARTICLES] + [{"properties": {"year": "old"}}]
    inserted = client.post("/v1/collections/Article/objects", json={"objects": objects}).json()
    assert sorted(inserted["uuids"]) == ["0", "1", "2", "3"]
    assert list(inserted["errors"]) == ["4"]
    assert "year" in inserted["errors"]["4"]
    listed = client.get("/v1/collections").json()["collections"]
    assert [(c["name"], c["count"]) for c in listed] == [("Article", 4)]

    def query(**body: Any) -> list[dict[str, Any]]:
        response = client.post("/v1/collections/Article/query", json=body)
        assert response.status_code == 200, response.text
        return list(response.json()["objects"])

    near = query(type="near_text", query="kittens", limit=2)
    assert near[0]["properties"]["title"] == "Cats"
    python = db.collections.get("Article").query.near_text("kittens", limit=2)
    assert [o["uuid"] for o in near] == python.uuids
    assert near[0]["score"] == pytest.approx(python[0].score, abs=1e-6)
    assert query(type="bm25", query="orbit")[0]["properties"]["title"] == "Rockets"
    hybrid = query(type="hybrid", query="space gas", alpha=0.5, explain=True, limit=4)
    assert hybrid[0]["properties"]["title"] == "Stars"
    assert set(hybrid[0]["explain"]) >= {"vector_rank", "bm25_rank", "fused"}
    vector = minilm.encode_query("barking").tolist()
    assert query(type="near_vector", vector=vector, limit=1)[0]["properties"]["title"] == "Dogs"
    modern = {"path": "year", "operator": ">=", "value": 2000}
    space = {"path": "tags", "operator": "contains_any", "value": ["space"]}
    both = query(type="fetch", filters={"operator": "and", "operands": [modern, space]}, limit=10)
    assert sorted(o["properties"]["title"] for o in both) == ["Rockets", "Stars"]
    neither = query(type="fetch", filters={"operator": "not", "operands": [modern]})
    assert [o["properties"]["title"] for o in neither] == ["Dogs"]
    either = {"operator": "or", "operands": [space, {"path": "title", "operator": "like", "value": "C*"}]}
    assert len(query(type="near_text", query="x", filters=either)) == 3

    no_value = {"type": "fetch", "filters": {"path": "year", "operator": "<"}}
    bad = client.post("/v1/collections/Article/query", json=no_value)
    assert bad.status_code == 400
    assert "value" in bad.json()["error"]["message"]
    unknown = client.post(
        "/v1/collections/Article/query",
        json={"type": "fetch", "filters": {"path": "nope", "operator": "==", "value": 1}},
    )
    assert unknown.status_code == 400
    assert "nope" in unknown.json()["error"]["message"]


def test_object_crud_and_not_found(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    create(client)
    inserted = client.post("/v1/collections/Article/objects", json={"objects": [{"properties": ARTICLES[0]}]})
    uuid = inserted.json()["uuids"]["0"]
    got = client.get(f"/v1/collections/Article/objects/{uuid}", params={"include_vector": True}).json()
    assert got["properties"]["title"] == "Cats"
    assert len(got["vectors"]["text"]) == 384
    patch = {"properties": {"year": 2024}}
    assert client.patch(f"/v1/collections/Article/objects/{uuid}", json=patch).is_success
    assert client.get(f"/v1/collections/Article/objects/{uuid}").json()["properties"]["year"] == 2024
    replaced = client.put(f"/v1/collections/Article/objects/{uuid}", json={"properties": {"title": "Birds"}})
    assert replaced.is_success
    assert client.get(f"/v1/collections/Article/objects/{uuid}").json()["properties"] == {"title": "Birds"}
    assert len(client.get("/v1/collections/Article/objects").json()["objects"]) == 1
    assert client.delete(f"/v1/collections/Article/objects/{uuid}").is_success
    gone = client.get(f"/v1/collections/Article/objects/{uuid}")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "object_not_found")
    assert client.delete("/v1/collections/Article").is_success
    missing = client.post("/v1/collections/Article/query", json={"type": "fetch"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "collection_not_found")


def test_self_provided_vectors_and_images_come_only_as_data(served: tuple[httpx.Client, Any]) -> None:
    from PIL import Image

    client, _ = served
    response = client.post(
        "/v1/collections",
        json={
            "name": "Pictures",
            "properties": {"caption": "text", "picture": "image"},
            "vectors": {"own": {"self_provided": True, "dims": 3}},
        },
    )
    assert response.status_code == 201, response.text
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    objects = [
        {"properties": {"caption": "red", "picture": data_url}, "vectors": {"own": [1, 0, 0]}},
        {"properties": {"caption": "file", "picture": str(Path(__file__))}, "vectors": {"own": [0, 1, 0]}},
    ]
    result = client.post("/v1/collections/Pictures/objects", json={"objects": objects}).json()
    assert list(result["uuids"]) == ["0"]
    assert "reads no files and fetches no URLs" in result["errors"]["1"]
    near = {"type": "near_vector", "vector": [0.9, 0.1, 0]}
    hits = client.post("/v1/collections/Pictures/query", json=near)
    stored = hits.json()["objects"][0]["properties"]["picture"]
    assert base64.b64decode(stored) == buffer.getvalue()
    assert np.isclose(hits.json()["objects"][0]["score"], 0.9 / np.linalg.norm([0.9, 0.1, 0]), atol=1e-5)


def test_the_beir_corpus_through_the_batch_route_twice(served: tuple[httpx.Client, Any]) -> None:
    import json

    corpus = Path(__file__).parents[2] / "data" / "cranfield" / "beir" / "corpus.jsonl"
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    client, _ = served
    spec = {
        "name": "Cran",
        "properties": {"id": "text", "title": "text", "text": "text", "metadata": "object"},
        "vectors": {"own": {"self_provided": True, "dims": 3}},
    }
    assert client.post("/v1/collections", json=spec).status_code == 201
    body = {"objects": [{"properties": row} for row in rows], "id_field": "_id"}
    for _ in range(2):
        inserted = client.post("/v1/collections/Cran/objects", json=body).json()
        assert inserted["errors"] == {}
        assert len(inserted["uuids"]) == 1400
    assert client.get("/v1/collections/Cran").json()["count"] == 1400
    author = rows[0]["metadata"]["author"]
    where = {"path": "metadata.author", "operator": "==", "value": author}
    found = client.post("/v1/collections/Cran/query", json={"type": "fetch", "filters": where}).json()
    assert rows[0]["_id"] in [obj["properties"]["id"] for obj in found["objects"]]
    assert all(obj["properties"]["metadata"]["author"] == author for obj in found["objects"])
