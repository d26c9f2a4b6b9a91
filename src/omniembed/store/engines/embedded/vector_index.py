"""Nearest-neighbour search over one named vector: exact float32 while small, then int8 codes and HNSW.

Up to ``flat_threshold`` live vectors the index holds them as a float32 matrix and searches exactly.
Past it, each vector is kept as 8-bit scalar-quantized codes (a quarter of the float32 size) inside
a faiss HNSW graph (``IndexHNSWSQ``); the best candidates are rescored with full float32 vectors,
read through ``fetch`` (the engine's SQLite rows) or held in memory when no ``fetch`` is given.

``add`` only appends codes: a background thread inserts them into the graph, and until it has,
the not-yet-indexed tail is searched exactly and merged. Exact searches over codes (small filtered
sets, fallbacks) stay exact: each row keeps the norm of its quantization error, which bounds how
far its approximate distance can be from the true one, and rows are rescored until no unscored row
can beat the current ``limit``-th. Removed rows are tombstones the graph still walks through.

A saved index (:meth:`VectorIndex.save`, :meth:`VectorIndex.load`) is the graph file (codes
included, memory-mapped on load), a rows file (slots, error norms, squared norms, tombstones), a
tail file (codes not yet in the graph) and a manifest written last with sizes and crc32 checksums.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.errors import import_extra
from omniembed.store.config import IndexConfig, Metric
from omniembed.store.engines.embedded import vector_files as files

logger = logging.getLogger(__name__)
FORMAT = 1
_BATCH = 512  # rows the builder inserts per lock hold: bounds how long a query can wait on it
_CHUNK = 65_536  # rows scored per numpy step in exact searches over codes
_BUSY_S = 2.0  # after an add, the builder keeps to one thread this long and leaves a core to the writer
_THREADS = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
Fetch = Callable[[np.ndarray], np.ndarray]


class VectorIndex:
    """Vectors of one collection's named vector, addressed by integer slots.

    ``fetch(slots)`` returns the float32 vectors (as prepared: normalised for cosine) of those slots
    in that order; without it the index keeps a float32 copy in memory.
    """

    def __init__(
        self,
        dims: int,
        metric: Metric,
        config: IndexConfig,
        path: Path | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        self.dims, self.metric, self.config, self.path, self.fetch = dims, metric, config, path, fetch
        self._graph_lock = threading.RLock()  # held while the graph is searched, grown or written
        self._lock = threading.RLock()  # the rows; taken after _graph_lock when both are needed
        self._idle = threading.Condition(self._lock)
        self._count = 0  # rows held, tombstones included; row numbers never change
        self._alive = 0
        self._slots = np.zeros(64, dtype=np.int64)
        self._dead = np.zeros(64, dtype=bool)
        self._sorted = True
        self._order: np.ndarray | None = None
        self._matrix: np.ndarray | None = np.zeros((64, dims), dtype=np.float32)  # flat mode only
        self.graph: Any = None  # faiss IndexHNSWSQ over rows [0, _graph_rows) once quantized
        self._graph_rows = 0
        self._graph_codes = np.zeros((0, dims), dtype=np.uint8)
        self._graph_file: Path | None = None  # set while the graph is a read-only memory map
        self._tail = np.zeros((0, dims), dtype=np.uint8)  # codes of rows [_tail_start, _count)
        self._tail_start = 0
        self._errors = np.zeros(0, dtype=np.float32)  # norm of each row's quantization error
        self._norms = np.zeros(0, dtype=np.float32)  # squared norm of each row (l2)
        self._full: np.ndarray | None = None  # float32 rows when no fetch is given
        self._low = self._width = np.zeros(0, dtype=np.float32)
        self._live_bits: np.ndarray | None = None
        self._builder: threading.Thread | None = None
        self._last_add = 0.0
        self._closing = False
        self._changes, self._saved_at = 0, -1
        self._saved_watermark: dict[str, int] | None = None
        self._generation = 0

    def __len__(self) -> int:
        return self._alive

    # -- input -----------------------------------------------------------------------------------

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Check shape and finiteness and normalise for cosine; raise ``ValueError`` naming the problem."""
        vectors = np.asarray(vectors, dtype=np.float32).copy()
        if vectors.ndim != 2 or vectors.shape[1] != self.dims:
            raise ValueError(f"vector has {vectors.shape[-1]} dims, the collection expects {self.dims}")
        if not np.isfinite(vectors).all():
            raise ValueError("vector holds NaN or infinite values")
        if self.metric == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            if (norms == 0).any():
                raise ValueError("a zero vector has no direction for cosine distance")
            vectors = vectors / norms
        return vectors

    def prepare_one(self, vector: np.ndarray) -> np.ndarray:
        """Check and normalise one vector (see :meth:`prepare`)."""
        prepared: np.ndarray = self.prepare(np.asarray(vector).reshape(1, -1))[0]
        return prepared

    def distances(self, query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Distance from a prepared query to each prepared vector (smaller is nearer)."""
        if self.metric == "l2":
            return np.asarray(((vectors - query) ** 2).sum(axis=1), dtype=np.float64)
        dots = _dots(vectors, query).astype(np.float64)
        return 1.0 - dots if self.metric == "cosine" else -dots

    # -- changes ---------------------------------------------------------------------------------

    def add(self, slots: np.ndarray, vectors: np.ndarray) -> None:
        """Append prepared vectors under new slots; the graph catches up in a background thread."""
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dims)
        if len(slots) != len(vectors):
            raise ValueError(f"{len(slots)} slots for {len(vectors)} vectors")
        if not len(slots):
            return
        with self._lock:
            self._check_new(slots)
            start, stop = self._count, self._count + len(slots)
            self._reserve(stop)
            self._sorted = (
                self._sorted
                and bool((np.diff(slots) >= 0).all())
                and (start == 0 or slots[0] >= self._slots[start - 1])
            )
            self._slots[start:stop], self._dead[start:stop] = slots, False
            self._count, self._alive, self._order = stop, self._alive + len(slots), None
            self._changes += 1
            self._last_add = time.monotonic()
            if self._matrix is not None:
                self._matrix[start:stop] = vectors
                if self._alive > self.config.flat_threshold:
                    self._quantize()
            else:
                self._append_codes(vectors, start)
            self._start_builder()

    def remove(self, slots: list[int] | np.ndarray) -> None:
        """Remove slots (unknown ones are ignored); their rows become tombstones."""
        with self._lock:
            rows = self._rows_of(np.asarray(slots, dtype=np.int64).reshape(-1))
            if not len(rows):
                return
            self._dead[rows] = True
            self._alive -= len(rows)
            self._live_bits = None
            self._changes += 1
            if self._matrix is not None and self._count > 64 and self._count > 2 * self._alive:
                self._drop_dead_flat()

    def indexed(self) -> bool:
        """Whether every row held is in the graph (always true below ``flat_threshold``)."""
        with self._lock:
            return self.graph is None or self._graph_rows >= self._count

    def wait_indexed(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`indexed` (or ``timeout`` seconds); return whether it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while not self.indexed():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if self._builder is None:
                    self._start_builder()
                self._idle.wait(0.5 if left is None else min(left, 0.5))
            return True

    def close(self) -> None:
        """Stop the background builder (what it has not inserted stays in the tail)."""
        with self._lock:
            self._closing = True
            builder = self._builder
        if builder is not None:
            builder.join()

    # -- search ----------------------------------------------------------------------------------

    def search(
        self, query: np.ndarray, limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the slots and distances of the ``limit`` nearest vectors (among ``allowed`` slots)."""
        query = self.prepare(query.reshape(1, -1))[0]
        with self._graph_lock, self._lock:
            rows = None if allowed is None else self._rows_of(np.asarray(allowed, dtype=np.int64))
            if limit <= 0 or self._alive == 0 or (rows is not None and not len(rows)):
                return np.zeros(0, dtype=np.int64), np.zeros(0)
            if self._matrix is not None:
                if rows is None:
                    rows = np.flatnonzero(~self._dead[: self._count])
                return self._top(rows, self.distances(query, self._matrix[rows]), limit)
            if rows is not None and len(rows) <= max(self.config.flat_threshold, self._count // 20):
                return self._exact(query, limit, rows)
            return self._graph_search(query, limit, rows)

    def _graph_search(
        self, query: np.ndarray, limit: int, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        eligible = self._alive if rows is None else len(rows)
        indexed = self._graph_rows
        found_rows, found_distances = [], []
        if indexed:
            bits = self._selection_bits(rows, indexed)
            candidates = self._graph_candidates(query, max(limit, limit * self.config.rescore), bits)
            picked_rows, picked_distances = self._rescored(query, candidates, limit)
            found_rows.append(picked_rows)
            found_distances.append(picked_distances)
        tail = (  # rows not in the graph yet: searched exactly
            np.arange(indexed, self._count)[~self._dead[indexed : self._count]]
            if rows is None
            else rows[rows >= indexed]
        )
        if len(tail):
            tail_rows, tail_distances = self._rescored(query, tail, limit)
            found_rows.append(tail_rows)
            found_distances.append(tail_distances)
        if sum(len(part) for part in found_rows) < min(limit, eligible):
            all_rows = np.flatnonzero(~self._dead[: self._count]) if rows is None else rows
            return self._exact(query, limit, all_rows)
        return self._top(np.concatenate(found_rows), np.concatenate(found_distances), limit)

    def _graph_candidates(self, query: np.ndarray, k: int, bits: np.ndarray | None = None) -> np.ndarray:
        """The rows of the graph's ``k`` nearest by their codes (among rows set in ``bits``)."""
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.config.ef, k)
        if bits is not None:
            params.sel = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        _, found = self.graph.search(query.reshape(1, -1), k, params=params)
        return np.asarray(found[0][found[0] >= 0], dtype=np.int64)

    def _selection_bits(self, rows: np.ndarray | None, indexed: int) -> np.ndarray | None:
        if rows is None:
            if self._alive == self._count:
                return None
            if self._live_bits is None or len(self._live_bits) * 8 < indexed:
                self._live_bits = np.packbits(~self._dead[: self._count], bitorder="little")
            return self._live_bits
        mask = np.zeros(indexed, dtype=bool)
        mask[rows[rows < indexed]] = True
        return np.packbits(mask, bitorder="little")

    def _exact(self, query: np.ndarray, limit: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``limit`` over ``rows``: slots and distances."""
        return self._top(*self._rescored(query, rows, limit), limit)

    def _rescored(self, query: np.ndarray, rows: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``rows`` that can be among its ``limit`` nearest, with exact float32 distances.

        Rows are read in order of their lowest possible distance: the first ``limit + 16``, then every
        row whose lowest possible distance does not exceed the ``limit``-th exact distance found. The
        rows left out are farther than that for certain, so the top ``limit`` is the same as
        rescoring all of ``rows``, from fewer reads.
        """
        approx = self._approx(query, rows)
        spread = (2.0 if self.metric == "l2" else 1.0) * float(np.linalg.norm(query))
        lower = approx - spread * self._errors[rows] - 1e-4 * (1.0 + np.abs(approx))
        order = np.argsort(lower, kind="stable")
        ordered = lower[order]
        take = min(len(rows), limit + 16)
        exact = self.distances(query, self._float32(rows[order[:take]]))
        while take < len(rows):
            kth = np.partition(exact, min(limit, len(exact)) - 1)[min(limit, len(exact)) - 1]
            more = take + int(np.searchsorted(ordered[take:], kth, side="right"))
            if more == take:
                break
            exact = np.concatenate([exact, self.distances(query, self._float32(rows[order[take:more]]))])
            take = more
        return rows[order[:take]], exact

    def _top(self, rows: np.ndarray, distances: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        slots = self._slots[rows]
        best = np.argpartition(distances, limit - 1)[:limit] if len(rows) > limit else np.arange(len(rows))
        best = best[np.lexsort((slots[best], distances[best]))]
        return slots[best], np.asarray(distances[best], dtype=np.float64)

    def _approx(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Distances from the codes of ``rows`` (off by at most the row's error norm times |query|)."""
        weights = (query * self._width / 255.0).astype(np.float32)
        offset = float(query @ (self._low + 0.5 * self._width / 255.0))
        dots = np.empty(len(rows), dtype=np.float32)
        for start in range(0, len(rows), _CHUNK):
            part = rows[start : start + _CHUNK]
            dots[start : start + len(part)] = _dots(self._codes(part).astype(np.float32), weights)
        dots += offset
        if self.metric == "l2":
            return np.asarray(self._norms[rows] - 2.0 * dots + float(query @ query))
        return 1.0 - dots if self.metric == "cosine" else -dots

    def _codes(self, rows: np.ndarray) -> np.ndarray:
        indexed = self._graph_rows
        if len(rows) and rows.max() < indexed:
            return np.asarray(self._graph_codes[rows])
        out = np.empty((len(rows), self.dims), dtype=np.uint8)
        early = rows < self._tail_start
        out[early] = self._graph_codes[rows[early]]
        out[~early] = self._tail[rows[~early] - self._tail_start]
        return out

    def _float32(self, rows: np.ndarray) -> np.ndarray:
        if self._full is not None:
            return np.asarray(self._full[rows])
        assert self.fetch is not None
        vectors = np.asarray(self.fetch(self._slots[rows]), dtype=np.float32)
        if vectors.shape != (len(rows), self.dims):
            raise RuntimeError(f"fetch returned {vectors.shape} for {len(rows)} slots of {self.dims} dims")
        return vectors

    # -- rows ------------------------------------------------------------------------------------

    def _rows_of(self, slots: np.ndarray) -> np.ndarray:
        """Live rows of the given slots (unknown and removed ones left out), without repeats."""
        held = self._slots[: self._count]
        if not len(held):
            return np.zeros(0, dtype=np.int64)
        order = None
        if not self._sorted:
            if self._order is None:
                self._order = np.argsort(held, kind="stable")
            order = self._order
        ordered = held if order is None else held[order]
        positions = np.searchsorted(ordered, slots, side="right") - 1
        found = (positions >= 0) & (ordered[np.maximum(positions, 0)] == slots)
        rows = positions[found] if order is None else order[positions[found]]
        rows = np.unique(rows)
        return np.asarray(rows[~self._dead[rows]])

    def _check_new(self, slots: np.ndarray) -> None:
        if len(np.unique(slots)) != len(slots):
            raise ValueError("the same slot appears twice in one add")
        if self._count and len(self._rows_of(slots)):
            raise ValueError(f"slots {self._slots[self._rows_of(slots)][:5].tolist()} are already held")

    def _reserve(self, needed: int) -> None:
        if needed <= len(self._slots):
            return
        size = max(needed, 2 * len(self._slots))
        self._slots = _grown(self._slots, size)
        self._dead = _grown(self._dead, size)
        if self._matrix is not None:
            self._matrix = _grown(self._matrix, size)
        else:
            self._errors, self._norms = _grown(self._errors, size), _grown(self._norms, size)
            if self._full is not None:
                self._full = _grown(self._full, size)

    def _drop_dead_flat(self) -> None:
        assert self._matrix is not None
        keep = np.flatnonzero(~self._dead[: self._count])
        count = len(keep)
        self._matrix[:count] = self._matrix[keep]
        self._slots[:count] = self._slots[keep]
        self._dead[: self._count] = False
        self._count, self._order = count, None

    # -- codes and graph -------------------------------------------------------------------------

    def _new_graph(self) -> Any:
        faiss = _faiss()
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        graph = faiss.IndexHNSWSQ(self.dims, faiss.ScalarQuantizer.QT_8bit, self.config.m, metric)
        graph.hnsw.efConstruction = self.config.ef_construction
        faiss.downcast_index(graph.storage).sq.rangestat_arg = 0.02  # a little room past the sample
        return graph

    def _quantize(self) -> None:
        """Leave flat mode: train the quantizer on the live rows, keep them as codes, start the graph."""
        assert self._matrix is not None
        self._drop_dead_flat()
        count = self._count
        vectors = self._matrix[:count]
        logger.info("quantizing %d vectors to 8-bit codes and starting the HNSW graph", count)
        graph = self._new_graph()
        graph.train(vectors)
        self._set_graph(graph)
        size = len(self._slots)
        self._errors, self._norms = np.zeros(size, dtype=np.float32), np.zeros(size, dtype=np.float32)
        self._full = _grown(vectors, size) if self.fetch is None else None
        self._matrix = None
        self._append_codes(vectors, 0)

    def _append_codes(self, vectors: np.ndarray, start: int) -> None:
        """Encode the vectors of rows [start, start + len(vectors)) (their slots are already set)."""
        stop = start + len(vectors)
        if self._full is not None:
            self._full[start:stop] = vectors
        storage = _faiss().downcast_index(self.graph.storage)
        codes = storage.sq.compute_codes(np.ascontiguousarray(vectors))
        decoded = self._low + (codes.astype(np.float32) + 0.5) * (self._width / 255.0)
        self._errors[start:stop] = np.linalg.norm(vectors - decoded, axis=1)
        self._norms[start:stop] = (vectors * vectors).sum(axis=1)
        used = start - self._tail_start
        if used + len(codes) > len(self._tail):
            keep = self._tail[max(0, self._graph_rows - self._tail_start) : used]
            self._tail_start = max(self._tail_start, self._graph_rows)
            grown = np.zeros((max(2 * (len(keep) + len(codes)), 1024), self.dims), dtype=np.uint8)
            grown[: len(keep)] = keep
            self._tail = grown
            used = len(keep)
        self._tail[used : used + len(codes)] = codes

    def _set_graph(self, graph: Any) -> None:
        faiss = _faiss()
        self.graph = graph
        storage = faiss.downcast_index(graph.storage)
        trained = faiss.vector_to_array(storage.sq.trained).astype(np.float32)
        self._low, self._width = trained[: self.dims], trained[self.dims :]
        self._graph_rows = int(graph.ntotal)
        self._refresh_view()

    def _refresh_view(self) -> None:
        storage = _faiss().downcast_index(self.graph.storage)
        count = int(self.graph.ntotal)
        if count == 0:
            self._graph_codes = np.zeros((0, self.dims), dtype=np.uint8)
            return
        pointer = storage.codes.data()
        self._graph_codes = _faiss().rev_swig_ptr(pointer, count * self.dims).reshape(count, self.dims)

    def _start_builder(self) -> None:
        if self.graph is None or self._closing or self._graph_rows >= self._count:
            return
        if self._builder is not None and self._builder.is_alive():
            return
        self._builder = threading.Thread(target=self._build, name="omniembed-hnsw", daemon=True)
        self._builder.start()

    def _build(self) -> None:
        """Insert the tail into the graph a batch at a time until it is empty or closing.

        Only the graph is locked while a batch goes in, so adds go on meanwhile; queries wait for
        the batch (``_BATCH`` bounds how long).
        """
        faiss = _faiss()
        try:
            while True:
                with self._lock:
                    if self._closing or self._graph_rows >= self._count:
                        self._builder = None
                        self._idle.notify_all()
                        return
                    source = self._graph_file
                if source is not None:  # a memory-mapped graph cannot grow: load a private copy
                    private = faiss.read_index(str(source))
                    with self._graph_lock, self._lock:
                        if self._graph_file == source:
                            self._graph_file = None
                            self._set_graph(private)
                    continue
                with self._graph_lock:
                    self._insert_batch()
                time.sleep(0.0005)  # let waiting queries take the graph
        except Exception:  # the tail stays searched exactly; wait_indexed reports the lag
            logger.exception("the background HNSW build stopped")
            with self._lock:
                self._builder = None
                self._idle.notify_all()

    def _insert_batch(self) -> None:
        """Add the next tail rows to the graph (the caller holds ``_graph_lock``, not ``_lock``)."""
        with self._lock:
            start = self._graph_rows
            stop = min(self._count, start + _BATCH)
            codes = self._tail[start - self._tail_start : stop - self._tail_start].copy()
        decoded = self._low + (codes.astype(np.float32) + 0.5) * (self._width / 255.0)
        busy = time.monotonic() - self._last_add < _BUSY_S
        _faiss().omp_set_num_threads(1 if busy else _THREADS)  # this thread's setting only
        self.graph.add(decoded)
        with self._lock:
            self._refresh_view()
            self._graph_codes[start:stop] = codes  # the graph's codes are exactly the tail's
            self._graph_rows = stop
            self._live_bits = None
            self._changes += 1
            if self._graph_rows - self._tail_start > len(self._tail) // 2:
                left = self._tail[self._graph_rows - self._tail_start : self._count - self._tail_start]
                grown = np.zeros((max(2 * len(left), 1024), self.dims), dtype=np.uint8)
                grown[: len(left)] = left
                self._tail, self._tail_start = grown, self._graph_rows

    # -- persistence -----------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """What a saved index must match to be loaded."""
        return {
            "format": FORMAT,
            "dims": self.dims,
            "metric": self.metric,
            "m": self.config.m,
            "ef_construction": self.config.ef_construction,
            "codes": "sq8",
        }

    def save(self, prefix: Path | None = None, watermark: dict[str, int] | None = None) -> None:
        """Write the index under ``prefix`` atomically with ``watermark`` (manifest last).

        Below ``flat_threshold`` nothing is written (and an older save is removed): reopening rebuilds
        such a small index from the engine's rows. Without ``prefix`` the index's ``path`` is used.
        """
        prefix = prefix if prefix is not None else self.path
        if prefix is None:
            return
        watermark = dict(watermark or {})
        with self._graph_lock, self._lock:
            if self.graph is None:
                files.remove_files(prefix)
                files.manifest_path(prefix).unlink(missing_ok=True)
                return
            if self._saved_at == self._changes and self._saved_watermark == watermark:
                return
            manifest, _ = files.read_manifest(prefix)
            generation = max(self._generation, int((manifest or {}).get("generation", 0))) + 1
            entries = {"graph": self._save_graph(prefix, generation, manifest)}
            count, indexed = self._count, self._graph_rows
            entries["rows"] = files.write_bytes(
                files.data_path(prefix, generation, "rows"),
                [
                    _bytes(self._slots[:count]),
                    _bytes(self._errors[:count]),
                    _bytes(self._norms[:count]),
                    _bytes(self._dead[:count]),
                ],
            )
            tail = self._tail[indexed - self._tail_start : count - self._tail_start]
            entries["tail"] = files.write_bytes(
                files.data_path(prefix, generation, "tail"),
                [_bytes(tail)],
            )
            files.write_manifest(
                prefix,
                {
                    **self.fingerprint(),
                    "generation": generation,
                    "count": count,
                    "graph_rows": indexed,
                    "files": entries,
                    "watermark": watermark,
                },
            )
            self._generation, self._saved_at, self._saved_watermark = generation, self._changes, watermark

    def _save_graph(self, prefix: Path, generation: int, manifest: dict[str, Any] | None) -> dict[str, Any]:
        if self._graph_file is not None and manifest is not None:  # the mapped graph is unchanged
            entry = manifest["files"]["graph"]
            if entry.get("name") == self._graph_file.name:
                return dict(entry)
        path = files.data_path(prefix, generation, "graph")
        temp = path.with_name(path.name + ".tmp")
        _faiss().write_index(self.graph, str(temp))
        return files.finish_file(temp, path)

    @classmethod
    def load(
        cls,
        prefix: Path,
        dims: int,
        metric: Metric,
        config: IndexConfig,
        fetch: Fetch | None = None,
    ) -> tuple[VectorIndex, dict[str, int]] | None:
        """Open an index saved under ``prefix`` and its watermark; None (logged) if it cannot be trusted.

        The graph is memory-mapped; a missing, truncated, corrupt or mismatched save returns None
        so the caller rebuilds from its own rows. Without ``fetch`` the float32 rows are unknown, so
        none is needed only for an empty index.
        """
        index = cls(dims, metric, config, prefix, fetch)
        manifest, why = files.read_manifest(prefix)
        if manifest is None:
            logger.info("not loading the vector index: %s", why)
            return None
        if fetch is None and manifest.get("count"):
            raise ValueError("loading a saved vector index needs fetch, the source of its float32 rows")
        expected = index.fingerprint()
        found = {key: manifest.get(key) for key in expected}
        if found != expected:
            logger.warning("not loading the vector index %s: saved as %s, wanted %s", prefix, found, expected)
            return None
        watermark = manifest.get("watermark")
        if not isinstance(watermark, dict):
            logger.warning("not loading the vector index %s: no watermark", prefix)
            return None
        paths = {}
        for kind in ("graph", "rows", "tail"):
            entry = manifest["files"].get(kind)
            path, why = files.check_file(prefix.parent, entry) if isinstance(entry, dict) else (None, "")
            if path is None:
                logger.warning("not loading the vector index %s: %s", prefix, why or f"no {kind} file")
                return None
            paths[kind] = path
        try:
            loaded = index._open(manifest, paths)
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            logger.warning("not loading the vector index %s: %s", prefix, error)
            return None
        if not loaded:
            return None
        index._generation, index._saved_at = int(manifest["generation"]), index._changes
        index._saved_watermark = dict(watermark)
        return index, {str(key): int(value) for key, value in watermark.items()}

    def _open(self, manifest: dict[str, Any], paths: dict[str, Path]) -> bool:
        faiss = _faiss()
        count, indexed = int(manifest["count"]), int(manifest["graph_rows"])
        graph = faiss.read_index(str(paths["graph"]), faiss.IO_FLAG_MMAP_IFC)
        if graph.d != self.dims or graph.ntotal != indexed or not 0 <= indexed <= count:
            logger.warning(
                "not loading the vector index %s: graph holds %d of %d", self.path, graph.ntotal, count
            )
            return False
        rows = np.fromfile(paths["rows"], dtype=np.uint8)
        if len(rows) != count * 17 or paths["tail"].stat().st_size != (count - indexed) * self.dims:
            logger.warning("not loading the vector index %s: sizes disagree with the manifest", self.path)
            return False
        size = max(count, 64)
        self._slots = _grown(rows[: 8 * count].view(np.int64), size)
        self._errors = _grown(rows[8 * count : 12 * count].view(np.float32), size)
        self._norms = _grown(rows[12 * count : 16 * count].view(np.float32), size)
        self._dead = _grown(rows[16 * count :].view(bool), size)
        self._count, self._alive = count, int(count - self._dead[:count].sum())
        held = self._slots[:count]
        self._sorted = bool((np.diff(held) >= 0).all())
        self._matrix = None
        self._set_graph(graph)
        self._graph_file = paths["graph"]
        tail = np.fromfile(paths["tail"], dtype=np.uint8).reshape(-1, self.dims)
        self._tail = np.zeros((max(2 * len(tail), 1024), self.dims), dtype=np.uint8)
        self._tail[: len(tail)] = tail
        self._tail_start = indexed
        self._start_builder()
        return True


def _bytes(array: np.ndarray) -> memoryview:
    """The bytes of an array, without a copy when it is contiguous."""
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))  # type: ignore[arg-type]


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """A copy of ``array`` with room for ``size`` rows (new rows zeroed)."""
    out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    count = min(len(array), size)
    out[:count] = array[:count]
    return out


def _dots(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` on the calling thread. BLAS would spread large products over threads that
    then spin for a while after each call, taking the core the other side of a hybrid query (or a
    concurrent query) runs on; one thread is as fast as two at a query's sizes (BENCHMARKS.md)."""
    dots: np.ndarray = np.einsum("ij,j->i", matrix, vector)
    return dots


def _faiss() -> Any:
    return import_extra(
        "faiss", "collections over 'flat_threshold' objects use HNSW: pip install 'omniembed[store]'"
    )
