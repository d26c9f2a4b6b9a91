"""A multi-vector index: MUVERA candidates, then exact MaxSim on the candidates only.

Store-agnostic: it holds ids and token matrices, nothing else. Saved as plain ``.npy`` files and a
JSON file with a format version (no pickle).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.late_interaction.maxsim import maxsim_packed, pack
from omniembed.late_interaction.muvera import FDEParams, encode

FORMAT_VERSION = 1
_PARAM_KEYS = ("dim", "bits", "projection_dim", "repetitions", "seed")
Id = int | str


class LateInteractionIndex:
    """Add, remove and search token matrices by MaxSim without scanning every token of every document.

    Args:
        dim: width of the token vectors.
        bits, projection_dim, repetitions, seed: the MUVERA encoding (see :class:`FDEParams`).
        candidates: how many documents the encoding proposes for exact MaxSim (more: higher recall).

    >>> index = LateInteractionIndex(dim=2, bits=1, projection_dim=2, repetitions=2)
    >>> index.add(["a", "b"], [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])])
    >>> index.search(np.array([[1.0, 0.0]]), k=1)
    [{'id': 'a', 'score': 1.0}]
    """

    def __init__(
        self,
        dim: int,
        *,
        bits: int = 4,
        projection_dim: int = 32,
        repetitions: int = 20,
        seed: int = 0,
        candidates: int = 100,
    ) -> None:
        self.params = FDEParams(dim, bits, projection_dim, repetitions, seed)
        self.candidates = candidates
        self._draws = self.params.draws()
        self._ids: list[Id] = []
        self._matrices: list[np.ndarray] = []
        self._fdes: list[np.ndarray] = []
        self._packed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[Id]:
        """The ids in the index, in insertion order."""
        return list(self._ids)

    def add(self, ids: Sequence[Id], matrices: Sequence[np.ndarray]) -> None:
        """Add documents; an id already present is replaced."""
        if len(ids) != len(matrices):
            raise ValueError(f"got {len(ids)} ids and {len(matrices)} token matrices; pass one matrix per id")
        checked = [self._check(matrix, index) for index, matrix in enumerate(matrices)]
        present = set(self._ids)
        self.remove([i for i in ids if i in present])
        for doc_id, matrix in zip(ids, checked, strict=True):
            if not isinstance(doc_id, (int, str)) or isinstance(doc_id, bool):
                raise TypeError(f"ids must be ints or strings, got {doc_id!r}")
            self._ids.append(doc_id)
            self._matrices.append(matrix)
            self._fdes.append(encode(matrix, self.params, query=False, draws=self._draws))
        self._packed = None

    def remove(self, ids: Sequence[Id]) -> None:
        """Remove documents by id; ids not present are ignored."""
        drop = set(ids)
        if not drop:
            return
        keep = [index for index, doc_id in enumerate(self._ids) if doc_id not in drop]
        self._ids = [self._ids[i] for i in keep]
        self._matrices = [self._matrices[i] for i in keep]
        self._fdes = [self._fdes[i] for i in keep]
        self._packed = None

    def search(
        self, query: np.ndarray, k: int = 10, *, candidates: int | None = None
    ) -> list[dict[str, Any]]:
        """Return the ``k`` best documents by exact MaxSim among the encoding's top candidates."""
        query = self._check(query, 0, what="query")
        if not self._ids:
            return []
        tokens, offsets, fdes = self._pack()
        count = min(len(self._ids), max(candidates or self.candidates, k))
        approx = fdes @ encode(query, self.params, query=True, draws=self._draws)
        chosen = (
            np.argpartition(-approx, count - 1)[:count] if count < len(approx) else np.arange(len(approx))
        )
        scores = _maxsim_segments(query, tokens, offsets, chosen)
        return self._top(chosen, scores, k)

    def search_exhaustive(self, query: np.ndarray, k: int = 10) -> list[dict[str, Any]]:
        """Return the ``k`` best documents by MaxSim over every token (the ground truth for ``search``)."""
        query = self._check(query, 0, what="query")
        if not self._ids:
            return []
        tokens, offsets, _ = self._pack()
        everything = np.arange(len(self._ids))
        return self._top(everything, _maxsim_segments(query, tokens, offsets, everything), k)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to a folder (replaced whole, so a crash leaves the old copy or the new one)."""
        folder = Path(path)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        tokens, offsets, fdes = self._pack()
        np.save(tmp / "tokens.npy", tokens, allow_pickle=False)
        np.save(tmp / "offsets.npy", offsets, allow_pickle=False)
        np.save(tmp / "fde.npy", fdes, allow_pickle=False)
        meta = {"format_version": FORMAT_VERSION, "ids": self._ids, "candidates": self.candidates}
        meta.update({key: getattr(self.params, key) for key in _PARAM_KEYS})
        (tmp / "index.json").write_text(json.dumps(meta), encoding="utf-8")
        old = folder.with_name(folder.name + ".old")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LateInteractionIndex:
        """Read an index written by :meth:`save`."""
        folder = Path(path)
        meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{folder}: index format {meta.get('format_version')!r} is not {FORMAT_VERSION}")
        settings = {key: int(meta[key]) for key in _PARAM_KEYS[1:]}
        index = cls(int(meta["dim"]), candidates=int(meta["candidates"]), **settings)
        tokens = np.load(folder / "tokens.npy", allow_pickle=False)
        offsets = np.load(folder / "offsets.npy", allow_pickle=False)
        fdes = np.load(folder / "fde.npy", allow_pickle=False)
        index._ids = list(meta["ids"])
        index._matrices = [tokens[offsets[i] : offsets[i + 1]] for i in range(len(index._ids))]
        index._fdes = list(fdes)
        return index

    def _check(self, matrix: Any, index: int, what: str = "token matrix") -> np.ndarray:
        array = np.asarray(matrix, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.params.dim:
            raise ValueError(
                f"{what} at index {index} has shape {array.shape}; expected (tokens, {self.params.dim})"
            )
        return array

    def _pack(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._packed is None:
            tokens, offsets = pack(self._matrices, self.params.dim)
            width = self.params.output_dim
            fdes = np.stack(self._fdes) if self._fdes else np.zeros((0, width), np.float32)
            self._packed = (tokens, offsets, fdes)
        return self._packed

    def _top(self, rows: np.ndarray, scores: np.ndarray, k: int) -> list[dict[str, Any]]:
        order = np.argsort(-scores, kind="stable")[:k]
        return [{"id": self._ids[int(rows[i])], "score": float(scores[i])} for i in order]


def _maxsim_segments(
    query: np.ndarray, tokens: np.ndarray, offsets: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """MaxSim of ``query`` with each document in ``rows`` (token ranges given by ``offsets``)."""
    query_offsets = np.array([0, len(query)], dtype=np.int64)
    if not (len(rows) == len(offsets) - 1 and np.array_equal(rows, np.arange(len(rows)))):
        # a few documents: lay just those end to end (every document: the packed tokens as they are)
        slices = [tokens[offsets[row] : offsets[row + 1]] for row in rows.tolist()]
        tokens, offsets = pack(slices, query.shape[1])
    scores: np.ndarray = maxsim_packed(query, query_offsets, tokens, offsets)[0]
    return scores
