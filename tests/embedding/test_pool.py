"""Multi-process encoding: real spawned workers give the in-process numbers, in input order."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from omniembed import PoolWorkerError, SentenceTransformer
from omniembed.embedding.pool import EncodePool, default_chunk_size

from helpers.numbers import cosines

ATOL = 1e-6
PROMPTS = {"query": "query: ", "document": "passage: "}


def pool_children() -> list[multiprocessing.Process]:
    return [child for child in multiprocessing.active_children() if child.name.startswith("omniembed-pool")]


def assert_gone(pids: list[int]) -> None:
    assert [child for child in pool_children() if child.pid in pids] == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.fixture(scope="module")
def model(tiny_model: Callable[..., Path]) -> SentenceTransformer:
    return SentenceTransformer(tiny_model("bert", prompts=PROMPTS), device="cpu")


@pytest.fixture(scope="module")
def pool(model: SentenceTransformer) -> Iterator[EncodePool]:
    pool = model.start_multi_process_pool(["cpu", "cpu"])
    pids = [process.pid for process in pool.processes]
    yield pool
    model.stop_multi_process_pool(pool)
    assert_gone(pids)


@pytest.fixture(scope="module")
def texts(sts_sentences: list[str]) -> list[str]:
    return [*sts_sentences[:297], "word " * 200, "", "x"]


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 64, 299, 1000])
def test_pool_gives_the_in_process_embeddings_in_input_order(
    model: SentenceTransformer, pool: EncodePool, texts: list[str], chunk_size: int | None
) -> None:
    expected = model.encode(texts)
    got = model.encode(texts, pool=pool, chunk_size=chunk_size)
    assert got.shape == expected.shape == (300, 32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    reversed_texts = texts[::-1]
    got = model.encode(reversed_texts, pool=pool, chunk_size=chunk_size)
    np.testing.assert_allclose(got, expected[::-1], atol=ATOL)


def test_every_encode_option_is_honoured(
    model: SentenceTransformer, pool: EncodePool, texts: list[str]
) -> None:
    cases: list[dict[str, object]] = [
        {"prompt_name": "query", "normalize_embeddings": True},
        {"prompt": "search: ", "truncate_dim": 8},
        {"batch_size": 3},
    ]
    for options in cases:
        expected = model.encode(texts, **options)  # type: ignore[arg-type]
        got = model.encode(texts, pool=pool, chunk_size=13, **options)  # type: ignore[arg-type]
        np.testing.assert_allclose(got, expected, atol=ATOL, err_msg=str(options))
    # int8 takes each dimension's range over all the embeddings, not over a chunk's: a float
    # rounding difference may move a value across a bucket edge, nothing more.
    got = model.encode(texts, pool=pool, chunk_size=13, precision="int8")
    expected = model.encode(texts, precision="int8")
    assert got.dtype == expected.dtype == np.int8
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert (got == expected).mean() > 0.99
    bits = model.encode(texts, pool=pool, chunk_size=13, precision="ubinary")
    assert bits.dtype == np.uint8
    assert (bits == model.encode(texts, precision="ubinary")).mean() > 0.99
    queries = model.encode_query(texts[:20], pool=pool, chunk_size=3)
    np.testing.assert_allclose(queries, model.encode_query(texts[:20]), atol=ATOL)


def test_output_types_match_in_process(
    model: SentenceTransformer, pool: EncodePool, texts: list[str]
) -> None:
    tensor = model.encode(texts, pool=pool, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor)
    assert tensor.shape == (300, 32)
    listed = model.encode(texts[:5], pool=pool, convert_to_numpy=False)
    assert isinstance(listed, list)
    assert all(isinstance(row, torch.Tensor) for row in listed)
    one = model.encode(texts[0], pool=pool)
    assert one.shape == (32,)
    np.testing.assert_allclose(one, model.encode(texts[0]), atol=ATOL)
    empty = model.encode([], pool=pool)
    assert empty.shape == model.encode([]).shape == (0, 32)


@pytest.mark.parametrize("output_value", ["token_embeddings", None])
def test_token_outputs_come_back_per_input_in_order(
    model: SentenceTransformer, pool: EncodePool, texts: list[str], output_value: str | None
) -> None:
    expected = model.encode(texts[:40], output_value=output_value)  # type: ignore[arg-type]
    got = model.encode(texts[:40], pool=pool, chunk_size=6, output_value=output_value)  # type: ignore[arg-type]
    assert len(got) == len(expected) == 40
    for ours, theirs in zip(got, expected, strict=True):
        if output_value is None:
            # Every feature per input, padded to its batch's longest input: compare the real tokens.
            assert set(ours) == set(theirs)
            np.testing.assert_allclose(ours["sentence_embedding"], theirs["sentence_embedding"], atol=ATOL)
            ours = ours["token_embeddings"][ours["attention_mask"].bool()]
            theirs = theirs["token_embeddings"][theirs["attention_mask"].bool()]
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=ATOL)


def test_progress_bar_counts_chunks(
    model: SentenceTransformer, pool: EncodePool, texts: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    model.encode(texts, pool=pool, chunk_size=100, show_progress_bar=True)
    err = capfd.readouterr().err
    assert "Chunks" in err
    assert "3/3" in err
    model.encode(texts, pool=pool, chunk_size=100, show_progress_bar=False)
    assert "Chunks" not in capfd.readouterr().err


def test_truncation_is_logged_once_per_call_by_the_parent(
    model: SentenceTransformer, pool: EncodePool, texts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    long_texts = [*texts[:50], "word " * 200, "more words " * 100]
    with caplog.at_level(logging.WARNING, logger="omniembed"):
        model.encode(long_texts)
        expected = [record.getMessage() for record in caplog.records]
        caplog.clear()
        model.encode(long_texts, pool=pool, chunk_size=5)
    assert expected == ["2 of 52 inputs were longer than max_seq_length=64 tokens and were truncated"]
    assert [record.getMessage() for record in caplog.records] == expected


def test_pool_describes_itself_like_the_reference_dict(pool: EncodePool) -> None:
    assert pool.devices == ["cpu", "cpu"]
    assert pool.threads == max(1, len(os.sched_getaffinity(0)) // 2)
    assert pool["processes"] is pool.processes
    assert "running" in repr(pool)


def test_bad_arguments_are_refused_clearly(
    model: SentenceTransformer, pool: EncodePool, tiny_model: Callable[..., Path]
) -> None:
    for chunk_size in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=rf"chunk_size must be a positive integer.*got {chunk_size!r}"):
            model.encode(["a"], pool=pool, chunk_size=chunk_size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"non-empty list such as \['cpu', 'cpu'\].*got \[\]"):
        model.encode(["a"], device=[])
    with pytest.raises(ValueError, match=r"device 'gpu0' \(position 1 of \['cpu', 'gpu0'\]\) is not a torch"):
        model.encode(["a"], device=["cpu", "gpu0"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"'cuda:0' is not available: this machine has 0 CUDA"):
            model.start_multi_process_pool(["cuda:0"])
    with pytest.raises(ValueError, match="either pool or device, not both"):
        model.encode(["a"], pool=pool, device=["cpu"])
    with pytest.raises(ValueError, match=r"must come from model\.start_multi_process_pool"):
        model.encode(["a"], pool={"input": None, "output": None, "processes": []})  # type: ignore[arg-type]
    other = SentenceTransformer(tiny_model("bert", prompts=PROMPTS), device="cpu")
    with pytest.raises(ValueError, match="started by another model"):
        other.encode(["a"], pool=pool)
    assert sorted(child.pid for child in pool_children()) == sorted(p.pid for p in pool.processes)


def test_default_chunk_size_is_about_ten_chunks_per_worker() -> None:
    assert default_chunk_size(1000, 2) == 50
    assert default_chunk_size(3, 4) == 1
    assert default_chunk_size(10_000_000, 2) == 5000


@pytest.mark.slow
def test_left_padded_decoders_get_their_in_process_batches(
    tiny_model: Callable[..., Path], sts_sentences: list[str]
) -> None:
    decoder = SentenceTransformer(tiny_model("qwen3", plain=False), device="cpu")
    texts = sts_sentences[:150]
    with decoder.start_multi_process_pool(["cpu", "cpu"]) as pool:
        got = decoder.encode_query(texts, pool=pool, batch_size=8)
    np.testing.assert_allclose(got, decoder.encode_query(texts, batch_size=8), atol=ATOL)


@pytest.mark.slow
def test_a_device_list_uses_a_pool_for_one_call(model: SentenceTransformer, texts: list[str]) -> None:
    before = {child.pid for child in pool_children()}
    got = model.encode(texts, device=["cpu", "cpu"], normalize_embeddings=True)
    np.testing.assert_allclose(got, model.encode(texts, normalize_embeddings=True), atol=ATOL)
    assert {child.pid for child in pool_children()} == before


@pytest.mark.slow
def test_a_dead_worker_gives_an_error_and_a_stopped_pool(model: SentenceTransformer) -> None:
    with model.start_multi_process_pool(["cpu"]) as pool:
        pid = pool.processes[0].pid
        os.kill(pid, signal.SIGKILL)
        pool.processes[0].join(timeout=10)
        started = time.monotonic()
        with pytest.raises(PoolWorkerError, match=rf"worker 0 on 'cpu' \(pid {pid}, exit code -9\) died"):
            model.encode(["a", "b"], pool=pool)
        assert time.monotonic() - started < 5
        assert pool.stopped
        with pytest.raises(ValueError, match="this pool was stopped; start a new one"):
            model.encode(["a"], pool=pool)
    assert_gone([pid])


@pytest.mark.slow
def test_a_worker_error_is_raised_with_the_inputs_it_hit(
    tiny_clip: Callable[..., Path], tmp_path: Path
) -> None:
    from PIL import Image

    from omniembed import InvalidImageError

    clip = SentenceTransformer(tiny_clip("plain"), device="cpu")
    images = [Image.new("RGB", (24 + 4 * i, 20), (40 * i, 100, 200 - 30 * i)) for i in range(4)]
    captions = ["a red square", "a photo", "blue", "green"]
    inputs: list[object] = [item for pair in zip(captions, images, strict=True) for item in pair]
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not an image")
    with clip.start_multi_process_pool(["cpu", "cpu"]) as pool:
        mixed = clip.encode(inputs, pool=pool, chunk_size=3)
        np.testing.assert_allclose(mixed, clip.encode(inputs), atol=ATOL)
        with pytest.raises(InvalidImageError, match=r"fake\.png") as caught:
            clip.encode([*inputs, "text", fake], pool=pool, chunk_size=3)
        notes = "".join(caught.value.__notes__)
        assert "raised by a pool worker while encoding the inputs at positions 9" in notes
        np.testing.assert_allclose(clip.encode(inputs, pool=pool), mixed, atol=ATOL)  # still usable


@pytest.mark.slow
def test_onnx_models_rebuild_their_session_in_the_workers(
    tiny_model: Callable[..., Path], texts: list[str], tmp_path: Path
) -> None:
    folder = tiny_model("bert")
    for dtype, backend in (("float32", "onnx"), ("int8", "onnx")):
        onnx = SentenceTransformer(
            folder,
            device="cpu",
            backend=backend,  # type: ignore[arg-type]
            dtype=dtype,  # type: ignore[arg-type]
            runtime_cache_folder=tmp_path,
        )
        expected = onnx.encode(texts)
        got = onnx.encode(texts, device=["cpu", "cpu"], chunk_size=50)
        if dtype == "float32":
            np.testing.assert_allclose(got, expected, atol=1e-5)
        else:  # int8 activations are quantized per batch, and chunks make other batches
            assert cosines(got, expected).min() > 0.99


@pytest.mark.slow
def test_minilm_in_a_pool_matches_in_process(minilm_dir: Path, sts_sentences: list[str]) -> None:
    minilm = SentenceTransformer(minilm_dir, device="cpu")
    texts = sts_sentences[:400]
    with minilm.start_multi_process_pool(["cpu", "cpu"]) as pool:
        got = minilm.encode(texts, pool=pool)
    np.testing.assert_allclose(got, minilm.encode(texts), atol=ATOL)
