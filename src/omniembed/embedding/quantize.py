"""Embedding quantization: int8/uint8 buckets and packed sign bits."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def quantize_embeddings(
    embeddings: np.ndarray | torch.Tensor,
    precision: Precision,
    *,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize float embeddings to a smaller type.

    ``int8``/``uint8`` split each dimension's range into 256 equal buckets. The range comes from
    ``ranges`` (a ``(2, dim)`` array of minima and maxima), else from ``calibration_embeddings``,
    else from ``embeddings`` themselves (which then need at least two rows). ``binary``/``ubinary``
    pack the signs (``> 0``) into bits, 8 dimensions a byte; ``binary`` shifts the bytes by -128.

    >>> quantize_embeddings(np.array([[0.5, -1.0, 0.1, 2, 0, 0, 0, 1]]), "ubinary")
    array([[177]], dtype=uint8)
    """
    if isinstance(embeddings, torch.Tensor):
        embeddings = embeddings.detach().cpu().float().numpy()
    embeddings = np.asarray(embeddings)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not supported; use one of {PRECISIONS}")
    if embeddings.dtype.kind not in "f":
        raise ValueError(f"embeddings to quantize must be floats, got dtype {embeddings.dtype}")
    if precision == "float32":
        return np.asarray(embeddings, dtype=np.float32)
    if precision in ("binary", "ubinary"):
        packed = np.packbits(embeddings > 0, axis=-1)
        return (packed.astype(np.int16) - 128).astype(np.int8) if precision == "binary" else packed
    if embeddings.shape[0] == 0 and ranges is None and calibration_embeddings is None:
        return np.zeros(embeddings.shape, dtype=np.int8 if precision == "int8" else np.uint8)
    starts, steps = _buckets(embeddings, ranges, calibration_embeddings)
    levels: np.ndarray = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
    return (levels - 128).astype(np.int8) if precision == "int8" else levels.astype(np.uint8)


def quantization_ranges(calibration_embeddings: np.ndarray) -> np.ndarray:
    """Return the ``(2, dim)`` per-dimension minima and maxima used for int8/uint8 buckets."""
    calibration = np.asarray(calibration_embeddings, dtype=np.float32)
    if calibration.ndim != 2 or calibration.shape[0] < 2:
        raise ValueError(
            f"int8 ranges need at least 2 embeddings, got an array of shape {calibration.shape}; pass "
            "ranges= or calibration_embeddings= computed from a representative set of embeddings"
        )
    return np.vstack((calibration.min(axis=0), calibration.max(axis=0)))


def _buckets(
    embeddings: np.ndarray, ranges: np.ndarray | None, calibration: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if ranges is None:
        ranges = quantization_ranges(embeddings if calibration is None else calibration)
    ranges = np.asarray(ranges, dtype=np.float32)
    if ranges.shape != (2, embeddings.shape[-1]):
        raise ValueError(f"ranges must have shape (2, {embeddings.shape[-1]}), got {ranges.shape}")
    steps = (ranges[1] - ranges[0]) / 255
    return ranges[0], np.where(steps == 0, 1, steps)
