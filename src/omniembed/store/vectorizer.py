"""Turning objects and queries into vectors with an embedding model, as a collection's named vector."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal, Protocol

import numpy as np

from omniembed.store.backend import HALF_PRECISION
from omniembed.store.nested import split_path, value_at
from omniembed.store.schema import Schema
from omniembed.store.sparse_vectors import as_sparse

LongInputs = Literal["truncate", "chunk"]
# Model classes a stored vectorizer may load by name (an allow-list: nothing else is imported).
_LOADERS = {
    "SentenceTransformer": "omniembed.embedding.encoder",
    "MultiVectorEncoder": "omniembed.late_interaction.encoder",
    "VisionMultiVectorEncoder": "omniembed.late_interaction.vision",
    "SparseEncoder": "omniembed.sparse.encoder",
}
_METRICS = {"cosine": "cosine", "dot": "dot", "euclidean": "l2"}
# Loading options that run code from a model's folder or the hub (or read pickle files): a stored
# vectorizer may not switch them on, since a database folder may come from someone else.
_CODE_OPTIONS = ("trust_remote_code", "use_kernels", "allow_all_kernels", "kernel_config")


class EmbeddingCache(Protocol):
    """Where computed embeddings are kept by key (as float16 for keys ending in ``":f16"``)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the cached vectors among ``keys``."""

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Remember vectors by key."""


@dataclass
class Embedded:
    """Vectors for a batch of inputs (``None`` where an object had nothing to embed)."""

    vectors: list[np.ndarray | None]
    truncated: int = 0
    computed: int = 0


