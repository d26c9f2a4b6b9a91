"""MaxSim, the late-interaction score: for each query token, the best dot product with any document
token, summed over the query's tokens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

TokenMatrices = Sequence[Tensor] | Sequence[np.ndarray] | Tensor


def _as_list(matrices: TokenMatrices) -> list[Tensor]:
    if isinstance(matrices, Tensor):
        matrices = [matrices] if matrices.dim() == 2 else list(matrices)
    elif isinstance(matrices, np.ndarray) and matrices.dtype != object and matrices.ndim == 2:
        matrices = [matrices]
    out = [m if isinstance(m, Tensor) else torch.from_numpy(np.asarray(m)) for m in matrices]
    for index, matrix in enumerate(out):
        if matrix.dim() != 2:
            raise ValueError(
                f"token matrix at index {index} has shape {tuple(matrix.shape)}; "
                "MaxSim takes one (tokens x dim) matrix per input"
            )
    return [m.float() for m in out]


def _pad(matrices: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack matrices of different lengths into (n, longest, dim) plus a (n, longest) validity mask."""
    width = max(max((len(m) for m in matrices), default=0), 1)  # a zero-width max is undefined
    dim = matrices[0].shape[1]
    padded = torch.zeros((len(matrices), width, dim), dtype=torch.float32)
    mask = torch.zeros((len(matrices), width), dtype=torch.bool)
    for index, matrix in enumerate(matrices):
        padded[index, : len(matrix)] = matrix
        mask[index, : len(matrix)] = True
    return padded, mask


def maxsim(queries: TokenMatrices, documents: TokenMatrices, *, chunk_size: int = 256) -> Tensor:
    """Return the (queries x documents) matrix of MaxSim scores.

    A document with no tokens scores 0 for every query.

    >>> q = [torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
    >>> d = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5], [0.0, 2.0]])]
    >>> maxsim(q, d)
    tensor([[1.0000, 2.5000]])
    """
    query_list, document_list = _as_list(queries), _as_list(documents)
    if not query_list or not document_list:
        return torch.zeros((len(query_list), len(document_list)))
    q, q_mask = _pad(query_list)
    if q.shape[2] != document_list[0].shape[1]:
        raise ValueError(
            f"query tokens have {q.shape[2]} dims, document tokens {document_list[0].shape[1]}; "
            "encode both with the same model"
        )
    columns = []
    for start in range(0, len(document_list), chunk_size):
        d, d_mask = _pad(document_list[start : start + chunk_size])
        # (nq, lq, nd, ld): every query token against every document token.
        scores = torch.einsum("qad,nbd->qanb", q, d)
        scores = scores.masked_fill(~d_mask[None, None], float("-inf")).amax(dim=3)
        scores = torch.nan_to_num(scores, neginf=0.0)  # a document with no tokens
        columns.append((scores * q_mask[:, :, None]).sum(dim=1))
    return torch.cat(columns, dim=1)


def maxsim_pairwise(queries: TokenMatrices, documents: TokenMatrices) -> Tensor:
    """Return MaxSim of ``queries[i]`` with ``documents[i]`` for each ``i``."""
    query_list, document_list = _as_list(queries), _as_list(documents)
    if len(query_list) != len(document_list):
        raise ValueError(f"got {len(query_list)} queries and {len(document_list)} documents; pass one each")
    return torch.tensor(
        [float(maxsim([q], [d])[0, 0]) for q, d in zip(query_list, document_list, strict=True)]
    )
