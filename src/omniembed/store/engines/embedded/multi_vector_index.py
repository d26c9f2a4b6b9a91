"""A multi-vector (late-interaction) named vector: MUVERA candidates, then exact MaxSim.

The index holds one fixed-size MUVERA encoding per object, never the token matrices: those stay in
SQLite and ``fetch(slots)`` reads the few a search scores exactly. An unfiltered search ranks every
encoding against the query's and scores the best ``candidates`` by exact MaxSim; a filtered search
scores every allowed object exactly, so it loses nothing.

Saved under a prefix as immutable segments of encodings (each written once, merged when there are
many or a quarter of the rows are deleted), a rows file (slots and deletion marks), the MUVERA
random draws (so reloaded encodings and new queries agree whatever numpy's generator does) and a
manifest written last with sizes, crc32 checksums, the fingerprint and the caller's watermark.
Loading memory-maps the segments; a missing, truncated, corrupt or mismatched save is logged and
refused, so the caller rebuilds from SQLite. Opening imports neither torch nor the MUVERA code:
only adding rows and searching do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.store.engines.embedded import vector_files as files

logger = logging.getLogger(__name__)
FORMAT = 1
MUVERA = {"bits": 4, "projection_dim": 32, "repetitions": 20, "seed": 0}
"""The encoding's settings (those of ``LateInteractionIndex``); a save made with others is rebuilt."""
MAX_SEGMENTS = 8
"""More saved segments than this are merged into one at the next save."""
FetchMatrices = Callable[[np.ndarray], list[np.ndarray]]
"""Reads the stored (tokens x dims) matrices of some slots, in their order; raises if one is missing."""
_ROWS_PER_CHUNK = 1024


