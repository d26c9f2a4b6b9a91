"""Writing objects into a collection: insert (one or many), update, replace and delete."""

from __future__ import annotations

import itertools
import logging
import os
import uuid as uuid_module
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from omniembed.errors import ObjectNotFoundError
from omniembed.store.backend import StoredObject
from omniembed.store.filters import Filter
from omniembed.store.ids import object_uuid
from omniembed.store.results import BatchResult, Object

if TYPE_CHECKING:
    from omniembed.inputs.pdf import PdfLimits
    from omniembed.store.collection import Collection
    from omniembed.store.pdf import PdfSource

logger = logging.getLogger(__name__)


@dataclass
class DataObject:
    """An object to insert with its own uuid and/or vectors (``vectors`` skips the vectorizer)."""

    properties: dict[str, Any]
    uuid: str | None = None
    vectors: dict[str, Any] = field(default_factory=dict)


class DataAPI:
    """``collection.data``: the write side of a collection."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection

    def insert(
        self, properties: Mapping[str, Any], uuid: str | None = None, vectors: Mapping[str, Any] | None = None
    ) -> str:
        """Insert one object and return its uuid; raise ``ValueError`` if it is refused."""
        result = self.insert_many(
            [DataObject(dict(properties), uuid, dict(vectors or {}))], show_progress=False
        )
        if result.errors:
            raise ValueError(result.errors[0])
        return result.uuids[0]

    def insert_many(
        self,
        objects: Iterable[Mapping[str, Any] | DataObject],
        *,
        batch_size: int = 512,
        show_progress: bool | None = None,
        id_field: str | None = None,
    ) -> BatchResult:
        """Insert objects in batches; a refused object is reported in ``errors`` and the rest are kept.

        ``objects`` is read batch by batch, so a generator of any length streams through in bounded
        memory. Errors and uuids are keyed by each object's position in ``objects``.

        Args:
            objects: property dicts, or ``DataObject`` with a uuid and/or vectors of your own.
            batch_size: objects embedded and committed together (each batch is one transaction).
            show_progress: show a progress bar (by default when there are over 1,000 objects, or for
                an iterable of unknown length once a first full batch has come); ``TQDM_DISABLE=1``
                in the environment hides it.
            id_field: a field of each object (such as ``"_id"``) whose value names it: the object's
                uuid is :func:`omniembed.store.ids.object_uuid` of the collection and the value, an
                object with a uuid the collection holds is replaced (so importing the same data twice
                updates it), and the value is kept as the property ``id``, which the collection must
                have (``text``, or ``int`` for integer ids).
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        id_kind = self._id_kind(id_field)
        total = len(objects) if isinstance(objects, Sized) else None
        result = BatchResult()
        bar: Any = None
        offset = 0
        stream = iter(objects)
        while batch := list(itertools.islice(stream, batch_size)):
            if bar is None:
                bar = tqdm(
                    total=total,
                    desc=f"importing into {self._collection.name}",
                    unit="object",
                    disable=not _shows_progress(show_progress, total, len(batch) == batch_size),
                )
            self._insert_batch(batch, offset, result, id_field, id_kind)
            offset += len(batch)
            bar.update(len(batch))
        if bar is not None:
            bar.close()
        logger.info(
            "inserted %d objects into %s (%d refused, %d embedded, %d truncated)",
            len(result.uuids),
            self._collection.name,
            len(result.errors),
            result.embedded,
            result.truncated,
        )
        return result

    def insert_pdf(
        self,
        sources: PdfSource | Iterable[PdfSource],
        *,
        dpi: float = 144.0,
        max_side: int | None = 1536,
        image_format: str = "png",
        limits: PdfLimits | None = None,
        batch_size: int = 16,
        show_progress: bool | None = None,
    ) -> BatchResult:
        """Insert every page of PDF files as an object with ``file``, ``page``, ``image`` and ``text``.

        Pages are rendered and embedded ``batch_size`` at a time, so a long PDF streams through. The
        collection needs ``file`` and ``page`` and at least one of ``image`` and ``text`` (see
        ``omniembed.store.pdf.PAGE_PROPERTIES``); without ``image`` pages are not rendered. A document
        or page that cannot be read (encrypted, corrupt, empty, not a PDF, over a limit) is listed in
        ``unread`` with its file and page, and the rest are inserted; refused pages are in ``errors``,
        their messages naming file and page.

        Args:
            sources: a PDF file, a folder of them, the file's bytes, ``(name, bytes)``, or a list.
            dpi: render resolution.
            max_side: the longest side of a page image in pixels (``None``: no cap).
            image_format: ``png`` or ``jpeg``.
            limits: file size, page count and pixel limits (``omniembed.inputs.pdf.PdfLimits``).
            batch_size: pages rendered, embedded and committed together.
            show_progress: as for :meth:`insert_many`.
        """
        from omniembed.store.pdf import check_page_schema, pdf_pages

        held = check_page_schema(dict(self._collection.config.schema.properties), self._collection.name)
        unread: list[str] = []
        places: list[tuple[str, int]] = []
        pages = pdf_pages(
            sources,
            dpi=dpi,
            max_side=max_side,
            image_format=image_format,
            limits=limits,
            images="image" in held,
            errors=unread,
        )

        def placed() -> Iterator[dict[str, Any]]:
            for page in pages:
                places.append((page["file"], page["page"]))
                yield {name: value for name, value in page.items() if name in held}

        result = self.insert_many(placed(), batch_size=batch_size, show_progress=show_progress)
        result.errors = {
            position: f"{places[position][0]}, page {places[position][1]}: {message}"
            for position, message in result.errors.items()
        }
        result.unread = unread
        return result

    def _id_kind(self, id_field: str | None) -> str | None:
        """The type of the ``id`` property an ``id_field`` fills (``None`` without an id field)."""
        if id_field is None:
            return None
        if not isinstance(id_field, str) or not id_field:
            raise ValueError(f"id_field names a field of the objects, got {id_field!r:.60}")
        kind: str | None = self._collection.config.schema.properties.get("id")
        if kind not in ("text", "int"):
            raise ValueError(
                f"id_field={id_field!r} keeps each object's id as the property 'id', which collection "
                f"{self._collection.name!r} {'has as ' + repr(kind) if kind else 'lacks'}; create it with "
                "properties={'id': 'text', ...}"
            )
        return kind

    def _insert_batch(
        self,
        batch: Sequence[Mapping[str, Any] | DataObject],
        offset: int,
        result: BatchResult,
        id_field: str | None = None,
        id_kind: str | None = None,
    ) -> None:
        collection = self._collection
        ready: list[tuple[int, StoredObject]] = []
        schema = collection.config.schema
        for i, given in enumerate(batch):
            try:
                item = given if isinstance(given, DataObject) else DataObject(_as_dict(given))
                if id_field is not None and id_kind is not None:
                    item = _with_id(item, collection.name, id_field, id_kind)
                properties = schema.clean(item.properties)
                ident = _check_uuid(item.uuid) if item.uuid is not None else str(uuid_module.uuid4())
                vectors = {name: collection.vector_value(name, v) for name, v in item.vectors.items()}
            except (ValueError, TypeError) as error:
                result.errors[offset + i] = str(error)
                continue
            ready.append((offset + i, StoredObject(ident, properties, vectors)))
        collection.vectorize([obj for _, obj in ready], result, [index for index, _ in ready])
        stored = [(index, obj) for index, obj in ready if index not in result.errors]
        if id_field is not None:
            stored = self._replace_existing(stored, result)
        refused = collection.backend.insert(collection.name, [obj for _, obj in stored])
        for position, (index, obj) in enumerate(stored):
            if position in refused:
                result.errors[index] = refused[position]
            else:
                result.uuids[index] = obj.uuid

    def _replace_existing(
        self, stored: list[tuple[int, StoredObject]], result: BatchResult
    ) -> list[tuple[int, StoredObject]]:
        """Replace the objects whose uuid the collection holds; return the ones still to insert."""
        backend, name = self._collection.backend, self._collection.name
        held = {obj.uuid for obj in backend.get(name, [obj.uuid for _, obj in stored])}
        old = [(index, obj) for index, obj in stored if obj.uuid in held]
        refused = backend.replace_many(name, [obj for _, obj in old])
        for position, (index, obj) in enumerate(old):
            if position in refused:
                result.errors[index] = refused[position]
            else:
                result.uuids[index] = obj.uuid
        return [(index, obj) for index, obj in stored if obj.uuid not in held]

    def update(
        self, uuid: str, properties: Mapping[str, Any], vectors: Mapping[str, Any] | None = None
    ) -> None:
        """Change some properties of an object; it is re-embedded only if a vectorized input changed."""
        old = self._get(uuid)
        merged = {**old.properties, **properties}
        self._rewrite(old, {k: v for k, v in merged.items() if v is not None}, vectors)

    def replace(
        self, uuid: str, properties: Mapping[str, Any], vectors: Mapping[str, Any] | None = None
    ) -> None:
        """Replace all properties of an object."""
        self._rewrite(self._get(uuid), dict(properties), vectors)

    def _rewrite(
        self, old: StoredObject, properties: dict[str, Any], vectors: Mapping[str, Any] | None
    ) -> None:
        collection = self._collection
        cleaned = collection.config.schema.clean(properties)
        new = StoredObject(
            old.uuid, cleaned, {k: collection.vector_value(k, v) for k, v in (vectors or {}).items()}
        )
        schema = collection.config.schema
        for name, vector in old.vectors.items():
            vectorizer = collection.vectorizers.get(name)
            # Your own vectors stay until you give new ones; vectorized ones stay while their input does.
            unchanged = vectorizer is None or (
                vectorizer.input_for(old.properties, schema) == vectorizer.input_for(cleaned, schema)
            )
            if name not in new.vectors and unchanged:
                new.vectors[name] = vector
        result = BatchResult()
        collection.vectorize([new], result, [0])
        if result.errors:
            raise ValueError(result.errors[0])
        collection.backend.replace(collection.name, new)

    def delete_by_id(self, uuid: str) -> bool:
        """Delete one object; return whether it existed."""
        return self._collection.backend.delete(self._collection.name, [uuid]) > 0

    def delete_many(self, where: Filter) -> int:
        """Delete every object matching ``where``; return how many were deleted."""
        uuids = self._collection.backend.find(self._collection.name, where)
        return self._collection.backend.delete(self._collection.name, uuids)

    def get_by_id(self, uuid: str, include_vector: bool = False) -> Object | None:
        """Return one object, or ``None`` if there is none with this uuid."""
        found = self._collection.backend.get(self._collection.name, [uuid], with_vectors=include_vector)
        return self._collection.to_objects(found)[0] if found else None

    def exists(self, uuid: str) -> bool:
        """Whether an object with this uuid exists."""
        return bool(self._collection.backend.get(self._collection.name, [uuid]))

    def _get(self, uuid: str) -> StoredObject:
        found = self._collection.backend.get(self._collection.name, [uuid], with_vectors=True)
        if not found:
            raise ObjectNotFoundError(f"no object with uuid {uuid!r} in collection {self._collection.name!r}")
        return found[0]


