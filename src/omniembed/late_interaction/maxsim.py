"""MaxSim, the late-interaction score: for each query token, the best dot product with any document
token, summed over the query's tokens.

:func:`maxsim_packed` is the one implementation; the encoders' ``similarity``, the
``LateInteractionIndex`` and the store's multi-vector index all score through it. It works on
token matrices laid end to end (one product of all query tokens against all document tokens, then a
max per document and a sum per query), so documents of different lengths need no padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

TokenMatrices = Sequence[Tensor] | Sequence[np.ndarray] | Tensor


def _as_list(matrices: TokenMatrices) -> list[np.ndarray]:
    if isinstance(matrices, Tensor):
        matrices = [matrices] if matrices.dim() == 2 else list(matrices)
    elif isinstance(matrices, np.ndarray) and matrices.dtype != object and matrices.ndim == 2:
        matrices = [matrices]
    out = [
        m.detach().cpu().float().numpy() if isinstance(m, Tensor) else np.asarray(m, dtype=np.float32)
        for m in matrices
    ]
    for index, matrix in enumerate(out):
        if matrix.ndim != 2:
            raise ValueError(
                f"token matrix at index {index} has shape {tuple(matrix.shape)}; "
                "MaxSim takes one (tokens x dim) matrix per input"
            )
    return out


def pack(matrices: Sequence[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay (tokens x dim) matrices end to end: the stacked tokens and the ``len + 1`` start offsets."""
    lengths = [len(matrix) for matrix in matrices]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    tokens = np.concatenate(matrices) if matrices else np.zeros((0, dim), np.float32)
    return tokens, offsets


def maxsim_packed(
    query_tokens: np.ndarray, query_offsets: np.ndarray, tokens: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Return the float32 (queries x documents) MaxSim matrix of packed token matrices.

    Query ``i`` is ``query_tokens[query_offsets[i]:query_offsets[i + 1]]``, document ``j`` likewise
    in ``tokens`` and ``offsets`` (see :func:`pack`). A query or document with no tokens scores 0.

    >>> q, q_offsets = pack([np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)], 2)
    >>> documents = [np.array([[1.0, 0.0]]), np.array([[0.5, 0.5], [0.0, 2.0]])]
    >>> d, d_offsets = pack([m.astype(np.float32) for m in documents], 2)
    >>> maxsim_packed(q, q_offsets, d, d_offsets)
    array([[1. , 2.5]], dtype=float32)
    """
    scores = np.zeros((len(query_offsets) - 1, len(offsets) - 1), dtype=np.float32)
    queries_in = np.diff(query_offsets) > 0
    documents_in = np.diff(offsets) > 0
    if not queries_in.any() or not documents_in.any():
        return scores
    # reduceat over empty segments would return a neighbour's value: reduce over non-empty ones only.
    best = np.maximum.reduceat(query_tokens @ tokens.T, offsets[:-1][documents_in], axis=1)
    summed = np.add.reduceat(best, query_offsets[:-1][queries_in], axis=0)
    scores[np.ix_(queries_in, documents_in)] = summed
    return scores


def maxsim(queries: TokenMatrices, documents: TokenMatrices, *, chunk_size: int = 256) -> Tensor:
    """Return the (queries x documents) matrix of MaxSim scores.

    Documents are scored ``chunk_size`` at a time, which bounds the memory of the token products.
    A document with no tokens scores 0 for every query.

    >>> q = [torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
    >>> d = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5], [0.0, 2.0]])]
    >>> maxsim(q, d)
    tensor([[1.0000, 2.5000]])
    """
    query_list, document_list = _as_list(queries), _as_list(documents)
    if not query_list or not document_list:
        return torch.zeros((len(query_list), len(document_list)))
    dim = query_list[0].shape[1]
    if any(m.shape[1] != dim for m in query_list):
        widths = sorted({m.shape[1] for m in query_list})
        raise ValueError(f"query token matrices have different dims {widths}; encode them with one model")
    other = next((m.shape[1] for m in document_list if m.shape[1] != dim), None)
    if other is not None:
        raise ValueError(
            f"query tokens have {dim} dims, document tokens {other}; encode both with the same model"
        )
    query_tokens, query_offsets = pack(query_list, dim)
    columns = [
        maxsim_packed(query_tokens, query_offsets, *pack(document_list[start : start + chunk_size], dim))
        for start in range(0, len(document_list), chunk_size)
    ]
    return torch.from_numpy(np.concatenate(columns, axis=1))


def maxsim_pairwise(queries: TokenMatrices, documents: TokenMatrices) -> Tensor:
    """Return MaxSim of ``queries[i]`` with ``documents[i]`` for each ``i``."""
    query_list, document_list = _as_list(queries), _as_list(documents)
    if len(query_list) != len(document_list):
        raise ValueError(f"got {len(query_list)} queries and {len(document_list)} documents; pass one each")
    return torch.tensor(
        [float(maxsim([q], [d])[0, 0]) for q, d in zip(query_list, document_list, strict=True)]
    )
