"""``import_into``: the rows of a Ray Dataset (with their vectors) into a collection, idempotently.

Two ways to write, chosen by ``writer``:

* ``"driver"`` (any target): this process streams the dataset's batches (``iter_batches``) and
  inserts them. The embedded database takes writers from one process only, so this is its way.
* ``"tasks"`` (a Milvus server only): ``concurrency`` Ray actors each open their own connection and
  insert the batches they are given; Milvus takes writes from many clients.

Each object's uuid is :func:`omniembed.store.ids.object_uuid` of the collection and its key
(``id_column``), as ``omniembed import --id-field`` names objects, so a retried task or a second
import replaces objects instead of adding copies.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from omniembed.distributed.cluster import clear_errors, ray_module
from omniembed.store import DataObject, SelfProvided, Vectorizer, connect
from omniembed.store.database import Database
from omniembed.store.infer import SAMPLE_SIZE, infer_properties

Writer = Literal["driver", "tasks"]
SERVER_PREFIXES = ("milvus://", "http://", "https://")


@dataclass
class ImportSummary:
    """What ``import_into`` stored: how many objects, and why each refused one was refused."""

    imported: int = 0
    errors: list[str] = field(default_factory=list)


def import_into(
    ds: Any,
    target: str | os.PathLike[str] | Database,
    collection: str,
    *,
    id_column: str = "id",
    vector_column: str = "embedding",
    vector_name: str = "default",
    properties: Mapping[str, str] | None = None,
    vectorizer: Vectorizer | None = None,
    writer: Writer = "driver",
    concurrency: int = 1,
    batch_size: int = 512,
    show_progress: bool = True,
) -> ImportSummary:
    """Insert every row of ``ds`` into ``collection`` with its vector; create the collection if missing.

    Args:
        ds: a ``ray.data.Dataset`` with an id column, a vector column (from :func:`embed`) and
            the properties to store.
        target: an embedded database folder, a Milvus Lite ``.db`` file, ``milvus://host:port``, or
            an open :class:`~omniembed.store.database.Database` of this process.
        collection: the collection's name.
        id_column: the key that names each object (kept as its ``id`` property); its uuid derives from it.
        vector_column: the column of vectors (one per row, or a matrix of token vectors).
        vector_name: the collection's named vector the column fills.
        properties: property types of a new collection; the others are inferred from the first rows.
        vectorizer: a new collection's vectorizer for ``vector_name`` (the model that made the
            vectors), so it embeds text queries; without one the vectors are ``SelfProvided``.
        writer: ``"driver"`` (this process writes) or ``"tasks"`` (Ray actors write to a Milvus server).
        concurrency: writer actors with ``writer="tasks"``.
        batch_size: rows per insert.
        show_progress: show a progress bar of the objects written (driver writer).
    """
    _check_plan(target, writer)
    ray_module()
    with clear_errors():
        if isinstance(target, Database):
            return _write_from_driver(
                ds,
                target,
                collection,
                _Layout(id_column, vector_column, vector_name),
                properties,
                vectorizer,
                batch_size,
                show_progress,
            )
        options = {"backend": "milvus"} if _is_milvus(target) else {}
        layout = _Layout(id_column, vector_column, vector_name)
        with connect(target, **options) as db:
            if writer == "driver":
                return _write_from_driver(
                    ds, db, collection, layout, properties, vectorizer, batch_size, show_progress
                )
            _ensure_collection(db, collection, ds.take(SAMPLE_SIZE // 10), layout, properties, vectorizer)
        return _write_from_tasks(ds, os.fspath(target), collection, layout, concurrency, batch_size)


def _is_milvus(target: str | os.PathLike[str]) -> bool:
    text = os.fspath(target)
    return text.startswith(SERVER_PREFIXES) or text.endswith(".db")


def _check_plan(target: Any, writer: str) -> None:
    """Refuse a way of writing that the target cannot take."""
    if writer not in ("driver", "tasks"):
        raise ValueError(f"writer must be 'driver' or 'tasks', got {writer!r}")
    if writer == "driver":
        return
    where = "an open Database" if isinstance(target, Database) else repr(os.fspath(target))
    if isinstance(target, Database) or not os.fspath(target).startswith(SERVER_PREFIXES):
        raise ValueError(
            f"writer='tasks' opens the target from every Ray worker, but {where} is a database on one "
            "machine that takes writers from one process only; use writer='driver' (this process "
            "streams the rows in and writes them), or import into a Milvus server (milvus://host:port)"
        )


@dataclass(frozen=True)
class _Layout:
    """Which columns of a row are its key and its vector, and which named vector the vector fills."""

    id_column: str
    vector_column: str
    vector_name: str

    def objects(self, table: Any) -> Iterator[DataObject]:
        """The batch's rows as objects with their vector (the key stays a property for ``id_field``)."""
        for column in (self.id_column, self.vector_column):
            if column not in table.column_names:
                raise KeyError(
                    f"the dataset has no column {column!r} (it has {', '.join(table.column_names)}); "
                    f"name it with {'id_column' if column == self.id_column else 'vector_column'}=..."
                )
        vectors = table.column(self.vector_column).to_pylist()
        rest = table.drop_columns([self.vector_column]).to_pylist()
        for row, vector in zip(rest, vectors, strict=True):
            if isinstance(vector, Mapping):  # a sparse vector: the collection checks its form
                vector = {"indices": vector.get("indices"), "values": vector.get("values")}
            properties = {name: value for name, value in row.items() if value is not None}
            yield DataObject(properties, vectors={self.vector_name: vector} if vector is not None else {})

    def sample_types(self, rows: Sequence[Mapping[str, Any]], declared: Mapping[str, str]) -> dict[str, str]:
        """A new collection's property types: declared ones, the rest inferred from ``rows``."""
        left_out = {self.vector_column, self.id_column, *declared}
        sample = [{k: v for k, v in row.items() if k not in left_out} for row in rows]
        types = {**infer_properties(sample), **declared}
        key = next((row[self.id_column] for row in rows if row.get(self.id_column) is not None), "")
        types.setdefault("id", "int" if isinstance(key, int) and not isinstance(key, bool) else "text")
        return types