class MultiVectorIndex:
    """MUVERA encodings of one collection's multi-vector named vector, addressed by increasing slots.

    >>> rng = np.random.default_rng(0)
    >>> stored = {slot: rng.normal(size=(3, 4)).astype(np.float32) for slot in (1, 2, 3)}
    >>> index = MultiVectorIndex(4, lambda slots: [stored[int(s)] for s in slots])
    >>> index.add(np.array([1, 2, 3]), list(stored.values()))
    >>> index.search(stored[2], limit=1)[0].tolist()
    [2]
    """

    def __init__(
        self, dims: int, fetch: FetchMatrices, path: Path | None = None, candidates: int = 100
    ) -> None:
        self.dims, self.fetch, self.path, self.candidates = dims, fetch, path, candidates
        self.width = MUVERA["repetitions"] * 2 ** MUVERA["bits"] * MUVERA["projection_dim"]
        self._draws: tuple[np.ndarray, np.ndarray] | None = None
        self._segments: list[np.ndarray] = []  # saved encodings, memory-mapped, rows in slot order
        self._entries: list[dict[str, Any]] = []  # the manifest entry of each segment's file
        self._mapped = 0  # rows held in segments
        self._extra = np.zeros((0, self.width), dtype=np.float32)  # rows [_mapped, _count), unsaved
        self._slots = np.zeros(0, dtype=np.int64)
        self._dead = np.zeros(0, dtype=bool)
        self._count = 0  # rows held, deleted ones included
        self._alive = 0
        self._changes, self._saved_at = 0, -1
        self._saved_watermark: dict[str, int] | None = None
        self._generation = 0

    def __len__(self) -> int:
        return self._alive

    @property
    def unsaved_rows(self) -> int:
        """Encodings held in memory (added since the last save); the rest are memory-mapped."""
        return self._count - self._mapped

    def prepare_one(self, matrix: np.ndarray) -> np.ndarray:
        """Check one (tokens x dims) matrix; raise ``ValueError`` naming the problem."""
        array = np.asarray(matrix, dtype=np.float32)
        if array.ndim == 1 and array.size % self.dims == 0:  # a stored blob, read back flat
            array = array.reshape(-1, self.dims)
        if array.ndim != 2 or array.shape[1] != self.dims or not len(array):
            raise ValueError(
                f"multi-vector has shape {array.shape}, the collection expects (tokens, {self.dims})"
            )
        if not np.isfinite(array).all():
            raise ValueError("multi-vector holds NaN or infinite values")
        return array

    # -- changes ---------------------------------------------------------------------------------

    def add(self, slots: np.ndarray, matrices: list[np.ndarray]) -> None:
        """Encode prepared matrices under new slots, each larger than every slot held."""
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        if len(slots) != len(matrices):
            raise ValueError(f"got {len(slots)} slots and {len(matrices)} matrices; pass one matrix per slot")
        if not len(slots):
            return
        last = int(self._slots[self._count - 1]) if self._count else -1
        if int(slots[0]) <= last or (np.diff(slots) <= 0).any():
            raise ValueError(f"slots must increase past the last one held ({last}); got {slots[:5].tolist()}")
        count, extra = self._count, self._count - self._mapped
        self._extra = _room(self._extra, extra + len(slots))
        self._extra[extra : extra + len(slots)] = self._encode(matrices)
        self._slots = _room(self._slots, count + len(slots))
        self._dead = _room(self._dead, count + len(slots))
        self._slots[count : count + len(slots)] = slots
        self._dead[count : count + len(slots)] = False
        self._count += len(slots)
        self._alive += len(slots)
        self._changes += 1

    def remove(self, slots: list[int] | np.ndarray) -> None:
        """Mark slots deleted; slots not held are ignored."""
        rows = self._rows_of(np.asarray(slots, dtype=np.int64).reshape(-1))
        rows = rows[~self._dead[rows]]
        if len(rows):
            self._dead[rows] = True
            self._alive -= len(rows)
            self._changes += 1

    # -- search ----------------------------------------------------------------------------------

    def search(
        self, query: np.ndarray, limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the slots and distances (negated MaxSim) of the best ``limit`` objects."""
        query = self.prepare_one(query)
        if allowed is None:
            rows = self._candidates(query, max(self.candidates, limit))
        else:
            rows = self._rows_of(np.asarray(allowed, dtype=np.int64).reshape(-1))
            rows = rows[~self._dead[rows]]
        return self._exact(query, rows, limit)

    def _candidates(self, query: np.ndarray, wanted: int) -> np.ndarray:
        """Rows of the ``wanted`` alive objects whose encodings best match the query's."""
        if not self._alive:
            return np.zeros(0, dtype=np.int64)
        from omniembed.late_interaction.muvera import FDEParams, encode

        encoded = encode(query, FDEParams(self.dims, **MUVERA), query=True, draws=self._get_draws())
        parts = [segment @ encoded for segment in self._segments]
        approx = np.concatenate([*parts, self._extra[: self.unsaved_rows] @ encoded])
        approx[self._dead[: self._count]] = -np.inf
        count = min(self._alive, wanted)
        if count == len(approx):
            return np.arange(count)
        return np.argpartition(-approx, count - 1)[:count]

    def _exact(self, query: np.ndarray, rows: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Score rows by exact MaxSim over their matrices read from SQLite a chunk at a time."""
        from omniembed.late_interaction.maxsim import maxsim_packed, pack

        slots = np.sort(self._slots[rows])
        query_tokens, query_offsets = pack([query], self.dims)
        scores = np.zeros(len(slots), dtype=np.float64)
        for start in range(0, len(slots), _ROWS_PER_CHUNK):
            chunk = slots[start : start + _ROWS_PER_CHUNK]
            matrices = self.fetch(chunk)
            if len(matrices) != len(chunk):
                raise RuntimeError(f"fetch returned {len(matrices)} matrices for {len(chunk)} slots")
            tokens, offsets = pack([self.prepare_one(matrix) for matrix in matrices], self.dims)
            scores[start : start + len(chunk)] = maxsim_packed(query_tokens, query_offsets, tokens, offsets)[
                0
            ]
        order = np.lexsort((slots, -scores))[:limit]
        return slots[order], -scores[order]

    def _rows_of(self, slots: np.ndarray) -> np.ndarray:
        """Rows holding ``slots`` (slots not held are left out); rows are in slot order."""
        held = self._slots[: self._count]
        rows = np.searchsorted(held, slots)
        inside = rows < self._count
        rows, slots = rows[inside], slots[inside]
        found: np.ndarray = rows[held[rows] == slots]
        return found

    def _encode(self, matrices: list[np.ndarray]) -> np.ndarray:
        from omniembed.late_interaction.muvera import FDEParams, encode

        params, draws = FDEParams(self.dims, **MUVERA), self._get_draws()
        return np.stack([encode(matrix, params, query=False, draws=draws) for matrix in matrices])

    def _get_draws(self) -> tuple[np.ndarray, np.ndarray]:
        if self._draws is None:
            from omniembed.late_interaction.muvera import FDEParams

            self._draws = FDEParams(self.dims, **MUVERA).draws()
        return self._draws

    # -- persistence -----------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """What a saved index must match to be loaded."""
        return {"format": FORMAT, "kind": "muvera", "dims": self.dims, **MUVERA}

    def save(self, prefix: Path | None = None, watermark: dict[str, int] | None = None) -> None:
        """Write the index under ``prefix`` (default ``path``) with ``watermark``, manifest last.

        Encodings added since the last save become one new segment; the segments already saved are
        kept as they are, unless there are too many or too many deleted rows, when all alive rows
        are merged into one.
        """
        prefix = prefix if prefix is not None else self.path
        if prefix is None:
            return
        watermark = dict(watermark or {})
        if self._saved_at == self._changes and self._saved_watermark == watermark:
            return
        if self._draws is None and not self._count:  # never used: nothing worth the MUVERA import
            files.remove_files(prefix)
            files.manifest_path(prefix).unlink(missing_ok=True)
            return
        manifest, _ = files.read_manifest(prefix)
        generation = max(self._generation, int((manifest or {}).get("generation", 0))) + 1
        saved = [
            entry["name"] for entry in (manifest or {}).get("files", {}).values() if isinstance(entry, dict)
        ]
        merge = (
            len(self._segments) >= MAX_SEGMENTS
            or 4 * (self._count - self._alive) > self._count
            or any(entry["name"] not in saved for entry in self._entries)
        )
        keep = np.flatnonzero(~self._dead[: self._count]) if merge else np.arange(self._count)
        first = 0 if merge else self._mapped
        new = keep[np.searchsorted(keep, first) :]
        segments, entries = ([], []) if merge else (list(self._segments), list(self._entries))
        if len(new):
            path = files.data_path(prefix, generation, "fde")
            entries.append(files.write_bytes(path, self._chunks(new)))
            segments.append(np.memmap(path, dtype=np.float32, mode="r", shape=(len(new), self.width)))
        slots, dead = self._slots[keep], self._dead[keep]
        named = {f"fde.{i}": entry for i, entry in enumerate(entries)}
        named["rows"] = files.write_bytes(
            files.data_path(prefix, generation, "rows"), [_raw(slots), _raw(dead)]
        )
        named["draws"] = files.write_bytes(
            files.data_path(prefix, generation, "draws"), [_raw(draw) for draw in self._get_draws()]
        )
        files.write_manifest(
            prefix,
            {
                **self.fingerprint(),
                "generation": generation,
                "count": len(keep),
                "segments": [len(segment) for segment in segments],
                "files": named,
                "watermark": watermark,
            },
        )
        self._segments, self._entries, self._mapped = segments, entries, len(keep)
        self._slots, self._dead, self._count = slots, dead, len(keep)
        self._extra = np.zeros((0, self.width), dtype=np.float32)
        self._generation, self._saved_at, self._saved_watermark = generation, self._changes, watermark

    def _chunks(self, rows: np.ndarray) -> Iterator[memoryview]:
        """The encodings of ``rows`` (ascending), as bytes, a few rows at a time."""
        for start in range(0, len(rows), _ROWS_PER_CHUNK):
            yield _raw(self._encodings(rows[start : start + _ROWS_PER_CHUNK]))

    def _encodings(self, rows: np.ndarray) -> np.ndarray:
        """The encodings of ``rows`` (ascending), from the segments and the unsaved rows."""
        parts, offset = [], 0
        for segment in [*self._segments, self._extra[: self.unsaved_rows]]:
            inside = rows[(rows >= offset) & (rows < offset + len(segment))]
            parts.append(np.asarray(segment[inside - offset]))
            offset += len(segment)
        return np.concatenate(parts)

    @classmethod
    def load(
        cls, prefix: Path, dims: int, fetch: FetchMatrices, candidates: int = 100
    ) -> tuple[MultiVectorIndex, dict[str, int]] | None:
        """Open an index saved under ``prefix`` and its watermark; None (logged) if it cannot be trusted."""
        index = cls(dims, fetch, prefix, candidates)
        manifest, why = files.read_manifest(prefix)
        if manifest is None:
            logger.info("not loading the multi-vector index: %s", why)
            return None
        try:
            why = index._open(manifest, prefix)
        except (KeyError, TypeError, ValueError) as error:
            why = f"malformed manifest ({error!r})"
        if why:
            logger.warning("not loading the multi-vector index %s: %s", prefix, why)
            return None
        watermark = {str(key): int(value) for key, value in manifest["watermark"].items()}
        index._generation, index._saved_at = int(manifest["generation"]), index._changes
        index._saved_watermark = watermark
        return index, watermark

    def _open(self, manifest: dict[str, Any], prefix: Path) -> str:
        """Map the saved files into this (empty) index; return why not, or an empty string."""
        expected = self.fingerprint()
        found = {key: manifest.get(key) for key in expected}
        if found != expected:
            return f"saved as {found}, wanted {expected}"
        if not isinstance(manifest.get("watermark"), dict):
            return "no watermark"
        count, sizes = int(manifest["count"]), [int(size) for size in manifest["segments"]]
        reps, buckets, width = MUVERA["repetitions"], MUVERA["bits"], MUVERA["projection_dim"]
        expected_bytes = {f"fde.{i}": 4 * size * self.width for i, size in enumerate(sizes)}
        expected_bytes["rows"] = 9 * count
        expected_bytes["draws"] = 4 * (reps * buckets * self.dims + reps * self.dims * width)
        if sum(sizes) != count or set(manifest["files"]) != set(expected_bytes):
            return f"files {sorted(manifest['files'])} do not match {len(sizes)} segments of {count} rows"
        paths = {}
        for kind, size in expected_bytes.items():
            entry = manifest["files"][kind]
            path, why = files.check_file(prefix.parent, entry) if isinstance(entry, dict) else (None, "")
            if path is None or path.stat().st_size != size:
                return why or f"{kind} file has the wrong size for the manifest"
            paths[kind] = path
        rows = np.fromfile(paths["rows"], dtype=np.uint8)
        self._slots, self._dead = rows[: 8 * count].view(np.int64).copy(), rows[8 * count :].view(bool).copy()
        if count and (np.diff(self._slots) <= 0).any():
            return "saved slots are not increasing"
        draws = np.fromfile(paths["draws"], dtype=np.float32)
        split = reps * buckets * self.dims
        self._draws = (
            draws[:split].reshape(reps, buckets, self.dims),
            draws[split:].reshape(reps, self.dims, width),
        )
        self._segments = [
            np.memmap(paths[f"fde.{i}"], dtype=np.float32, mode="r", shape=(size, self.width))
            for i, size in enumerate(sizes)
        ]
        self._entries = [dict(manifest["files"][f"fde.{i}"]) for i in range(len(sizes))]
        self._count = self._mapped = count
        self._alive = int(count - self._dead.sum())
        return ""


def _room(array: np.ndarray, needed: int) -> np.ndarray:
    """``array``, or a copy with room for at least ``needed`` rows (new rows zeroed)."""
    if len(array) >= needed:
        return array
    out = np.zeros((max(needed, 2 * len(array), 64), *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out


def _raw(array: np.ndarray) -> memoryview:
    """The bytes of an array, without a copy when it is contiguous."""
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))  # type: ignore[arg-type]
