"""How an omniembed collection is laid out in Milvus: its fields, their indexes and one object's row.

- ``uuid`` (VARCHAR primary key), ``seq`` (INT64, the insertion order ``find`` returns) and
  ``properties`` (JSON: the cleaned properties, which filters address as ``properties["name"]``);
- per named vector ``v_<name>`` (FLOAT_VECTOR with an HNSW index, COSINE / IP / L2 for cosine / dot /
  l2; for a sparse vector SPARSE_FLOAT_VECTOR with an exact SPARSE_INVERTED_INDEX and IP) and
  ``has_<name>`` (BOOL): Milvus needs a value in every vector field (a sparse one with at least one
  weight), so an object without that vector, or with an empty sparse vector, holds a filler and
  ``has_<name> == false`` keeps it out of searches;
- per text property ``t_<name>``: the property's terms as the embedded keyword index makes them
  (``word`` tokenization, stop words, stemming), joined by spaces, in a VARCHAR with Milvus's
  standard analyzer (which keeps each such term whole), feeding a BM25 function into ``s_<name>``
  (SPARSE_FLOAT_VECTOR, BM25 index with the collection's k1 and b): both engines count the same terms;
- ``_unused`` (a 2-dim FLOAT_VECTOR) only when there is neither, since Milvus needs a vector field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from omniembed.sparse import SparseVector
from omniembed.store.backend import StoredObject
from omniembed.store.config import CollectionConfig
from omniembed.store.engines.embedded.vector_index import VectorIndex
from omniembed.store.engines.keyword.analysis import Analyzer
from omniembed.store.engines.keyword.index import analyzers
from omniembed.store.sparse_vectors import as_sparse, wrong_kind

METRICS = {"cosine": "COSINE", "dot": "IP", "l2": "L2"}
MAX_TEXT_BYTES = 65_535


def collection_schema(pymilvus: Any, client: Any, config: CollectionConfig) -> tuple[Any, Any]:
    """Return the Milvus schema and index parameters of a collection."""
    types = pymilvus.DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("uuid", types.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("seq", types.INT64)
    schema.add_field("properties", types.JSON)
    index = client.prepare_index_params()
    # Index settings go nested under "params": pymilvus 3 sends a flat dict as separate key-value
    # pairs, which Milvus Lite ignores; the nested form is one JSON value that Milvus servers and
    # Milvus Lite both read.
    hnsw = {"params": {"M": config.index.m, "efConstruction": config.index.ef_construction}}
    for name, vector in config.vectors.items():
        if vector.sparse:
            schema.add_field(f"v_{name}", types.SPARSE_FLOAT_VECTOR)
            exact = {"params": {"drop_ratio_build": 0.0}}  # keep every weight: scores stay exact
            index.add_index(f"v_{name}", index_type="SPARSE_INVERTED_INDEX", metric_type="IP", params=exact)
        else:
            schema.add_field(f"v_{name}", types.FLOAT_VECTOR, dim=vector.dims)
            index.add_index(f"v_{name}", index_type="HNSW", metric_type=METRICS[vector.metric], params=hnsw)
        schema.add_field(f"has_{name}", types.BOOL)
    bm25 = {"params": {"bm25_k1": config.bm25.k1, "bm25_b": config.bm25.b}}
    other = {p: k for p, k in config.schema.tokenization.items() if k != "word"}
    if other:
        raise ValueError(
            f"the Milvus backend splits text into words only; {other} need the embedded backend "
            "(or tokenization='word')"
        )
    for prop in config.schema.text_properties:
        schema.add_field(f"t_{prop}", types.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True)
        schema.add_field(f"s_{prop}", types.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            pymilvus.Function(
                name=f"bm25_{prop}",
                function_type=pymilvus.FunctionType.BM25,
                input_field_names=[f"t_{prop}"],
                output_field_names=[f"s_{prop}"],
            )
        )
        index.add_index(f"s_{prop}", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=bm25)
    if not config.vectors and not config.schema.text_properties:
        schema.add_field("_unused", types.FLOAT_VECTOR, dim=2)
        index.add_index("_unused", index_type="FLAT", metric_type="L2")
    return schema, index


def to_row(config: CollectionConfig, obj: StoredObject, seq: int) -> dict[str, Any]:
    """Build the Milvus row of an object, or raise ``ValueError`` naming what is wrong."""
    row: dict[str, Any] = {"uuid": obj.uuid, "seq": seq, "properties": obj.properties}
    for name in obj.vectors:
        if name not in config.vectors:
            raise ValueError(
                f"vector {name!r} is not one of the collection's vectors {sorted(config.vectors)}"
            )
    for name, vector in config.vectors.items():
        given = obj.vectors.get(name)
        if vector.sparse:
            checked = prepare_sparse(config, name, given) if given is not None else None
            row[f"v_{name}"] = to_milvus(checked) if checked is not None and checked.indices else {0: 1.0}
            row[f"has_{name}"] = checked is not None and bool(checked.indices)
            continue
        assert vector.dims is not None  # the backend refuses unsized vectors at creation
        filler = np.eye(1, vector.dims, dtype=np.float32)[0]  # any valid vector; has_ hides it
        row[f"v_{name}"] = (filler if given is None else prepare_vector(config, name, given)).tolist()
        row[f"has_{name}"] = given is not None
    for prop, analyzer in text_analyzers(config).items():
        value = obj.properties.get(prop)
        text = joined(analyzer(value)) if value is not None else ""
        size = len(text.encode())
        if size > MAX_TEXT_BYTES:
            raise ValueError(
                f"property {prop!r} holds {size} bytes of text; Milvus keeps at most {MAX_TEXT_BYTES} "
                "per text field: split the object"
            )
        row[f"t_{prop}"] = text
    if not config.vectors and not config.schema.text_properties:
        row["_unused"] = [0.0, 0.0]
    return row


def text_analyzers(config: CollectionConfig) -> dict[str, Analyzer]:
    """The analyzer of each text property, as the embedded keyword index builds them."""
    return analyzers(config.schema.text_properties, config.bm25, config.schema.tokenization)


def joined(terms: Iterable[str]) -> str:
    """Terms joined by spaces."""
    return " ".join(terms)


def prepare_sparse(config: CollectionConfig, name: str, vector: Any) -> SparseVector:
    """Check a sparse vector as the embedded backend does (sorted unique ids in the vocabulary,
    positive finite weights)."""
    mismatch = wrong_kind(name, True, vector)
    if mismatch is not None:
        raise mismatch
    return as_sparse(vector, config.vectors[name].dims, f"vector {name!r}")


def to_milvus(vector: SparseVector) -> dict[int, float]:
    """The ``{token id: weight}`` form Milvus takes for a sparse vector."""
    return dict(zip(vector.indices, vector.values, strict=True))


def from_milvus(value: Any) -> SparseVector:
    """A sparse vector as Milvus returns it (``{token id: weight}``), ids sorted."""
    pairs = sorted((int(index), float(weight)) for index, weight in dict(value).items())
    return SparseVector(tuple(i for i, _ in pairs), tuple(w for _, w in pairs))


def prepare_vector(config: CollectionConfig, name: str, vector: np.ndarray) -> np.ndarray:
    """Check a vector as the embedded backend does (size, finite, non-zero for cosine) and normalise it."""
    settings = config.vectors[name]
    assert settings.dims is not None
    mismatch = wrong_kind(name, False, vector)
    if mismatch is not None:
        raise mismatch
    try:
        index = VectorIndex(settings.dims, settings.metric, config.index)
        prepared: np.ndarray = index.prepare(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
    except ValueError as error:
        raise ValueError(f"vector {name!r}: {error}") from None
    return prepared
