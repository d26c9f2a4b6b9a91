"""Dynamic batching: concurrent requests share forward passes and get the same vectors as ``encode``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import numpy as np
import pytest

from omniembed.server import ServerSettings, create_app
from omniembed.server.batcher import DynamicBatcher

from helpers.server import serve

pytestmark = pytest.mark.server


def count_forwards(model: Any) -> tuple[list[int], Any]:
    """Count real forward passes of the model's transformer with a hook."""
    calls: list[int] = []
    handle = model[0].register_forward_hook(lambda module, args, out: calls.append(1))
    return calls, handle


def test_32_concurrent_requests_share_forward_passes(minilm: Any, sts_sentences: list[str]) -> None:
    sentences = sts_sentences[:32]
    expected = minilm.encode(sentences)
    settings = ServerSettings(max_wait_ms=50)
    with serve(create_app(model=minilm, settings=settings)) as url:
        httpx.post(f"{url}/v1/embeddings", json={"input": "warm up"})
        calls, handle = count_forwards(minilm)
        try:

            async def run() -> list[dict[str, Any]]:
                async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                    replies = await asyncio.gather(
                        *(client.post("/v1/embeddings", json={"input": s}) for s in sentences)
                    )
                return [reply.json() for reply in replies]

            bodies = asyncio.run(run())
        finally:
            handle.remove()
        metrics = httpx.get(f"{url}/metrics").text
    got = np.array([body["data"][0]["embedding"] for body in bodies])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert len(calls) <= 8, f"32 requests took {len(calls)} forward passes"
    assert "omniembed_batch_requests_count" in metrics


def test_token_budget_splits_batches_and_a_bad_request_fails_alone(minilm: Any) -> None:
    lock = threading.Lock()
    batcher = DynamicBatcher(minilm, lock, max_batch_tokens=10, max_wait=0.2)

    async def run() -> list[Any]:
        batcher.start()
        try:
            good = [batcher.encode([f"sentence {i}"], tokens=6) for i in range(4)]
            bad = batcher.encode([None], tokens=1)  # encode refuses None
            return await asyncio.gather(*good, bad, return_exceptions=True)
        finally:
            await asyncio.to_thread(batcher.stop)

    results = asyncio.run(run())
    assert isinstance(results[-1], TypeError)
    for i, vector in enumerate(results[:4]):
        np.testing.assert_allclose(vector[0], minilm.encode(f"sentence {i}"), atol=1e-5)
    # a 10-token budget holds one 6-token request, so the four good ones cannot share a pass
    assert batcher.forward_passes >= 4