class Vectorizer:
    """Embed chosen properties of each object with a model; queries go through ``encode_query``.

    Args:
        model: a loaded model (anything with ``encode_query``/``encode_document``) or a name or path
            to load with ``SentenceTransformer``. A name is stored with the collection, so reopening
            the database loads the same model; a loaded model is stored by its ``name_or_path``.
        properties: the properties to embed, in this order; ``None`` means every text and image property.
        include_property_names: prefix each value with ``"name: "``.
        long_inputs: ``"truncate"`` (cut at the model's ``max_seq_length``, counted in import results) or
            ``"chunk"`` (split into windows that fit, embed each, mean-pool and normalise).
        query_prompt_name: a prompt for queries other than the model's ``query`` prompt.
        document_prompt_name: a prompt for objects other than the model's document prompt.
        batch_size: inputs per model call.
        model_kwargs: keyword arguments for loading the model by name.
        model_class: the class that loads the model by name: ``"SentenceTransformer"`` (default),
            ``"MultiVectorEncoder"`` for late-interaction models or ``"SparseEncoder"`` for sparse
            (SPLADE) models, whose vectors are stored as token ids and weights; taken from a loaded model.

    >>> Vectorizer("all-MiniLM-L6-v2", properties=["title", "body"]).properties
    ['title', 'body']
    """

    def __init__(
        self,
        model: Any,
        properties: Sequence[str] | None = None,
        *,
        include_property_names: bool = False,
        long_inputs: LongInputs = "truncate",
        query_prompt_name: str | None = None,
        document_prompt_name: str | None = None,
        batch_size: int = 32,
        model_kwargs: Mapping[str, Any] | None = None,
        model_class: str = "SentenceTransformer",
    ) -> None:
        if long_inputs not in ("truncate", "chunk"):
            raise ValueError(f"long_inputs must be 'truncate' or 'chunk', got {long_inputs!r}")
        if isinstance(model, (str, os.PathLike)):
            self.model_name: str | None = os.fspath(model)
            self._model: Any = None
        else:
            model_class = type(model).__name__
            name = getattr(model, "name_or_path", None)
            # Only a model we can load again by name is stored by name; others are passed on reopening.
            self.model_name = str(name) if name is not None and model_class in _LOADERS else None
            self._model = model
        if model_class not in _LOADERS and self._model is None:
            raise ValueError(f"model_class {model_class!r} is not one of {sorted(_LOADERS)}")
        self.model_class = model_class
        self.properties = list(properties) if properties is not None else None
        self.include_property_names = include_property_names
        self.long_inputs: LongInputs = long_inputs
        self.query_prompt_name = query_prompt_name
        self.document_prompt_name = document_prompt_name
        self.batch_size = batch_size
        self.model_kwargs = dict(model_kwargs or {})
        self._refusal: str | None = None  # why a stored vectorizer may not load its model by name

    @property
    def model(self) -> Any:
        """The model, loaded on first use when given by name."""
        if self._model is None:
            if self._refusal is not None:
                raise ValueError(self._refusal)
            loader = getattr(import_module(_LOADERS[self.model_class]), self.model_class)
            self._model = loader(self.model_name, **self.model_kwargs)
        return self._model

    @property
    def dims(self) -> int:
        """Size of the vectors this vectorizer makes (of each token vector for multi-vector models)."""
        size = (
            getattr(self.model, "get_sentence_embedding_dimension", None)
            or self.model.get_embedding_dimension
        )
        return int(size())

    @property
    def multi_vector(self) -> bool:
        """Whether the model makes one matrix of token vectors per input (late interaction)."""
        from omniembed.late_interaction.encoder import MultiVectorEncoder

        return isinstance(self.model, MultiVectorEncoder)

    @property
    def sparse(self) -> bool:
        """Whether the model makes sparse vectors over its vocabulary (a ``SparseEncoder``)."""
        from omniembed.sparse.encoder import SparseEncoder

        return isinstance(self.model, SparseEncoder)

    @property
    def metric(self) -> str:
        """The store metric matching the model's similarity function (sparse vectors: dot product)."""
        if self.multi_vector:
            return "maxsim"
        if self.sparse:
            return "dot"
        return _METRICS.get(getattr(self.model, "similarity_fn_name", "cosine"), "cosine")

    def to_json(self) -> dict[str, Any]:
        """Settings stored with the collection (``model`` is ``None`` for a model with no name)."""
        return {
            "model": self.model_name,
            "properties": self.properties,
            "include_property_names": self.include_property_names,
            "long_inputs": self.long_inputs,
            "query_prompt_name": self.query_prompt_name,
            "document_prompt_name": self.document_prompt_name,
            "batch_size": self.batch_size,
            "model_kwargs": self.model_kwargs,
            "model_class": self.model_class,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], model: Any = None) -> Vectorizer:
        """Rebuild a vectorizer from :meth:`to_json` (optionally with an already loaded model).

        Without a model, stored loading options that run code or read pickle files are not applied:
        loading the model raises ``ValueError`` that says to pass the model instead.
        """
        options = {key: value for key, value in data.items() if key != "model"}
        if model is None and data["model"] is None:
            raise ValueError(
                "this vectorizer's model had no name or path when the collection was made; pass it with "
                "db.collections.get(name, vectorizers={vector_name: model})"
            )
        vectorizer = cls(model if model is not None else data["model"], **options)
        unsafe = _unsafe_option(data.get("model_kwargs"), "model_kwargs") if model is None else None
        if unsafe is not None:  # refused when the model would load, so the rest of the collection works
            vectorizer._refusal = (
                f"the stored vectorizer loads its model with {unsafe}, which can run code or read pickle "
                "files from the model's folder, and a database folder may come from someone else; if you "
                "trust the model, load it yourself and pass it: "
                "db.collections.get(name, vectorizers={vector_name: model})"
            )
        return vectorizer

    def bind(self, schema: Schema) -> None:
        """Check the properties against the schema; default to every text and media property."""
        usable = [name for name, kind in schema.properties.items() if kind in _READABLE]
        if self.properties is None:
            self.properties = usable
        wrong = [name for name in self.properties if name not in usable and not _nested_text(name, schema)]
        if wrong or not self.properties:
            raise ValueError(
                f"a vectorizer reads text or image properties (and audio or video ones, or text inside an "
                f"object property such as 'metadata.author'); {wrong or '[]'} not among {usable}"
            )

    def input_for(self, properties: Mapping[str, Any], schema: Schema) -> Any:
        """What the model embeds for one object: text, ``{"image": bytes}``, ``{"audio": bytes}``,
        ``{"video": bytes}``, a dict of several of these (the first property of each media kind), or
        ``None``. Media stay encoded: the model decodes them under the caller's input policy."""
        texts: list[str] = []
        media: dict[str, Any] = {}
        for name in self.properties or []:
            value = properties.get(name) if name in schema.properties else _text_at(properties, name)
            if value is None or value == "" or value == []:
                continue
            kind = schema.properties.get(name, "text")
            if kind in ("image", "audio", "video"):
                media.setdefault(kind, value)
                continue
            text = ", ".join(value) if isinstance(value, list) else value
            texts.append(f"{name}: {text}" if self.include_property_names else text)
        parts: dict[str, Any] = {"text": "\n".join(texts)} if texts else {}
        parts.update({kind: base64.b64decode(value) for kind, value in media.items()})
        if len(parts) == 1 and "text" in parts:
            return parts["text"]
        return parts or None

    def embed_documents(
        self, inputs: Sequence[Any], cache: EmbeddingCache | None = None, storage: str = "float16"
    ) -> Embedded:
        """Embed object inputs, reusing cached vectors for content seen before.

        ``storage`` is how the collection keeps token matrices: a ``float16`` collection's are cached
        as float16 (the ":f16" keys; a float32 copy would hold twice what it does), any other's as
        float32, so a vector from the cache is stored exactly as a freshly computed one.
        """
        if self.model_name is None or self.sparse:  # no stable key; the cache keeps dense blobs only
            cache = None
        suffix = HALF_PRECISION if self.multi_vector and storage == "float16" else ""
        keys = [self._key(item) + suffix if item is not None else None for item in inputs]
        cached = cache.get_many([k for k in keys if k is not None]) if cache is not None else {}
        if cached and self.multi_vector:  # the cache keeps flat blobs
            cached = {key: vector.reshape(-1, self.dims) for key, vector in cached.items()}
        todo = [i for i, key in enumerate(keys) if key is not None and key not in cached]
        result = Embedded(vectors=[cached.get(key) if key is not None else None for key in keys])
        if todo:
            fresh, result.truncated = self._encode_documents([inputs[i] for i in todo])
            for i, vector in zip(todo, fresh, strict=True):
                result.vectors[i] = vector
            if cache is not None:
                cache.put_many({str(keys[i]): vector for i, vector in zip(todo, fresh, strict=True)})
            result.computed = len(todo)
        return result

    def embed_query(self, query: Any) -> Any:
        """Embed a search query with the model's query prompt (a ``SparseVector`` for sparse models)."""
        if self.sparse:
            if self.query_prompt_name is not None:
                row = self.model.encode(query, prompt_name=self.query_prompt_name, task="query")
            else:
                row = self.model.encode_query(query)
            return as_sparse(row, None, "the query's sparse vector")
        if self.query_prompt_name is not None:
            vector = self.model.encode(query, prompt_name=self.query_prompt_name, convert_to_numpy=True)
        else:
            vector = self.model.encode_query(query, convert_to_numpy=True)
        return np.asarray(vector, dtype=np.float32)  # a matrix for multi-vector models

    def _encode(self, inputs: list[Any]) -> np.ndarray:
        supports = getattr(self.model, "supports", None)
        split = [self._split(item, supports) for item in inputs]
        if all(len(parts) == 1 for parts in split):
            return np.asarray(self._encode_parts([parts[0] for parts in split]))
        # A model without joint inputs (CLIP, CLAP) embeds each side; the object gets their normalised
        # mean, as Weaviate's CLIP vectorizer does with equal weights.
        vectors = self._encode_parts([part for parts in split for part in parts]).astype(np.float32)
        out, row = [], 0
        for parts in split:
            if len(parts) > 1:
                block = vectors[row : row + len(parts)]
                mean = (block / np.linalg.norm(block, axis=1, keepdims=True)).mean(axis=0)
                out.append(mean / (np.linalg.norm(mean) or 1.0))
            else:
                out.append(vectors[row])
            row += len(parts)
        return np.stack(out)

    @staticmethod
    def _split(item: Any, supports: Any) -> list[Any]:
        """One input, or its parts when the model cannot take them together (one-key dicts for media)."""
        if not isinstance(item, dict) or len(item) == 1:
            return [item]
        if supports is not None and supports(tuple(sorted(item))):
            return [item]
        return [value if kind == "text" else {kind: value} for kind, value in sorted(item.items())]

    def _encode_parts(self, inputs: list[Any]) -> Any:
        kwargs: dict[str, Any] = {"batch_size": self.batch_size, "convert_to_numpy": True}
        if self.document_prompt_name is not None:
            return np.asarray(self.model.encode(inputs, prompt_name=self.document_prompt_name, **kwargs))
        return np.asarray(self.model.encode_document(inputs, **kwargs))

    def _encode_documents(self, inputs: list[Any]) -> tuple[list[Any], int]:
        texts = [i for i, item in enumerate(inputs) if isinstance(item, str)]
        too_long = self._too_long([inputs[i] for i in texts])
        if self.sparse:  # token weights: long texts are cut at the model's length
            if len(texts) != len(inputs):
                raise ValueError("a sparse (SparseEncoder) vectorizer embeds text properties only")
            kwargs: dict[str, Any] = {"batch_size": self.batch_size, "convert_to_tensor": False}
            if self.document_prompt_name is not None:
                kwargs.update(prompt_name=self.document_prompt_name, task="document")
                rows = self.model.encode(inputs, **kwargs)
            else:
                rows = self.model.encode_document(inputs, **kwargs)
            return [as_sparse(row, None, "a document's sparse vector") for row in rows], sum(too_long)
        if self.multi_vector:  # token matrices: long texts are cut at the model's document length
            matrices = self._encode_parts(inputs)
            return [np.asarray(matrix, dtype=np.float32) for matrix in matrices], sum(too_long)
        if self.long_inputs == "truncate" or not any(too_long):
            return list(self._encode(inputs).astype(np.float32)), sum(too_long)
        from omniembed.store.chunking import chunk_text

        pieces: list[Any] = []
        owners: list[int] = []
        for i, item in enumerate(inputs):
            parts = chunk_text(self.model, item) if isinstance(item, str) else [item]
            pieces.extend(parts)
            owners.extend([i] * len(parts))
        vectors = self._encode(pieces).astype(np.float32)
        pooled = []
        for i in range(len(inputs)):
            mean = vectors[[j for j, owner in enumerate(owners) if owner == i]].mean(axis=0)
            pooled.append(mean / (np.linalg.norm(mean) or 1.0))
        return pooled, 0

    def _too_long(self, texts: list[str]) -> list[bool]:
        tokenizer = getattr(self.model, "tokenizer", None)
        limit = getattr(self.model, "max_seq_length", None)
        if tokenizer is None or limit is None or not texts:
            return [False] * len(texts)
        encoded = tokenizer(texts, add_special_tokens=True, verbose=False)  # long texts are expected here
        lengths = [len(ids) for ids in encoded["input_ids"]]
        return [length > limit for length in lengths]

    def _key(self, item: Any) -> str:
        digest = hashlib.sha256()
        digest.update(f"{self.model_name}\0{self.document_prompt_name}\0{self.long_inputs}\0".encode())
        if isinstance(item, dict) and set(item) <= {"text", "image"}:
            digest.update(str(item.get("text")).encode())
            item = item.get("image")
        elif isinstance(item, dict):  # audio or video bytes, maybe with text or an image
            for kind, value in sorted(item.items()):
                digest.update(f"\0{kind}\0".encode())
                _digest_value(digest, value)
            return digest.hexdigest()
        _digest_value(digest, item)
        return digest.hexdigest()