def _shows_progress(asked: bool | None, total: int | None, full_batch: bool) -> bool:
    """Whether an import shows its progress bar (``TQDM_DISABLE`` in the environment always hides it)."""
    if os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false"):
        return False
    if asked is not None:
        return asked
    return total > 1000 if total is not None else full_batch


def _as_dict(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise TypeError(f"an object is a dict of properties or a DataObject, got {type(obj).__name__}")
    return dict(obj)


def _with_id(item: DataObject, collection: str, id_field: str, id_kind: str) -> DataObject:
    """``item`` named by its id field: the derived uuid, the value moved to the property ``id``."""
    properties = dict(item.properties)
    if id_field not in properties or properties[id_field] is None:
        raise ValueError(f"the object has no {id_field!r} (the id field); give every object one")
    value = properties.pop(id_field)
    ident = object_uuid(collection, value)
    if item.uuid is not None and _check_uuid(item.uuid) != ident:
        raise ValueError(f"the object has both a uuid and an id field {id_field!r}; give one of them")
    kept = str(value) if id_kind == "text" else value
    if properties.get("id", kept) != kept:
        raise ValueError(
            f"the object has an 'id' ({properties['id']!r:.60}) besides the id field {id_field!r}; "
            "the id field's value is kept as 'id': rename or drop the other"
        )
    properties["id"] = kept
    return DataObject(properties, ident, item.vectors)


def _check_uuid(value: str) -> str:
    try:
        return str(uuid_module.UUID(str(value)))
    except ValueError:
        raise ValueError(f"uuid {value!r} is not a valid UUID") from None
