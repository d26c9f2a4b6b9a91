"""Collections REST: create/list/delete collections, write objects, and query them."""

from __future__ import annotations

import time
from pathlib import PurePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from omniembed.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidInputError,
    ObjectNotFoundError,
)
from omniembed.inputs import data_urls
from omniembed.inputs.images import load_image
from omniembed.server.errors import LimitExceededError, NotServedError
from omniembed.server.filters_json import from_json
from omniembed.server.state import ServerState, get_state
from omniembed.sparse import SparseVector
from omniembed.store.config import MAX_DIMS, MAX_VOCAB
from omniembed.store.query import MAX_OFFSET
from omniembed.store.schema import BM25Config, Property

router = APIRouter(prefix="/v1/collections", tags=["collections"])
StateDep = Annotated[ServerState, Depends(get_state)]
MAX_NONZEROS = 65_536
"""The most weights one sparse vector in a request may hold (more than any model's vocabulary keeps)."""


class VectorSpec(BaseModel):
    """A named vector: embedded by the served model from ``properties``, or brought by the caller."""

    properties: list[str] | None = None
    self_provided: bool = False
    dims: int | None = Field(
        default=None, ge=1, le=MAX_VOCAB, description="the size; for a sparse vector, the vocabulary size"
    )
    metric: Literal["cosine", "dot", "l2"] = "cosine"
    sparse: bool = Field(default=False, description='self-provided {"indices", "values"} vectors')
    include_property_names: bool = False

    @model_validator(mode="after")
    def _dense_dims(self) -> VectorSpec:
        if not self.sparse and self.dims is not None and self.dims > MAX_DIMS:
            raise ValueError(f"dims is {self.dims}; a dense vector has at most {MAX_DIMS}")
        return self


class SparseIn(BaseModel):
    """A sparse vector: token ids (sorted, unique) and their positive weights, at most
    ``MAX_NONZEROS`` of each."""

    model_config = ConfigDict(extra="forbid")

    indices: list[Annotated[int, Field(ge=0, le=MAX_VOCAB)]] = Field(max_length=MAX_NONZEROS)
    values: list[float] = Field(max_length=MAX_NONZEROS)

    def as_dict(self) -> dict[str, list[Any]]:
        """The form the store takes."""
        return {"indices": self.indices, "values": self.values}


class HybridVectors(BaseModel):
    """Query vectors of your own for a hybrid query fused by ``weights``."""

    model_config = ConfigDict(extra="forbid")

    dense: list[float] | None = None
    sparse: SparseIn | None = None


VectorIn = list[float] | SparseIn
TargetPair = Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=2)]


def _vector_in(value: Any) -> Any:
    """A request's vector in the form the store takes."""
    if isinstance(value, SparseIn):
        return value.as_dict()
    if isinstance(value, HybridVectors):
        return {
            key: _vector_in(item) for key, item in (("dense", value.dense), ("sparse", value.sparse)) if item
        }
    return value


class PropertySpec(BaseModel):
    """A property with options: its type, the tokenization of a text property, its filter index."""

    type: str
    tokenization: Literal["word", "lowercase", "whitespace", "field"] | None = None
    index_filterable: bool = True


class BM25Spec(BaseModel):
    """BM25 parameters and text analysis (a stemmer language, a stop-word language or list, or null)."""

    k1: float = Field(default=1.2, ge=0, le=100)
    b: float = Field(default=0.75, ge=0, le=1)
    stemmer: str | None = Field(default="english", max_length=32)
    stopwords: str | list[Annotated[str, Field(max_length=64)]] | None = Field(
        default="english", max_length=10_000
    )


class CreateCollection(BaseModel):
    """A new collection's name, typed properties and named vectors."""

    name: str
    properties: dict[str, str | PropertySpec] = Field(default_factory=dict)
    vectors: dict[str, VectorSpec] = Field(default_factory=lambda: {"default": VectorSpec()})
    bm25: BM25Spec = Field(default_factory=BM25Spec)


class ObjectIn(BaseModel):
    """One object to insert: properties, and optionally its uuid and vectors of its own."""

    properties: dict[str, Any]
    uuid: str | None = None
    vectors: dict[str, VectorIn] = Field(default_factory=dict)


