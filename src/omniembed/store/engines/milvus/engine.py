"""The Milvus backend: the same collections on a Milvus server or cluster, or on Milvus Lite.

``connect("milvus://host:port")`` talks to a server at ``http://host:port``; ``connect("x.db",
backend="milvus")`` uses Milvus Lite in that file. Each omniembed collection is one Milvus collection
(named with a prefix, ``oe_`` by default), laid out as :mod:`omniembed.store.engines.milvus.layout` says.
Collection configurations live in a small ``<prefix>configs`` collection, so they survive reopening.

Differences from the embedded backend, all from what Milvus can express:

- BM25 uses the same formula, k1 and b, but Milvus's statistics (N, document frequencies, average
  lengths) and words: scores equal the embedded ones on one unfiltered segment; Milvus keeps them
  per segment, Milvus Lite counts only the rows a filter keeps, and its analyzer keeps ``_`` in words.
- Boosted keyword search over several properties searches each property's field for its best
  ``max(1000, 10 * limit)`` matches and sums the boosted scores; an object outside every one of those
  lists is missed, and one missing from a list counts 0 for that property. One property is exact.
  (On the first 30 Cranfield queries over ``title`` and ``text``, the top 10 and their scores equal
  the embedded backend's.)
- A named vector needs ``dims`` at creation (``SelfProvided(dims=384)``); Milvus fixes field sizes.
  Sparse vectors need none; they are SPARSE_FLOAT_VECTOR fields searched exactly by inner product
  (Milvus Lite takes SPARSE_INVERTED_INDEX with IP, filtered searches included, and refuses
  SPARSE_WAND and AUTOINDEX for such fields). Milvus refuses an empty
  sparse vector, so one (the vector of an empty text) is kept as a hidden filler and reads back as no
  vector, where the embedded backend returns it empty; searches rank the same.
- A text property value is at most 65,535 bytes (Milvus's VARCHAR limit); longer objects are refused.
- Milvus returns at most 16,384 results per search, so larger limits are capped there.
- Filter differences are listed in :mod:`omniembed.store.engines.milvus.filters`.
- Milvus counts a collection's fields: each named vector and each text property needs one vector
  field, and Milvus caps those per collection (``proxy.maxVectorFieldNum`` on a server).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from omniembed.errors import CollectionExistsError, CollectionNotFoundError, import_extra
from omniembed.sparse import SparseVector
from omniembed.store.backend import Match, StoredObject
from omniembed.store.config import CollectionConfig, IndexConfig
from omniembed.store.engines.milvus.filters import literal, to_expr
from omniembed.store.engines.milvus.layout import (
    MAX_TEXT_BYTES,
    METRICS,
    collection_schema,
    from_milvus,
    joined,
    prepare_sparse,
    prepare_vector,
    text_analyzers,
    to_milvus,
    to_row,
)
from omniembed.store.filters import Filter

MAX_RESULTS = 16_384
_CHUNK = 500


def _pymilvus() -> Any:
    return import_extra(
        "pymilvus",
        "the Milvus backend needs pymilvus (and milvus-lite for local files): "
        "pip install 'omniembed[milvus]'",
    )


def client_uri(target: str) -> str:
    """Map ``milvus://host:port`` to the server URI; keep ``http(s)://`` and ``.db`` paths.

    >>> client_uri("milvus://localhost:19530"), client_uri("data/m.db")
    ('http://localhost:19530', 'data/m.db')
    """
    if target.startswith("milvus://"):
        return "http://" + target.removeprefix("milvus://")
    if target.startswith(("http://", "https://")) or target.endswith(".db"):
        return target
    raise ValueError(
        f"Milvus target {target!r} is neither 'milvus://host:port' nor a Milvus Lite file ending in .db"
    )


class MilvusBackend:
    """Collections in Milvus (a server, a cluster or a Milvus Lite file) through ``MilvusClient``.

    Args:
        target: ``"milvus://host:port"``, ``"http(s)://host:port"`` or a Milvus Lite ``.db`` file.
        prefix: put before every Milvus collection name, so omniembed's collections stand apart.
        client_options: passed to ``MilvusClient`` (``token``, ``db_name``, ``timeout``, ...).
    """

    def __init__(self, target: str, *, prefix: str = "oe_", **client_options: Any) -> None:
        self.pymilvus = _pymilvus()
        self.prefix = prefix
        self.lock = threading.RLock()
        self.client = self.pymilvus.MilvusClient(client_uri(target), **client_options)
        self._last_seq = 0
        self._meta = f"{prefix}configs"
        if not self.client.has_collection(self._meta):
            self._create_meta()
        self.client.load_collection(self._meta)
        self._configs = self._read_configs()
        self._loaded: set[str] = set()

    def _create_meta(self) -> None:
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("name", self.pymilvus.DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("config", self.pymilvus.DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schema.add_field("_unused", self.pymilvus.DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one
        index = self.client.prepare_index_params()
        index.add_index("_unused", index_type="FLAT", metric_type="L2")
        self.client.create_collection(
            self._meta, schema=schema, index_params=index, consistency_level="Strong"
        )

    def _read_configs(self) -> dict[str, CollectionConfig]:
        rows = self.client.query(self._meta, filter='name != ""', output_fields=["name", "config"])
        return {row["name"]: CollectionConfig.from_json(json.loads(row["config"])) for row in rows}

    def _config(self, name: str) -> CollectionConfig:
        if name not in self._configs:  # another client may have created it
            self._configs = self._read_configs()
        if name not in self._configs:
            raise CollectionNotFoundError(
                f"no collection named {name!r}; the database has {sorted(self._configs)}"
            )
        if name not in self._loaded:
            self.client.load_collection(self.prefix + name)
            self._loaded.add(name)
        return self._configs[name]

    def create(self, config: CollectionConfig) -> None:
        """Create the Milvus collection and record the configuration."""
        with self.lock:
            self._configs = self._read_configs()
            if config.name in self._configs:
                raise CollectionExistsError(f"collection {config.name!r} exists; get it or delete it first")
            multi = sorted(name for name, vector in config.vectors.items() if vector.multi_vector)
            if multi:
                raise ValueError(
                    f"multi-vector (MaxSim) vectors {multi} need the embedded backend: Milvus Lite has no "
                    "MaxSim index; use oe.connect(folder)"
                )
            unsized = sorted(
                name for name, vector in config.vectors.items() if vector.dims is None and not vector.sparse
            )
            if unsized:
                raise ValueError(
                    f"the Milvus backend needs the size of vectors {unsized}: give "
                    "SelfProvided(dims=...) so the Milvus field can be created"
                )
            collection = self.prefix + config.name
            if self.client.has_collection(collection):
                raise CollectionExistsError(
                    f"Milvus already has a collection {collection!r} that omniembed did not record; "
                    "drop it in Milvus or choose another name"
                )
            schema, index = collection_schema(self.pymilvus, self.client, config)
            self.client.create_collection(
                collection, schema=schema, index_params=index, consistency_level="Strong"
            )
            try:
                row = {"name": config.name, "config": json.dumps(config.to_json()), "_unused": [0.0, 0.0]}
                self.client.insert(self._meta, [row])
            except Exception:
                self.client.drop_collection(collection)
                raise
            self._configs[config.name] = config
            self._loaded.add(config.name)

    def drop(self, name: str) -> None:
        """Delete the Milvus collection and its configuration."""
        with self.lock:
            self._config(name)
            self.client.drop_collection(self.prefix + name)
            self.client.delete(self._meta, filter=f"name == {literal(name)}")
            self._configs.pop(name, None)
            self._loaded.discard(name)

    def configs(self) -> dict[str, CollectionConfig]:
        """Return every collection's configuration (as this client last read them)."""
        with self.lock:
            return dict(self._configs)

    def insert(self, name: str, objects: Sequence[StoredObject]) -> dict[int, str]:
        """Store objects; a duplicate uuid, a bad vector or an over-long text refuses only that object."""
        with self.lock:
            config = self._config(name)
            errors: dict[int, str] = {}
            rows: dict[int, dict[str, Any]] = {}
            seen: set[str] = set()
            for position, obj in enumerate(objects):
                try:
                    if obj.uuid in seen:
                        raise ValueError(f"uuid {obj.uuid} appears twice in this batch")
                    rows[position] = to_row(config, obj, self._next_seq())
                    seen.add(obj.uuid)
                except (ValueError, TypeError) as error:
                    errors[position] = str(error)
            existing = self._existing(name, [row["uuid"] for row in rows.values()])
            for position in [p for p, row in rows.items() if row["uuid"] in existing]:
                uuid = rows.pop(position)["uuid"]
                errors[position] = f"an object with uuid {uuid} exists; update or replace it instead"
            self._insert_rows(name, rows, errors)
            return errors

    def _insert_rows(self, name: str, rows: dict[int, dict[str, Any]], errors: dict[int, str]) -> None:
        if not rows:
            return
        try:
            self.client.insert(self.prefix + name, list(rows.values()))
        except self.pymilvus.MilvusException:  # find the rows Milvus refuses, keep the rest
            for position, row in rows.items():
                try:
                    self.client.insert(self.prefix + name, [row])
                except self.pymilvus.MilvusException as error:
                    errors[position] = f"Milvus refused object {row['uuid']}: {error.message}"

    def replace(self, name: str, obj: StoredObject) -> None:
        """Overwrite an object (Milvus upserts by primary key); it moves to the end of insertion order."""
        with self.lock:
            row = to_row(self._config(name), obj, self._next_seq())
            self.client.upsert(self.prefix + name, [row])

    def replace_many(self, name: str, objects: Sequence[StoredObject]) -> dict[int, str]:
        """Overwrite objects with one upsert; return ``{index: message}`` for those refused."""
        with self.lock:
            config = self._config(name)
            errors: dict[int, str] = {}
            rows: dict[int, dict[str, Any]] = {}
            for position, obj in enumerate(objects):
                try:
                    rows[position] = to_row(config, obj, self._next_seq())
                except (ValueError, TypeError) as error:
                    errors[position] = str(error)
            if not rows:
                return errors
            try:
                self.client.upsert(self.prefix + name, list(rows.values()))
            except self.pymilvus.MilvusException:  # find the rows Milvus refuses, keep the rest
                for position, row in rows.items():
                    try:
                        self.client.upsert(self.prefix + name, [row])
                    except self.pymilvus.MilvusException as error:
                        errors[position] = f"Milvus refused object {row['uuid']}: {error.message}"
            return errors

    def delete(self, name: str, uuids: Sequence[str]) -> int:
        """Delete objects by uuid; return how many existed."""
        with self.lock:
            self._config(name)
            existing = sorted(self._existing(name, list(uuids)))
            for chunk in _chunks(existing):
                self.client.delete(self.prefix + name, filter=f"uuid in {literal(chunk)}")
            return len(existing)

    def get(self, name: str, uuids: Sequence[str], *, with_vectors: bool = False) -> list[StoredObject]:
        """Return objects by uuid, in the given order."""
        with self.lock:
            config = self._config(name)
            fields = ["uuid", "properties"]
            if with_vectors:
                fields += [f"{prefix}_{vector}" for vector in config.vectors for prefix in ("v", "has")]
            found: dict[str, StoredObject] = {}
            for chunk in _chunks(list(dict.fromkeys(uuids))):
                rows = self.client.query(
                    self.prefix + name, filter=f"uuid in {literal(chunk)}", output_fields=fields
                )
                for row in rows:
                    vectors = {
                        vector: _stored(settings.sparse, row[f"v_{vector}"])
                        for vector, settings in config.vectors.items()
                        if with_vectors and row[f"has_{vector}"]
                    }
                    found[row["uuid"]] = StoredObject(row["uuid"], dict(row["properties"]), vectors)
            return [found[uuid] for uuid in uuids if uuid in found]

    def find(self, name: str, where: Filter | None, limit: int | None = None, offset: int = 0) -> list[str]:
        """Return uuids matching ``where`` in insertion order (Milvus has no order, so sort by ``seq``)."""
        with self.lock:
            config = self._config(name)
            expr = to_expr(where, config.schema) if where is not None else ""
            rows = self._scan(name, expr, ["uuid", "seq"])
            ordered = [row["uuid"] for row in sorted(rows, key=lambda row: int(row["seq"]))]
            return ordered[offset:] if limit is None else ordered[offset : offset + limit]

    def count(self, name: str, where: Filter | None = None) -> int:
        """Return the number of objects matching ``where``."""
        with self.lock:
            config = self._config(name)
            expr = to_expr(where, config.schema) if where is not None else ""
            rows = self.client.query(self.prefix + name, filter=expr, output_fields=["count(*)"])
            return int(rows[0]["count(*)"])

    def vector_search(
        self, name: str, vector: str, query: np.ndarray | SparseVector, limit: int, where: Filter | None
    ) -> list[Match]:
        """Nearest objects by the named vector; scores and distances follow the embedded backend."""
        with self.lock:
            config = self._config(name)
            if vector not in config.vectors:
                raise ValueError(
                    f"collection {name!r} has no vector {vector!r}; it has {sorted(config.vectors)}"
                )
            settings = config.vectors[vector]
            expr = f"has_{vector} == true"
            if where is not None:
                expr += f" and {to_expr(where, config.schema)}"
            data: Any
            if settings.sparse:
                sparse = prepare_sparse(config, vector, query)
                if not sparse.indices:  # Milvus refuses an empty query; nothing scores above 0
                    return []
                data, params = to_milvus(sparse), {"metric_type": "IP", "params": {"drop_ratio_search": 0.0}}
            else:
                data = prepare_vector(config, vector, np.asarray(query)).tolist()
                params = _search_params(settings.metric, config.index, limit)
            results = self.client.search(
                self.prefix + name,
                data=[data],
                anns_field=f"v_{vector}",
                limit=min(limit, MAX_RESULTS),
                filter=expr,
                output_fields=["uuid"],
                search_params=params,
            )
            hits = []
            for hit in results[0]:
                value = float(hit["distance"])
                if settings.sparse:  # the dot product over shared tokens; as embedded, only above 0
                    if value > 0:
                        hits.append(Match(hit["entity"]["uuid"], value, -value))
                elif settings.metric == "cosine":  # Milvus gives cosine similarity
                    hits.append(Match(hit["entity"]["uuid"], value, 1.0 - value))
                elif settings.metric == "dot":  # the inner product
                    hits.append(Match(hit["entity"]["uuid"], value, -value))
                else:  # the squared L2 distance
                    hits.append(Match(hit["entity"]["uuid"], -value, value))
            return hits

    def hybrid_search(
        self,
        name: str,
        vectors: Mapping[str, np.ndarray | SparseVector],
        text: str,
        boosts: dict[str, float],
        limit: int,
        where: Filter | None,
    ) -> tuple[dict[str, list[Match]], list[Match]]:
        """The vector searches and the keyword search, one after another."""
        return (
            {
                vector: self.vector_search(name, vector, query, limit, where)
                for vector, query in vectors.items()
            },
            self.keyword_search(name, text, boosts, limit, where),
        )

    def keyword_search(
        self, name: str, query: str, boosts: dict[str, float], limit: int, where: Filter | None
    ) -> list[Match]:
        """Best BM25 matches: each boosted property's field searched, boosted scores summed."""
        with self.lock:
            config = self._config(name)
            fields = config.schema.text_properties
            unknown = sorted(set(boosts) - set(fields))
            if unknown:
                raise ValueError(f"BM25 searches text properties; {unknown} are not among {sorted(fields)}")
            expr = to_expr(where, config.schema) if where is not None else ""
            active = {prop: boost for prop, boost in boosts.items() if boost != 0}
            depth = min(MAX_RESULTS, limit if len(active) == 1 else max(1000, 10 * limit))
            analyzers = text_analyzers(config)
            scores: dict[str, float] = {}
            for prop, boost in active.items():
                # The embedded backend counts each query term once; Milvus weighs terms by their count.
                text = joined(dict.fromkeys(analyzers[prop](query)))
                if not text:
                    continue
                results = self.client.search(
                    self.prefix + name,
                    data=[text],
                    anns_field=f"s_{prop}",
                    limit=depth,
                    filter=expr,
                    output_fields=["uuid"],
                    search_params={"metric_type": "BM25"},
                )
                for hit in results[0]:
                    # BM25 scores are never negative; Milvus Lite reports them negated, as distances.
                    uuid = hit["entity"]["uuid"]
                    scores[uuid] = scores.get(uuid, 0.0) + boost * abs(float(hit["distance"]))
            best = sorted(scores.items(), key=lambda item: -item[1])[:limit]
            return [Match(uuid, score) for uuid, score in best if score > 0]

    def close(self) -> None:
        """Close the Milvus client."""
        with self.lock:
            self.client.close()

    def _next_seq(self) -> int:
        """Increasing across this client; wall-clock nanoseconds keep clients roughly in step."""
        self._last_seq = max(time.time_ns(), self._last_seq + 1)
        return self._last_seq

    def _existing(self, name: str, uuids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(uuids):
            rows = self.client.query(
                self.prefix + name, filter=f"uuid in {literal(chunk)}", output_fields=["uuid"]
            )
            found.update(row["uuid"] for row in rows)
        return found

    def _scan(self, name: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``expr``; past what one query may return, paged with an iterator."""
        total = int(
            self.client.query(self.prefix + name, filter=expr, output_fields=["count(*)"])[0]["count(*)"]
        )
        if total == 0:
            return []
        if total <= MAX_RESULTS:
            return list(self.client.query(self.prefix + name, filter=expr, output_fields=fields, limit=total))
        iterator = self.client.query_iterator(
            self.prefix + name, batch_size=1000, filter=expr, output_fields=fields
        )
        rows: list[dict[str, Any]] = []
        try:
            while batch := iterator.next():
                rows.extend(batch)
        finally:
            iterator.close()
        return rows


def _stored(sparse: bool, value: Any) -> Any:
    """A vector read back from Milvus: a ``SparseVector`` or a float32 array."""
    if sparse:
        return from_milvus(value)
    return np.asarray(value, dtype=np.float32)


def _search_params(metric: str, index: IndexConfig, limit: int) -> dict[str, Any]:
    return {"metric_type": METRICS[metric], "params": {"ef": max(index.ef, limit)}}


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
