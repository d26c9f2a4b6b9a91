"""How multi-vector (token) matrices are kept in SQLite: float32, float16, or int8 with a scale per row.

A page of a late-interaction model is about a thousand token vectors, so the stored form decides the
size of a collection: float16 halves float32 and loses nothing MaxSim notices; int8 (one float32
scale per token vector, then one signed byte per value) quarters it. Which form a named vector uses
is in its configuration (``VectorConfig.storage``); collections from before it existed are float32.

>>> matrix = np.array([[0.5, -1.0], [0.25, 0.0]], dtype=np.float32)
>>> decode(encode(matrix, "float16"), "float16", 2).tolist()
[[0.5, -1.0], [0.25, 0.0]]
>>> len(encode(matrix, "int8")), decode(encode(matrix, "int8"), "int8", 2).round(2).tolist()
(12, [[0.5, -1.0], [0.25, 0.0]])
"""

from __future__ import annotations

import numpy as np


def encode(matrix: np.ndarray, storage: str) -> bytes:
    """The bytes kept for a (tokens x dims) float32 matrix."""
    if storage == "float16":
        return np.asarray(matrix, dtype=np.float16).tobytes()
    if storage == "int8":
        values = np.asarray(matrix, dtype=np.float32)
        scales = np.abs(values).max(axis=1) / 127.0
        safe = np.where(scales > 0, scales, 1.0)
        codes = np.clip(np.rint(values / safe[:, None]), -127, 127).astype(np.int8)
        return bytes(scales.astype(np.float32).tobytes()) + bytes(codes.tobytes())
    return np.asarray(matrix, dtype=np.float32).tobytes()


def decode(blob: bytes, storage: str, dims: int) -> np.ndarray:
    """The float32 (tokens x dims) matrix of a stored blob."""
    if storage == "float16":
        return np.frombuffer(blob, dtype=np.float16).astype(np.float32).reshape(-1, dims)
    if storage == "int8":
        tokens = len(blob) // (4 + dims)
        scales = np.frombuffer(blob, dtype=np.float32, count=tokens)
        codes = np.frombuffer(blob, dtype=np.int8, offset=4 * tokens).reshape(tokens, dims)
        return codes.astype(np.float32) * scales[:, None]
    return np.frombuffer(blob, dtype=np.float32).reshape(-1, dims)


def stored_bytes(tokens: int, dims: int, storage: str) -> int:
    """Bytes of one stored matrix (before SQLite's own overhead).

    >>> stored_bytes(1000, 128, "float16"), stored_bytes(1000, 128, "int8")
    (256000, 132000)
    """
    if storage == "int8":
        return tokens * (4 + dims)
    return tokens * dims * (2 if storage == "float16" else 4)