def _nested_text(name: str, schema: Schema) -> bool:
    """Whether ``name`` is a path into an object property (``metadata.author``)."""
    head, _, rest = name.partition(".")
    if not rest or schema.properties.get(head) not in ("object", "object[]"):
        return False
    split_path(name)  # a malformed path raises here, naming the bad key
    return True


def _text_at(properties: Mapping[str, Any], path: str) -> str | list[str] | None:
    """The text at a path into an object: a string, numbers written out, a list of them, or ``None``."""
    value = value_at(properties, path)
    items = value if isinstance(value, list) else [value]
    texts = [
        str(item) for item in items if isinstance(item, (str, int, float)) and not isinstance(item, bool)
    ]
    if not texts:
        return None
    return texts if isinstance(value, list) else texts[0]


_READABLE = ("text", "text[]", "image", "audio", "video")


def _unsafe_option(options: Any, where: str) -> str | None:
    """The first loading option, at any depth of ``options``, that runs code or reads pickle files.

    >>> _unsafe_option({"model_kwargs": {"use_safetensors": False}}, "model_kwargs")
    'model_kwargs.model_kwargs.use_safetensors=False'
    """
    todo = [(where, options)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, list):
            value = dict(enumerate(value))
        for key, item in value.items() if isinstance(value, Mapping) else ():
            if _runs_code(key, item):
                return f"{path}.{key}={item!r}"
            todo.append((f"{path}.{key}", item))
    return None


def _runs_code(key: Any, value: Any) -> bool:
    if key in _CODE_OPTIONS:
        return value not in (False, None)
    if key == "attn_implementation":  # "org/repo" names a kernel fetched from the hub
        return isinstance(value, str) and "/" in value
    return key == "use_safetensors" and value is False  # the opt-in to pickle-based weights


def _digest_value(digest: Any, item: Any) -> None:
    if isinstance(item, str):
        digest.update(item.encode())
    elif isinstance(item, bytes):
        digest.update(item)
    elif item is not None:
        digest.update(item.tobytes())
        digest.update(repr(item.size).encode())
