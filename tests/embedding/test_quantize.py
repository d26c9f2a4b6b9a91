"""Embedding quantization matches the reference library and takes calibration data."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers.util import quantize_embeddings as reference_quantize

from omniembed import quantize_embeddings
from omniembed.embedding.quantize import quantization_ranges

RNG = np.random.default_rng(1)
EMBEDDINGS = RNG.normal(size=(200, 24)).astype(np.float32)
CALIBRATION = RNG.normal(size=(1000, 24)).astype(np.float32)


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_same_as_reference(precision: str) -> None:
    mine = quantize_embeddings(EMBEDDINGS, precision)  # type: ignore[arg-type]
    theirs = reference_quantize(EMBEDDINGS, precision=precision)
    assert mine.dtype == theirs.dtype
    np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_calibration_embeddings_set_the_ranges(precision: str) -> None:
    single = EMBEDDINGS[:1]
    mine = quantize_embeddings(single, precision, calibration_embeddings=CALIBRATION)  # type: ignore[arg-type]
    theirs = reference_quantize(single, precision=precision, calibration_embeddings=CALIBRATION)
    np.testing.assert_array_equal(mine, theirs)
    ranges = quantization_ranges(CALIBRATION)
    np.testing.assert_array_equal(quantize_embeddings(single, precision, ranges=ranges), mine)  # type: ignore[arg-type]


def test_values_outside_the_calibration_range_are_clipped() -> None:
    ranges = np.array([[-1.0, -1.0], [1.0, 1.0]], dtype=np.float32)
    quantized = quantize_embeddings(np.array([[-5.0, 5.0]]), "uint8", ranges=ranges)
    assert quantized.tolist() == [[0, 255]]


def test_binary_packs_eight_dimensions_a_byte() -> None:
    assert quantize_embeddings(EMBEDDINGS, "ubinary").shape == (200, 3)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        quantize_embeddings(EMBEDDINGS[:1], "int8")
    with pytest.raises(ValueError, match="must be floats"):
        quantize_embeddings(np.ones((3, 4), dtype=np.int8), "int8")
    with pytest.raises(ValueError, match="precision 'int4'"):
        quantize_embeddings(EMBEDDINGS, "int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ranges must have shape \(2, 24\)"):
        quantize_embeddings(EMBEDDINGS, "int8", ranges=np.zeros((2, 3)))
