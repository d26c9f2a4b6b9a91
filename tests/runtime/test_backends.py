"""backend="onnx" and the fast dtypes: same numbers as the reference (exact) or close (fast)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference

from omniembed import MissingExtraError, SentenceTransformer
from omniembed.modules import Dense, Normalize
from omniembed.runtime import onnx as onnx_runtime
from omniembed.runtime.cache import model_digest

from helpers.numbers import assert_same, cosines


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def load(folder: Path, cache: Path, **options: object) -> SentenceTransformer:
    return SentenceTransformer(folder, device="cpu", runtime_cache_folder=cache, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"pooling": "mean"}, {"pooling": "cls", "dense": (32, 16), "normalize": True}],
    ids=["mean", "cls-dense-normalize"],
)
def test_onnx_float32_matches_the_reference(
    tiny_model: Callable[..., Path], sts_sentences: list[str], onnx_cache: Path, options: dict[str, object]
) -> None:
    folder = tiny_model("bert", **options)
    ours = load(folder, onnx_cache, backend="onnx")
    texts = [*sts_sentences[:200], "word " * 400]
    assert_same(ours.encode(texts), Reference(str(folder), device="cpu").encode(texts))
    single = ours.encode(texts[0])
    assert single.shape == (ours.get_sentence_embedding_dimension(),)
    assert_same(single[None], Reference(str(folder), device="cpu").encode(texts[:1]))


def test_onnx_left_padded_decoder_matches_the_reference(
    tiny_model: Callable[..., Path], sts_sentences: list[str], onnx_cache: Path
) -> None:
    folder = tiny_model("qwen3", plain=False)
    ours = load(folder, onnx_cache, backend="onnx")
    texts = sts_sentences[:100]
    reference = Reference(str(folder), device="cpu")
    assert_same(ours.encode_query(texts), reference.encode_query(texts))


def test_the_export_is_cached_and_reused(
    tiny_model: Callable[..., Path], onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tiny_model("bert")
    first = load(folder, onnx_cache, backend="onnx")

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_runtime, "export", no_export)
    second = load(folder, onnx_cache, backend="onnx")
    assert first._network is not None
    assert second._network is not None
    assert second._network.path == first._network.path  # type: ignore[attr-defined]
    assert not list(onnx_cache.rglob("*.partial"))


def test_changed_weights_get_a_new_export(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    model = SentenceTransformer(tiny_model("bert"), device="cpu")
    options = {"inputs": ("input_ids",)}
    before = model_digest(model.transformer.auto_model, options)
    with torch.no_grad():
        next(model.transformer.auto_model.parameters()).add_(1.0)
    assert model_digest(model.transformer.auto_model, options) != before


def stored_bytes(module: torch.nn.Module) -> int:
    return sum(parameter.untyped_storage().nbytes() for parameter in module.parameters())


def test_onnx_frees_the_torch_weights_and_save_loads_them_again(
    tiny_model: Callable[..., Path], sts_sentences: list[str], onnx_cache: Path, tmp_path: Path
) -> None:
    folder = tiny_model("bert", pooling="cls", dense=(32, 16))
    exact = SentenceTransformer(folder, device="cpu")
    ours = load(folder, onnx_cache, backend="onnx")
    assert ours.transformer.weights_released
    assert stored_bytes(ours.transformer.auto_model) < stored_bytes(exact.transformer.auto_model) / 100
    assert stored_bytes(ours[2]) == stored_bytes(exact[2])  # the Dense layer after the network stays
    texts = sts_sentences[:50]
    assert_same(ours.encode(texts), exact.encode(texts))
    ours.save(tmp_path / "saved")
    assert_same(SentenceTransformer(tmp_path / "saved", device="cpu").encode(texts), exact.encode(texts))
    features, _ = ours.transformer.tokenize(texts[:2])
    with pytest.raises(RuntimeError, match="call encode\\(\\), or load the model with backend='torch'"):
        ours(features)


def test_a_network_built_from_modules_keeps_its_weights(
    tiny_model: Callable[..., Path], sts_sentences: list[str], onnx_cache: Path
) -> None:
    modules = list(SentenceTransformer(tiny_model("bert"), device="cpu"))
    size = stored_bytes(modules[0])
    ours = SentenceTransformer(modules=modules, device="cpu", backend="onnx", runtime_cache_folder=onnx_cache)
    assert not ours.transformer.weights_released
    assert stored_bytes(ours.transformer) == size
    features, _ = ours.transformer.tokenize(sts_sentences[:2])
    assert ours(features)["sentence_embedding"].shape[0] == 2


def test_int8_stays_close_to_float32(
    tiny_model: Callable[..., Path], sts_sentences: list[str], onnx_cache: Path
) -> None:
    folder = tiny_model("bert")
    texts = sts_sentences[:200]
    exact = SentenceTransformer(folder, device="cpu").encode(texts)
    fast = load(folder, onnx_cache, dtype="int8", backend="onnx")
    quantized = fast.encode(texts)
    assert quantized.dtype == np.float32
    assert cosines(quantized, exact).mean() >= 0.98
    assert np.abs(quantized - exact).max() > 1e-6  # it did run quantized


def test_bfloat16_stays_close_to_float32(tiny_model: Callable[..., Path], sts_sentences: list[str]) -> None:
    folder = tiny_model("bert")
    texts = sts_sentences[:100]
    exact = SentenceTransformer(folder, device="cpu").encode(texts)
    fast = SentenceTransformer(folder, device="cpu", dtype="bfloat16").encode(texts)
    assert fast.dtype == np.float32
    assert cosines(fast, exact).min() >= 0.99


def test_bfloat16_embeddings_are_scaled_to_unit_length_in_float32(
    tiny_model: Callable[..., Path], sts_sentences: list[str]
) -> None:
    texts = sts_sentences[:50]
    for folder in (tiny_model("bert", normalize=True), tiny_model("bert", dense=(32, 16), normalize=True)):
        model = SentenceTransformer(folder, device="cpu", dtype="bfloat16")
        for embeddings in (model.encode(texts), model.encode(texts, normalize_embeddings=True)):
            # Rounded to bfloat16, the norms were off by up to 0.4%.
            np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    plain = SentenceTransformer(tiny_model("bert"), device="cpu", dtype="bfloat16")
    tensor = plain.encode(texts, normalize_embeddings=True, convert_to_tensor=True)
    assert tensor.dtype == torch.float32
    torch.testing.assert_close(tensor.norm(dim=1), torch.ones(len(texts)))


def test_a_dense_module_after_normalize_takes_float32_in_a_bfloat16_model() -> None:
    dense = Dense(8, 4).to(torch.bfloat16)
    features = Normalize()({"sentence_embedding": torch.randn(3, 8, dtype=torch.bfloat16)})
    assert features["sentence_embedding"].dtype == torch.float32
    assert dense(features)["sentence_embedding"].dtype == torch.bfloat16


@pytest.mark.slow
def test_minilm_fast_modes_on_real_text(
    minilm_dir: Path, minilm_reference: Reference, sts_sentences: list[str], onnx_cache: Path
) -> None:
    texts = sts_sentences[:500]
    reference = minilm_reference.encode(texts)
    assert_same(load(minilm_dir, onnx_cache, backend="onnx").encode(texts), reference)
    onnx_int8 = cosines(load(minilm_dir, onnx_cache, dtype="int8", backend="onnx").encode(texts), reference)
    assert onnx_int8.mean() >= 0.99
    assert onnx_int8.min() >= 0.95
    torch_int8 = cosines(load(minilm_dir, onnx_cache, dtype="int8").encode(texts), reference)
    assert torch_int8.mean() >= 0.998
    assert torch_int8.min() >= 0.99


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "float16"}, "dtype 'float16' is not supported"),
        ({"backend": "tensorrt"}, "backend 'tensorrt' is not supported"),
        ({"dtype": "int8", "device": "meta"}, "dtype='int8' runs on the CPU, got device 'meta'"),
        ({"dtype": "bfloat16", "backend": "onnx"}, "dtype='bfloat16' runs in torch"),
    ],
)
def test_bad_runtime_options(tiny_model: Callable[..., Path], options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SentenceTransformer(tiny_model("bert"), **{"device": "cpu", **options})  # type: ignore[arg-type]


def test_missing_onnxruntime_names_the_extra(
    tiny_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'omniembed\[onnx\]'"):
        SentenceTransformer(tiny_model("bert"), device="cpu", backend="onnx")
