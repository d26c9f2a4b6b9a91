"""The embedded backend: one folder, SQLite (WAL) for objects and vectors, indexes beside it.

SQLite is the only source of truth. Objects and their vectors commit in one transaction. Each object
row has a ``seq`` that is never reused (an update writes a new row), which is the slot the indexes
use, and every deletion is logged with an increasing id. The keyword and vector indexes are derived
data: saved now and then with a watermark (the last ``seq`` and deletion id they hold), loaded on open
and caught up with what SQLite committed after the watermark, or rebuilt whole when their files are
missing, stale or corrupt. A crash at any moment loses nothing that was acknowledged, and opening
costs what changed since the last save, not the size of the collection.

Scalar properties get SQLite indexes on their JSON values, so filters on them read only the matches.
Filters on a path inside an ``object`` property (``metadata.author``) have no index and scan the
collection's rows (``json_extract`` on the nested path).
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omniembed.errors import CollectionExistsError, CollectionNotFoundError, DatabaseLockedError
from omniembed.sparse import SparseVector
from omniembed.store.backend import HALF_PRECISION, Match, StoredObject
from omniembed.store.config import CollectionConfig, VectorConfig
from omniembed.store.engines.embedded import matrices as matrix_codec
from omniembed.store.engines.embedded.sparse_index import SparseIndex
from omniembed.store.engines.embedded.vector_index import VectorIndex
from omniembed.store.engines.keyword import KeywordIndex
from omniembed.store.filters import Filter, index_key, to_sql
from omniembed.store.sparse_vectors import arrays_of, as_sparse, from_bytes, to_bytes, wrong_kind

if TYPE_CHECKING:  # imported when a collection has one
    from omniembed.store.engines.embedded.multi_vector_index import MultiVectorIndex

logger = logging.getLogger(__name__)
FORMAT_VERSION = 3
"""Version 2 added the deletion log and the property indexes, version 3 compact multi-vector matrices
(``VectorConfig.storage``; older collections keep float32); older folders migrate on open."""
SAVE_AFTER = 50_000
"""Indexes are saved once this many changes, or a quarter of the collection, came since the last save."""
VECTORS_TABLE = (
    "CREATE TABLE {name} "
    "(seq INTEGER NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (seq, name))"
)
"""Vectors sit in a rowid table: its pages hold a 1.5 KB vector inline, where a WITHOUT ROWID table's
overflow pages took about 5 KB each (format 1)."""
CACHE_KIB = 65_536
"""SQLite's page cache (the default is 2 MB): the upper levels of the uuid and property indexes stay in
memory through a large import, instead of being read again for every insert."""
CHECKPOINT_PAGES = 16_384
"""WAL pages (128 MB) before SQLite copies them into the database: an index page that many batches
change is copied once per checkpoint, not once per batch (the default is 1,000 pages)."""
FILTER_INDEXED = ("int", "number", "bool", "date", "text", "uuid")
"""Property types whose values get a SQLite index for filters (arrays and media do not)."""


class _Tables:
    """In-memory indexes and table names of one collection."""

    def __init__(
        self, ident: int, config: CollectionConfig, folder: Path | None, conn: sqlite3.Connection
    ) -> None:
        self.ident, self.config, self.folder, self.conn = ident, config, folder, conn
        self.objects, self.vectors, self.deleted = f"objects_{ident}", f"vectors_{ident}", f"deleted_{ident}"
        self.keyword = KeywordIndex(config.schema.text_properties, config.bm25, config.schema.tokenization)
        self.last_seq = 0  # the highest seq ever written (seqs are never reused)
        self.last_deleted = 0  # the highest id in the deletion log
        self.unsaved = 0  # changes since the indexes were last saved
        self.indexes: dict[str, VectorIndex | MultiVectorIndex | SparseIndex] = {}
        for name, vector in config.vectors.items():
            if vector.dims is not None or vector.sparse:
                self.make_index(name, vector)

    def make_index(self, name: str, vector: VectorConfig) -> VectorIndex | MultiVectorIndex | SparseIndex:
        if vector.sparse:  # its size is the vocabulary's, which may stay unknown
            self.indexes[name] = SparseIndex(vector.dims)
            return self.indexes[name]
        assert vector.dims is not None
        if vector.multi_vector:
            from omniembed.store.engines.embedded.multi_vector_index import MultiVectorIndex

            self.indexes[name] = MultiVectorIndex(
                vector.dims, self.matrix_fetcher(name), self.vector_path(name)
            )
            return self.indexes[name]
        path = self.vector_path(name)
        self.indexes[name] = VectorIndex(
            vector.dims, vector.metric, self.config.index, path, self.fetcher(name)
        )
        return self.indexes[name]

    def vector_path(self, name: str) -> Path | None:
        """Where a named vector's index is saved (``None`` in memory)."""
        return self.folder / f"{self.ident}.{name}" if self.folder is not None else None

    def fetcher(self, name: str) -> Callable[[np.ndarray], np.ndarray]:
        """Read the stored float32 vectors of some slots, in their order (for rescoring)."""
        dims = self.config.vectors[name].dims
        assert dims is not None

        def fetch(slots: np.ndarray) -> np.ndarray:
            where = {seq: i for i, seq in enumerate(slots.tolist())}
            out = np.full((len(slots), dims), np.nan, dtype=np.float32)
            for chunk in _chunks(list(where)):
                marks = ",".join("?" * len(chunk))
                query = f"SELECT seq, data FROM {self.vectors} WHERE name = ? AND seq IN ({marks})"
                for seq, data in self.conn.execute(query, [name, *chunk]):
                    out[where[seq]] = np.frombuffer(data, dtype=np.float32)
            return out

        return fetch

    def matrix_fetcher(self, name: str) -> Callable[[np.ndarray], list[np.ndarray]]:
        """Read the stored (tokens x dims) matrices of some slots, in their order (for exact MaxSim).

        A slot without a row means the index and SQLite disagree: that raises rather than score less.
        """
        dims, storage = self.config.vectors[name].dims, self.config.vectors[name].storage
        assert dims is not None

        def fetch(slots: np.ndarray) -> list[np.ndarray]:
            found: dict[int, np.ndarray] = {}
            for chunk in _chunks(slots.tolist()):
                marks = ",".join("?" * len(chunk))
                query = f"SELECT seq, data FROM {self.vectors} WHERE name = ? AND seq IN ({marks})"
                for seq, data in self.conn.execute(query, [name, *chunk]):
                    found[seq] = matrix_codec.decode(data, storage, dims)
            missing = [seq for seq in slots.tolist() if seq not in found]
            if missing:
                raise RuntimeError(
                    f"{self.vectors} holds no {name!r} matrix for seqs {missing[:10]}, which its index "
                    "holds; reopen the database to rebuild the index"
                )
            return [found[seq] for seq in slots.tolist()]

        return fetch


