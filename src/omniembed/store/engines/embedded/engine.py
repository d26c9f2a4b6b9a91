"""The embedded backend: one folder, SQLite (WAL) for objects and vectors, indexes in memory.

SQLite is the only source of truth. Objects and their vectors commit in one transaction; the BM25
index and the vector matrix are rebuilt from it on open and the HNSW graph is a saved shortcut that is
caught up with it, so a crash at any moment loses nothing that was acknowledged. Each object row has
a ``seq`` that is never reused (an update writes a new row), which is the slot the indexes use.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from omniembed.errors import CollectionExistsError, CollectionNotFoundError, DatabaseLockedError
from omniembed.store.backend import Match, StoredObject
from omniembed.store.config import CollectionConfig, VectorConfig
from omniembed.store.engines.embedded.multi_vector_index import MultiVectorIndex
from omniembed.store.engines.embedded.vector_index import VectorIndex
from omniembed.store.engines.keyword import KeywordIndex
from omniembed.store.filters import Filter, to_sql

logger = logging.getLogger(__name__)
FORMAT_VERSION = 1


class _Tables:
    """In-memory indexes and table names of one collection."""

    def __init__(self, ident: int, config: CollectionConfig, folder: Path | None) -> None:
        self.ident, self.config, self.folder = ident, config, folder
        self.objects, self.vectors = f"objects_{ident}", f"vectors_{ident}"
        self.keyword = KeywordIndex(config.schema.text_properties, config.bm25)
        self.indexes: dict[str, VectorIndex | MultiVectorIndex] = {}
        for name, vector in config.vectors.items():
            if vector.dims is not None:
                self.make_index(name, vector)

    def make_index(self, name: str, vector: VectorConfig) -> VectorIndex | MultiVectorIndex:
        assert vector.dims is not None
        if vector.multi_vector:
            self.indexes[name] = MultiVectorIndex(vector.dims)
            return self.indexes[name]
        path = self.folder / f"{self.ident}.{name}.hnsw" if self.folder is not None else None
        self.indexes[name] = VectorIndex(vector.dims, vector.metric, self.config.index, path)
        return self.indexes[name]


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
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._init_schema()
        self.tables: dict[str, _Tables] = {}
        for ident, text in self.conn.execute("SELECT id, config FROM collections ORDER BY id"):
            config = CollectionConfig.from_json(json.loads(text))
            self.tables[config.name] = self._load(ident, config)
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
        if int(version) != FORMAT_VERSION:
            raise ValueError(
                f"database format {version} is not {FORMAT_VERSION}; open it with a matching omniembed"
            )

    def _load(self, ident: int, config: CollectionConfig) -> _Tables:
        tables = _Tables(ident, config, self.folder)
        for seq, properties in self.conn.execute(f"SELECT seq, properties FROM {tables.objects}"):
            tables.keyword.add(seq, json.loads(properties))
        for name, index in tables.indexes.items():
            rows = self.conn.execute(
                f"SELECT seq, data FROM {tables.vectors} WHERE name = ? ORDER BY seq", (name,)
            )
            slots, blobs = _unzip(rows)
            if slots:
                if isinstance(index, MultiVectorIndex):
                    matrices = [index.prepare_one(np.frombuffer(blob, dtype=np.float32)) for blob in blobs]
                    index.add(np.array(slots, dtype=np.int64), matrices)
                else:
                    vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(slots), index.dims)
                    index.add(np.array(slots, dtype=np.int64), vectors, grow_graph=False)
            index.load_graph()
        return tables

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
                self.conn.execute(
                    f"CREATE TABLE vectors_{ident} (seq INTEGER NOT NULL, name TEXT NOT NULL, "
                    "data BLOB NOT NULL, PRIMARY KEY (seq, name)) WITHOUT ROWID"
                )
            self.tables[config.name] = _Tables(ident, config, self.folder)

    def drop(self, name: str) -> None:
        """Delete a collection, its tables and its index files."""
        with self.lock:
            tables = self._tables(name)
            with transaction(self.conn):
                self.conn.execute(f"DROP TABLE {tables.objects}")
                self.conn.execute(f"DROP TABLE {tables.vectors}")
                self.conn.execute("DELETE FROM collections WHERE id = ?", (tables.ident,))
            for index in tables.indexes.values():
                if index.path is not None:
                    index.path.unlink(missing_ok=True)
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
            added: list[tuple[int, StoredObject]] = []
            with transaction(self.conn):
                for position, obj in prepared:
                    try:
                        added.append((self._write(tables, obj), obj))
                    except sqlite3.IntegrityError:
                        errors[position] = (
                            f"an object with uuid {obj.uuid} exists; update or replace it instead"
                        )
            self._index(tables, added)
            return errors

    def replace(self, name: str, obj: StoredObject) -> None:
        """Overwrite an object: the old row goes, a new row (new seq) comes, in one transaction."""
        with self.lock:
            tables = self._tables(name)
            errors: dict[int, str] = {}
            [(_, obj)] = self._prepare(tables, [obj], errors) or [(0, obj)]
            if errors:
                raise ValueError(errors[0])
            with transaction(self.conn):
                old = self._delete_rows(tables, [obj.uuid])
                seq = self._write(tables, obj)
            self._unindex(tables, old)
            self._index(tables, [(seq, obj)])

    def delete(self, name: str, uuids: Sequence[str]) -> int:
        """Delete objects by uuid."""
        with self.lock:
            tables = self._tables(name)
            with transaction(self.conn):
                seqs = self._delete_rows(tables, uuids)
            self._unindex(tables, seqs)
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
                        seqs[seq].vectors[vector] = np.frombuffer(data, dtype=np.float32).copy()
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
        self, name: str, vector: str, query: np.ndarray, limit: int, where: Filter | None
    ) -> list[Match]:
        """Nearest objects by the named vector, exact when filtered to few objects."""
        with self.lock:
            tables = self._tables(name)
            index = tables.indexes.get(vector)
            if index is None:
                if vector not in tables.config.vectors:
                    known = sorted(tables.config.vectors)
                    raise ValueError(f"collection {name!r} has no vector {vector!r}; it has {known}")
                return []
            allowed = self._allowed(tables, where)
            slots, distances = index.search(np.asarray(query, dtype=np.float32), limit, allowed)
            metric = tables.config.vectors[vector].metric
            scores = 1.0 - distances if metric == "cosine" else -distances  # dot, l2 and maxsim negate
            return self._hits(tables, slots, scores, distances)

    def keyword_search(
        self, name: str, query: str, boosts: dict[str, float], limit: int, where: Filter | None
    ) -> list[Match]:
        """Best BM25 matches over the boosted text properties."""
        with self.lock:
            tables = self._tables(name)
            unknown = sorted(set(boosts) - set(tables.keyword.fields))
            if unknown:
                raise ValueError(
                    f"BM25 searches text properties; {unknown} are not among {sorted(tables.keyword.fields)}"
                )
            slots, scores = tables.keyword.search(query, boosts, limit, self._allowed(tables, where))
            return self._hits(tables, slots, scores, None)

    def close(self) -> None:
        """Save HNSW graphs, close SQLite and release the folder lock."""
        with self.lock:
            for tables in self.tables.values():
                for index in tables.indexes.values():
                    index.save()
            self.conn.close()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def _prepare(
        self, tables: _Tables, objects: Sequence[StoredObject], errors: dict[int, str]
    ) -> list[tuple[int, StoredObject]]:
        good = []
        for position, obj in enumerate(objects):
            try:
                vectors = {name: self._vector(tables, name, vector) for name, vector in obj.vectors.items()}
            except ValueError as error:
                errors[position] = str(error)
                continue
            good.append((position, replace(obj, vectors=vectors)))
        return good

    def _vector(self, tables: _Tables, name: str, vector: np.ndarray) -> np.ndarray:
        config = tables.config.vectors.get(name)
        if config is None:
            raise ValueError(
                f"vector {name!r} is not one of the collection's vectors {sorted(tables.config.vectors)}"
            )
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
        try:
            prepared = index.prepare_one(np.asarray(vector))
        except ValueError as error:
            raise ValueError(f"vector {name!r}: {error}") from None
        return prepared

    def _write(self, tables: _Tables, obj: StoredObject) -> int:
        cursor = self.conn.execute(
            f"INSERT INTO {tables.objects} (uuid, properties) VALUES (?, ?)",
            (obj.uuid, json.dumps(obj.properties)),
        )
        seq = int(cursor.lastrowid or 0)
        self.conn.executemany(
            f"INSERT INTO {tables.vectors} VALUES (?, ?, ?)",
            [(seq, name, vector.astype(np.float32).tobytes()) for name, vector in obj.vectors.items()],
        )
        return seq

    def _delete_rows(self, tables: _Tables, uuids: Sequence[str]) -> list[int]:
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
        return seqs

    def _index(self, tables: _Tables, added: Iterable[tuple[int, StoredObject]]) -> None:
        by_vector: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        for seq, obj in added:
            tables.keyword.add(seq, obj.properties)
            for name, vector in obj.vectors.items():
                slots, vectors = by_vector.setdefault(name, ([], []))
                slots.append(seq)
                vectors.append(vector)
        for name, (slots, vectors) in by_vector.items():
            index = tables.indexes[name]
            stacked = vectors if isinstance(index, MultiVectorIndex) else np.stack(vectors)
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
                found.update((key, np.frombuffer(data, dtype=np.float32).copy()) for key, data in rows)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Remember vectors by key."""
        with self.lock, transaction(self.conn):
            self.conn.executemany(
                "INSERT OR REPLACE INTO embedding_cache VALUES (?, ?)",
                [(key, np.asarray(vector, dtype=np.float32).tobytes()) for key, vector in items.items()],
            )


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


def _unzip(rows: Iterable[tuple[int, bytes]]) -> tuple[list[int], list[bytes]]:
    slots: list[int] = []
    blobs: list[bytes] = []
    for slot, blob in rows:
        slots.append(slot)
        blobs.append(blob)
    return slots, blobs
