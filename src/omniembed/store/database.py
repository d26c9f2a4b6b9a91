"""Opening a database and managing its collections."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from omniembed.errors import CollectionNotFoundError
from omniembed.store.backend import StorageBackend
from omniembed.store.collection import Collection
from omniembed.store.config import CollectionConfig, IndexConfig, MatrixStorage, Metric, VectorConfig
from omniembed.store.schema import BM25Config, Property, Schema, check_new_properties
from omniembed.store.vectorizer import EmbeddingCache, Vectorizer

logger = logging.getLogger(__name__)
RESERVED_VECTOR_NAMES = ("keyword",)
"""Names a new collection's vectors may not take: index files beside the database use them."""


@dataclass(frozen=True)
class SelfProvided:
    """A named vector whose vectors you bring yourself (``dims`` is taken from the first one if omitted).

    With ``multi_vector=True`` each object holds a (tokens x dims) matrix, compared by MaxSim. With
    ``sparse=True`` each object holds ``{"indices": [...], "values": [...]}`` (token ids and weights),
    compared by dot product; ``dims`` is then the vocabulary size, which bounds the token ids (none
    when omitted).
    """

    dims: int | None = None
    metric: Metric = "cosine"
    multi_vector: bool = False
    sparse: bool = False


def connect(path: str | os.PathLike[str] = ":memory:", **options: Any) -> Database:
    """Open (or create) a database.

    Args:
        path: a folder for the embedded database, ``":memory:"`` for one that lives in this process,
            or ``"milvus://host:port"`` / a ``.db`` file with ``backend="milvus"`` for Milvus.
        options: ``backend="milvus"`` and options for that backend.

    >>> with connect() as db:
    ...     db.collections.list()
    []
    """
    target = os.fspath(path)
    if options.get("backend") == "milvus" or target.startswith("milvus://"):
        from omniembed.store.engines.milvus.engine import MilvusBackend

        return Database(MilvusBackend(target, **{k: v for k, v in options.items() if k != "backend"}))
    if options:
        raise TypeError(f"unknown options {sorted(options)} for the embedded database")
    from omniembed.store.engines.embedded.engine import EmbeddedBackend

    backend = EmbeddedBackend(target)
    logger.info("opened database %s", target)
    return Database(backend, getattr(backend, "embedding_cache", None))


class Database:
    """A set of collections over one backend; close it (or use ``with``) to save indexes."""

    def __init__(self, backend: StorageBackend, cache: EmbeddingCache | None = None) -> None:
        self.backend = backend
        self.collections = Collections(backend, cache)
        self._closed = False

    def close(self) -> None:
        """Save what is derived (indexes) and release the database; closing it again does nothing."""
        if not self._closed:
            self._closed = True
            self.backend.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _refuse_kind(collection: str, vector: str, sparse: bool, model: Any) -> None:
    """Raise for a model given for a named vector of the other kind (sparse for dense, or the reverse)."""
    held, wanted = (
        ("sparse", "a SparseEncoder") if sparse else ("dense", "a dense model (SentenceTransformer)")
    )
    raise ValueError(
        f"vector {vector!r} of {collection!r} holds {held} vectors, and the model given for it is a "
        f"{type(model).__name__}, which makes {'dense' if sparse else 'sparse'} ones; give {wanted}"
    )


