"""What a collection is made of, kept as JSON in the database so a reopened collection is the same."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from omniembed.store.schema import BM25Config, Schema, check_name

Metric = Literal["cosine", "dot", "l2", "maxsim"]
METRICS = ("cosine", "dot", "l2", "maxsim")
MatrixStorage = Literal["float32", "float16", "int8"]
MATRIX_STORAGES = ("float32", "float16", "int8")
MAX_DIMS = 65_536  # 16x the largest embedding models; the index allocates rows of this size up front
MAX_VOCAB = 2**31 - 1  # a sparse vector's token ids are stored as 32-bit numbers


@dataclass(frozen=True)
class IndexConfig:
    """How vectors are searched: exactly below ``flat_threshold`` objects, with HNSW above it.

    ``m``, ``ef_construction`` and ``ef`` are the HNSW graph degree, build beam and query beam; the
    query beam grows to the candidates wanted when a query asks for more. Above ``flat_threshold``
    vectors are held as 8-bit codes; the graph's ``limit * rescore`` nearest by code are the
    candidates, and those that can reach the top ``limit`` are rescored with float32 vectors.
    """

    flat_threshold: int = 10_000
    m: int = 16
    ef_construction: int = 200
    ef: int = 512
    rescore: int = 4

    def __post_init__(self) -> None:
        for name in ("flat_threshold", "m", "ef_construction", "ef", "rescore"):
            value = getattr(self, name)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or value < (0 if name == "flat_threshold" else 1)
            ):
                raise ValueError(f"IndexConfig.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class VectorConfig:
    """One named vector: its size, metric and, when omniembed embeds it, the vectorizer's settings.

    A multi-vector (late-interaction) vector holds a (tokens x dims) matrix per object and is
    compared by MaxSim; ``storage`` is how its matrices are kept (``float16`` by default, ``int8``
    with a scale per token vector, or ``float32``; see docs/pdf.md for the recall of each). Single
    vectors are always kept as float32. A sparse vector holds token ids and their weights, is
    compared by dot product, and its ``dims`` is the vocabulary size (``None`` when not known: any
    32-bit token id goes).
    """

    dims: int | None
    metric: Metric = "cosine"
    vectorizer: dict[str, Any] | None = None
    multi_vector: bool = False
    sparse: bool = False
    storage: MatrixStorage = "float16"

    def __post_init__(self) -> None:
        if self.storage not in MATRIX_STORAGES:
            raise ValueError(f"matrix storage {self.storage!r} is not one of {', '.join(MATRIX_STORAGES)}")
        if not self.multi_vector:
            object.__setattr__(self, "storage", "float32")
        if self.metric not in METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {METRICS}")
        if (self.metric == "maxsim") != self.multi_vector:
            raise ValueError("multi-vector vectors use the 'maxsim' metric, and only they do")
        if self.sparse and (self.metric != "dot" or self.multi_vector):
            raise ValueError(
                f"sparse vectors are compared by dot product: use metric='dot', not {self.metric!r}"
            )
        largest = MAX_VOCAB if self.sparse else MAX_DIMS
        if self.dims is not None and not 1 <= self.dims <= largest:
            what = "a sparse vector's vocabulary has" if self.sparse else "a vector has"
            raise ValueError(f"{what} 1 to {largest} dimensions, got dims={self.dims!r}")


@dataclass(frozen=True)
class CollectionConfig:
    """Everything needed to reopen a collection: properties, named vectors, BM25 and index settings."""

    name: str
    schema: Schema
    vectors: dict[str, VectorConfig] = field(default_factory=dict)
    bm25: BM25Config = field(default_factory=BM25Config)
    index: IndexConfig = field(default_factory=IndexConfig)

    def __post_init__(self) -> None:
        check_name(self.name, "collection")
        for name in self.vectors:
            check_name(name, "vector")

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "properties": dict(self.schema.properties),
            "tokenization": {name: self.schema.tokenization_of(name) for name in self.schema.text_properties},
            "unindexed": sorted(self.schema.unindexed),
            "vectors": {name: asdict(vector) for name, vector in self.vectors.items()},
            "bm25": self.bm25.to_json(),
            "index": asdict(self.index),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CollectionConfig:
        """Read what :meth:`to_json` wrote; a config written before tokenization, stemming and stop
        words existed reads as ``word`` tokenization with neither, as it was indexed; a vector from
        before matrix storage existed reads as float32, as it was stored."""
        return cls(
            name=data["name"],
            schema=Schema(
                data["properties"], data.get("tokenization", {}), frozenset(data.get("unindexed", ()))
            ),
            vectors={
                name: VectorConfig(**{"storage": "float32", **vector})
                for name, vector in data["vectors"].items()
            },
            bm25=BM25Config.from_json(data["bm25"]),
            index=IndexConfig(**data["index"]),
        )
