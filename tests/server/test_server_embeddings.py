"""``/v1/embeddings`` with the official openai client against a real server, plus limits and errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from omniembed.server import ServerSettings, create_app

from helpers.server import serve

pytestmark = pytest.mark.server

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


@pytest.fixture(scope="module")
def base_url(minilm: Any) -> Iterator[str]:
    settings = ServerSettings(model_name="all-MiniLM-L6-v2", max_inputs=8, max_tokens_per_input=64)
    with serve(create_app(model=minilm, settings=settings)) as url:
        yield url


def test_openai_client_gets_the_models_vectors(base_url: str, minilm: Any) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    response = client.embeddings.create(model="anything", input=SENTENCES)  # the client asks for base64
    got = np.array([item.embedding for item in response.data])
    np.testing.assert_allclose(got, minilm.encode(SENTENCES), atol=1e-5)
    assert [item.index for item in response.data] == [0, 1, 2]
    assert response.model == "all-MiniLM-L6-v2"
    tokens = sum(len(ids) for ids in minilm.tokenizer(SENTENCES)["input_ids"])
    assert response.usage.prompt_tokens == response.usage.total_tokens == tokens

    one = client.embeddings.create(model="x", input="hello there", encoding_format="float", dimensions=64)
    vector = np.array(one.data[0].embedding)
    expected = minilm.encode("hello there")[:64]
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)


def test_base64_encoding_is_little_endian_float32(base_url: str, minilm: Any) -> None:
    body = httpx.post(f"{base_url}/v1/embeddings", json={"input": "hi", "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, minilm.encode("hi"), atol=1e-5)


@pytest.mark.parametrize(
    ("payload", "status", "code", "words"),
    [
        ({"input": ["a"] * 9}, 413, "limit_exceeded", "9 inputs"),
        ({"input": ["ok", "word " * 100]}, 413, "limit_exceeded", "index 1"),
        ({"input": []}, 400, "invalid_input", "empty"),
        ({"input": "x", "dimensions": 999}, 400, "invalid_input", "dimensions=999"),
        ({"input": "x", "encoding_format": "int8"}, 422, "invalid_request", "encoding_format"),
        ({"input": "data:image/png;base64,AAAA"}, 400, "invalid_input", "image"),
        ({"input": "x", "prompt_name": "nope"}, 400, "invalid_input", "prompt_name"),
    ],
)
def test_bad_requests_get_json_errors(
    base_url: str, payload: dict[str, Any], status: int, code: str, words: str
) -> None:
    response = httpx.post(f"{base_url}/v1/embeddings", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert words in error["message"]


def test_malformed_body_and_unknown_route(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    missing = httpx.get(f"{base_url}/v2/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_health_metrics_docs(base_url: str) -> None:
    assert httpx.get(f"{base_url}/health").json()["status"] == "ok"
    httpx.post(f"{base_url}/v1/embeddings", json={"input": "count me"})
    metrics = httpx.get(f"{base_url}/metrics").text
    assert 'omniembed_requests_total{method="POST",route="/v1/embeddings",status="200"}' in metrics
    assert "omniembed_request_latency_seconds_bucket" in metrics
    assert "omniembed_batch_inputs_count" in metrics
    assert "omniembed_queue_depth" in metrics
    assert "swagger" in httpx.get(f"{base_url}/docs").text.lower()
    assert "/v1/embeddings" in httpx.get(f"{base_url}/openapi.json").json()["paths"]
    assert (
        "access-control-allow-origin"
        not in httpx.get(f"{base_url}/health", headers={"origin": "http://evil.example"}).headers
    )


def test_api_keys_body_limit_and_cors(minilm: Any) -> None:
    settings = ServerSettings(api_keys=("secret",), max_body_bytes=1000, cors_origins=("http://ok.example",))
    with serve(create_app(model=minilm, settings=settings)) as url:
        endpoint = f"{url}/v1/embeddings"
        assert httpx.post(endpoint, json={"input": "x"}).json()["error"]["code"] == "unauthorized"
        wrong = httpx.post(endpoint, json={"input": "x"}, headers={"authorization": "Bearer no"})
        assert wrong.status_code == 401
        good = httpx.post(endpoint, json={"input": "x"}, headers={"authorization": "Bearer secret"})
        assert good.status_code == 200
        big = httpx.post(
            f"{url}/v1/embeddings", json={"input": "x" * 2000}, headers={"authorization": "Bearer secret"}
        )
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "body_too_large"

        def chunks() -> Iterator[bytes]:
            yield b'{"input": "'
            yield b"y" * 2000
            yield b'"}'

        streamed = httpx.post(
            f"{url}/v1/embeddings",
            content=chunks(),
            headers={"authorization": "Bearer secret", "content-type": "application/json"},
        )
        assert streamed.status_code == 413
        assert httpx.get(f"{url}/health").status_code == 200  # health needs no key
        cors = httpx.get(f"{url}/health", headers={"origin": "http://ok.example"})
        assert cors.headers["access-control-allow-origin"] == "http://ok.example"


def test_server_without_model_says_so() -> None:
    with serve(create_app()) as url:
        response = httpx.post(f"{url}/v1/embeddings", json={"input": "x"})
        assert response.status_code == 404
        assert "--model" in response.json()["error"]["message"]


def test_missing_server_extra_names_the_install_command() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from omniembed.errors import MissingExtraError\n"
        "try:\n    from omniembed.server import create_app\n"
        "except MissingExtraError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'omniembed[server]'" in result.stdout


def test_a_sparse_model_returns_indices_and_values(tmp_path: Any) -> None:
    from omniembed import SparseEncoder
    from omniembed.sparse import check_sparse

    from helpers.sparse import build_splade

    model = SparseEncoder(build_splade(tmp_path / "splade"), device="cpu")
    with serve(create_app(model=model, settings=ServerSettings(model_name="splade"))) as url:
        answer = httpx.post(f"{url}/v1/embeddings", json={"input": SENTENCES}, timeout=60)
    assert answer.status_code == 200, answer.text
    expected = model.encode(SENTENCES).to_dense()
    for item in answer.json()["data"]:
        vector = check_sparse(item["embedding"], vocab_size=expected.shape[1])  # sorted, positive
        row = expected[item["index"]]
        assert list(vector.indices) == row.nonzero().flatten().tolist()
        np.testing.assert_allclose(vector.values, row[list(vector.indices)].numpy(), rtol=1e-6)
