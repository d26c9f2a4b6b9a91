"""MUVERA fixed-dimensional encodings: one vector per token matrix whose dot product approximates MaxSim.

Each of ``repetitions`` rounds hashes token vectors into ``2**bits`` buckets with random hyperplanes
(SimHash) and projects them to ``projection_dim`` with a random sign matrix. A query puts the
sum of its projected tokens in each bucket, a document the mean (and fills an empty bucket from
its token whose bucket is nearest in Hamming distance), so that ``fde(q) . fde(d)`` sums, bucket by
bucket, query tokens against the document tokens most like them. See Dhulipala et al., "MUVERA:
Multi-Vector Retrieval via Fixed Dimensional Encodings" (2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FDEParams:
    """The random draws behind an encoding; the same seed gives the same encoding."""

    dim: int
    bits: int = 4
    projection_dim: int = 32
    repetitions: int = 20
    seed: int = 0

    @property
    def output_dim(self) -> int:
        """Width of each encoding."""
        return int(self.repetitions * (2**self.bits) * self.projection_dim)

    def draws(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the hyperplanes (reps, bits, dim) and sign projections (reps, dim, projection_dim)."""
        rng = np.random.default_rng(self.seed)
        planes = rng.standard_normal((self.repetitions, self.bits, self.dim)).astype(np.float32)
        signs = rng.choice(
            np.array([-1.0, 1.0], dtype=np.float32), (self.repetitions, self.dim, self.projection_dim)
        )
        return planes, signs / np.float32(np.sqrt(self.projection_dim))


def _buckets(tokens: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """SimHash bucket of each token in each repetition: shape (reps, tokens)."""
    reps, count, dim = planes.shape
    # One matrix product (BLAS) rather than einsum's loops: (t, dim) @ (dim, reps * bits).
    bits = (tokens @ planes.reshape(reps * count, dim).T).reshape(len(tokens), reps, count) > 0
    weights = 1 << np.arange(count)
    return (bits * weights).sum(axis=2).T  # type: ignore[no-any-return]


def encode(
    tokens: np.ndarray, params: FDEParams, *, query: bool, draws: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Return the fixed-dimensional encoding of one (tokens x dim) matrix.

    >>> p = FDEParams(dim=4, bits=2, projection_dim=2, repetitions=3)
    >>> encode(np.eye(4, dtype=np.float32), p, query=True, draws=p.draws()).shape
    (24,)
    """
    planes, signs = draws
    reps, buckets_count = params.repetitions, 2**params.bits
    out = np.zeros((reps, buckets_count, params.projection_dim), dtype=np.float32)
    if len(tokens) == 0:
        return out.reshape(-1)
    tokens = np.asarray(tokens, dtype=np.float32)
    buckets = _buckets(tokens, planes)  # (reps, t)
    wide = signs.transpose(1, 0, 2).reshape(signs.shape[1], -1)  # (dim, reps * p)
    projected = (tokens @ wide).reshape(len(tokens), reps, -1).transpose(1, 0, 2)  # (reps, t, p)
    rep_index = np.repeat(np.arange(reps), len(tokens))
    np.add.at(out, (rep_index, buckets.reshape(-1)), projected.reshape(-1, params.projection_dim))
    if query:
        return out.reshape(-1)
    counts = np.zeros((reps, buckets_count), dtype=np.float32)
    np.add.at(counts, (rep_index, buckets.reshape(-1)), 1.0)
    out /= np.maximum(counts, 1.0)[:, :, None]
    # Fill each empty bucket with the token whose bucket differs from it in the fewest bits.
    empty_rep, empty_bucket = np.nonzero(counts == 0)
    if len(empty_rep):
        xor = empty_bucket[:, None] ^ buckets[empty_rep]  # (empties, t)
        distance = _POPCOUNT[xor & 0xFF] + _POPCOUNT[(xor >> 8) & 0xFF]
        nearest = distance.argmin(axis=1)
        out[empty_rep, empty_bucket] = projected[empty_rep, nearest]
    return out.reshape(-1)


_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.int64)