class InsertObjects(BaseModel):
    """A batch of objects; refused ones are reported by index and the rest are stored."""

    objects: list[ObjectIn]
    id_field: str | None = Field(
        default=None,
        max_length=128,
        description="a property naming each object (such as '_id'): its value derives the uuid, so sending "
        "the same objects again updates them, and is kept as the property 'id'",
    )


class UpdateObject(BaseModel):
    """New property values (and vectors) for an object."""

    properties: dict[str, Any]
    vectors: dict[str, VectorIn] | None = None


class QueryRerank(BaseModel):
    """Rerank a query's results with the server's cross-encoder (mirrors the Python ``Rerank``)."""

    property: str = Field(description="the text property scored against the query")
    query: str | None = Field(default=None, description="the text to score with; by default the query's")
    candidates: int | None = Field(
        default=None, ge=1, le=10000, description="results fetched first (default max(50, 4 * limit))"
    )


class QueryRequest(BaseModel):
    """One search; the fields mirror the Python ``collection.query`` methods' arguments."""

    type: Literal["near_text", "near_vector", "near_image", "near_object", "bm25", "hybrid", "fetch"]
    query: str | None = None
    vector: list[float] | SparseIn | HybridVectors | None = None
    image: str | None = Field(default=None, description="base64 or a data URL")
    uuid: str | None = None
    limit: int = Field(default=10, ge=1, le=10000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    alpha: float | None = Field(
        default=None, ge=0, le=1, description="hybrid: the vector side's weight (0.5)"
    )
    weights: dict[Literal["dense", "sparse", "bm25"], float] | None = Field(
        default=None, description="hybrid: a weight per source, instead of alpha"
    )
    fusion: Literal["relative_score", "ranked"] = "relative_score"
    target_vector: str | TargetPair | None = None
    query_properties: list[str] | None = None
    filters: dict[str, Any] | None = None
    include_vector: bool = False
    explain: bool = False
    rerank: QueryRerank | None = None


def _describe(state: ServerState, collection: Any) -> dict[str, Any]:
    config = collection.config
    return {
        "name": collection.name,
        "count": len(collection),
        "properties": dict(config.schema.properties),
        "tokenization": dict(config.schema.tokenization),
        "bm25": config.bm25.to_json(),
        "vectors": {
            name: {
                "dims": vector.dims,
                "metric": vector.metric,
                "sparse": vector.sparse,
                "model": _public_model_name(state, (vector.vectorizer or {}).get("model")),
                "properties": (vector.vectorizer or {}).get("properties"),
            }
            for name, vector in config.vectors.items()
        },
        "modalities": _modalities(collection),
    }


def _public_model_name(state: ServerState, stored: str | None) -> str | None:
    """A collection's model as callers see it: the served model's public name, or the last part of
    the stored name or path (the server's folders are none of a caller's business)."""
    if stored is None:
        return None
    if stored == getattr(state.model, "name_or_path", None):
        return state.settings.model_name
    return PurePath(stored).name


def _modalities(collection: Any) -> list[str]:
    found = {"text"}
    for vectorizer in collection.vectorizers.values():
        model = vectorizer._model  # only a model already loaded; never load one to describe it
        found.update(getattr(model, "modalities", []) if model is not None else [])
    return sorted(found)


def _object_json(obj: Any, include_vector: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"uuid": obj.uuid, "properties": _escaped(obj.properties)}
    if obj.score is not None:
        out["score"] = obj.score
    if obj.distance is not None:
        out["distance"] = obj.distance
    if obj.rerank_score is not None:
        out["rerank_score"] = obj.rerank_score
    if obj.explain is not None:
        out["explain"] = obj.explain
    if include_vector:
        out["vectors"] = {
            name: vector.as_dict() if isinstance(vector, SparseVector) else vector.tolist()
            for name, vector in obj.vectors.items()
        }
    return dict(jsonable_encoder(out))


def _escaped(value: Any) -> Any:
    """``value`` with lone surrogates in its strings written as ``\\udXXX`` text, so a row stored before
    text was checked on the way in still reads as JSON."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    return value


async def _locked(state: ServerState, work: Any) -> Any:
    return await state.run_remote(work, lock=True)


@router.get("", summary="List collections")
async def list_collections(state: StateDep) -> dict[str, Any]:
    """Every collection with its properties, vectors and object count."""
    described = []
    for name in state.require_db().collections.list():
        try:
            described.append(_describe(state, state.collection(name)))
        except CollectionNotFoundError:  # deleted since it was listed
            continue
    return {"collections": described}


@router.post("", status_code=201, summary="Create a collection")
async def create_collection(body: CreateCollection, state: StateDep) -> dict[str, Any]:
    """Create a collection whose vectorized vectors use the served model."""
    from omniembed.store import SelfProvided, Vectorizer

    db = state.require_db()
    if db.collections.exists(body.name):
        raise CollectionExistsError(
            f"a collection named {body.name!r} exists; delete it or pick another name"
        )
    vectors: dict[str, Any] = {}
    for name, spec in body.vectors.items():
        if spec.self_provided:
            vectors[name] = SelfProvided(spec.dims, "dot" if spec.sparse else spec.metric, sparse=spec.sparse)
        else:
            vectors[name] = Vectorizer(
                state.require_model(), spec.properties, include_property_names=spec.include_property_names
            )
    properties = {
        name: spec if isinstance(spec, str) else Property(spec.type, spec.tokenization, spec.index_filterable)
        for name, spec in body.properties.items()
    }
    stopwords = tuple(body.bm25.stopwords) if isinstance(body.bm25.stopwords, list) else body.bm25.stopwords
    bm25 = BM25Config(body.bm25.k1, body.bm25.b, body.bm25.stemmer, stopwords)
    collection = await _locked(
        state, lambda: db.collections.create(body.name, properties, vectors, bm25=bm25)
    )
    state.collections[body.name] = collection
    return _describe(state, collection)


@router.get("/{name}", summary="Describe a collection")
async def get_collection(name: str, state: StateDep) -> dict[str, Any]:
    """One collection's properties, vectors and object count."""
    return _describe(state, state.collection(name))


@router.delete("/{name}", summary="Delete a collection")
async def delete_collection(name: str, state: StateDep) -> dict[str, Any]:
    """Delete a collection and all its objects."""
    state.collection(name)  # 404 when there is none
    await run_in_threadpool(state.require_db().collections.delete, name)
    state.collections.pop(name, None)
    return {"deleted": name}


@router.post("/{name}/objects", summary="Insert a batch of objects")
async def insert_objects(name: str, body: InsertObjects, state: StateDep) -> dict[str, Any]:
    """Store the objects; ``errors`` maps the index of each refused object to its reason."""
    from omniembed.store import DataObject

    if len(body.objects) > state.settings.max_inputs:
        raise LimitExceededError(
            f"{len(body.objects)} objects in one request; this server takes {state.settings.max_inputs}"
        )
    collection = state.collection(name)
    objects = [
        DataObject(obj.properties, obj.uuid, {k: _vector_in(v) for k, v in obj.vectors.items()})
        for obj in body.objects
    ]
    result = await _locked(
        state, lambda: collection.data.insert_many(objects, show_progress=False, id_field=body.id_field)
    )
    return {
        "uuids": result.uuids,
        "errors": result.errors,
        "truncated": result.truncated,
        "embedded": result.embedded,
    }


@router.get("/{name}/objects", summary="List objects")
async def fetch_objects(
    name: str,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    include_vector: bool = False,
) -> dict[str, Any]:
    """Objects in insertion order, paged."""
    collection = state.collection(name)
    result = await run_in_threadpool(
        lambda: collection.query.fetch_objects(limit=limit, offset=offset, include_vector=include_vector)
    )
    return {"objects": [_object_json(obj, include_vector) for obj in result]}


@router.get("/{name}/objects/{uuid}", summary="Get one object")
async def get_object(name: str, uuid: str, state: StateDep, include_vector: bool = False) -> dict[str, Any]:
    """One object by uuid."""
    collection = state.collection(name)
    obj = await run_in_threadpool(lambda: collection.data.get_by_id(uuid, include_vector=include_vector))
    if obj is None:
        raise ObjectNotFoundError(f"no object with uuid {uuid!r} in collection {name!r}")
    return _object_json(obj, include_vector)


@router.patch("/{name}/objects/{uuid}", summary="Update some properties of an object")
async def update_object(name: str, uuid: str, body: UpdateObject, state: StateDep) -> dict[str, Any]:
    """Merge the given properties into the object (re-embedding it only if its inputs changed)."""
    collection = state.collection(name)
    vectors = {k: _vector_in(v) for k, v in body.vectors.items()} if body.vectors is not None else None
    await _locked(state, lambda: collection.data.update(uuid, body.properties, vectors))
    return {"updated": uuid}


@router.put("/{name}/objects/{uuid}", summary="Replace all properties of an object")
async def replace_object(name: str, uuid: str, body: UpdateObject, state: StateDep) -> dict[str, Any]:
    """Replace the object's properties (and vectors)."""
    collection = state.collection(name)
    vectors = {k: _vector_in(v) for k, v in body.vectors.items()} if body.vectors is not None else None
    await _locked(state, lambda: collection.data.replace(uuid, body.properties, vectors))
    return {"replaced": uuid}


@router.delete("/{name}/objects/{uuid}", summary="Delete one object")
async def delete_object(name: str, uuid: str, state: StateDep) -> dict[str, Any]:
    """Delete one object; 404 when there is none."""
    collection = state.collection(name)
    if not await run_in_threadpool(collection.data.delete_by_id, uuid):
        raise ObjectNotFoundError(f"no object with uuid {uuid!r} in collection {name!r}")
    return {"deleted": uuid}


@router.post("/{name}/query", summary="Search a collection")
async def query(name: str, body: QueryRequest, state: StateDep) -> dict[str, Any]:
    """Run one search (``type`` picks the method) and return the objects, best first."""
    collection = state.collection(name)
    if body.query is not None:
        state.check_chars(body.query, "query")
    if body.rerank is not None and body.rerank.query is not None:
        state.check_chars(body.rerank.query, "rerank.query")
    filters = from_json(body.filters) if body.filters is not None else None
    rerank = _rerank(state, body)
    start = time.perf_counter()
    result = await _locked(state, lambda: _run_query(collection, body, filters, rerank))
    return {
        "objects": [_object_json(obj, body.include_vector) for obj in result],
        "took_ms": round((time.perf_counter() - start) * 1000, 3),
    }


def _need(value: Any, field: str, kind: str) -> Any:
    if value is None:
        raise InvalidInputError(f"a {kind} query needs '{field}'")
    return value


def _rerank(state: ServerState, body: QueryRequest) -> Any:
    """The Python ``Rerank`` for the body's ``rerank`` field, using the server's cross-encoder."""
    spec = body.rerank
    if spec is None:
        return None
    if state.reranker is None:
        raise NotServedError("'rerank' needs a reranker; start the server with --reranker NAME_OR_PATH")
    if body.type == "fetch":
        raise InvalidInputError("'rerank' needs a search; a fetch query has no query text to rerank by")
    if spec.query is None and body.type not in ("near_text", "bm25", "hybrid"):
        raise InvalidInputError(
            f"a {body.type} query has no text; give the words to rerank by in rerank.query"
        )
    from omniembed.store import Rerank

    return Rerank(state.reranker, spec.property, query=spec.query, candidates=spec.candidates)


def _run_query(collection: Any, body: QueryRequest, filters: Any, rerank: Any) -> Any:
    search = collection.query
    common = {"limit": body.limit, "filters": filters, "include_vector": body.include_vector}
    if body.type == "fetch":
        return search.fetch_objects(offset=body.offset, **common)
    common["rerank"] = rerank
    if body.type == "bm25":
        text = _need(body.query, "query", "bm25")
        return search.bm25(text, query_properties=body.query_properties, **common)
    if isinstance(body.target_vector, list) and body.type != "hybrid":
        raise InvalidInputError(
            "target_vector is a list only in a hybrid query with weights; name one vector"
        )
    common["target_vector"] = body.target_vector
    if body.type == "near_text":
        return search.near_text(_need(body.query, "query", "near_text"), **common)
    if body.type == "near_vector":
        if isinstance(body.vector, HybridVectors):
            raise InvalidInputError(
                "a near_vector query takes one vector: a list of numbers or {indices, values}"
            )
        return search.near_vector(_vector_in(_need(body.vector, "vector", "near_vector")), **common)
    if body.type == "near_image":
        image = data_urls.decode(_need(body.image, "image", "near_image"), "image")
        return search.near_image(load_image(image, index=0), **common)
    if body.type == "near_object":
        return search.near_object(_need(body.uuid, "uuid", "near_object"), **common)
    return search.hybrid(
        _need(body.query, "query", "hybrid"),
        alpha=body.alpha,
        weights=body.weights,
        fusion=body.fusion,
        vector=_vector_in(body.vector),
        query_properties=body.query_properties,
        explain=body.explain,
        **common,
    )