class EmbeddedBackend:
    """Collections in one SQLite file (or in memory for ``":memory:"``)."""

    def __init__(self, path: str | Path) -> None:
        self.lock = threading.RLock()
        self.folder: Path | None = None
        self._lock_file: Any = None
        if str(path) == ":memory:":
            target = ":memory:"
        else:
            self.folder = Path(path)
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_file = _lock_folder(self.folder)
            target = str(self.folder / "omniembed.sqlite")
        self.conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self.tables: dict[str, _Tables] = {}
        try:
            self.conn.execute("PRAGMA page_size = 8192")  # a new file only: five vectors of 384 dims a page
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            self._init_schema()
            for ident, text in self.conn.execute("SELECT id, config FROM collections ORDER BY id").fetchall():
                config = CollectionConfig.from_json(json.loads(text))
                self.tables[config.name] = self._load(ident, config)
        except BaseException:
            self._release()
            raise
        self.embedding_cache = SQLiteEmbeddingCache(self.conn, self.lock)

    def _init_schema(self) -> None:
        with transaction(self.conn):
            self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS collections "
                "(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, config TEXT NOT NULL)"
            )
            self.conn.execute("CREATE TABLE IF NOT EXISTS embedding_cache (key TEXT PRIMARY KEY, data BLOB)")
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
        (version,) = self.conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if int(version) > FORMAT_VERSION:
            raise ValueError(
                f"database format {version} is newer than this omniembed reads ({FORMAT_VERSION}); "
                "upgrade omniembed to open it"
            )
        if int(version) < FORMAT_VERSION:
            self._migrate(int(version))

    def _migrate(self, version: int) -> None:
        """Bring a folder written by an older release to this format (the deletion log, property indexes)."""
        logger.info("migrating database format %d to %d", version, FORMAT_VERSION)
        with transaction(self.conn):
            for ident, text in self.conn.execute("SELECT id, config FROM collections").fetchall():
                self._ensure_tables(ident, CollectionConfig.from_json(json.loads(text)))
                self._rebuild_vectors_table(f"vectors_{ident}")
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION),))

    def _rebuild_vectors_table(self, table: str) -> None:
        """Copy a format-1 vectors table (WITHOUT ROWID) into today's layout (inside a transaction)."""
        (sql,) = self.conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        if "WITHOUT ROWID" not in sql.upper():
            return
        self.conn.execute(VECTORS_TABLE.format(name=f"{table}_new"))
        self.conn.execute(f"INSERT INTO {table}_new SELECT seq, name, data FROM {table} ORDER BY seq, name")
        self.conn.execute(f"DROP TABLE {table}")
        self.conn.execute(f"ALTER TABLE {table}_new RENAME TO {table}")

    def _ensure_tables(self, ident: int, config: CollectionConfig) -> None:
        """Create what a collection's tables need beside the objects and vectors (idempotent)."""
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS deleted_{ident} "
            "(id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL)"
        )
        for name in filter_indexed(config):
            key = index_key(f"json_extract(properties, '$.{name}')", config.schema.properties[name])
            self.conn.execute(f"CREATE INDEX IF NOT EXISTS objects_{ident}_{name} ON objects_{ident} ({key})")

    def _load(self, ident: int, config: CollectionConfig) -> _Tables:
        """Open a collection's indexes: load what was saved and catch it up, or rebuild it from SQLite."""
        tables = _Tables(ident, config, self.folder, self.conn)
        (last_seq,) = self.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (tables.objects,)
        ).fetchone() or (0,)
        (last_deleted,) = self.conn.execute(f"SELECT MAX(id) FROM {tables.deleted}").fetchone()
        tables.last_seq, tables.last_deleted = int(last_seq), int(last_deleted or 0)
        behind = self._catch_up_keyword(tables, self._load_keyword(tables))
        for name, index in list(tables.indexes.items()):
            if isinstance(index, SparseIndex):
                behind += self._load_sparse(tables, name)
            elif not isinstance(index, VectorIndex):
                behind += self._load_multi_vector(tables, name)
            else:
                behind += self._load_vectors(tables, name)
        tables.unsaved = behind
        return tables

    def _load_multi_vector(self, tables: _Tables, name: str) -> int:
        """Load a multi-vector index and catch it up, or rebuild it; return the changes read."""
        from omniembed.store.engines.embedded.multi_vector_index import MultiVectorIndex

        dims, path = tables.config.vectors[name].dims, tables.vector_path(name)
        storage = tables.config.vectors[name].storage
        assert dims is not None
        watermark = {"seq": 0, "deleted": 0}
        if path is not None:
            found = MultiVectorIndex.load(path, dims, tables.matrix_fetcher(name))
            if found is not None:
                tables.indexes[name], watermark = found[0], dict(found[1])
        index = tables.indexes[name]
        assert isinstance(index, MultiVectorIndex)

        def matrices(blobs: list[bytes]) -> list[np.ndarray]:
            return [index.prepare_one(matrix_codec.decode(blob, storage, dims)) for blob in blobs]

        return self._catch_up(tables, name, "multi-vector", watermark, 1_000, matrices)

    def _load_sparse(self, tables: _Tables, name: str) -> int:
        """Load a sparse vector's saved index and catch it up, or rebuild it; return the changes read."""
        path = tables.vector_path(name)
        watermark = {"seq": 0, "deleted": 0}
        if path is not None:
            found = SparseIndex.load(path, tables.config.vectors[name].dims)
            if found is not None:
                tables.indexes[name], watermark = found[0], dict(found[1])

        def pairs(blobs: list[bytes]) -> list[tuple[np.ndarray, np.ndarray]]:
            return [arrays_of(blob) for blob in blobs]

        return self._catch_up(tables, name, "sparse", watermark, 50_000, pairs)

    def _load_vectors(self, tables: _Tables, name: str) -> int:
        """Load a named vector's saved index and catch it up, or rebuild it; return the changes read."""
        vector, path = tables.config.vectors[name], tables.vector_path(name)
        dims = vector.dims
        assert dims is not None
        watermark = {"seq": 0, "deleted": 0}
        if path is not None:
            found = VectorIndex.load(path, dims, vector.metric, tables.config.index, tables.fetcher(name))
            if found is not None:
                tables.indexes[name], watermark = found[0], dict(found[1])

        def stacked(blobs: list[bytes]) -> np.ndarray:
            return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dims)

        return self._catch_up(tables, name, "vector", watermark, 50_000, stacked)

    def _catch_up(
        self,
        tables: _Tables,
        name: str,
        kind: str,
        watermark: dict[str, int],
        chunk: int,
        decode: Callable[[list[bytes]], Any],
    ) -> int:
        """Add to the index of vector ``name`` the rows past ``watermark`` (``chunk`` at a time, each
        batch of blobs turned into what its ``add`` takes by ``decode``) and remove what was deleted
        since; return the changes read."""
        index = tables.indexes[name]
        rows = self.conn.execute(
            f"SELECT seq, data FROM {tables.vectors} WHERE name = ? AND seq > ? ORDER BY seq",
            (name, watermark["seq"]),
        )
        added = 0
        while part := rows.fetchmany(chunk):
            slots, blobs = _unzip(part)
            index.add(np.array(slots, dtype=np.int64), decode(blobs))
            added += len(slots)
        gone = self._deleted_since(tables, watermark)
        index.remove(gone)
        if added or gone:
            logger.info(
                "%s index %s.%s: %d added, %d removed", kind, tables.config.name, name, added, len(gone)
            )
        return added + len(gone)

    def _deleted_since(self, tables: _Tables, watermark: dict[str, int]) -> list[int]:
        """Seqs an index saved at ``watermark`` holds but SQLite has deleted since."""
        rows = self.conn.execute(
            f"SELECT seq FROM {tables.deleted} WHERE id > ? AND seq <= ?",
            (watermark["deleted"], watermark["seq"]),
        )
        return [seq for (seq,) in rows]

    def _load_keyword(self, tables: _Tables) -> dict[str, int]:
        """Load the saved keyword index into ``tables``; return its watermark (zeros when rebuilt)."""
        if self.folder is not None:
            schema = tables.config.schema
            found = KeywordIndex.load(
                self._keyword_path(tables), schema.text_properties, tables.config.bm25, schema.tokenization
            )
            if found is not None:
                tables.keyword, watermark = found
                return dict(watermark)
        return {"seq": 0, "deleted": 0}

    def _catch_up_keyword(self, tables: _Tables, watermark: dict[str, int]) -> int:
        """Index what SQLite holds past the watermark; return how many changes that was."""
        rows = self.conn.execute(
            f"SELECT seq, properties FROM {tables.objects} WHERE seq > ? ORDER BY seq", (watermark["seq"],)
        )
        added = 0
        while chunk := rows.fetchmany(10_000):
            tables.keyword.add_many([seq for seq, _ in chunk], [json.loads(text) for _, text in chunk])
            added += len(chunk)
        gone = self._deleted_since(tables, watermark)
        for seq in gone:
            tables.keyword.remove(seq)
        if added or gone:
            logger.info(
                "keyword index of %s: %d objects added, %d removed", tables.config.name, added, len(gone)
            )
        return added + len(gone)

    def _keyword_path(self, tables: _Tables) -> Path:
        assert self.folder is not None
        return self.folder / f"{tables.ident}.keyword"

    def _save(self, tables: _Tables) -> None:
        """Save the indexes of one collection with the watermark of what they hold."""
        if self.folder is None:
            return
        watermark = {"seq": tables.last_seq, "deleted": tables.last_deleted}
        tables.keyword.save(self._keyword_path(tables), watermark)
        for name, index in tables.indexes.items():
            index.save(tables.vector_path(name), watermark)
        tables.unsaved = 0

    def _changed(self, tables: _Tables, count: int) -> None:
        """Count changes; save the indexes once enough came that a reopen would feel them."""
        tables.unsaved += count
        if tables.unsaved >= max(SAVE_AFTER, tables.keyword.count // 4):
            self._save(tables)

    def _tables(self, name: str) -> _Tables:
        try:
            return self.tables[name]
        except KeyError:
            raise CollectionNotFoundError(
                f"no collection named {name!r}; the database has {sorted(self.tables)}"
            ) from None

    def create(self, config: CollectionConfig) -> None:
        """Create the tables of a new collection."""
        with self.lock:
            if config.name in self.tables:
                raise CollectionExistsError(f"collection {config.name!r} exists; get it or delete it first")
            with transaction(self.conn):
                cursor = self.conn.execute(
                    "INSERT INTO collections (name, config) VALUES (?, ?)",
                    (config.name, json.dumps(config.to_json())),
                )
                ident = int(cursor.lastrowid or 0)
                self.conn.execute(
                    f"CREATE TABLE objects_{ident} (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "uuid TEXT UNIQUE NOT NULL, properties TEXT NOT NULL)"
                )
                self.conn.execute(VECTORS_TABLE.format(name=f"vectors_{ident}"))
                self._ensure_tables(ident, config)
            self.tables[config.name] = _Tables(ident, config, self.folder, self.conn)

    def drop(self, name: str) -> None:
        """Delete a collection, its tables and its index files."""
        with self.lock:
            tables = self._tables(name)
            with transaction(self.conn):
                self.conn.execute(f"DROP TABLE {tables.objects}")
                self.conn.execute(f"DROP TABLE {tables.vectors}")
                self.conn.execute(f"DROP TABLE {tables.deleted}")
                self.conn.execute("DELETE FROM collections WHERE id = ?", (tables.ident,))
            for index in tables.indexes.values():
                if isinstance(index, VectorIndex):
                    index.close()
            if self.folder is not None:
                for path in self.folder.glob(f"{tables.ident}.*"):
                    path.unlink(missing_ok=True)
            del self.tables[name]

    def configs(self) -> dict[str, CollectionConfig]:
        """Return every collection's configuration."""
        with self.lock:
            return {name: tables.config for name, tables in self.tables.items()}

    def insert(self, name: str, objects: Sequence[StoredObject]) -> dict[int, str]:
        """Store objects in one transaction; a duplicate uuid or a bad vector refuses only that object."""
        with self.lock:
            tables = self._tables(name)
            errors: dict[int, str] = {}
            prepared = self._prepare(tables, objects, errors)
            fresh = self._first_of_each_uuid(prepared, set(), errors)
            with transaction(self.conn):
                self.conn.execute("SAVEPOINT batch")
                try:
                    seqs = self._write(tables, [obj for _, obj in fresh])
                except sqlite3.IntegrityError:  # a uuid the collection holds: find which, write the rest
                    self.conn.execute("ROLLBACK TO batch")
                    taken = self._existing(tables, [obj.uuid for _, obj in fresh])
                    fresh = self._first_of_each_uuid(fresh, taken, errors)
                    seqs = self._write(tables, [obj for _, obj in fresh])
                self.conn.execute("RELEASE batch")
            self._committed(tables, seqs, deleted=0)
            self._index(tables, zip(seqs, [obj for _, obj in fresh], strict=True))
            self._changed(tables, len(fresh))
            return errors

    @staticmethod
    def _first_of_each_uuid(
        prepared: list[tuple[int, StoredObject]], taken: set[str], errors: dict[int, str]
    ) -> list[tuple[int, StoredObject]]:
        """The objects whose uuid is neither in ``taken`` nor earlier in the batch; the rest get an error."""
        seen = set(taken)
        fresh = []
        for position, obj in prepared:
            if obj.uuid in seen:
                errors[position] = f"an object with uuid {obj.uuid} exists; update or replace it instead"
            else:
                seen.add(obj.uuid)
                fresh.append((position, obj))
        return fresh

    def replace(self, name: str, obj: StoredObject) -> None:
        """Overwrite an object: the old row goes, a new row (new seq) comes, in one transaction."""
        errors = self.replace_many(name, [obj])
        if errors:
            raise ValueError(errors[0])

    def replace_many(self, name: str, objects: Sequence[StoredObject]) -> dict[int, str]:
        """Overwrite objects in one transaction (old rows go, new rows with new seqs come); return
        ``{index: message}`` for those refused."""
        with self.lock:
            tables = self._tables(name)
            errors: dict[int, str] = {}
            ready = [
                obj
                for _, obj in self._first_of_each_uuid(self._prepare(tables, objects, errors), set(), errors)
            ]
            if not ready:
                return errors
            with transaction(self.conn):
                old = self._delete_rows(tables, [obj.uuid for obj in ready])
                seqs = self._write(tables, ready)
            self._committed(tables, seqs, deleted=len(old))
            self._unindex(tables, old)
            self._index(tables, zip(seqs, ready, strict=True))
            self._changed(tables, len(ready) + len(old))
            return errors

    def delete(self, name: str, uuids: Sequence[str]) -> int:
        """Delete objects by uuid."""
        with self.lock:
            tables = self._tables(name)
            with transaction(self.conn):
                seqs = self._delete_rows(tables, uuids)
            self._committed(tables, [], deleted=len(seqs))
            self._unindex(tables, seqs)
            self._changed(tables, len(seqs))
            return len(seqs)

    def get(self, name: str, uuids: Sequence[str], *, with_vectors: bool = False) -> list[StoredObject]:
        """Return objects by uuid, in the given order."""
        with self.lock:
            tables = self._tables(name)
            found: dict[str, StoredObject] = {}
            seqs: dict[int, StoredObject] = {}
            for chunk in _chunks(list(uuids)):
                marks = ",".join("?" * len(chunk))
                query = f"SELECT seq, uuid, properties FROM {tables.objects} WHERE uuid IN ({marks})"
                for seq, uuid, properties in self.conn.execute(query, chunk):
                    found[uuid] = seqs[seq] = StoredObject(uuid, json.loads(properties))
            if with_vectors:
                for chunk in _chunks(list(seqs)):
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT seq, name, data FROM {tables.vectors} WHERE seq IN ({marks})"
                    for seq, vector, data in self.conn.execute(query, chunk):
                        seqs[seq].vectors[vector] = _decoded(tables.config.vectors.get(vector), data)
            return [found[uuid] for uuid in uuids if uuid in found]

    def find(self, name: str, where: Filter | None, limit: int | None = None, offset: int = 0) -> list[str]:
        """Return uuids matching ``where`` in insertion order."""
        with self.lock:
            tables = self._tables(name)
            clause, params = to_sql(where, tables.config.schema) if where is not None else ("1", [])
            query = f"SELECT uuid FROM {tables.objects} WHERE {clause} ORDER BY seq LIMIT ? OFFSET ?"
            rows = self.conn.execute(query, [*params, -1 if limit is None else limit, offset])
            return [uuid for (uuid,) in rows]

    def count(self, name: str, where: Filter | None = None) -> int:
        """Return the number of objects matching ``where``."""
        with self.lock:
            tables = self._tables(name)
            if where is None:
                return tables.keyword.count
            clause, params = to_sql(where, tables.config.schema)
            (total,) = self.conn.execute(
                f"SELECT COUNT(*) FROM {tables.objects} WHERE {clause}", params
            ).fetchone()
            return int(total)

    def vector_search(
        self, name: str, vector: str, query: np.ndarray | SparseVector, limit: int, where: Filter | None
    ) -> list[Match]:
        """Nearest objects by the named vector, exact when filtered to few objects."""
        with self.lock:
            tables = self._tables(name)
            return self._vector_search(tables, vector, query, limit, self._allowed(tables, where))

    def keyword_search(
        self, name: str, query: str, boosts: dict[str, float], limit: int, where: Filter | None
    ) -> list[Match]:
        """Best BM25 matches over the boosted text properties.

        Scoring holds only the keyword index's own lock, so writers and other searches go on meanwhile.
        """
        with self.lock:
            tables = self._keyword_tables(name, boosts)
            allowed = self._allowed(tables, where)
        slots, scores = tables.keyword.search(query, boosts, limit, allowed)
        with self.lock:
            self._same_collection(name, tables)
            return self._hits(tables, slots, scores, None)

    def hybrid_search(
        self,
        name: str,
        vectors: Mapping[str, np.ndarray | SparseVector],
        text: str,
        boosts: dict[str, float],
        limit: int,
        where: Filter | None,
    ) -> tuple[dict[str, list[Match]], list[Match]]:
        """:meth:`vector_search` for each named vector and :meth:`keyword_search` at once: BM25 scores
        on this thread while side threads search the vectors (numpy, faiss and SQLite release the
        GIL), the filter read once. Dense and multi-vector indexes are searched under the engine
        lock, one after another; sparse indexes, like the keyword index, under their own lock only,
        beside them."""
        with self.lock:
            tables = self._keyword_tables(name, boosts)
            allowed = self._allowed(tables, where)
            sparse = {v: q for v, q in vectors.items() if isinstance(tables.indexes.get(v), SparseIndex)}
            for vector, query in sparse.items():
                mismatch = wrong_kind(vector, True, query)
                if mismatch is not None:
                    raise mismatch
        side = _side_thread()
        locked = {v: q for v, q in vectors.items() if v not in sparse}
        nearest = side.submit(self._locked_vector_searches, tables, locked, limit, allowed)
        by_token = {
            v: side.submit(tables.indexes[v].search, q, limit, allowed)  # type: ignore[arg-type]
            for v, q in sparse.items()
        }
        try:
            slots, scores = tables.keyword.search(text, boosts, limit, allowed)
        finally:
            vector_hits = nearest.result()
            found = {v: job.result() for v, job in by_token.items()}
        with self.lock:
            self._same_collection(name, tables)
            for vector, (picked, distances) in found.items():
                vector_hits[vector] = self._vector_hits(tables, vector, picked, distances)
            return {v: vector_hits[v] for v in vectors}, self._hits(tables, slots, scores, None)

    def _same_collection(self, name: str, tables: _Tables) -> None:
        """Refuse, as not found, a collection deleted (or made anew) while its index was searched."""
        if self._tables(name) is not tables:
            raise CollectionNotFoundError(f"collection {name!r} was deleted during the search")

    def _locked_vector_searches(
        self,
        tables: _Tables,
        vectors: Mapping[str, np.ndarray | SparseVector],
        limit: int,
        allowed: np.ndarray | None,
    ) -> dict[str, list[Match]]:
        with self.lock:
            return {
                vector: self._vector_search(tables, vector, query, limit, allowed)
                for vector, query in vectors.items()
            }

    def _vector_search(
        self,
        tables: _Tables,
        vector: str,
        query: np.ndarray | SparseVector,
        limit: int,
        allowed: np.ndarray | None,
    ) -> list[Match]:
        """Nearest objects among ``allowed`` slots (all when ``None``); the caller holds the lock."""
        index = tables.indexes.get(vector)
        if index is None:
            if vector not in tables.config.vectors:
                known = sorted(tables.config.vectors)
                raise ValueError(
                    f"collection {tables.config.name!r} has no vector {vector!r}; it has {known}"
                )
            return []
        mismatch = wrong_kind(vector, isinstance(index, SparseIndex), query)
        if mismatch is not None:
            raise mismatch
        if not isinstance(index, SparseIndex):
            query = np.asarray(query, dtype=np.float32)
        slots, distances = index.search(query, limit, allowed)  # type: ignore[arg-type]
        return self._vector_hits(tables, vector, slots, distances)

    def _vector_hits(
        self, tables: _Tables, vector: str, slots: np.ndarray, distances: np.ndarray
    ) -> list[Match]:
        """Matches for a vector index's slots and distances, scored by the vector's metric."""
        metric = tables.config.vectors[vector].metric
        scores = 1.0 - distances if metric == "cosine" else -distances  # dot, l2 and maxsim negate
        return self._hits(tables, slots, scores, distances)

    def _keyword_tables(self, name: str, boosts: dict[str, float]) -> _Tables:
        """The collection's tables, once the boosted properties are known to be indexed text."""
        tables = self._tables(name)
        unknown = sorted(set(boosts) - set(tables.keyword.fields))
        if unknown:
            raise ValueError(
                f"BM25 searches text properties; {unknown} are not among {sorted(tables.keyword.fields)}"
            )
        return tables

    def close(self) -> None:
        """Save the indexes, close SQLite and release the folder lock."""
        with self.lock:
            for tables in self.tables.values():
                for index in tables.indexes.values():
                    if isinstance(index, VectorIndex):
                        index.close()  # stop the graph builder; what it has not inserted is saved as tail
                self._save(tables)
            self._release()

    def wait_indexed(self, timeout: float | None = None) -> bool:
        """Wait until every vector index has built its graph over all it holds; return whether all did."""
        with self.lock:
            indexes = [
                i for t in self.tables.values() for i in t.indexes.values() if isinstance(i, VectorIndex)
            ]
        return all(index.wait_indexed(timeout) for index in indexes)

    def _release(self) -> None:
        """Close SQLite and give up the folder lock."""
        self.conn.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _prepare(
        self, tables: _Tables, objects: Sequence[StoredObject], errors: dict[int, str]
    ) -> list[tuple[int, StoredObject]]:
        """Check and normalise each object's vectors, a whole batch per named vector where it can."""
        checked = self._prepare_batched(tables, objects)
        good = []
        for position, obj in enumerate(objects):
            try:
                vectors = {
                    name: checked[name][position] if name in checked else self._vector(tables, name, vector)
                    for name, vector in obj.vectors.items()
                }
            except (ValueError, TypeError) as error:
                errors[position] = str(error)
                continue
            good.append((position, StoredObject(obj.uuid, obj.properties, vectors)))
        return good

    def _prepare_batched(
        self, tables: _Tables, objects: Sequence[StoredObject]
    ) -> dict[str, list[np.ndarray]]:
        """Vectors prepared in one call per named vector, when every object has it and all are fine."""
        checked: dict[str, list[np.ndarray]] = {}
        for name, index in tables.indexes.items():
            if not isinstance(index, VectorIndex) or not all(name in obj.vectors for obj in objects):
                continue
            try:
                stacked = np.stack([np.asarray(obj.vectors[name], dtype=np.float32) for obj in objects])
                checked[name] = list(index.prepare(stacked))
            except ValueError:  # one is wrong: each is checked alone, so its error names it
                continue
        return checked

    def _vector(self, tables: _Tables, name: str, vector: Any) -> Any:
        config = tables.config.vectors.get(name)
        if config is None:
            raise ValueError(
                f"vector {name!r} is not one of the collection's vectors {sorted(tables.config.vectors)}"
            )
        mismatch = wrong_kind(name, config.sparse, vector)
        if mismatch is not None:
            raise mismatch
        index = tables.indexes.get(name)
        if index is None:  # a self-provided vector of unknown size: the first one fixes it
            dims = int(np.asarray(vector).shape[-1])
            vectors = dict(tables.config.vectors, **{name: replace(config, dims=dims)})
            tables.config = replace(tables.config, vectors=vectors)
            with transaction(self.conn):
                self.conn.execute(
                    "UPDATE collections SET config = ? WHERE id = ?",
                    (json.dumps(tables.config.to_json()), tables.ident),
                )
            index = tables.make_index(name, tables.config.vectors[name])
        if isinstance(index, SparseIndex):
            return as_sparse(vector, index.vocab_size, f"vector {name!r}")
        try:
            prepared = index.prepare_one(np.asarray(vector))
        except ValueError as error:
            raise ValueError(f"vector {name!r}: {error}") from None
        return prepared

    def _committed(self, tables: _Tables, seqs: list[int], deleted: int) -> None:
        """Move the marks of what SQLite holds past a committed transaction (never past a rolled-back one)."""
        if seqs:
            tables.last_seq = seqs[-1]
        tables.last_deleted += deleted  # one log row per deleted object, ids counting up from the last

    def _existing(self, tables: _Tables, uuids: list[str]) -> set[str]:
        """The uuids among ``uuids`` that the collection holds already."""
        found: set[str] = set()
        for chunk in _chunks(uuids):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(f"SELECT uuid FROM {tables.objects} WHERE uuid IN ({marks})", chunk)
            found.update(uuid for (uuid,) in rows)
        return found

    def _write(self, tables: _Tables, objects: Sequence[StoredObject]) -> list[int]:
        """Insert rows for new objects (inside the caller's transaction); return their seqs."""
        first = tables.last_seq + 1
        seqs = list(range(first, first + len(objects)))
        self.conn.executemany(
            f"INSERT INTO {tables.objects} (seq, uuid, properties) VALUES (?, ?, ?)",
            [(seq, obj.uuid, json.dumps(obj.properties)) for seq, obj in zip(seqs, objects, strict=True)],
        )
        self.conn.executemany(
            f"INSERT INTO {tables.vectors} VALUES (?, ?, ?)",
            [
                (seq, name, _encoded(tables.config.vectors[name], vector))
                for seq, obj in zip(seqs, objects, strict=True)
                for name, vector in obj.vectors.items()
            ],
        )
        return seqs

    def _delete_rows(self, tables: _Tables, uuids: Sequence[str]) -> list[int]:
        """Delete objects' rows and log their seqs (inside the caller's transaction)."""
        seqs: list[int] = []
        for chunk in _chunks(list(uuids)):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"DELETE FROM {tables.objects} WHERE uuid IN ({marks}) RETURNING seq", chunk
            )
            seqs.extend(seq for (seq,) in rows.fetchall())
        for chunk in _chunks(seqs):
            marks = ",".join("?" * len(chunk))
            self.conn.execute(f"DELETE FROM {tables.vectors} WHERE seq IN ({marks})", chunk)
        self.conn.executemany(f"INSERT INTO {tables.deleted} (seq) VALUES (?)", [(seq,) for seq in seqs])
        return seqs

    def _index(self, tables: _Tables, added: Iterable[tuple[int, StoredObject]]) -> None:
        added = list(added)
        tables.keyword.add_many([seq for seq, _ in added], [obj.properties for _, obj in added])
        by_vector: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        for seq, obj in added:
            for name, vector in obj.vectors.items():
                slots, vectors = by_vector.setdefault(name, ([], []))
                slots.append(seq)
                vectors.append(vector)
        for name, (slots, vectors) in by_vector.items():
            index = tables.indexes[name]
            stacked = np.stack(vectors) if isinstance(index, VectorIndex) else vectors
            index.add(np.array(slots, dtype=np.int64), stacked)  # type: ignore[arg-type]

    def _unindex(self, tables: _Tables, seqs: list[int]) -> None:
        for seq in seqs:
            tables.keyword.remove(seq)
        for index in tables.indexes.values():
            index.remove(seqs)

    def _allowed(self, tables: _Tables, where: Filter | None) -> np.ndarray | None:
        if where is None:
            return None
        clause, params = to_sql(where, tables.config.schema)
        rows = self.conn.execute(f"SELECT seq FROM {tables.objects} WHERE {clause}", params)
        return np.array([seq for (seq,) in rows], dtype=np.int64)

    def _hits(
        self, tables: _Tables, slots: np.ndarray, scores: np.ndarray, distances: np.ndarray | None
    ) -> list[Match]:
        seqs = slots.tolist()
        uuids: dict[int, str] = {}
        for chunk in _chunks(seqs):
            marks = ",".join("?" * len(chunk))
            uuids.update(
                self.conn.execute(f"SELECT seq, uuid FROM {tables.objects} WHERE seq IN ({marks})", chunk)
            )
        return [
            Match(uuids[seq], float(scores[i]), None if distances is None else float(distances[i]))
            for i, seq in enumerate(seqs)
            if seq in uuids
        ]