class Collections:
    """``db.collections``: create, get, list and delete collections."""

    def __init__(self, backend: StorageBackend, cache: EmbeddingCache | None) -> None:
        self._backend, self._cache = backend, cache
        self._open: dict[str, Collection] = {}

    def create(
        self,
        name: str,
        properties: Mapping[str, str | Property] | None = None,
        vectors: Mapping[str, Vectorizer | SelfProvided | None] | Vectorizer | None = None,
        *,
        bm25: BM25Config | None = None,
        index: IndexConfig | None = None,
        matrix_storage: MatrixStorage = "float16",
    ) -> Collection:
        """Create a collection.

        Args:
            name: the collection's name.
            properties: property name to type (``text``, ``text[]``, ``int``, ``number``, ``bool``,
                ``date``, ``uuid``, their ``[]`` arrays, ``image``, ``audio``, ``video``, and
                ``object`` / ``object[]`` for nested JSON, filtered by path: ``"metadata.author"``), or a
                :class:`Property` such as ``Property("text", tokenization="field")``.
            vectors: named vectors: a ``Vectorizer`` to embed properties, or ``SelfProvided()`` /
                ``None`` for vectors you bring. A single ``Vectorizer`` is named ``"default"``.
            bm25: BM25 ``k1``, ``b``, stemmer and stop words.
            index: when vector search switches from exact to HNSW, and the HNSW settings.
            matrix_storage: how multi-vector matrices are kept: ``float16`` (half of float32, the
                same MaxSim ranking in practice), ``int8`` (a quarter, with a scale per token vector)
                or ``float32``.
        """
        schema = Schema(dict(properties or {}))
        check_new_properties(schema)
        if isinstance(vectors, Vectorizer):
            vectors = {"default": vectors}
        vectorizers: dict[str, Vectorizer] = {}
        configs: dict[str, VectorConfig] = {}
        for vector_name, spec in (vectors or {}).items():
            if vector_name in RESERVED_VECTOR_NAMES:
                raise ValueError(
                    f"vector name {vector_name!r} is taken by the BM25 index's files; choose another name"
                )
            if isinstance(spec, Vectorizer):
                spec.bind(schema)
                vectorizers[vector_name] = spec
                metric = spec.metric
                if spec.sparse and spec.long_inputs == "chunk":
                    raise ValueError(
                        f"vector {vector_name!r}: a sparse model's long inputs are truncated; "
                        "long_inputs='chunk' is for dense models"
                    )
                configs[vector_name] = VectorConfig(
                    spec.dims,
                    metric,  # type: ignore[arg-type]
                    spec.to_json(),
                    multi_vector=metric == "maxsim",
                    sparse=spec.sparse,
                    storage=matrix_storage,
                )
            else:
                spec = spec or SelfProvided()
                if not isinstance(spec, SelfProvided):
                    raise TypeError(
                        f"vector {vector_name!r} is a Vectorizer or SelfProvided(), got "
                        f"{type(spec).__name__}; wrap a model as oe.Vectorizer(model, properties=[...])"
                    )
                metric = "maxsim" if spec.multi_vector else ("dot" if spec.sparse else spec.metric)
                if spec.sparse and spec.metric not in ("cosine", "dot"):  # cosine: the unset default
                    raise ValueError(
                        f"sparse vector {vector_name!r} is compared by dot product, not {spec.metric!r}"
                    )
                configs[vector_name] = VectorConfig(
                    spec.dims,
                    metric,
                    multi_vector=spec.multi_vector,
                    sparse=spec.sparse,
                    storage=matrix_storage,
                )
        config = CollectionConfig(name, schema, configs, bm25 or BM25Config(), index or IndexConfig())
        self._backend.create(config)
        logger.info("created collection %s", name)
        self._open[name] = Collection(self._backend, config, vectorizers, self._cache)
        return self._open[name]

    def get(self, name: str, vectorizers: Mapping[str, Any] | None = None) -> Collection:
        """Open a collection; its vectorizers load their models by the stored name or path.

        Args:
            name: the collection's name.
            vectorizers: loaded models by vector name, to use instead of loading by the stored name.
        """
        if name in self._open and not vectorizers:
            return self._open[name]
        configs = self._backend.configs()
        if name not in configs:
            raise CollectionNotFoundError(f"no collection named {name!r}; the database has {sorted(configs)}")
        config = configs[name]
        given = dict(vectorizers or {})
        built = {
            vector_name: Vectorizer.from_json(vector.vectorizer, given.get(vector_name))
            for vector_name, vector in config.vectors.items()
            if vector.vectorizer is not None
        }
        for vector_name in given:
            if vector_name in built and built[vector_name].sparse != config.vectors[vector_name].sparse:
                _refuse_kind(name, vector_name, config.vectors[vector_name].sparse, given[vector_name])
        self._open[name] = Collection(self._backend, config, built, self._cache)
        return self._open[name]

    def exists(self, name: str) -> bool:
        """Whether a collection has this name."""
        return name in self._backend.configs()

    def list(self) -> list[str]:
        """Names of all collections, sorted."""
        return sorted(self._backend.configs())

    def delete(self, name: str) -> None:
        """Delete a collection and all its objects."""
        self._backend.drop(name)
        self._open.pop(name, None)
        logger.info("deleted collection %s", name)
