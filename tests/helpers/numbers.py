"""Numeric checks the tests share."""

from __future__ import annotations

import numpy as np

PARITY = 0.99999
"""The least cosine between our embedding and the reference library's for the same model files."""


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity of two float matrices."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Fail unless two embedding matrices agree to parity (cosine) and to 1e-5 (values)."""
    assert ours.shape == theirs.shape
    assert cosines(ours, theirs).min() >= PARITY
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-4)