class SQLiteEmbeddingCache:
    """Embeddings already computed, keyed by model, prompt and content hash, in the database file."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self.conn, self.lock = conn, lock

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the cached vectors among ``keys``."""
        found: dict[str, np.ndarray] = {}
        with self.lock:
            for chunk in _chunks(list(keys)):
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(
                    f"SELECT key, data FROM embedding_cache WHERE key IN ({marks})", chunk
                )
                found.update((key, _cached(key, data)) for key, data in rows)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Remember vectors by key."""
        with self.lock, transaction(self.conn):
            self.conn.executemany(
                "INSERT OR REPLACE INTO embedding_cache VALUES (?, ?)",
                [
                    (key, np.asarray(vector, dtype=_cache_dtype(key)).tobytes())
                    for key, vector in items.items()
                ],
            )


def _cache_dtype(key: str) -> type[np.floating[Any]]:
    """How the cache keeps a key's vector: float16 for token matrices (keys ending in ``:f16``)."""
    return np.float16 if key.endswith(HALF_PRECISION) else np.float32


def _cached(key: str, data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=_cache_dtype(key)).astype(np.float32)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one SQLite transaction: all of it commits, or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def filter_indexed(config: CollectionConfig) -> list[str]:
    """The properties whose values get a SQLite index for filters."""
    schema = config.schema
    return [
        name
        for name, kind in schema.properties.items()
        if kind in FILTER_INDEXED and name not in schema.unindexed
    ]


