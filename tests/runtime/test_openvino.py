"""backend="openvino": the reference's numbers in float32, close in bfloat16, from the cached export."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer as Reference

from omniembed import MissingExtraError, SentenceTransformer

from helpers.numbers import assert_same, cosines

pytest.importorskip("openvino")


def load(folder: Path, cache: Path, **options: object) -> SentenceTransformer:
    return SentenceTransformer(
        folder,
        device="cpu",
        backend="openvino",
        runtime_cache_folder=cache,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "options",
    [{"pooling": "mean"}, {"pooling": "cls", "dense": (32, 16), "normalize": True}],
    ids=["mean", "cls-dense-normalize"],
)
def test_openvino_float32_matches_the_reference(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path, options: dict[str, object]
) -> None:
    folder = tiny_model("bert", **options)
    ours = load(folder, tmp_path)
    texts = [*sts_sentences[:150], "word " * 400]
    assert_same(ours.encode(texts), Reference(str(folder), device="cpu").encode(texts))
    assert list(tmp_path.rglob("model.onnx"))  # the ONNX export is the cached artefact
    assert ours.transformer.weights_released  # OpenVINO holds its own copy


def test_openvino_bfloat16_stays_close_and_keeps_float_modules(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path
) -> None:
    folder = tiny_model("bert", pooling="cls", dense=(32, 16))
    texts = sts_sentences[:100]
    exact = SentenceTransformer(folder, device="cpu").encode(texts)
    fast = load(folder, tmp_path, dtype="bfloat16")
    embeddings = fast.encode(texts)
    assert embeddings.dtype == np.float32
    assert cosines(embeddings, exact).min() >= 0.99


def test_openvino_models_compile_again_in_pool_workers(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path
) -> None:
    ours = load(tiny_model("bert"), tmp_path)
    texts = sts_sentences[:60]
    np.testing.assert_allclose(
        ours.encode(texts, device=["cpu", "cpu"], chunk_size=20), ours.encode(texts), atol=1e-5
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "int8"}, "dtype='int8' in OpenVINO is static: give calibration_texts="),
        ({"device": "meta"}, "backend='openvino' runs on the CPU, got device 'meta'"),
    ],
)
def test_bad_openvino_options(
    tiny_model: Callable[..., Path], tmp_path: Path, options: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SentenceTransformer(
            tiny_model("bert"),
            backend="openvino",
            runtime_cache_folder=tmp_path,
            **{"device": "cpu", **options},  # type: ignore[arg-type]
        )


def test_missing_openvino_names_the_extra(
    tiny_model: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'omniembed\[openvino\]'"):
        load(tiny_model("bert"), tmp_path)
    assert not list(tmp_path.rglob("*.onnx"))  # nothing exported before the error


@pytest.mark.slow
def test_minilm_in_openvino(
    minilm_dir: Path, minilm_reference: Reference, sts_sentences: list[str], tmp_path: Path
) -> None:
    texts = sts_sentences[:300]
    reference = minilm_reference.encode(texts)
    assert_same(load(minilm_dir, tmp_path).encode(texts), reference)
    assert cosines(load(minilm_dir, tmp_path, dtype="bfloat16").encode(texts), reference).min() >= 0.999
