"""The adversarial tests: what a remote caller can send, against a real server on 127.0.0.1.

Every problem a caller can cause must come back as a clear 4xx JSON error, never a 500 or a hang.
Every new route must extend these tests: ``ROUTES`` names the tests that attack each route, and
``test_every_route_is_attacked`` fails when the app has a route that ``ROUTES`` does not name.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import omniembed as oe
from omniembed.server import ServerSettings, create_app

from helpers import models as mf
from helpers import pdfs
from helpers.server import free_port, serve

pytestmark = pytest.mark.server

BIG_TEXT = "word " * 3_000_000  # 15 MB: ~21 s of tokenizing before any limit saw it
FAST = 3.0  # seconds: generous bounds for answers that must not wait on the model or the tokenizer


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from omniembed.rerank.cross_encoder import CrossEncoder

    return CrossEncoder(mf.build_cross_encoder(tmp_path_factory.mktemp("cross") / "model"), device="cpu")


@pytest.fixture(scope="module")
def served(
    minilm: Any, reranker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, Any]]:
    """One server with a model, a reranker and a database; each test makes its own collections."""
    db = oe.connect(tmp_path_factory.mktemp("attacks") / "db")
    app = create_app(model=minilm, db=db, reranker=reranker, settings=ServerSettings(model_name="minilm"))
    with serve(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client, db
    db.close()


def make(client: httpx.Client, name: str, **body: Any) -> None:
    """Create a collection with text, int, number and text[] properties and a self-provided vector."""
    spec = {
        "name": name,
        "properties": {"title": "text", "year": "int", "score": "number", "tags": "text[]"},
        "vectors": {"own": {"self_provided": True, "dims": 3}},
        **body,
    }
    response = client.post("/v1/collections", json=spec)
    assert response.status_code == 201, response.text


def refused(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """Check a JSON error with this status whose message holds each of ``words``; return it."""
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    for word in words:
        assert word in error["message"], error["message"]
    return dict(error)


def fetch(client: httpx.Client, collection: str, **body: Any) -> httpx.Response:
    return client.post(f"/v1/collections/{collection}/query", json={"type": "fetch", **body})


def nested(depth: int) -> str:
    """A filter under ``depth`` levels of ``not``, as JSON text (json.dumps would recurse as deep)."""
    condition = '{"path": "year", "operator": "==", "value": 1}'
    return '{"operator": "not", "operands": [' * depth + condition + "]}" * depth


def fetch_nested(client: httpx.Client, collection: str, depth: int) -> httpx.Response:
    body = '{"type": "fetch", "filters": ' + nested(depth) + "}"
    headers = {"content-type": "application/json"}
    return client.post(f"/v1/collections/{collection}/query", content=body, headers=headers)


# --- filters -------------------------------------------------------------------------------------


def test_deep_filters_are_refused_while_parsing(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Deep")
    assert fetch_nested(client, "Deep", 16).status_code == 200
    refused(fetch_nested(client, "Deep", 17), 400, "nested", "16")
    refused(fetch_nested(client, "Deep", 100), 400, "nested")  # SQLite's parser overflowed
    refused(fetch_nested(client, "Deep", 450), 400, "nested")  # about as deep as JSON parsing goes
    # 100,000 levels: JSON parsing gives up before any of our code runs, with a 4xx all the same.
    deep = fetch_nested(client, "Deep", 100_000)
    assert 400 <= deep.status_code < 500, deep.text[:300]
    assert "error" in deep.json()
    plain = client.post("/v1/embeddings", content="[" * 100_000 + "]" * 100_000)
    assert 400 <= plain.status_code < 500, plain.text[:300]
    assert "error" in plain.json()


def test_wide_filters_are_refused(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Wide")
    many = [{"path": "year", "operator": "==", "value": i} for i in range(5000)]
    for operator in ("and", "or"):
        refused(fetch(client, "Wide", filters={"operator": operator, "operands": many}), 400, "conditions")
    values = list(range(300_000))
    refused(fetch(client, "Wide", filters={"path": "year", "operator": "contains_any", "value": values}), 400)
    lists = [{"path": "tags", "operator": "contains_all", "value": [str(v) for v in range(4000)]}] * 4
    refused(fetch(client, "Wide", filters={"operator": "or", "operands": lists}), 400, "values")
    fine = {"path": "year", "operator": "contains_any", "value": list(range(4000))}
    assert fetch(client, "Wide", filters=fine).status_code == 200
    inserted = client.post(
        "/v1/collections/Wide/objects", json={"objects": [{"properties": {"title": "a" * 999}}]}
    )
    assert list(inserted.json()["uuids"]) == ["0"]
    pattern = {"path": "title", "operator": "like", "value": "*a" * 30_000}  # SQLite: "too complex"
    refused(fetch(client, "Wide", filters=pattern), 400, "like pattern", "1000")
    backtracking = {"path": "title", "operator": "like", "value": "*a" * 499 + "b"}
    start = time.monotonic()
    assert fetch(client, "Wide", filters=backtracking).json()["objects"] == []
    assert time.monotonic() - start < FAST


def test_is_none_takes_a_boolean(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Nones")
    for value in ("no", 0, "false", None):
        condition = {"path": "year", "operator": "is_none", "value": value}
        refused(fetch(client, "Nones", filters=condition), 400, "is_none", "true or false")
    condition = {"path": "year", "operator": "is_none", "value": False}
    assert fetch(client, "Nones", filters=condition).status_code == 200


# --- integers and sizes --------------------------------------------------------------------------


def test_integers_outside_64_bits_are_refused(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Ints")
    for value in (2**63, -(2**63) - 1, 10**30, 1e300):
        condition = {"path": "year", "operator": "==", "value": value}
        refused(fetch(client, "Ints", filters=condition), 400, "64-bit")
        listed = {"path": "year", "operator": "contains_any", "value": [1, value]}
        refused(fetch(client, "Ints", filters=listed), 400, "64-bit")
    refused(fetch(client, "Ints", filters={"path": "score", "operator": ">", "value": 10**400}), 400, "score")
    edge = {"path": "year", "operator": "==", "value": 2**63 - 1}
    assert fetch(client, "Ints", filters=edge).status_code == 200
    objects = [
        {"properties": {"year": 2**64}, "vectors": {"own": [1, 0, 0]}},
        {"properties": {"score": 10**400}, "vectors": {"own": [1, 0, 0]}},
        {"properties": {"year": -(2**63)}, "vectors": {"own": [1, 0, 0]}},
    ]
    inserted = client.post("/v1/collections/Ints/objects", json={"objects": objects})
    assert inserted.status_code == 200, inserted.text
    assert list(inserted.json()["uuids"]) == ["2"]
    assert "64-bit" in inserted.json()["errors"]["0"]
    assert "score" in inserted.json()["errors"]["1"]
    uuid = inserted.json()["uuids"]["2"]
    patch = client.patch(f"/v1/collections/Ints/objects/{uuid}", json={"properties": {"year": 2**63}})
    refused(patch, 400, "64-bit")
    put = client.put(f"/v1/collections/Ints/objects/{uuid}", json={"properties": {"year": -(2**64)}})
    refused(put, 400, "64-bit")


def test_nested_objects_are_bounded_in_depth_and_size(served: tuple[httpx.Client, Any]) -> None:
    from omniembed.store.nested import MAX_OBJECT_BYTES, MAX_OBJECT_DEPTH

    client, _ = served
    spec = {"name": "Nested", "properties": {"meta": "object", "id": "text"}}
    assert client.post("/v1/collections", json={**spec, "vectors": {}}).status_code == 201

    def deep(levels: int) -> str:
        return '{"k": ' * levels + "1" + "}" * levels

    def insert(meta: str, id_field: str | None = None) -> httpx.Response:
        extra = f', "id_field": "{id_field}"' if id_field else ""
        body = '{"objects": [{"properties": {"meta": ' + meta + ', "_id": "a"}}]' + extra + "}"
        headers = {"content-type": "application/json"}
        return client.post("/v1/collections/Nested/objects", content=body, headers=headers)

    assert insert(deep(MAX_OBJECT_DEPTH), "_id").json()["errors"] == {}
    assert "nests more than" in insert(deep(MAX_OBJECT_DEPTH + 1), "_id").json()["errors"]["0"]
    # Far deeper than the store's limit: JSON parsing gives up first, with a 4xx all the same.
    far = insert(deep(100_000), "_id")
    assert 400 <= far.status_code < 500, far.text[:300]
    assert "error" in far.json()
    huge = '{"text": "' + "x" * MAX_OBJECT_BYTES + '"}'
    assert "bytes of JSON" in insert(huge, "_id").json()["errors"]["0"]
    assert "has no 'missing'" in insert("{}", "missing").json()["errors"]["0"]
    bad_path = {"path": "meta.k') OR 1 --", "operator": "==", "value": 1}
    refused(fetch(client, "Nested", filters=bad_path), 400, "not letters")


def test_offset_is_capped(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Pages")
    for offset in (2**63, 10**9 + 1):
        refused(fetch(client, "Pages", offset=offset), 422, "offset")
        refused(client.get("/v1/collections/Pages/objects", params={"offset": offset}), 422, "offset")
    assert fetch(client, "Pages", offset=10**9).status_code == 200
    assert client.get("/v1/collections/Pages/objects", params={"offset": 10**9}).status_code == 200


def test_dims_have_a_ceiling(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    huge = {"name": "Huge", "vectors": {"v": {"self_provided": True, "dims": 100_000_000}}}
    refused(client.post("/v1/collections", json=huge), 422, "dims", "65536")
    assert client.get("/v1/collections/Huge").status_code == 404
    # Without dims, the first vector fixes them: a longer one than the ceiling is refused by itself.
    make(client, "Unsized", vectors={"v": {"self_provided": True}})
    objects = [{"properties": {}, "vectors": {"v": [0.5] * 70_000}}]
    inserted = client.post("/v1/collections/Unsized/objects", json={"objects": objects}).json()
    assert inserted["uuids"] == {}
    assert "65536" in inserted["errors"]["0"]


def test_bm25_boosts_are_positive_finite_numbers(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Boosts")
    for boost in ("NaN", "-5", "0", "1e309", "inf"):
        body = {"type": "bm25", "query": "cats", "query_properties": [f"title^{boost}"]}
        refused(client.post("/v1/collections/Boosts/query", json=body), 400, "boost", "title")
    body = {"type": "hybrid", "query": "cats", "query_properties": ["title^2.5"], "vector": [1, 0, 0]}
    assert client.post("/v1/collections/Boosts/query", json=body).status_code == 200


def test_text_analysis_options_are_checked_and_bounded(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    for bm25, words in (
        ({"stopwords": ["w"] * 20_000}, ("stopwords", "10000")),
        ({"stopwords": ["x" * 1_000]}, ("stopwords", "64")),
        ({"stemmer": "klingon"}, ("klingon", "english")),
        ({"stopwords": "klingon"}, ("klingon", "english")),
        ({"k1": -1}, ("k1",)),
    ):
        body = {"name": "Analysed", "properties": {"title": "text"}, "bm25": bm25}
        response = client.post("/v1/collections", json=body)
        assert response.status_code in (400, 422), bm25
        assert all(word in response.text for word in words), (bm25, response.text)
    odd = {"title": {"type": "text", "tokenization": "shell"}}
    refused(client.post("/v1/collections", json={"name": "Odd", "properties": odd}), 422, "tokenization")
    assert client.get("/v1/collections/Analysed").status_code == 404
    properties = {
        "title": {"type": "text", "tokenization": "field"},
        "year": {"type": "int", "index_filterable": False},
    }
    body = {"name": "Analysed", "properties": properties, "bm25": {"stemmer": None, "stopwords": ["the"]}}
    assert client.post("/v1/collections", json=body).status_code == 201
    described = client.get("/v1/collections/Analysed").json()
    assert described["tokenization"] == {"title": "field"}
    assert described["bm25"]["stopwords"] == ["the"]


# --- collections that vanish, names and descriptions ---------------------------------------------


def test_collection_deleted_while_requests_run(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Churn")
    base = str(client.base_url)
    statuses: dict[tuple[str, int], int] = {}
    errors: list[str] = []
    stop = time.monotonic() + 4

    def record(kind: str, response: httpx.Response) -> None:
        statuses[kind, response.status_code] = statuses.get((kind, response.status_code), 0) + 1
        if response.status_code == 404 and response.json()["error"]["code"] != "collection_not_found":
            errors.append(response.text)
        if response.status_code >= 500:
            errors.append(f"{kind}: {response.text}")

    def insert() -> None:
        with httpx.Client(base_url=base, timeout=60) as own:
            while time.monotonic() < stop:
                objects = [{"properties": {"title": "t", "year": 1}, "vectors": {"own": [1, 0, 0]}}] * 8
                record("insert", own.post("/v1/collections/Churn/objects", json={"objects": objects}))

    def query() -> None:
        with httpx.Client(base_url=base, timeout=60) as own:
            while time.monotonic() < stop:
                near = {
                    "type": "near_vector",
                    "vector": [1, 0, 0],
                    "filters": {"path": "year", "operator": "==", "value": 1},
                }
                record("near", own.post("/v1/collections/Churn/query", json=near))
                record("bm25", own.post("/v1/collections/Churn/query", json={"type": "bm25", "query": "t"}))
                record("list", own.get("/v1/collections/Churn/objects"))
                record("describe", own.get("/v1/collections/Churn"))
                record("all", own.get("/v1/collections"))

    def churn() -> None:
        with httpx.Client(base_url=base, timeout=60) as own:
            while time.monotonic() < stop:
                record("delete", own.delete("/v1/collections/Churn"))
                spec = {
                    "name": "Churn",
                    "properties": {"title": "text", "year": "int"},
                    "vectors": {"own": {"self_provided": True, "dims": 3}},
                }
                record("create", own.post("/v1/collections", json=spec))

    threads = [threading.Thread(target=work) for work in (insert, insert, query, query, churn)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert statuses.get(("delete", 200), 0) > 3, statuses
    assert any(status == 404 for kind, status in statuses if kind != "delete"), statuses


def test_unknown_collection_is_a_plain_404(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "SecretProject")
    uuid = "00000000-0000-0000-0000-000000000000"
    objects = "/v1/collections/Nope/objects"
    for response in (
        client.get("/v1/collections/Nope"),
        client.delete("/v1/collections/Nope"),
        client.post(objects, json={"objects": [{"properties": {}}]}),
        client.get(objects),
        client.get(f"{objects}/{uuid}"),
        client.patch(f"{objects}/{uuid}", json={"properties": {}}),
        client.put(f"{objects}/{uuid}", json={"properties": {}}),
        client.delete(f"{objects}/{uuid}"),
        fetch(client, "Nope"),
    ):
        error = refused(response, 404, "'Nope'")
        assert error["code"] == "collection_not_found"
        assert "SecretProject" not in error["message"]


def test_names_ending_in_a_newline_are_refused(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    own = {"own": {"self_provided": True}}
    for spec in (
        {"name": "Lines\n", "vectors": own},
        {"name": "Lines", "properties": {"title\n": "text"}, "vectors": own},
        {"name": "Lines", "vectors": {"own\n": {"self_provided": True}}},
    ):
        refused(client.post("/v1/collections", json=spec), 400, "name", "not valid")
    assert "Lines" not in [c["name"] for c in client.get("/v1/collections").json()["collections"]]


def test_property_names_starting_with_underscore_are_reserved(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    for name in ("_id", "_private"):
        spec = {"name": "Reserved", "properties": {name: "text"}}
        refused(client.post("/v1/collections", json=spec), 400, repr(name), "reserved")


def test_descriptions_show_no_server_paths(
    served: tuple[httpx.Client, Any], minilm_dir: Path, tmp_path: Path
) -> None:
    client, db = served
    created = client.post("/v1/collections", json={"name": "Described", "properties": {"body": "text"}})
    assert created.status_code == 201, created.text
    assert created.json()["vectors"]["default"]["model"] == "minilm"
    copy = tmp_path / "models" / "private-minilm"
    copy.parent.mkdir()
    copy.symlink_to(minilm_dir, target_is_directory=True)
    db.collections.create("Other", {"body": "text"}, oe.Vectorizer(str(copy)))
    described = client.get("/v1/collections/Other").json()
    assert described["vectors"]["default"]["model"] == "private-minilm"
    assert str(tmp_path) not in client.get("/v1/collections").text
    assert str(minilm_dir) not in client.get("/v1/collections").text


def test_stored_vectorizer_options_that_run_code_are_refused(tmp_path: Path, minilm_dir: Path) -> None:
    folder = tmp_path / "db"
    with oe.connect(folder) as db:
        options = {"model_kwargs": {"use_safetensors": False}}
        db.collections.create(
            "Pickled", {"body": "text"}, oe.Vectorizer(str(minilm_dir), model_kwargs=options)
        )
    db = oe.connect(folder)
    with serve(create_app(db=db)) as url:
        assert httpx.get(f"{url}/v1/collections").json()["collections"][0]["name"] == "Pickled"
        response = httpx.post(f"{url}/v1/collections/Pickled/query", json={"type": "near_text", "query": "q"})
        assert httpx.delete(f"{url}/v1/collections/Pickled").status_code == 200
    db.close()
    refused(response, 400, "use_safetensors", "vectorizers=")


# --- long inputs ---------------------------------------------------------------------------------


def test_a_huge_text_is_refused_before_tokenizing_and_stalls_nobody(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    answers: dict[str, Any] = {}

    def huge() -> None:
        start = time.monotonic()
        with httpx.Client(base_url=client.base_url, timeout=120) as own:
            answers["huge"] = own.post("/v1/embeddings", json={"input": ["short", BIG_TEXT]})
        answers["huge_s"] = time.monotonic() - start

    sender = threading.Thread(target=huge)
    sender.start()
    time.sleep(0.3)
    start = time.monotonic()
    short = client.post("/v1/embeddings", json={"input": "a short sentence"})
    short_s = time.monotonic() - start
    sender.join(timeout=120)
    assert short.status_code == 200
    assert short_s < FAST, f"a one-sentence request waited {short_s:.1f} s behind a 15 MB one"
    refused(answers["huge"], 413, "index 1", "characters", "--max-input-chars")
    assert answers["huge_s"] < FAST, answers["huge_s"]


def test_max_input_chars_is_a_setting(minilm: Any) -> None:
    with serve(create_app(model=minilm, settings=ServerSettings(max_input_chars=20))) as url:
        refused(httpx.post(f"{url}/v1/embeddings", json={"input": ["ok", "x" * 21]}), 413, "index 1", "20")
        assert httpx.post(f"{url}/v1/embeddings", json={"input": "x" * 20}).status_code == 200
    assert ServerSettings().input_char_limit == 32 * ServerSettings().max_tokens_per_input


def test_sparse_model_requests_are_checked(tmp_path: Path) -> None:
    from helpers.sparse import build_splade

    model = oe.SparseEncoder(build_splade(tmp_path / "splade"), device="cpu")
    settings = ServerSettings(max_inputs=4, max_tokens_per_input=32, max_input_chars=500)
    with serve(create_app(model=model, settings=settings)) as url, httpx.Client(base_url=url) as client:
        refused(
            client.post("/v1/embeddings", json={"input": "a", "dimensions": 8}), 400, "sparse", "leave it out"
        )
        refused(client.post("/v1/embeddings", json={"input": "a", "encoding_format": "base64"}), 400, "float")
        refused(client.post("/v1/embeddings", json={"input": ["a"] * 5}), 413, "5 inputs")
        refused(client.post("/v1/embeddings", json={"input": ["ok", "x" * 501]}), 413, "index 1")
        refused(client.post("/v1/embeddings", json={"input": [[1, 2]]}), 400, "token-id")
        refused(client.post("/v1/embeddings", json={"input": "a", "prompt_name": "nope"}), 400, "nope")
        answer = client.post("/v1/embeddings", json={"input": ["a short sentence", "word " * 200]})
        assert answer.status_code == 413  # the long one passes 32 tokens
        vector = client.post("/v1/embeddings", json={"input": "a short sentence"}).json()["data"][0]
        assert set(vector["embedding"]) == {"indices", "values"}


def test_sparse_vectors_are_bounded_and_checked(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Sparse", vectors={"sp": {"self_provided": True, "sparse": True, "dims": 1000}})
    objects = "/v1/collections/Sparse/objects"
    many = list(range(70_000))  # past the bound on nonzeros: refused by the schema, before the store
    too_many = {
        "objects": [{"properties": {}, "vectors": {"sp": {"indices": many, "values": [1.0] * 70_000}}}]
    }
    refused(client.post(objects, json=too_many), 422, "65536")
    huge_id = {"indices": [2**40], "values": [1.0]}  # would size a table by the largest id
    refused(client.post(objects, json={"objects": [{"properties": {}, "vectors": {"sp": huge_id}}]}), 422)
    extra = {"indices": [1], "values": [1.0], "shape": [10**12]}
    refused(client.post(objects, json={"objects": [{"properties": {}, "vectors": {"sp": extra}}]}), 422)
    bad = [
        ({"indices": [5, 2], "values": [1.0, 1.0]}, "sorted"),
        ({"indices": [2, 2], "values": [1.0, 1.0]}, "twice"),
        ({"indices": [1], "values": [-1.0]}, "positive"),
        ({"indices": [1000], "values": [1.0]}, "beyond the vocabulary of 1000"),
        ({"indices": [1, 2], "values": [1.0]}, "one value per index"),
        ([0.5, 0.5], "is sparse"),
    ]
    for vector, word in bad:
        inserted = client.post(
            objects, json={"objects": [{"properties": {}, "vectors": {"sp": vector}}]}
        ).json()
        assert inserted["uuids"] == {}
        assert word in inserted["errors"]["0"]
        query = {"type": "near_vector", "vector": vector, "target_vector": "sp"}
        refused(client.post("/v1/collections/Sparse/query", json=query), 400, word)
    nan = '{"type": "near_vector", "target_vector": "sp", "vector": {"indices": [1], "values": [NaN]}}'
    answer = client.post(
        "/v1/collections/Sparse/query", content=nan, headers={"content-type": "application/json"}
    )
    assert 400 <= answer.status_code < 500
    big_vocab = {"name": "Vocab", "vectors": {"v": {"self_provided": True, "dims": 100_000}}}
    refused(client.post("/v1/collections", json=big_vocab), 422, "65536")  # only a sparse one is that wide
    weights = {"type": "hybrid", "query": "x", "weights": {"dense": 1, "keyword": 1}}
    refused(client.post("/v1/collections/Sparse/query", json=weights), 422, "keyword")
    listed = {"type": "near_vector", "vector": [1.0], "target_vector": ["a", "b"]}
    refused(client.post("/v1/collections/Sparse/query", json=listed), 400, "hybrid")


def test_rerank_inputs_are_capped(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    start = time.monotonic()
    huge = client.post("/v1/rerank", json={"query": "cats", "documents": ["cats purr", BIG_TEXT]})
    refused(huge, 413, "document at index 1", "characters")
    assert time.monotonic() - start < FAST
    refused(
        client.post("/v1/rerank", json={"query": BIG_TEXT, "documents": ["d"]}), 413, "query", "characters"
    )
    many_tokens = "cats purr " * 5000  # 50,000 characters, 10,002 tokens
    long = client.post("/v1/rerank", json={"query": "cats", "documents": ["dogs", "birds", many_tokens]})
    refused(long, 413, "document at index 2", "tokens", "8192")
    refused(
        client.post("/v1/rerank", json={"query": many_tokens, "documents": ["d"]}), 413, "query", "tokens"
    )
    untitled = client.post("/v1/rerank", json={"query": "cats", "documents": [{"text": "a"}, {"title": "b"}]})
    refused(untitled, 400, "document at index 1", "text")
    fine = client.post("/v1/rerank", json={"query": "cats", "documents": [{"text": "cats purr"}, "dogs"]})
    assert fine.status_code == 200
    assert len(fine.json()["results"]) == 2


def test_query_texts_are_capped(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    make(client, "Texts")
    for kind in ("near_text", "bm25", "hybrid"):
        body = {"type": kind, "query": BIG_TEXT, "vector": [1, 0, 0]}
        refused(client.post("/v1/collections/Texts/query", json=body), 413, "query", "characters")
    rerank = {"type": "near_vector", "vector": [1, 0, 0], "rerank": {"property": "title", "query": BIG_TEXT}}
    refused(client.post("/v1/collections/Texts/query", json=rerank), 413, "rerank.query", "characters")


# --- pages, metrics, hosts -----------------------------------------------------------------------

PAGES = ("/metrics", "/openapi.json", "/docs", "/redoc")


def test_pages_need_the_key_when_keys_are_set(minilm: Any) -> None:
    key = {"authorization": "Bearer secret"}
    with serve(create_app(model=minilm, settings=ServerSettings(api_keys=("secret",)))) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/").status_code == 200
        refused(httpx.get(f"{url}/metrics"), 401)
        assert httpx.get(f"{url}/metrics", headers=key).status_code == 200
        refused(httpx.get(f"{url}/openapi.json"), 401)
        assert "/v1/embeddings" in httpx.get(f"{url}/openapi.json", headers=key).json()["paths"]
        for page in ("/docs", "/redoc"):  # a browser cannot send the key: the pages are off
            refused(httpx.get(f"{url}{page}", headers=key), 404)
    public = ServerSettings(api_keys=("secret",), public_metrics=True, public_docs=True)
    with serve(create_app(model=minilm, settings=public)) as url:
        for page in PAGES:
            assert httpx.get(f"{url}{page}").status_code == 200, page
        refused(httpx.post(f"{url}/v1/embeddings", json={"input": "x"}), 401)
    with serve(create_app(model=minilm)) as url:  # no keys: everything is open, as before
        for page in PAGES:
            assert httpx.get(f"{url}{page}").status_code == 200, page


def test_made_up_methods_share_one_metrics_label(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    assert client.get("/health").status_code == 200
    for method in ("FOOBAR", "BAZ1", "QUUX2"):
        assert client.request(method, "/health").status_code == 405
    metrics = client.get("/metrics").text
    assert "FOOBAR" not in metrics
    assert "QUUX2" not in metrics
    assert 'method="other"' in metrics
    assert 'method="GET"' in metrics


def test_host_header_must_be_allowed(minilm: Any) -> None:
    with serve(create_app(model=minilm)) as url:
        port = url.rsplit(":", 1)[1]
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "", "[::2]"):
            error = refused(httpx.get(f"{url}/health", headers={"host": host}), 400, "Host")
            assert error["code"] == "host_not_allowed"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
            assert httpx.get(f"{url}/health", headers={"host": host}).status_code == 200, host
    anywhere = ServerSettings(allowed_hosts=("*",))
    with serve(create_app(model=minilm, settings=anywhere)) as url:
        assert httpx.get(f"{url}/health", headers={"host": "evil.example"}).status_code == 200
    named = ServerSettings(allowed_hosts=("*.example.org",))
    with serve(create_app(model=minilm, settings=named)) as url:
        assert httpx.get(f"{url}/health", headers={"host": "api.example.org"}).status_code == 200
        refused(httpx.get(f"{url}/health", headers={"host": "example.org.evil"}), 400)


# --- the command line ----------------------------------------------------------------------------


def test_sigterm_closes_the_database_and_saves_indexes(tmp_path: Path) -> None:
    folder, port = tmp_path / "db", free_port()
    with oe.connect(folder) as db:
        db.collections.create("Notes", {"n": "int"}, {"v": oe.SelfProvided(4)}, index=oe.IndexConfig(8))
    command = [sys.executable, "-m", "omniembed.cli", "-q", "serve", "--db", str(folder), "--port", str(port)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        objects = [{"properties": {"n": i}, "vectors": {"v": [1, i, 2, 3]}} for i in range(32)]
        inserted = httpx.post(f"{url}/v1/collections/Notes/objects", json={"objects": objects})
        assert len(inserted.json()["uuids"]) == 32
        assert not list(folder.glob("*.v.manifest.json"))  # the graph is built in memory, saved on close
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        server.kill()
        server.wait()
    assert server.returncode == -signal.SIGTERM  # uvicorn re-raises it: code after uvicorn.run never runs
    assert list(folder.glob("*.v.manifest.json")), (
        f"close() did not run: no saved vector index\n{log.read_text()[-2000:]}"
    )


# --- PDF uploads ---------------------------------------------------------------------------------

PDF_PAGES = {
    "file": {"type": "text", "tokenization": "field"},
    "page": "int",
    "image": "image",
    "text": "text",
}


def test_pdf_uploads_are_bytes_bounded_and_named(served: tuple[httpx.Client, Any], tmp_path: Path) -> None:
    client, _ = served
    spec = {"name": "Uploads", "properties": PDF_PAGES, "vectors": {"default": {"properties": ["text"]}}}
    assert client.post("/v1/collections", json=spec).status_code == 201
    url = "/v1/collections/Uploads/pdf"
    good = pdfs.pdf_bytes(["wing flutter at transonic speeds", "boundary layer transition"])
    local = pdfs.write_pdf(tmp_path / "server-side.pdf", ["a file on the server"])

    def send(data: bytes | str, file: str = "r.pdf", **options: Any) -> httpx.Response:
        payload = data if isinstance(data, str) else base64.b64encode(data).decode()
        return client.post(url, json={"file": file, "data": payload, **options})

    # a path or a URL is text that is not base64: nothing is read or fetched
    refused(send(str(local)), 400, "not base64")
    refused(send("https://example.com/report.pdf"), 400, "not base64")
    refused(send(good, file="../../etc/passwd"), 400, "plain file name")
    refused(send(good, file="a\nb.pdf"), 400, "plain file name")
    refused(
        send(pdfs.pdf_bytes(["x"], password="pw"), file="locked.pdf"), 400, "locked.pdf: the PDF is encrypted"
    )
    refused(send(b"MZ\x90\x00 not a pdf", file="tool.pdf"), 400, "tool.pdf: not a PDF")
    refused(send(pdfs.corrupt(good), file="broken.pdf"), 400, "broken.pdf: the PDF cannot be read")
    refused(send(good, dpi=10_000), 422, "dpi")
    refused(send(good, max_side=100_000), 422, "max_side")
    huge = "A" * (17 * 2**20)  # over the 16 MiB body limit
    refused(client.post(url, json={"file": "big.pdf", "data": huge}), 413)
    long = pdfs.pdf_bytes(["page"] * 501, figures=False)  # the default page limit is 500
    refused(send(long, file="long.pdf"), 400, "long.pdf: 501 pages is over the limit of 500")
    poster = pdfs.pdf_bytes(["a normal page", "a poster"], sizes=[(210.0, 297.0), (3000.0, 3000.0)])
    # a 3 m poster page at 300 dpi would be 35433 pixels a side: max_side (at most 4096) caps it
    kept = send(poster, file="poster.pdf", max_side=4096, dpi=300)
    assert kept.status_code == 200, kept.text
    assert len(kept.json()["uuids"]) == 2
    assert not kept.json()["unread"]
    ok = send(good, file="report.pdf", dpi=36)
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["uuids"]) == 2
    make(client, "NotPages")
    refused(
        client.post(
            "/v1/collections/NotPages/pdf", json={"file": "r.pdf", "data": base64.b64encode(good).decode()}
        ),
        400,
        "cannot hold PDF pages",
    )
    refused(client.post("/v1/collections/Nope/pdf", json={"file": "r.pdf", "data": ""}), 404)


# --- every route ---------------------------------------------------------------------------------

# Each route, and the tests above that attack it. A new route needs a test here before it ships.
ROUTES = {
    "POST /v1/embeddings": [
        "test_a_huge_text_is_refused_before_tokenizing_and_stalls_nobody",
        "test_sparse_model_requests_are_checked",
    ],
    "POST /v1/rerank": ["test_rerank_inputs_are_capped"],
    "GET /v1/collections": [
        "test_collection_deleted_while_requests_run",
        "test_descriptions_show_no_server_paths",
    ],
    "POST /v1/collections": [
        "test_dims_have_a_ceiling",
        "test_names_ending_in_a_newline_are_refused",
        "test_sparse_vectors_are_bounded_and_checked",
    ],
    "GET /v1/collections/{name}": ["test_unknown_collection_is_a_plain_404"],
    "DELETE /v1/collections/{name}": ["test_collection_deleted_while_requests_run"],
    "POST /v1/collections/{name}/objects": [
        "test_integers_outside_64_bits_are_refused",
        "test_nested_objects_are_bounded_in_depth_and_size",
        "test_sparse_vectors_are_bounded_and_checked",
    ],
    "GET /v1/collections/{name}/objects": ["test_offset_is_capped"],
    "GET /v1/collections/{name}/objects/{uuid}": ["test_unknown_collection_is_a_plain_404"],
    "PATCH /v1/collections/{name}/objects/{uuid}": ["test_integers_outside_64_bits_are_refused"],
    "PUT /v1/collections/{name}/objects/{uuid}": ["test_integers_outside_64_bits_are_refused"],
    "DELETE /v1/collections/{name}/objects/{uuid}": ["test_unknown_collection_is_a_plain_404"],
    "POST /v1/collections/{name}/pdf": ["test_pdf_uploads_are_bytes_bounded_and_named"],
    "POST /v1/collections/{name}/query": [
        "test_deep_filters_are_refused_while_parsing",
        "test_query_texts_are_capped",
        "test_sparse_vectors_are_bounded_and_checked",
    ],
    "GET /health": ["test_host_header_must_be_allowed"],
    "GET /metrics": [
        "test_pages_need_the_key_when_keys_are_set",
        "test_made_up_methods_share_one_metrics_label",
    ],
    "GET /openapi.json": ["test_pages_need_the_key_when_keys_are_set"],
    "GET /docs": ["test_pages_need_the_key_when_keys_are_set"],
    "GET /docs/oauth2-redirect": ["test_pages_need_the_key_when_keys_are_set"],
    "GET /redoc": ["test_pages_need_the_key_when_keys_are_set"],
    "GET /": ["test_pages_need_the_key_when_keys_are_set"],
}


def route_keys(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """``"METHOD /path"`` for every route, looking into included routers (which newer FastAPI keeps
    whole in ``app.routes``)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from route_keys(included.routes, prefix + route.include_context.prefix)
            continue
        for method in getattr(route, "methods", None) or {"GET"}:
            if method != "HEAD":
                yield f"{method} {prefix}{route.path}"


def test_every_route_is_attacked(minilm: Any, reranker: Any) -> None:
    with oe.connect() as db:
        settings = ServerSettings(public_docs=True, public_metrics=True, api_keys=("k",))
        app = create_app(model=minilm, db=db, reranker=reranker, settings=settings)
        routes = set(route_keys(app.routes))
    assert "PATCH /v1/collections/{name}/objects/{uuid}" in routes
    unknown = sorted(routes - set(ROUTES))
    assert not unknown, (
        f"routes with no attack test: {unknown}; add tests to {__name__} and name them in ROUTES"
    )
    for tests in ROUTES.values():
        for test in tests:
            assert callable(globals().get(test)), f"ROUTES names {test}, which is not a test here"