def _lock_folder(folder: Path) -> Any:
    handle = open(folder / "LOCK", "a+")  # noqa: SIM115 - held open for the database's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatabaseLockedError(
            f"database {folder} is open in another process; close it there, or open a copy of the folder"
        ) from None
    return handle


def _chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _encoded(config: VectorConfig, vector: Any) -> bytes:
    """The blob stored for one vector: :func:`to_bytes` for a sparse one, a multi-vector matrix in its
    configured storage, float32 for a dense one."""
    if isinstance(vector, SparseVector):
        return to_bytes(vector)
    if config.multi_vector:
        return matrix_codec.encode(vector, config.storage)
    return np.asarray(vector, dtype=np.float32).tobytes()


def _decoded(config: VectorConfig | None, data: bytes) -> Any:
    """A stored vector read back: a :class:`SparseVector` for a sparse one, else float32 (multi-vector
    matrices flat, as they always came back)."""
    if config is not None and config.sparse:
        return from_bytes(data)
    if config is not None and config.multi_vector and config.dims is not None:
        return matrix_codec.decode(data, config.storage, config.dims).reshape(-1)
    return np.frombuffer(data, dtype=np.float32).copy()


def _unzip(rows: Iterable[tuple[int, bytes]]) -> tuple[list[int], list[bytes]]:
    slots: list[int] = []
    blobs: list[bytes] = []
    for slot, blob in rows:
        slots.append(slot)
        blobs.append(blob)
    return slots, blobs


@functools.cache
def _side_thread() -> ThreadPoolExecutor:
    """Threads for the vector side of hybrid searches (a few, so that one database waiting on its lock
    does not hold up another's), started on first use; a forked child starts its own, since the
    parent's threads do not exist there."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="omniembed-hybrid")


os.register_at_fork(after_in_child=_side_thread.cache_clear)