def _ensure_collection(
    db: Database,
    name: str,
    sample: list[dict[str, Any]],
    layout: _Layout,
    declared: Mapping[str, str] | None,
    vectorizer: Vectorizer | None,
) -> None:
    if db.collections.exists(name) or not sample:
        return
    first = next(
        (row[layout.vector_column] for row in sample if row.get(layout.vector_column) is not None), None
    )
    sparse = isinstance(first, Mapping)
    multi = not sparse and first is not None and len(first) > 0 and isinstance(first[0], (list, tuple))
    spec: Vectorizer | SelfProvided = vectorizer or SelfProvided(multi_vector=bool(multi), sparse=sparse)
    db.collections.create(name, layout.sample_types(sample, declared or {}), {layout.vector_name: spec})


def _write_from_driver(
    ds: Any,
    db: Database,
    name: str,
    layout: _Layout,
    declared: Mapping[str, str] | None,
    vectorizer: Vectorizer | None,
    batch_size: int,
    show_progress: bool,
) -> ImportSummary:
    batches = iter(ds.iter_batches(batch_size=batch_size, batch_format="pyarrow"))
    first = next(batches, None)
    if first is None:
        return ImportSummary()
    next(layout.objects(first.slice(0, 1)), None)  # a missing column: refuse now
    _ensure_collection(db, name, first.slice(0, SAMPLE_SIZE).to_pylist(), layout, declared, vectorizer)
    objects = (obj for table in itertools.chain([first], batches) for obj in layout.objects(table))
    result = db.collections.get(name).data.insert_many(
        objects, batch_size=batch_size, show_progress=show_progress, id_field=layout.id_column
    )
    return ImportSummary(len(result.uuids), [f"object {i}: {e}" for i, e in sorted(result.errors.items())])


class _TaskWriter:
    """A Ray actor that writes the batches it is given to a Milvus server over its own connection."""

    def __init__(self, target: str, name: str, layout: _Layout) -> None:
        self.db = connect(target, backend="milvus")
        self.collection = self.db.collections.get(name)
        self.layout = layout

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        result = self.collection.data.insert_many(
            self.layout.objects(table), show_progress=False, id_field=self.layout.id_column
        )
        errors = [
            f"{self.layout.id_column}={table.column(self.layout.id_column)[i]}: {e}"
            for i, e in sorted(result.errors.items())
        ]
        return pa.table({"imported": [len(result.uuids)], "errors": [errors]})

    def __del__(self) -> None:
        """Close the connection when Ray retires the actor (Ray Data calls a UDF's ``__del__``)."""
        db = getattr(self, "db", None)
        if db is not None:
            db.close()


def _write_from_tasks(
    ds: Any, target: str, name: str, layout: _Layout, concurrency: int, batch_size: int
) -> ImportSummary:
    written = ds.map_batches(
        _TaskWriter,
        fn_constructor_kwargs={"target": target, "name": name, "layout": layout},
        batch_size=batch_size,
        batch_format="pyarrow",
        concurrency=concurrency,
        num_cpus=0.5,
    )
    summary = ImportSummary()
    for row in written.iter_rows():
        summary.imported += int(row["imported"])
        summary.errors.extend(row["errors"])
    return summary
